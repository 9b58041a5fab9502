//! Multi-head attention blocks: self-attention over fused Q/K/V (full for encoders, cached
//! and causal for decoders) and cross-attention whose K/V were projected once per call.

use seqbridge_gpu::ops::attention::{Attention, SeqLayout, attention};
use seqbridge_gpu::ops::matmul::Activation;
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::Result;
use crate::io::Vars;
use crate::nn::linear::Input;
use crate::nn::{Linear, Loader};

/// Head layout shared by the attention blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heads {
    pub num_heads: usize,
    pub head_dim: usize,
    /// Multiplies Q·Kᵀ: 1/sqrt(head_dim) (BART), 1 (T5, whose init absorbs it).
    pub scale: f32,
}

impl Heads {
    /// `num_heads · head_dim`: the width of Q, K, V and the attention output.
    pub fn inner(&self) -> usize {
        self.num_heads * self.head_dim
    }
}

/// Weight names of one attention module: (q, k, v, out).
pub type ProjNames<'a> = [&'a str; 4];

/// Self-attention: q, k, v projections fused into one `[3I, D]` linear.
pub struct SelfAttention {
    pub qkv_proj: Linear,
    pub out_proj: Linear,
    pub heads: Heads,
}

/// Cross-attention: the query projection and the output projection. Its K/V projection is
/// fused with every other block attending the same source (the decoder's `cross_kv_proj`),
/// so the source is projected once per call; `slot` is this block's place there.
pub struct CrossAttention {
    pub q_proj: Linear,
    pub out_proj: Linear,
    pub heads: Heads,
    /// Which memory (source) this block attends.
    pub source: usize,
    /// Index of this block's K/V among those of its source.
    pub slot: usize,
}

/// Where a self-attention pass finds its keys and values.
pub enum SelfKv<'a> {
    /// Every position at once (encoders): Q/K/V in `qkv` f32 `[B·S, 3I]`, keys of row b at
    /// and past `lengths[b]` masked.
    Full {
        qkv: &'a Tensor,
        lengths: &'a Tensor,
    },
    /// Positions `t0 .. t0 + Q` (decoders): Q/K/V are written into this layer's cache
    /// f32 `[N, Tcap, 3I]` at t0 and attend causally to the cache; beams read their history
    /// through `kv_rows` u32 `[N, Tcap]`.
    Cached {
        cache: &'a Tensor,
        t_cap: usize,
        t0: usize,
        kv_rows: Option<&'a Tensor>,
    },
}

/// What a cross-attention block attends: its K and V inside a source's projection.
pub struct CrossView<'a> {
    /// f32 `[B, S, W]`: every block's K and V of one source.
    pub kv: &'a Tensor,
    pub k: SeqLayout,
    pub v: SeqLayout,
    pub src_len: usize,
    /// u32 `[B]`: real source lengths.
    pub lengths: &'a Tensor,
    /// Decoder rows per source (beams).
    pub kv_group: usize,
    /// f32 `[N, H, Q, S]` to receive the probabilities.
    pub probs: Option<&'a Tensor>,
}

fn load_heads_proj(
    ld: &Loader,
    vars: &Vars,
    names: &[&str],
    heads: Heads,
    d_model: usize,
    bias: bool,
) -> Result<Linear> {
    let parts: Vec<(&Vars, &str)> = names.iter().map(|n| (vars, *n)).collect();
    Linear::load_fused(ld, &parts, heads.inner(), d_model, bias)
}

impl SelfAttention {
    pub fn load(
        ld: &Loader,
        vars: &Vars,
        names: ProjNames,
        heads: Heads,
        d_model: usize,
        bias: bool,
    ) -> Result<SelfAttention> {
        Ok(SelfAttention {
            qkv_proj: load_heads_proj(ld, vars, &names[..3], heads, d_model, bias)?,
            out_proj: Linear::load(ld, vars, names[3], d_model, heads.inner(), bias)?,
            heads,
        })
    }

