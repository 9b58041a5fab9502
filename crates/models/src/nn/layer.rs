//! One transformer layer for every stack: self-attention, then a list of cross-attention
//! blocks (none in encoders, one per source in decoders), then the feed-forward network;
//! each sub-layer with its residual connection and norm, before (pre-norm) or after
//! (post-norm) it.
//!
//! Each norm is left to the matmul that reads it (its prologue normalises the rows where that
//! pays, `Linear::forward_in`): pre-norm, the sub-layer's first linear; post-norm, the norm
//! after a residual sum waits for the next sub-layer's first linear (possibly the next
//! layer's, or the LM head), which also keeps the normalised rows as that sub-layer's
//! residual. So where the prologue pays, a decoder layer's step records no norm dispatch of
//! its own.

use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::error::Result;
use crate::nn::linear::Input;
use crate::nn::{CrossAttention, CrossView, FeedForward, Norm, SelfAttention, SelfKv};

/// A cross-attention block and the norm of its sub-layer.
pub struct CrossBlock {
    pub attn: CrossAttention,
    pub norm: Norm,
}

/// One layer. HF names per family: BART `self_attn`, `self_attn_layer_norm`, `encoder_attn`,
/// `encoder_attn_layer_norm`, `fc1`/`fc2`, `final_layer_norm`; T5 `layer.0.SelfAttention`,
/// `layer.0.layer_norm`, `layer.1.EncDecAttention`, `layer.1.layer_norm`,
/// `layer.{1|2}.DenseReluDense`, `layer.{1|2}.layer_norm`.
pub struct TransformerLayer {
    pub self_attn: SelfAttention,
    pub self_attn_norm: Norm,
    pub cross: Vec<CrossBlock>,
    pub ffn: FeedForward,
    pub ffn_norm: Norm,
    /// Pre-norm `x + f(norm(x))` (mBART, Pegasus, M2M100, T5) or post-norm `norm(x + f(x))`
    /// (BART, Marian).
    pub norm_first: bool,
}

/// The residual stream in two buffers: pre-norm blocks write `x + f(norm(x))` into the other
/// one (a matmul's residual must not be its output), then swap.
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
    /// `out = norm(cur)`, then `cur = out`.
    pub fn norm(&mut self, rec: &mut Recorder, norm: &Norm) -> Result<()> {
        norm.forward(rec, self.cur(), self.other())?;
        self.swap();
        Ok(())
    }
}

/// Activations of one pass over R = rows × len positions, allocated once per call.
pub struct Scratch {
    /// 2 × f32 `[R, D]`: the residual stream.
    pub res: Residual,
    /// f32 `[R, D]`: norm outputs (pre-norm) or pre-norm sums (post-norm).
    pub normed: Tensor,
    /// f32 `[R, I]`: attention output before out_proj.
    pub attn: Tensor,
    /// f32 `[R, I]`: cross-attention queries (1 element in encoders).
    pub cross_q: Tensor,
    /// f32 `[R, F]`: feed-forward hidden.
    pub hidden: Tensor,
    /// f32 `[R, 2F]`: gated feed-forward's two products (1 element when not gated).
    pub gate: Tensor,
}

/// Widest sizes over a stack's layers: (attention inner I, FFN hidden F, gated, cross I).
fn widths(layers: &[TransformerLayer]) -> (usize, usize, bool, usize) {
    let mut w = (1, 1, false, 1);
    for l in layers {
        w.0 = w.0.max(l.self_attn.heads.inner());
        w.1 = w.1.max(l.ffn.hidden());
        w.2 |= l.ffn.is_gated();
        for c in &l.cross {
            w.3 = w.3.max(c.attn.heads.inner());
        }
    }
    w
}

impl Scratch {
    /// Applies a post-norm layer's deferred norm (returned by [`TransformerLayer::forward`]):
    /// `res.cur() = norm(normed)`. Nothing when `pending` is None.
    pub fn settle(&mut self, rec: &mut Recorder, pending: Option<&Norm>) -> Result<()> {
        if let Some(norm) = pending {
            norm.forward(rec, &self.normed, self.res.cur())?;
        }
        Ok(())
    }

    /// The stack's output as a linear's input: `res.cur()`, normalised by the deferred norm
    /// and then by `last` (a final norm), as far as they apply. Both apply: the first runs
    /// now.
    pub fn output<'a>(
        &'a mut self,
        rec: &mut Recorder,
        pending: Option<&'a Norm>,
        last: Option<&'a Norm>,
    ) -> Result<Input<'a>> {
        Ok(match (pending, last) {
            (Some(p), None) => Input::normed(&self.normed, p, self.res.cur(), false),
            (pending, Some(last)) => {
                self.settle(rec, pending)?;
                Input::normed(self.res.cur(), last, &self.normed, false)
            }
            (None, None) => Input::plain(self.res.cur()),
        })
    }

    /// Buffers for `rows` positions of width `d` through `layers`.
    pub fn new(gpu: &Gpu, layers: &[TransformerLayer], rows: usize, d: usize) -> Result<Scratch> {
        let (inner, ffn, gated, cross) = widths(layers);
        let f32s = |n: usize, w: usize| gpu.empty(&[n, w], DType::F32);
        let has_cross = layers.iter().any(|l| !l.cross.is_empty());
        Ok(Scratch {
            res: Residual::new(f32s(rows, d)?, f32s(rows, d)?),
            normed: f32s(rows, d)?,
            attn: f32s(rows, inner.max(cross))?,
            cross_q: if has_cross {
                f32s(rows, cross)?
            } else {
                f32s(1, 1)?
            },
            hidden: f32s(rows, ffn)?,
            gate: if gated {
                f32s(rows, 2 * ffn)?
            } else {
                f32s(1, 1)?
            },
        })
    }
}

