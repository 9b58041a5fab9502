//! Reading what people download: checkpoints (safetensors, single or sharded, memory-mapped),
//! JSON configs, tokenizers, audio files (`audio`) and Whisper's log-mel features (`mel`).

pub mod audio;
pub mod checkpoint;
pub mod json;
pub mod mel;

pub use checkpoint::{Checkpoint, HostData, Vars, WeightDtype};
