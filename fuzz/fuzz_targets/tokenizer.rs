#![no_main]
//! libFuzzer entry for [`seqbridge_fuzz::tokenizer`] (`cargo fuzz run tokenizer`).
//!
//! libfuzzer-sys's panic hook aborts on every panic, even one the library catches: the
//! tokenizer turns panics inside the `tokenizers` crate into errors with `catch_unwind`
//! (a corrupt SentencePiece charsmap panics there). The default hook is put back on the
//! first input; a panic that escapes still aborts (libfuzzer-sys catches it and aborts).

static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    seqbridge_fuzz::tokenizer(data)
});
