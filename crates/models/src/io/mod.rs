//! Reading what people download: checkpoints (safetensors, single or sharded, memory-mapped;
//! CTranslate2's `model.bin`), JSON configs, tokenizers, audio files (`audio`) and Whisper's
//! log-mel features (`mel`), and images as vision encoders read them (`image`).

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
