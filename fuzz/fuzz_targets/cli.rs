#![no_main]
//! libFuzzer entry for [`seqbridge_fuzz::cli`] (`cargo fuzz run cli`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqbridge_fuzz::cli(data));
