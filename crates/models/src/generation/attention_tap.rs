//! Chosen cross-attention heads, read back from a decoder pass: Whisper's alignment heads
//! for token timestamps (one teacher-forced pass) and for streaming policies such as
//! AlignAtt (every greedy step).
//!
//! Only the layers that hold a chosen head write their probabilities `[N, H, Q, S]`; one
//! `copy_rows` per head gathers its rows into `[N, K, Q, S]` on the GPU, and only that is
//! read back. A caller that asks for nothing gets none of this.

use seqbridge_gpu::ops::cache::{Rows, copy_rows};
use seqbridge_gpu::{DType, Gpu, Readback, Recorder, Tensor};

use crate::decoder::{CrossKv, Decoder};
use crate::error::{Error, Result};
use crate::generation::Runner;

/// One greedy step, as [`crate::Model::generate_streaming`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct StepEvent<'a> {
    /// The source (batch row) that received `token`.
    pub source: usize,
    pub token: u32,
    /// Decoder position of the query that chose `token` (0: the decoder start token's).
    pub position: usize,
    /// f32 `[heads, source_len]` row-major: per alignment head (in the generation config's
    /// order), that query's cross-attention probabilities over the encoder frames.
    pub cross_attention: &'a [f32],
    pub heads: usize,
    pub source_len: usize,
}

/// GPU buffers that collect the chosen heads of a pass, and what was read back.
pub(crate) struct AttentionTap {
    /// `[layer, head]` pairs, in output order.
    heads: Vec<[usize; 2]>,
    /// Cross-attention heads per layer.
    layer_heads: usize,
    rows: usize,
    q_len: usize,
    src_len: usize,
    /// Per decoder layer, f32 `[N, H, Q, S]` where a chosen head lives, else none.
    probs: Vec<Option<Tensor>>,
    /// f32 `[N, K, Q, S]`: the chosen heads.
    gathered: Tensor,
    pending: Option<Readback>,
    /// The last read-back `gathered`.
    data: Vec<f32>,
}

impl AttentionTap {
    /// Buffers for `rows` decoder rows fed `q_len` tokens a pass against `src_len` frames.
    pub fn new(
        gpu: &Gpu,
        decoder: &dyn Decoder,
        heads: &[[usize; 2]],
        rows: usize,
        q_len: usize,
        src_len: usize,
    ) -> Result<AttentionTap> {
        let (layers, layer_heads) = (decoder.num_layers(), decoder.cross_heads());
        if heads.is_empty() {
            return Err(Error::Input("no cross-attention heads chosen".into()));
        }
        if let Some([l, h]) = heads
            .iter()
            .find(|[l, h]| *l >= layers || *h >= layer_heads)
        {
            return Err(Error::Input(format!(
                "cross-attention head [{l}, {h}] is outside the decoder's {layers} layers × {layer_heads} heads"
            )));
        }
        let probs = (0..layers)
            .map(|l| {
                heads
                    .iter()
                    .any(|&[hl, _]| hl == l)
                    .then(|| gpu.empty(&[rows, layer_heads, q_len, src_len], DType::F32))
                    .transpose()
            })
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        let gathered = gpu.empty(&[rows, heads.len(), q_len, src_len], DType::F32)?;
        Ok(AttentionTap {
            heads: heads.to_vec(),
            layer_heads,
            rows,
            q_len,
            src_len,
            probs,
            gathered,
            pending: None,
            data: Vec::new(),
        })
    }

    /// What the decoder's forward writes into (`cross_probs`).
    pub fn probs(&self) -> &[Option<Tensor>] {
        &self.probs
    }

    /// Records the gathering of the chosen heads and their read-back, after the forward.
    pub fn record(&mut self, rec: &mut Recorder) -> Result<()> {
        let (k, span) = (self.heads.len(), self.q_len * self.src_len);
        for (slot, &[l, h]) in self.heads.iter().enumerate() {
            // `new` allocates every chosen layer; a miss would be a bug here, reported as one.
            let Some(src) = self.probs.get(l).and_then(Option::as_ref) else {
                return Err(Error::Input(format!(
                    "cross-attention head [{l}, {h}]: layer {l} has no attention probabilities"
                )));
            };
            copy_rows(
                rec,
                src,
                Rows {
                    offset: h * span,
                    row_stride: self.layer_heads * span,
                },
                &self.gathered,
                Rows {
                    offset: slot * span,
                    row_stride: k * span,
                },
                self.rows,
                span,
            )?;
        }
        self.pending = Some(rec.read_back(&self.gathered)?);
        Ok(())
    }

    /// Waits for the read-back recorded last (after the recorder was submitted).
    pub fn wait(&mut self) -> Result<()> {
        if let Some(rb) = self.pending.take() {
            self.data = rb.wait_f32()?;
            self.data.truncate(self.gathered.numel());
        }
        Ok(())
    }

    /// Decoder row `row`'s chosen heads, f32 `[K, Q, S]`.
    pub fn row(&self, row: usize) -> &[f32] {
        let n = self.heads.len() * self.q_len * self.src_len;
        self.data.get(row * n..(row + 1) * n).unwrap_or(&[])
    }
}

/// An [`AttentionTap`] on every greedy step and the callback that receives the rows.
pub(crate) struct StepTap<'a> {
    pub tap: AttentionTap,
    pub on_step: &'a mut dyn FnMut(&StepEvent),
}

impl StepTap<'_> {
    pub fn probs(&self) -> &[Option<Tensor>] {
        self.tap.probs()
    }

    /// Reports that decoder row `row` (a source) received `token` from the query at
    /// `position`, with that query's row of the chosen heads.
    pub fn emit(&mut self, row: usize, token: u32, position: usize) {
        let t = &self.tap;
        (self.on_step)(&StepEvent {
            source: row,
            token,
            position,
            cross_attention: t.row(row),
            heads: t.heads.len(),
            source_len: t.src_len,
        });
    }
}

/// The chosen heads' probabilities of one teacher-forced pass over `decoder_input_ids`
/// (source 0 of `cross`): f32 `[K, T, S]`.
pub(crate) fn teacher_forced(
    run: &Runner,
    cross: &CrossKv,
    decoder_input_ids: &[u32],
    heads: &[[usize; 2]],
) -> Result<Vec<f32>> {
    let t = decoder_input_ids.len();
    let s = cross.sources.first().map_or(0, |src| src.len);
    let mut tap = AttentionTap::new(run.gpu, run.decoder, heads, 1, t, s)?;
    let mut dec = run.decoder.state(run.gpu, 1, t, t)?;
    run.gpu.write(&dec.ids, decoder_input_ids)?;
    let mut rec = Recorder::new(run.gpu);
    run.decoder
        .forward(&mut rec, &mut dec, 0, cross, 1, None, Some(tap.probs()))?;
    tap.record(&mut rec)?;
    rec.submit();
    tap.wait()?;
    Ok(std::mem::take(&mut tap.data))
}
