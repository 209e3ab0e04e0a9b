#![no_main]
//! See `pygmy_fuzz::rpc_json`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pygmy_fuzz::rpc_json(data));
