//! Launcher for `shaders/softmax.wgsl`: masked softmax over the last dimension.
//!
//! CONTRACT (implementation pending): signatures below are fixed.

use crate::error::Result;
use crate::{Recorder, Tensor};

/// Options of [`masked_softmax`]; the input is seen as `[batch, heads, q_len, kv_len]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxOptions<'a> {
    pub batch: usize,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    /// Multiplies the input before the softmax.
    pub scale: f32,
    /// u32 `[batch]`: keys j ≥ length are masked.
    pub key_lengths: Option<&'a Tensor>,
    /// Query i sees keys j ≤ i + offset.
    pub causal_offset: Option<usize>,
    /// f32 `[1 or batch, heads, q_len, kv_len]` added after scaling.
    pub bias: Option<&'a Tensor>,
}

/// `out = softmax(scale · x + bias)` over the last dimension with the masks computed from
/// lengths in the kernel. Masked entries are exactly 0; a fully masked row is all zeros.
/// `out` may be `x` itself.
pub fn masked_softmax(
    rec: &mut Recorder,
    x: &Tensor,
    out: &Tensor,
    opts: &SoftmaxOptions,
) -> Result<()> {
    let _ = (rec, x, out, opts);
    todo!("masked_softmax: pending")
}