/// What one layer pass reads besides the scratch.
pub struct LayerInputs<'a> {
    /// Sequences and positions per sequence of this pass.
    pub rows: usize,
    pub len: usize,
    pub self_kv: SelfKv<'a>,
    /// f32 `[1, H, len, K]`: the self-attention's additive bias (T5 positions).
    pub bias: Option<&'a Tensor>,
    /// One view per cross block, in order.
    pub cross: &'a [CrossView<'a>],
    /// Cut the recording after each sub-layer ([`Recorder::split_point`]: only on a device
    /// shared with a host, whose frames then wait for one sub-layer). An encoder pass over a
    /// long input takes seconds on a software adapter; a decoder step is short and stays one
    /// submit.
    pub split: bool,
}

/// A sub-layer with its residual connection and norm. `f(input, out, residual)` must end
/// with a matmul whose epilogue adds `residual` into `out`. `pending`: the norm a post-norm
/// sub-layer before left to this one (its input is then `pending(normed)`); returns the one
/// this sub-layer leaves to the next.
fn residual_block<'n>(
    rec: &mut Recorder,
    (norm_first, norm): (bool, &'n Norm),
    res: &mut Residual,
    normed: &Tensor,
    pending: Option<&Norm>,
    f: impl FnOnce(&mut Recorder, &Input, &Tensor, &Tensor) -> Result<()>,
) -> Result<Option<&'n Norm>> {
    if norm_first {
        // A pre-norm stack leaves nothing pending; settle what a mixed one would.
        if let Some(p) = pending {
            p.forward(rec, normed, res.cur())?;
        }
        f(
            rec,
            &Input::normed(res.cur(), norm, normed, false),
            res.other(),
            res.cur(),
        )?;
        res.swap();
        return Ok(None);
    }
    let input = match pending {
        Some(p) => Input::normed(normed, p, res.cur(), true),
        None => Input::plain(res.cur()),
    };
    f(rec, &input, normed, res.cur())?;
    Ok(Some(norm))
}

impl TransformerLayer {
    /// Records the layer over `s.res.cur()` (f32 `[rows·len, D]`), or over `pending(s.normed)`
    /// when the layer before left its last norm pending. Returns the norm this layer leaves
    /// pending (post-norm): the caller passes it to the next layer or settles it
    /// ([`Scratch::settle`], [`Scratch::output`]).
    pub fn forward<'a>(
        &'a self,
        rec: &mut Recorder,
        s: &mut Scratch,
        io: &LayerInputs,
        pending: Option<&'a Norm>,
    ) -> Result<Option<&'a Norm>> {
        let Scratch {
            res,
            normed,
            attn,
            cross_q,
            hidden,
            gate,
        } = s;
        let r = io.rows * io.len;
        let width = |t: &Tensor, w: usize| t.view(0, &[r, w]);
        let sa = &self.self_attn;
        let sa_attn = width(attn, sa.heads.inner())?;
        let mut pending = residual_block(
            rec,
            (self.norm_first, &self.self_attn_norm),
            res,
            normed,
            pending,
            |rec, x, out, residual| {
                sa.forward(
                    rec,
                    x,
                    &io.self_kv,
                    (io.rows, io.len),
                    io.bias,
                    &sa_attn,
                    out,
                    residual,
                )
            },
        )?;
        for (block, view) in self.cross.iter().zip(io.cross) {
            let inner = block.attn.heads.inner();
            let (q, a) = (width(cross_q, inner)?, width(attn, inner)?);
            pending = residual_block(
                rec,
                (self.norm_first, &block.norm),
                res,
                normed,
                pending,
                |rec, x, out, residual| {
                    block
                        .attn
                        .forward(rec, x, view, (io.rows, io.len), &q, &a, out, residual)
                },
            )?;
        }
        if io.split {
            rec.split_point()?;
        }
        let pending = residual_block(
            rec,
            (self.norm_first, &self.ffn_norm),
            res,
            normed,
            pending,
            |rec, x, out, residual| self.ffn.forward(rec, x, (hidden, gate), out, residual),
        )?;
        if io.split {
            rec.split_point()?;
        }
        Ok(pending)
    }
}
