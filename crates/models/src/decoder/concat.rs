//! Concatenated sources: one cross-attention over the keys of every source laid side by side.
//!
//! Each example's memories are packed into one row, one after another, without the padding of
//! any source in between (a short text beside a long image pads neither into the other):
//! row b holds source 0's first `len_0[b]` states, then source 1's `len_1[b]`, ...; its length
//! is their sum, and past it the attention kernel masks the keys as it masks any padding.
//! The packing is a few buffer copies recorded once per call into the encoder's submit;
//! the packed states are then projected once, by the wrapped decoder's one fused
//! projection, and every step reads them as the K/V of a single source. The alternative,
//! keeping each source's padding and masking it per segment inside the attention kernel,
//! reads `Σ max len_i` keys a step instead of `max Σ len_i` (README "Several sources").

use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::decoder::{CrossKv, Decoder, DecoderState, TransformerDecoder};
use crate::encoder::Memory;
use crate::error::{Error, Result};

/// A decoder whose one cross-attention reads every source's memory, packed per example.
pub struct ConcatDecoder {
    pub inner: TransformerDecoder,
}

/// Packs `memories` (same batch and width) per example: returns the packed memory and, per
/// example, the lengths of its segments.
pub fn pack(rec: &mut Recorder, memories: &[&Memory]) -> Result<(Memory, Vec<Vec<usize>>)> {
    let Some(first) = memories.first() else {
        return Err(Error::Input("no memories to concatenate".into()));
    };
    let (b, d) = (first.batch, first.dim);
    if let Some((i, m)) = memories
        .iter()
        .enumerate()
        .find(|(_, m)| m.batch != b || m.dim != d || m.row_lengths.len() != b)
    {
        return Err(Error::Input(format!(
            "memory {i} is [{}, {}, {}], memory 0 [{b}, {}, {d}]: concatenated sources need one batch and one width",
            m.batch, m.len, m.dim, first.len
        )));
    }
    let segments: Vec<Vec<usize>> = (0..b)
        .map(|row| memories.iter().map(|m| m.row_lengths[row]).collect())
        .collect();
    let totals: Vec<usize> = segments.iter().map(|s| s.iter().sum()).collect();
    let len = totals.iter().copied().max().unwrap_or(0).max(1);
    let gpu = rec.gpu().clone();
    let states = gpu.empty(&[b, len, d], DType::F32)?;
    for (row, seg) in segments.iter().enumerate() {
        let mut at = row * len * d;
        for (m, &n) in memories.iter().zip(seg) {
            rec.copy_elements(&m.states, row * m.len * d, &states, at, n * d)?;
            at += n * d;
        }
    }
    let lengths: Vec<u32> = totals.iter().map(|&t| t as u32).collect();
    let packed = Memory {
        lengths: gpu.upload(&lengths, &[b])?,
        row_lengths: totals,
        states,
        batch: b,
        len,
        dim: d,
    };
    Ok((packed, segments))
}

impl Decoder for ConcatDecoder {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    fn num_layers(&self) -> usize {
        self.inner.num_layers()
    }

    fn cross_heads(&self) -> usize {
        self.inner.cross_heads()
    }

    fn step_weight_bytes(&self) -> u64 {
        self.inner.step_weight_bytes()
    }

    fn project(&self, rec: &mut Recorder, memories: &[&Memory]) -> Result<CrossKv> {
        let (packed, segments) = pack(rec, memories)?;
        let mut cross = self.inner.project(rec, &[&packed])?;
        cross.segments = segments;
        Ok(cross)
    }

    fn state(&self, gpu: &Gpu, rows: usize, q_len: usize, t_cap: usize) -> Result<DecoderState> {
        self.inner.state(gpu, rows, q_len, t_cap)
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
        self.inner
            .forward(rec, state, t0, cross, kv_group, kv_rows, cross_probs)
    }
}
