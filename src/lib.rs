//! seqbridge: encoder-decoder transformer inference on the GPU through wgpu.
pub use seqbridge_gpu as gpu;
pub use seqbridge_models as models;
