//! The decoder contract: project the memories of a call to resident cross-attention K/V
//! once, make a step state, and run passes of one (generation) or many (teacher forcing)
//! tokens per sequence into logits. [`TransformerDecoder`] is the decoder of every family
//! built from the shared layers; the generation loop drives any [`Decoder`].

mod concat;

pub use concat::ConcatDecoder;

use seqbridge_gpu::ops::attention::SeqLayout;
use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::encoder::Memory;
use crate::error::{Error, Result};
use crate::nn::{
    CrossView, FeedForward, LayerInputs, Linear, LinearChunk, Norm, RelativePositionBias, Scratch,
    SelfKv, TextEmbedding, TransformerLayer,
};

/// Cross-attention K/V of one source for every block attending it, computed once per call.
pub struct SourceKv {
    /// f32 `[B, S, W]`: per row, block slot c's K at columns `c·2I ..`, its V right after.
    pub kv: Tensor,
    /// u32 `[B]`.
    pub lengths: Tensor,
    pub len: usize,
    pub width: usize,
}

/// The resident encoder side of a call: one [`SourceKv`] per source the decoder attends.
pub struct CrossKv {
    pub sources: Vec<SourceKv>,
    /// Cross-attention blocks whose K/V were projected (the `cross_kv_computes` counter).
    pub blocks: usize,
    /// Sources in the batch (each decoder row reads source row / kv_group).
    pub batch: usize,
    /// Concatenated sources ([`ConcatDecoder`]): per example, the real lengths of the
    /// memories packed one after another into its row of the one source; empty otherwise.
    pub segments: Vec<Vec<usize>>,
}

/// Buffers of the decoder passes of one call: `rows` sequences (sources × beams) fed `q_len`
/// tokens per pass, with a self-attention cache of `t_cap` positions.
pub struct DecoderState {
    pub rows: usize,
    pub q_len: usize,
    pub t_cap: usize,
    /// u32 `[N, Q]`: input tokens of this pass.
    pub ids: Tensor,
    pub scratch: Scratch,
    /// Per layer, f32 `[N, Tcap, 3I]`: the fused Q/K/V of every position, written by the
    /// projection straight into the cache (Q of past positions is dead space).
    pub self_cache: Vec<Tensor>,
    /// f32 `[H, Q, Tcap]` room for the self-attention position bias (T5), or 1 element.
    pub bias: Tensor,
    /// f32 `[N·Q, V]`.
    pub logits: Tensor,
}

/// A decoder. Implementations keep every weight on the GPU; a call projects its memories
/// once ([`Decoder::project`]) and then records passes against them.
pub trait Decoder: Send + Sync {
    /// Target vocabulary: the logits' width.
    fn vocab_size(&self) -> usize;
    /// Decoder layers.
    fn num_layers(&self) -> usize;
    /// Heads of each layer's cross-attention (first block): the maps' height.
    fn cross_heads(&self) -> usize;
    /// Weight bytes one decode step reads whatever the batch: every layer's matrices,
    /// biases and norms, the embedding norm, the final norm and the output projection. Not
    /// the cross K/V projections (once per call) nor the embedding and position tables (a
    /// step reads one row of each per sequence).
    fn step_weight_bytes(&self) -> u64;
    /// Records the K/V projection of every cross-attention block from `memories` (one per
    /// source the decoder attends, in order).
    fn project(&self, rec: &mut Recorder, memories: &[&Memory]) -> Result<CrossKv>;
    /// Buffers for `rows` sequences, `q_len` tokens per pass, `t_cap` positions in all.
    fn state(&self, gpu: &Gpu, rows: usize, q_len: usize, t_cap: usize) -> Result<DecoderState>;
    /// Records a pass over `state.ids` at positions `t0 .. t0 + Q` and the logits.
    /// `kv_group`: decoder rows per source (beams). `kv_rows`: the beam indirection table
    /// `[N, Tcap]` of the self-attention cache. `cross_probs`: per cross block, layer by
    /// layer (one block per layer: per layer), f32 `[N, H, Q, S]` to receive its
    /// probabilities (none: that block writes none).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        rec: &mut Recorder,
        state: &mut DecoderState,
        t0: usize,
        cross: &CrossKv,
        kv_group: usize,
        kv_rows: Option<&Tensor>,
        cross_probs: Option<&[Option<Tensor>]>,
    ) -> Result<()>;
}

