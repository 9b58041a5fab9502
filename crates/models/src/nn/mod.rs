//! Layers shared by every architecture: linear layers, norms, embeddings and positions,
//! attention blocks, feed-forward networks, and the one transformer layer built from them.

pub mod attention;
pub mod embedding;
pub mod feed_forward;
pub mod layer;
pub mod linear;
pub mod loader;
pub mod norm;
pub mod position_bias;
pub mod positions;
pub mod quantize;

pub use attention::{CrossAttention, CrossView, Heads, ProjNames, SelfAttention, SelfKv};
pub use embedding::{Embedding, PositionTable, TextEmbedding};
pub use feed_forward::FeedForward;
pub use layer::{CrossBlock, LayerInputs, Residual, Scratch, TransformerLayer};
pub use linear::{Linear, LinearChunk};
pub use loader::Loader;
pub use norm::Norm;
pub use position_bias::RelativePositionBias;
pub use quantize::Quantization;
