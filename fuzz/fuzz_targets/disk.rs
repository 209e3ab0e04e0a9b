#![no_main]
//! See `pygmy_fuzz::disk`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pygmy_fuzz::disk(data));
