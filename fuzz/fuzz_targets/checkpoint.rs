#![no_main]
//! libFuzzer entry for [`seqbridge_fuzz::checkpoint`] (`cargo fuzz run checkpoint`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqbridge_fuzz::checkpoint(data));
