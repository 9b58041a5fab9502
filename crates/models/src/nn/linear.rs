//! `nn.Linear`, split in row chunks that each fit one binding, with optional bias and
//! load-time fusion of several linears that read the same input.

use seqbridge_gpu::ops::matmul::{Activation, MatmulOptions, matmul};
use seqbridge_gpu::ops::norm_matmul::{norm_matmul, prologue_pays};
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::Result;
use crate::io::{HostData, Vars};
use crate::nn::loader::WeightChunk;
use crate::nn::{Loader, Norm};

/// What a sub-layer's first linear reads: `x`, or `norm(x)` not computed yet.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub x: &'a Tensor,
    pub norm: Option<Pending<'a>>,
}

/// A norm still to apply to a linear's input: in the matmul's prologue where that pays (a
/// decode step's few rows), else by the norm kernel into `out` first.
#[derive(Clone, Copy)]
pub struct Pending<'a> {
    pub norm: &'a Norm,
    /// f32 with x's shape: receives `norm(x)` when the norm runs apart, and always when `keep`.
    pub out: &'a Tensor,
    /// Later dispatches read `out` (post-norm layers: the sub-layer's residual).
    pub keep: bool,
}

impl<'a> Input<'a> {
    pub fn plain(x: &'a Tensor) -> Input<'a> {
        Input { x, norm: None }
    }

    /// `norm(x)`, which also lands in `out` (scratch unless `keep`).
    pub fn normed(x: &'a Tensor, norm: &'a Norm, out: &'a Tensor, keep: bool) -> Input<'a> {
        Input {
            x,
            norm: Some(Pending { norm, out, keep }),
        }
    }

    /// Rows of x.
    pub fn rows(&self) -> usize {
        self.x.shape()[0]
    }
}

/// One row chunk of a linear layer.
pub struct LinearChunk {
    /// First output feature of this chunk.
    pub row_start: usize,
    /// `[rows, in_features]`, f32, f16 or int8.
    pub weight: Tensor,
    /// f32 `[rows]`: the int8 weight's per-row scales.
    pub scales: Option<Tensor>,
    /// f32 `[rows]`.
    pub bias: Option<Tensor>,
}

impl LinearChunk {
    /// GPU bytes of the chunk's weight, scales and bias.
    pub fn byte_len(&self) -> u64 {
        [Some(&self.weight), self.scales.as_ref(), self.bias.as_ref()]
            .into_iter()
            .flatten()
            .map(Tensor::byte_len)
            .sum()
    }
}

/// `nn.Linear`: `y = x · Wᵀ + b`, W `[out_features, in_features]` as stored by transformers.
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub chunks: Vec<LinearChunk>,
}

impl Linear {
    /// Builds from host data (weight `[out, in]`, optional bias `[out]`).
    pub fn from_host(
        ld: &Loader,
        weight: &HostData,
        bias: Option<&[f32]>,
        out_features: usize,
        in_features: usize,
    ) -> Result<Linear> {
        let chunks = ld.upload_linear(weight, out_features, in_features)?;
        Linear::from_chunks(ld, chunks, bias, out_features, in_features)
    }

