#![no_main]
//! See `pygmy_fuzz::query`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pygmy_fuzz::query(data));