    /// `out = residual + out_proj(attention(x))`; `bias` f32 `[1, H, Q, K]` (T5 positions).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        rec: &mut Recorder,
        x: &Input,
        kv: &SelfKv,
        (batch, len): (usize, usize),
        bias: Option<&Tensor>,
        attn: &Tensor,
        out: &Tensor,
        residual: &Tensor,
    ) -> Result<()> {
        let Heads {
            num_heads,
            head_dim,
            scale,
        } = self.heads;
        let i = self.heads.inner();
        let (q_src, q_layout, k_layout, v_layout, kv_len, key_lengths, causal, kv_rows, stride);
        match *kv {
            SelfKv::Full { qkv, lengths } => {
                self.qkv_proj.forward_in(rec, x, qkv, Activation::None, 0)?;
                (q_layout, k_layout, v_layout) = (
                    SeqLayout::fused(len, i, 3, 0),
                    SeqLayout::fused(len, i, 3, 1),
                    SeqLayout::fused(len, i, 3, 2),
                );
                (q_src, kv_len, key_lengths, causal, kv_rows, stride) =
                    (qkv, len, Some(lengths), None, None, 0);
            }
            SelfKv::Cached {
                cache,
                t_cap,
                t0,
                kv_rows: rows,
            } => {
                // One token: one row per sequence at column t0·3I; several (teacher forcing):
                // the whole `[N·Tcap, 3I]` from t0 = 0.
                if len == 1 {
                    let flat = cache.reshape(&[batch, t_cap * 3 * i])?;
                    self.qkv_proj
                        .forward_in(rec, x, &flat, Activation::None, t0 * 3 * i)?;
                } else {
                    let flat = cache.reshape(&[batch * t_cap, 3 * i])?;
                    self.qkv_proj
                        .forward_in(rec, x, &flat, Activation::None, 0)?;
                }
                let at = |offset| SeqLayout::new(offset, t_cap * 3 * i, 3 * i);
                (q_layout, k_layout, v_layout) = (at(t0 * 3 * i), at(i), at(2 * i));
                (q_src, kv_len, key_lengths, causal, kv_rows, stride) = (
                    cache,
                    t0 + len,
                    None,
                    Some(t0),
                    rows,
                    if rows.is_some() { t_cap } else { 0 },
                );
            }
        }
        attention(
            rec,
            &Attention {
                q: q_src,
                k: q_src,
                v: q_src,
                out: attn,
                q_layout,
                k_layout,
                v_layout,
                out_layout: SeqLayout::contiguous(len, i),
                batch,
                heads: num_heads,
                head_dim,
                q_len: len,
                kv_len,
                kv_group: 1,
                key_lengths,
                causal_offset: causal,
                bias,
                kv_rows,
                kv_rows_stride: stride,
                probs: None,
                scale,
                imp: Default::default(),
            },
        )?;
        self.out_proj
            .forward(rec, attn, out, Default::default(), Some(residual), 0)
    }
}

impl CrossAttention {
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        ld: &Loader,
        vars: &Vars,
        (q_name, out_name): (&str, &str),
        heads: Heads,
        d_model: usize,
        bias: bool,
        (source, slot): (usize, usize),
    ) -> Result<CrossAttention> {
        Ok(CrossAttention {
            q_proj: load_heads_proj(ld, vars, &[q_name], heads, d_model, bias)?,
            out_proj: Linear::load(ld, vars, out_name, d_model, heads.inner(), bias)?,
            heads,
            source,
            slot,
        })
    }

    /// `out = residual + out_proj(attention(q_proj(x), K, V))` for `[N, Q]` rows.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        rec: &mut Recorder,
        x: &Input,
        view: &CrossView,
        (rows, q_len): (usize, usize),
        q: &Tensor,
        attn: &Tensor,
        out: &Tensor,
        residual: &Tensor,
    ) -> Result<()> {
        let i = self.heads.inner();
        self.q_proj.forward_in(rec, x, q, Activation::None, 0)?;
        attention(
            rec,
            &Attention {
                q,
                k: view.kv,
                v: view.kv,
                out: attn,
                q_layout: SeqLayout::contiguous(q_len, i),
                k_layout: view.k,
                v_layout: view.v,
                out_layout: SeqLayout::contiguous(q_len, i),
                batch: rows,
                heads: self.heads.num_heads,
                head_dim: self.heads.head_dim,
                q_len,
                kv_len: view.src_len,
                kv_group: view.kv_group,
                key_lengths: Some(view.lengths),
                causal_offset: None,
                bias: None,
                kv_rows: None,
                kv_rows_stride: 0,
                probs: view.probs,
                scale: self.heads.scale,
                imp: Default::default(),
            },
        )?;
        self.out_proj
            .forward(rec, attn, out, Default::default(), Some(residual), 0)
    }
}
