#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| distroless_debug_fuzz::agent_untar(data));
