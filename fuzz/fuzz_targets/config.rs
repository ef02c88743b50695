#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| distroless_debug_fuzz::config(data));
