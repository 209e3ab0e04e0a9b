#![no_main]
//! See `pygmy_fuzz::http_request`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pygmy_fuzz::http_request(data));
