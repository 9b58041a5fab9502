//! GPU building blocks shared by the architectures: `nn.Linear` (split in row chunks that
//! each fit one binding), `nn.LayerNorm`, token embedding tables and position tables, plus
//! the loader that uploads weights once and counts the bytes.

use std::sync::atomic::{AtomicU64, Ordering};

use seqbridge_gpu::ops::embedding::{EmbedOptions, embed};
use seqbridge_gpu::ops::matmul::{Activation, MatmulOptions, matmul};
use seqbridge_gpu::ops::norm::layer_norm;
use seqbridge_gpu::{Gpu, Recorder, Tensor};

use crate::error::Result;
use crate::weights::{HostData, Vars};

/// Uploads weights with `upload_dedicated` and counts their bytes.
pub struct Loader<'a> {
    pub gpu: &'a Gpu,
    pub weight_bytes: &'a AtomicU64,
    /// Largest weight chunk in bytes: the adapter's binding limit, or less (tests force
    /// chunking with tiny models).
    pub max_chunk_bytes: u64,
}

impl Loader<'_> {
    pub fn upload(&self, data: &HostData, shape: &[usize]) -> Result<Tensor> {
        let t = match data {
            HostData::F32(v) => self.gpu.upload_dedicated(v, shape)?,
            HostData::F16(v) => self.gpu.upload_dedicated(v, shape)?,
        };
        self.weight_bytes.fetch_add(t.byte_len(), Ordering::Relaxed);
        Ok(t)
    }

    pub fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        self.upload(&HostData::F32(data.to_vec()), shape)
    }

    /// Rows per chunk so that one chunk of a `[rows, cols]` matrix fits one binding.
    fn rows_per_chunk(&self, rows: usize, cols: usize, elem: usize) -> usize {
        let max = self.max_chunk_bytes.min(self.gpu.max_binding()) as usize;
        (max / (cols * elem).max(1)).clamp(1, rows.max(1))
    }

    /// `[rows, cols]` split into row chunks that each fit one binding: (first row, tensor).
    pub fn upload_rows(
        &self,
        data: &HostData,
        rows: usize,
        cols: usize,
    ) -> Result<Vec<(usize, Tensor)>> {
        let elem = match data {
            HostData::F32(_) => 4,
            HostData::F16(_) => 2,
        };
        let per = self.rows_per_chunk(rows, cols, elem);
        let mut out = Vec::new();
        let mut r = 0;
        while r < rows {
            let n = per.min(rows - r);
            out.push((r, self.upload(&data.slice(r * cols, n * cols), &[n, cols])?));
            r += n;
        }
        Ok(out)
    }
}

/// One row chunk of a linear layer.
pub struct LinearChunk {
    /// First output feature of this chunk.
    pub row_start: usize,
    /// `[rows, in_features]`, f32 or f16.
    pub weight: Tensor,
    /// f32 `[rows]`.
    pub bias: Option<Tensor>,
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
        let chunks = ld
            .upload_rows(weight, out_features, in_features)?
            .into_iter()
            .map(|(row_start, w)| {
                let rows = w.shape()[0];
                let bias = bias
                    .map(|b| ld.upload_f32(&b[row_start..row_start + rows], &[rows]))
                    .transpose()?;
                Ok(LinearChunk {
                    row_start,
                    weight: w,
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
        let v = vars.pp(name);
        let w = v.matrix("weight", &[out_features, in_features])?;
        let b = if bias {
            Some(v.f32("bias", &[out_features])?)
        } else {
            None
        };
        Linear::from_host(ld, &w, b.as_deref(), out_features, in_features)
    }

    /// Several linears of the same input stacked along the output features (fused Q/K/V,
    /// every layer's cross-attention K/V).
    pub fn load_fused(
        ld: &Loader,
        parts: &[(&Vars, &str)],
        out_each: usize,
        in_features: usize,
    ) -> Result<Linear> {
        let mut w: Option<HostData> = None;
        let mut b = Vec::with_capacity(parts.len() * out_each);
        for (vars, name) in parts {
            let v = vars.pp(name);
            let wi = v.matrix("weight", &[out_each, in_features])?;
            match &mut w {
                None => w = Some(wi),
                Some(w) => w.extend(wi),
            }
            b.extend(v.f32("bias", &[out_each])?);
        }
        let w = w.unwrap_or(HostData::F32(Vec::new()));
        Linear::from_host(ld, &w, Some(&b), parts.len() * out_each, in_features)
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
                act,
                residual,
                out_col_offset: out_col_offset + c.row_start,
                ..Default::default()
            };
            matmul(rec, x, &c.weight, out, &opts)?;
        }
        Ok(())
    }
}

/// `nn.LayerNorm(d)` with f32 gamma and beta.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn load(ld: &Loader, vars: &Vars, name: &str, d: usize, eps: f32) -> Result<LayerNorm> {
        let v = vars.pp(name);
        Ok(LayerNorm {
            weight: ld.upload_f32(&v.f32("weight", &[d])?, &[d])?,
            bias: ld.upload_f32(&v.f32("bias", &[d])?, &[d])?,
            eps,
        })
    }

    pub fn forward(&self, rec: &mut Recorder, x: &Tensor, out: &Tensor) -> Result<()> {
        layer_norm(rec, x, &self.weight, &self.bias, out, self.eps)?;
        Ok(())
    }
}

