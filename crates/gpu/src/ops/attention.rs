//! Launcher for `shaders/attention.wgsl`: fused scaled dot-product attention.
//!
//! CONTRACT (implementation pending): signatures below are fixed; the model code calls them.

use crate::error::Result;
use crate::{Recorder, Tensor};

/// Where a sequence of heads lives in a buffer: element (b, t, h, d) is at
/// `offset + b * batch_stride + t * row_stride + h * head_dim + d`.
/// This reads Q/K/V straight out of fused projections (`[B, T, 3D]`: row_stride 3D, offsets
/// 0, D, 2D) and out of caches (`[B, Tmax, D]`: batch_stride Tmax·D) without copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqLayout {
    pub offset: usize,
    pub batch_stride: usize,
    pub row_stride: usize,
}

impl SeqLayout {
    /// A contiguous `[batch, len, width]` tensor starting at `offset`.
    pub fn contiguous(len: usize, width: usize) -> Self {
        SeqLayout {
            offset: 0,
            batch_stride: len * width,
            row_stride: width,
        }
    }
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AttentionImpl {
    #[default]
    Auto,
    /// Scores, masked softmax and weighted sum with plain loops: the reference kernel.
    Naive,
    /// Online softmax over key tiles (flash-attention style).
    Flash,
    /// Query length 1: keys split across workgroups, partial results merged.
    SplitKeys,
}

/// Arguments of [`attention`].
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// f32; written at `out_layout` for every (b, t, h).
    pub out: &'a Tensor,
    pub q_layout: SeqLayout,
    pub k_layout: SeqLayout,
    pub v_layout: SeqLayout,
    pub out_layout: SeqLayout,
    /// Query batch rows.
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub q_len: usize,
    /// Keys (and values) per sequence considered: key positions 0..kv_len.
    pub kv_len: usize,
    /// Query batch row b reads key/value batch row b / kv_group (beams share the encoder
    /// output, never copied). 1 when every query row has its own keys.
    pub kv_group: usize,
    /// u32 `[batch / kv_group]`: keys j ≥ length are padding and masked out.
    pub key_lengths: Option<&'a Tensor>,
    /// Causal mask: query i sees keys j ≤ i + offset.
    pub causal_offset: Option<usize>,
    /// f32 additive bias `[1 or batch, heads, q_len, kv_len]` added to the scaled scores
    /// (T5's relative positions).
    pub bias: Option<&'a Tensor>,
    /// Beam indirection: u32 `[batch, kv_rows_stride]`; key/value position t of query batch b
    /// is read from batch row `kv_rows[b * kv_rows_stride + t]` (instead of b / kv_group).
    pub kv_rows: Option<&'a Tensor>,
    pub kv_rows_stride: usize,
    /// If set, f32 `[batch, heads, q_len, kv_len]` receives the attention probabilities
    /// (masked positions exactly 0).
    pub probs: Option<&'a Tensor>,
    /// Multiplies Q·Kᵀ, usually 1/sqrt(head_dim).
    pub scale: f32,
    pub imp: AttentionImpl,
}

/// softmax(scale · Q·Kᵀ + bias, masked) · V. Masked keys get probability exactly 0; a row with
/// every key masked outputs zeros (never NaN).
pub fn attention(rec: &mut Recorder, args: &Attention) -> Result<()> {
    let _ = (rec, args);
    todo!("attention: pending")
}
