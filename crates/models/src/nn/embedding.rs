//! Token embeddings (shared with a tied lm_head), position tables, and the embedding stage
//! of a text encoder or decoder: `scale · embed(ids) + positions`, then an optional norm.

use seqbridge_gpu::ops::embedding::{EmbedOptions, embed};
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::Result;
use crate::io::HostData;
use crate::nn::{Linear, Loader, Norm};

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

    /// The table as a linear layer (tied lm_head): shares the GPU buffers, except with int8
    /// linears, where the table (which the embedding kernel reads as floats) is read back
    /// once at load and quantized into a copy.
    pub fn as_linear(&self, bias: Option<&[f32]>, ld: &Loader) -> Result<Linear> {
        let mut chunks = Vec::with_capacity(self.chunks.len());
        for (row_start, w) in &self.chunks {
            if ld.quantizes(self.dim) {
                let rows = w.shape()[0];
                for (r, q, s) in ld.upload_int8(&w.to_vec_f32()?, rows, self.dim)? {
                    chunks.push((row_start + r, q, s));
                }
            } else {
                chunks.push((*row_start, w.clone(), None));
            }
        }
        Linear::from_chunks(ld, chunks, bias, self.vocab, self.dim)
    }
}

/// A position table: f32 `[rows, d]`; position t of a sequence reads row `offset + t`.
pub struct PositionTable {
    pub table: Tensor,
    pub offset: usize,
    /// Positions available (rows - offset).
    pub max_positions: usize,
}

/// The embedding stage: `scale · tokens[ids] + positions[t0 ..]`, then `norm` (BART's
/// `layernorm_embedding`). T5 has neither positions nor norm here.
pub struct TextEmbedding {
    pub tokens: Embedding,
    pub positions: Option<PositionTable>,
    pub scale: f32,
    pub norm: Option<Norm>,
}

impl TextEmbedding {
    /// Ids `[B, T]` at positions `t0 ..` into `out` `[B·T, D]`; `spare` (same shape) receives
    /// the pre-norm sum when there is a norm. Returns whether the result is in `spare`.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        ids: &Tensor,
        t0: usize,
        out: &Tensor,
        spare: &Tensor,
    ) -> Result<bool> {
        let (b, t) = (ids.shape()[0], ids.shape()[1]);
        let dst = out.reshape(&[b, t, self.tokens.dim])?;
        for (row_start, chunk) in &self.tokens.chunks {
            let opts = EmbedOptions {
                scale: self.scale,
                positions: self.positions.as_ref().map(|p| &p.table),
                position_offset: self.positions.as_ref().map_or(0, |p| p.offset) + t0,
                table_row_start: *row_start,
            };
            embed(rec, ids, chunk, &dst, &opts)?;
        }
        match &self.norm {
            Some(n) => {
                n.forward(rec, out, spare)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
