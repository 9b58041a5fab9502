//! Launcher for `shaders/norm.wgsl`: layer norm and RMS norm over the last dimension.
//!
//! CONTRACT (implementation pending): signatures below are fixed.

use crate::error::Result;
use crate::{Recorder, Tensor};

/// `out = (x - mean) / sqrt(var + eps) * gamma + beta` per row; x, out f32 `[rows, D]`,
/// gamma and beta f32 `[D]`. `out` must differ from `x`.
pub fn layer_norm(rec: &mut Recorder, x: &Tensor, gamma: &Tensor, beta: &Tensor, out: &Tensor, eps: f32) -> Result<()> {
    let _ = (rec, x, gamma, beta, out, eps);
    todo!("layer_norm: pending")
}

/// `out = x / sqrt(mean(x²) + eps) * gamma` per row (T5). Shapes as [`layer_norm`].
pub fn rms_norm(rec: &mut Recorder, x: &Tensor, gamma: &Tensor, out: &Tensor, eps: f32) -> Result<()> {
    let _ = (rec, x, gamma, out, eps);
    todo!("rms_norm: pending")
}
