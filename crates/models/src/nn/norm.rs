//! `nn.LayerNorm` and T5's `T5LayerNorm` (RMSNorm, no bias, no mean subtraction).

use seqbridge_gpu::ops::norm::{layer_norm, rms_norm};
use seqbridge_gpu::ops::norm_matmul::{NormPrologue, RowNorm};
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::Result;
use crate::io::Vars;
use crate::nn::Loader;

/// A per-row normalisation with f32 parameters.
pub enum Norm {
    /// `(x - mean) / sqrt(var + eps) * weight + bias`.
    Layer {
        weight: Tensor,
        bias: Tensor,
        eps: f32,
    },
    /// `x / sqrt(mean(x²) + eps) * weight`.
    Rms { weight: Tensor, eps: f32 },
}

impl Norm {
    /// `nn.LayerNorm(d)`: `{name}.weight`, `{name}.bias`.
    pub fn layer(ld: &Loader, vars: &Vars, name: &str, d: usize, eps: f32) -> Result<Norm> {
        let v = vars.pp(name);
        Ok(Norm::Layer {
            weight: ld.upload_f32(&v.f32("weight", &[d])?, &[d])?,
            bias: ld.upload_f32(&v.f32("bias", &[d])?, &[d])?,
            eps,
        })
    }

    /// RMSNorm: `{name}.weight`, each gamma multiplied by `scale` (T5 folds its tied-head
    /// rescale d_model^-0.5 into the final norm this way).
    pub fn rms(
        ld: &Loader,
        vars: &Vars,
        name: &str,
        d: usize,
        eps: f32,
        scale: f32,
    ) -> Result<Norm> {
        let mut w = vars.pp(name).f32("weight", &[d])?;
        if scale != 1.0 {
            w.iter_mut().for_each(|x| *x *= scale);
        }
        Ok(Norm::Rms {
            weight: ld.upload_f32(&w, &[d])?,
            eps,
        })
    }

    /// This norm as a matmul prologue (`ops::norm_matmul`), also writing `norm(x)` to `keep`.
    pub fn prologue<'a>(&'a self, keep: Option<&'a Tensor>) -> NormPrologue<'a> {
        let (norm, eps) = match self {
            Norm::Layer { weight, bias, eps } => (
                RowNorm::Layer {
                    gamma: weight,
                    beta: bias,
                },
                *eps,
            ),
            Norm::Rms { weight, eps } => (RowNorm::Rms { gamma: weight }, *eps),
        };
        NormPrologue { norm, eps, keep }
    }

    /// `out = norm(x)`; `out` must differ from `x`.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor, out: &Tensor) -> Result<()> {
        match self {
            Norm::Layer { weight, bias, eps } => layer_norm(rec, x, weight, bias, out, *eps)?,
            Norm::Rms { weight, eps } => rms_norm(rec, x, weight, out, *eps)?,
        }
        Ok(())
    }
}
