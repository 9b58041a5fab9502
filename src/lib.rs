//! seqbridge: encoder-decoder transformer inference on the GPU through wgpu.
//!
//! The README's example runs as this crate's doctest:
#![doc = include_str!("../README.md")]

pub use seqbridge_gpu as gpu;
pub use seqbridge_models as models;
