#![no_main]
//! libFuzzer entry for [`seqbridge_fuzz::config`] (`cargo fuzz run config`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqbridge_fuzz::config(data));