/// A transformer decoder over token ids: embeddings, layers with one cross-attention block
/// per source, an optional final norm and the output projection.
pub struct TransformerDecoder {
    pub embed: TextEmbedding,
    pub layers: Vec<TransformerLayer>,
    pub final_norm: Option<Norm>,
    pub lm_head: Linear,
    /// Per source: every block's K and V projections attending it, stacked in slot order
    /// (`[blocks·2I, D_source]`), so a source is projected in one matmul for all layers.
    pub cross_kv_proj: Vec<Linear>,
    /// None, one table shared by every layer (T5), or one per layer (umT5).
    pub position_bias: Vec<RelativePositionBias>,
    pub d_model: usize,
}

impl TransformerDecoder {
    fn cross_views<'a>(
        &self,
        layer: &TransformerLayer,
        cross: &'a CrossKv,
        kv_group: usize,
        probs: &'a [Option<Tensor>],
    ) -> Vec<CrossView<'a>> {
        layer
            .cross
            .iter()
            .enumerate()
            .map(|(c, block)| {
                let src = &cross.sources[block.attn.source];
                let i = block.attn.heads.inner();
                let at = |offset| SeqLayout::new(offset, src.len * src.width, src.width);
                CrossView {
                    kv: &src.kv,
                    k: at(block.attn.slot * 2 * i),
                    v: at(block.attn.slot * 2 * i + i),
                    src_len: src.len,
                    lengths: &src.lengths,
                    kv_group,
                    probs: probs.get(c).and_then(Option::as_ref),
                }
            })
            .collect()
    }
}

