//! Attention as batched matmuls: Q, K and V copied head-major (`shaders/heads.wgsl`), the
//! scores `[rows · heads, q_len, kv_len]` by the matmul kernel, the masked softmax in place,
//! the weighted sum by the matmul kernel again, and the result copied back to its layout.
//!
//! Why it exists: on CPU adapters the matmul kernels are the only ones tuned for how
//! lavapipe and llvmpipe turn lanes into loops (A shared by subgroup broadcasts, B per lane),
//! and long prefills (Whisper's 1500 × 1500 encoder self-attention) are pure matmul work.
//!
//! The score matrix of a chunk of batch rows must fit one binding: batch rows are taken in
//! chunks of whole kv_group blocks; the key lengths and a per-row bias of a chunk past the
//! first are copied out into scratch, so the softmax sees rows from 0.

use super::{Attention, err};
use crate::error::Result;
use crate::ops::heads::{Heads, Visible, merge_heads, split_heads};
use crate::ops::matmul::{MatmulOptions, matmul};
use crate::ops::softmax;
use crate::{DType, Gpu, Recorder, Tensor};

/// Batch rows per chunk: the most whole kv_group blocks whose score matrix fits one binding,
/// or `None` when not even one does (or when a beam table reorders keys per step, which the
/// head-major copies do not follow).
pub(super) fn chunk_rows(gpu: &Gpu, a: &Attention) -> Option<usize> {
    chunk_rows_within(gpu.max_binding(), a)
}

fn chunk_rows_within(binding_bytes: u64, a: &Attention) -> Option<usize> {
    if a.kv_rows.is_some() || a.kv_group == 0 {
        return None;
    }
    let per_row = a.heads.checked_mul(a.q_len)?.checked_mul(a.kv_len)?;
    let per_block = per_row.checked_mul(a.kv_group)?.max(1);
    let fit = usize::try_from(binding_bytes / 4).unwrap_or(usize::MAX) / per_block;
    let blocks = fit.min(a.batch / a.kv_group);
    (blocks > 0 && u32::try_from(per_block.checked_mul(blocks)?).is_ok())
        .then_some(blocks * a.kv_group)
}

/// Gemm with score chunks of at most `binding_bytes` (the adapter's binding size, or less to
/// test the chunking).
pub(super) fn gemm(rec: &mut Recorder, a: &Attention, binding_bytes: u64) -> Result<()> {
    let gpu = rec.gpu().clone();
    let Some(chunk) = chunk_rows_within(binding_bytes.min(gpu.max_binding()), a) else {
        return err(if a.kv_rows.is_some() {
            "Gemm does not take a kv_rows beam table".to_string()
        } else {
            format!(
                "Gemm needs the scores of {} batch rows ({} heads × {} × {}) in one binding of {binding_bytes} bytes",
                a.kv_group, a.heads, a.q_len, a.kv_len,
            )
        });
    };
    let (heads, dh, q_len, kv_len) = (a.heads, a.head_dim, a.q_len, a.kv_len);
    let per_row = heads * q_len * kv_len;
    let mut b0 = 0;
    while b0 < a.batch {
        let n = chunk.min(a.batch - b0);
        let whole = n == a.batch;
        let qh = Heads {
            layout: a.q_layout,
            first: b0,
            rows: n,
            div: 1,
            len: q_len,
            heads,
            head_dim: dh,
        };
        let kh = |layout| Heads {
            layout,
            div: a.kv_group,
            len: kv_len,
            ..qh
        };
        if kv_len == 0 {
            // Every row fully masked: zeros (the matmuls would bind empty operands).
            let zeros = gpu.empty(&[n * heads, q_len, dh], DType::F32)?;
            rec.zero(&zeros);
            merge_heads(
                rec,
                &zeros,
                &Heads {
                    layout: a.out_layout,
                    ..qh
                },
                a.out,
            )?;
            b0 += n;
            continue;
        }
        let qb = gpu.empty(&[n * heads, q_len, dh], DType::F32)?;
        let kb = gpu.empty(&[n * heads, kv_len, dh], DType::F32)?;
        let vb = gpu.empty(&[n * heads, kv_len, dh], DType::F32)?;
        let all = Visible {
            positions: q_len,
            lengths: None,
        };
        // Keys no query sees may hold anything (cache rows, padding); zeroed, they cannot
        // turn a zero probability into NaN in the weighted sum.
        let seen = Visible {
            positions: a
                .causal_offset
                .map_or(kv_len, |o| kv_len.min(q_len.saturating_add(o))),
            lengths: a.key_lengths,
        };
        split_heads(rec, a.q, &qh, all, &qb)?;
        split_heads(rec, a.k, &kh(a.k_layout), seen, &kb)?;
        split_heads(rec, a.v, &kh(a.v_layout), seen, &vb)?;

        let scores = match (a.probs, whole) {
            (Some(p), true) => p.reshape(&[n * heads, q_len, kv_len])?,
            _ => gpu.empty(&[n * heads, q_len, kv_len], DType::F32)?,
        };
        let trans = MatmulOptions {
            trans_b: true,
            ..Default::default()
        };
        matmul(rec, &qb, &kb, &scores, &trans)?;

        let lengths = match a.key_lengths {
            Some(l) if b0 > 0 => Some(slice(rec, l, b0 / a.kv_group, n / a.kv_group)?),
            l => l.cloned(),
        };
        let bias = match a.bias {
            Some(b) if b0 > 0 && b.numel() != per_row => {
                Some(slice(rec, b, b0 * per_row, n * per_row)?)
            }
            b => b.cloned(),
        };
        let rows = softmax::Rows {
            batch: n,
            heads,
            q_len,
            kv_len,
            scale: a.scale,
            key_lengths: lengths.as_ref(),
            len_div: a.kv_group,
            causal_offset: a.causal_offset,
            bias: bias.as_ref(),
        };
        softmax::launch(rec, &scores, &scores, &rows)?;

        let ob = gpu.empty(&[n * heads, q_len, dh], DType::F32)?;
        matmul(rec, &scores, &vb, &ob, &MatmulOptions::default())?;
        let oh = Heads {
            layout: a.out_layout,
            ..qh
        };
        merge_heads(rec, &ob, &oh, a.out)?;
        if let (Some(p), false) = (a.probs, whole) {
            rec.copy_elements(&scores, 0, p, b0 * per_row, n * per_row)?;
        }
        b0 += n;
    }
    Ok(())
}

/// Elements `start .. start + len` of `t` in a scratch tensor of their own (a view would need
/// the adapter's storage offset alignment).
fn slice(rec: &mut Recorder, t: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let out = rec.gpu().empty(&[len], t.dtype())?;
    rec.copy_elements(t, start, &out, 0, len)?;
    Ok(out)
}