#[derive(Clone)]
/// A token embedding table `[vocab, d]` (f32 or f16) in row chunks; shared with the lm_head
/// when tied.
pub struct Embedding {
    pub vocab: usize,
    pub dim: usize,
    /// (first row, `[rows, d]`) chunks.
    pub chunks: Vec<(usize, Tensor)>,
}

impl Embedding {
    pub fn from_host(ld: &Loader, data: &HostData, vocab: usize, dim: usize) -> Result<Embedding> {
        Ok(Embedding {
            vocab,
            dim,
            chunks: ld.upload_rows(data, vocab, dim)?,
        })
    }

    /// The table as a bias-free linear layer (tied lm_head): shares the GPU buffers.
    pub fn as_linear(&self, bias: Option<&[f32]>, ld: &Loader) -> Result<Linear> {
        let chunks = self
            .chunks
            .iter()
            .map(|(row_start, w)| {
                let rows = w.shape()[0];
                let bias = bias
                    .map(|b| ld.upload_f32(&b[*row_start..row_start + rows], &[rows]))
                    .transpose()?;
                Ok(LinearChunk {
                    row_start: *row_start,
                    weight: w.clone(),
                    bias,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Linear {
            in_features: self.dim,
            out_features: self.vocab,
            chunks,
        })
    }
}

/// A position table: f32 `[rows, d]`; position t of a sequence reads row `offset + t`.
pub struct PositionTable {
    pub table: Tensor,
    pub offset: usize,
    /// Positions available (rows - offset).
    pub max_positions: usize,
}

/// Token embedding (times `scale`) plus positions `t0 ..` for ids `[B, T]` into out `[B, T, D]`.
pub fn embed_tokens(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Embedding,
    positions: &PositionTable,
    scale: f32,
    t0: usize,
    out: &Tensor,
) -> Result<()> {
    for (row_start, chunk) in &table.chunks {
        let opts = EmbedOptions {
            scale,
            positions: Some(&positions.table),
            position_offset: positions.offset + t0,
            table_row_start: *row_start,
        };
        embed(rec, ids, chunk, out, &opts)?;
    }
    Ok(())
}

/// The residual stream in two buffers: pre-LN blocks write `x + f(LN(x))` into the other one
/// (a matmul's residual must not be its output), then swap.
pub struct Residual {
    bufs: [Tensor; 2],
    cur: usize,
}

impl Residual {
    pub fn new(a: Tensor, b: Tensor) -> Residual {
        Residual {
            bufs: [a, b],
            cur: 0,
        }
    }
    /// The buffer holding the current hidden state.
    pub fn cur(&self) -> &Tensor {
        &self.bufs[self.cur]
    }
    /// The spare buffer.
    pub fn other(&self) -> &Tensor {
        &self.bufs[1 - self.cur]
    }
    pub fn swap(&mut self) {
        self.cur = 1 - self.cur;
    }
    pub fn reset(&mut self) {
        self.cur = 0;
    }
}