impl Decoder for TransformerDecoder {
    fn vocab_size(&self) -> usize {
        self.lm_head.out_features
    }

    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn cross_heads(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.cross.first())
            .map_or(0, |c| c.attn.heads.num_heads)
    }

    fn step_weight_bytes(&self) -> u64 {
        let linear = |l: &Linear| -> u64 { l.chunks.iter().map(LinearChunk::byte_len).sum() };
        let norm = |n: &Norm| match n {
            Norm::Layer { weight, bias, .. } => weight.byte_len() + bias.byte_len(),
            Norm::Rms { weight, .. } => weight.byte_len(),
        };
        let layer = |l: &TransformerLayer| -> u64 {
            let ffn = match &l.ffn {
                FeedForward::Plain { fc1, fc2, .. } => linear(fc1) + linear(fc2),
                FeedForward::Gated { wi, wo, .. } => linear(wi) + linear(wo),
            };
            let cross: u64 = l
                .cross
                .iter()
                .map(|c| linear(&c.attn.q_proj) + linear(&c.attn.out_proj) + norm(&c.norm))
                .sum();
            linear(&l.self_attn.qkv_proj)
                + linear(&l.self_attn.out_proj)
                + norm(&l.self_attn_norm)
                + cross
                + ffn
                + norm(&l.ffn_norm)
        };
        self.layers.iter().map(layer).sum::<u64>()
            + self.embed.norm.as_ref().map_or(0, norm)
            + self.final_norm.as_ref().map_or(0, norm)
            + linear(&self.lm_head)
    }

    fn project(&self, rec: &mut Recorder, memories: &[&Memory]) -> Result<CrossKv> {
        if memories.len() != self.cross_kv_proj.len() {
            return Err(Error::Input(format!(
                "the decoder attends {} sources, {} memories given",
                self.cross_kv_proj.len(),
                memories.len()
            )));
        }
        let mut sources = Vec::with_capacity(memories.len());
        let mut blocks = 0;
        for (proj, m) in self.cross_kv_proj.iter().zip(memories) {
            if m.dim != proj.in_features {
                return Err(Error::Input(format!(
                    "memory of width {} for a cross-attention projection of width {}",
                    m.dim, proj.in_features
                )));
            }
            let width = proj.out_features;
            let kv = rec.gpu().empty(&[m.batch, m.len, width], DType::F32)?;
            let rows = m.batch * m.len;
            proj.apply(
                rec,
                &m.states.reshape(&[rows, m.dim])?,
                &kv.reshape(&[rows, width])?,
            )?;
            blocks += self
                .layers
                .iter()
                .flat_map(|l| &l.cross)
                .filter(|c| c.attn.source == sources.len())
                .count();
            sources.push(SourceKv {
                kv,
                lengths: m.lengths.clone(),
                len: m.len,
                width,
            });
        }
        let batch = memories.first().map_or(0, |m| m.batch);
        Ok(CrossKv {
            sources,
            blocks,
            batch,
            segments: Vec::new(),
        })
    }

    fn state(&self, gpu: &Gpu, rows: usize, q_len: usize, t_cap: usize) -> Result<DecoderState> {
        let n = rows * q_len;
        let f32s = |shape: &[usize]| gpu.empty(shape, DType::F32);
        Ok(DecoderState {
            rows,
            q_len,
            t_cap,
            ids: gpu.empty(&[rows, q_len], DType::U32)?,
            scratch: Scratch::new(gpu, &self.layers, n, self.d_model)?,
            self_cache: self
                .layers
                .iter()
                .map(|l| f32s(&[rows, t_cap, 3 * l.self_attn.heads.inner()]))
                .collect::<seqbridge_gpu::Result<Vec<_>>>()?,
            bias: match self.position_bias.first() {
                Some(p) => f32s(&[p.heads, q_len, t_cap])?,
                None => f32s(&[1])?,
            },
            logits: f32s(&[n, self.vocab_size()])?,
        })
    }

    fn forward(
        &self,
        rec: &mut Recorder,
        state: &mut DecoderState,
        t0: usize,
        cross: &CrossKv,
        kv_group: usize,
        kv_rows: Option<&Tensor>,
        cross_probs: Option<&[Option<Tensor>]>,
    ) -> Result<()> {
        let (n, q, t_cap) = (state.rows, state.q_len, state.t_cap);
        if t0 + q > t_cap {
            return Err(Error::Input(format!(
                "decoder positions {t0}..{} past the cache of {t_cap}",
                t0 + q
            )));
        }
        let s = &mut state.scratch;
        s.res.reset();
        let (cur, other) = (s.res.cur().clone(), s.res.other().clone());
        if self.embed.forward(rec, &state.ids, t0, &cur, &other)? {
            s.res.swap();
        }
        let bias = match self.position_bias.first() {
            Some(p) => Some(state.bias.view(0, &[1, p.heads, q, t0 + q])?),
            None => None,
        };
        let mut pending = None;
        for (l, layer) in self.layers.iter().enumerate() {
            if let (Some(out), Some(p)) = (&bias, self.position_bias.get(l)) {
                p.forward(rec, t0, q, t0 + q, out)?;
            }
            let blocks = layer.cross.len();
            let probs = cross_probs
                .and_then(|p| p.get(l * blocks..(l + 1) * blocks))
                .unwrap_or(&[]);
            let views = self.cross_views(layer, cross, kv_group, probs);
            let io = LayerInputs {
                rows: n,
                len: q,
                self_kv: SelfKv::Cached {
                    cache: &state.self_cache[l],
                    t_cap,
                    t0,
                    kv_rows,
                },
                bias: bias.as_ref(),
                cross: &views,
                split: false,
            };
            pending = layer.forward(rec, s, &io, pending)?;
        }
        // The last norm (the final one, or a post-norm layer's) goes into the LM head.
        let hidden = s.output(rec, pending, self.final_norm.as_ref())?;
        self.lm_head
            .forward_in(rec, &hidden, &state.logits, Default::default(), 0)
    }
}
