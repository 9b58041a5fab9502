//! Reading what people download: checkpoints (safetensors, single or sharded, memory-mapped;
//! CTranslate2's `model.bin`), JSON configs, tokenizers, audio files (`audio`) and Whisper's
//! log-mel features (`mel`), and images as vision encoders read them (`image`).

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod audio;
pub mod checkpoint;
pub mod ctranslate2;
pub mod image;
pub mod json;
pub mod mel;
pub mod paths;
pub mod tokenizer;

pub use checkpoint::{Checkpoint, HostData, Vars, WeightDtype};
pub use tokenizer::Tokenizer;

/// `bytes` as consecutive `N`-byte words, for `from_le_bytes`; a ragged tail is dropped
/// (callers check lengths first). Arrays, so no element access can fail.
pub(crate) fn words<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    // Every chunk of `chunks_exact(N)` is N bytes long, so `first_chunk` always finds them.
    bytes
        .chunks_exact(N)
        .filter_map(|c| c.first_chunk::<N>().copied())
}
