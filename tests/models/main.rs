//! Real Hugging Face checkpoints of the BART family against transformers' outputs stored in
//! `tests/fixtures/models/<family>/reference.json` (written once by tools/make_fixtures.py;
//! no Python here). Runs on whatever adapter `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER` select.
//! A missing adapter or fixture is a loud failure, never a skip.

mod audio;
mod common;
mod constrained;
mod ctranslate2;
mod date_normalizer;
mod errors;
mod multi_source;
mod parity;
mod pipelined;
mod props;
mod quantized;
mod soak;
mod stats;
mod threads;
mod tokenizers;
mod vision;
mod whisper;
mod whisper_transcribe;
mod whisper_words;