    /// Builds from uploaded row chunks, slicing the bias to match.
    pub fn from_chunks(
        ld: &Loader,
        chunks: Vec<WeightChunk>,
        bias: Option<&[f32]>,
        out_features: usize,
        in_features: usize,
    ) -> Result<Linear> {
        let chunks = chunks
            .into_iter()
            .map(|(row_start, weight, scales)| {
                let rows = weight.shape()[0];
                let bias = bias
                    .map(|b| ld.upload_f32(&b[row_start..row_start + rows], &[rows]))
                    .transpose()?;
                Ok(LinearChunk {
                    row_start,
                    weight,
                    scales,
                    bias,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Linear {
            in_features,
            out_features,
            chunks,
        })
    }

    /// Loads `{name}.weight` and (when `bias`) `{name}.bias`.
    pub fn load(
        ld: &Loader,
        vars: &Vars,
        name: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
    ) -> Result<Linear> {
        Linear::load_fused(ld, &[(vars, name)], out_features, in_features, bias)
    }

    /// Several linears of the same input stacked along the output features (fused Q/K/V,
    /// every layer's cross-attention K/V, T5's gated wi_0 ‖ wi_1).
    pub fn load_fused(
        ld: &Loader,
        parts: &[(&Vars, &str)],
        out_each: usize,
        in_features: usize,
        bias: bool,
    ) -> Result<Linear> {
        let parts: Vec<(&Vars, &str, bool)> = parts.iter().map(|(v, n)| (*v, *n, bias)).collect();
        Linear::load_fused_biases(ld, &parts, out_each, in_features)
    }

    /// [`Linear::load_fused`] where each part says whether it has a bias: a part without one
    /// contributes zeros to the fused bias (Whisper's `k_proj`, which has none while `q_proj`
    /// and `v_proj` do). No part with a bias: no bias at all.
    pub fn load_fused_biases(
        ld: &Loader,
        parts: &[(&Vars, &str, bool)],
        out_each: usize,
        in_features: usize,
    ) -> Result<Linear> {
        let any_bias = parts.iter().any(|p| p.2);
        let mut w: Option<HostData> = None;
        let mut b = Vec::with_capacity(parts.len() * out_each);
        for (vars, name, has_bias) in parts {
            let v = vars.pp(name);
            let wi = v.matrix("weight", &[out_each, in_features])?;
            match &mut w {
                None => w = Some(wi),
                Some(w) => w.extend(wi),
            }
            if *has_bias {
                b.extend(v.f32("bias", &[out_each])?);
            } else if any_bias {
                b.extend(std::iter::repeat_n(0.0, out_each));
            }
        }
        let w = w.unwrap_or(HostData::F32(Vec::new()));
        let bias = any_bias.then_some(b.as_slice());
        Linear::from_host(ld, &w, bias, parts.len() * out_each, in_features)
    }

    /// `out[.., out_col_offset + n] = act(x · Wᵀ + b)[n] (+ residual)`. `x` f32 `[M, in]`,
    /// `out` f32 `[M, W]` with W ≥ out_col_offset + out_features.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        out: &Tensor,
        act: Activation,
        residual: Option<&Tensor>,
        out_col_offset: usize,
    ) -> Result<()> {
        for c in &self.chunks {
            let opts = MatmulOptions {
                trans_b: true,
                bias: c.bias.as_ref(),
                scales: c.scales.as_ref(),
                act,
                residual,
                out_col_offset: out_col_offset + c.row_start,
                ..Default::default()
            };
            matmul(rec, x, &c.weight, out, &opts)?;
        }
        Ok(())
    }

    /// [`Linear::forward`] of an [`Input`], without a residual: the norm, if any, in the
    /// matmul's prologue (every chunk normalises again; the first keeps the rows) or before.
    pub fn forward_in(
        &self,
        rec: &mut Recorder,
        input: &Input,
        out: &Tensor,
        act: Activation,
        out_col_offset: usize,
    ) -> Result<()> {
        let Some(p) = input.norm else {
            return self.forward(rec, input.x, out, act, None, out_col_offset);
        };
        if !prologue_pays(rec.gpu(), input.rows(), self.out_features, self.in_features) {
            p.norm.forward(rec, input.x, p.out)?;
            return self.forward(rec, p.out, out, act, None, out_col_offset);
        }
        for (i, c) in self.chunks.iter().enumerate() {
            let opts = MatmulOptions {
                trans_b: true,
                bias: c.bias.as_ref(),
                scales: c.scales.as_ref(),
                act,
                out_col_offset: out_col_offset + c.row_start,
                ..Default::default()
            };
            let keep = (p.keep && i == 0).then_some(p.out);
            norm_matmul(rec, input.x, &p.norm.prologue(keep), &c.weight, out, &opts)?;
        }
        Ok(())
    }

    /// `out = x · Wᵀ + b`, nothing fused.
    pub fn apply(&self, rec: &mut Recorder, x: &Tensor, out: &Tensor) -> Result<()> {
        self.forward(rec, x, out, Activation::None, None, 0)
    }
}
