#![no_main]
//! libFuzzer entry for [`seqbridge_fuzz::tokenizer`] (`cargo fuzz run tokenizer`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqbridge_fuzz::tokenizer(data));
