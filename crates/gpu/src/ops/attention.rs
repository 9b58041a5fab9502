//! Launcher for `shaders/attention.wgsl`: fused scaled dot-product attention.
//!
//! STAND-IN (branch model): a naive kernel so the model code can run until branch
//! `attention` lands; its version replaces this file wholesale.

use std::sync::{Arc, OnceLock};

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

/// Where a sequence of heads lives in a buffer: element (b, t, h, d) is at
/// `offset + b * batch_stride + t * row_stride + h * head_dim + d`.
/// This reads Q/K/V straight out of fused projections (`[B, T, 3D]`: row_stride 3D, offsets
/// 0, D, 2D) and out of caches (`[B, Tmax, D]`: batch_stride Tmax·D) without copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqLayout {
    pub offset: usize,
    pub batch_stride: usize,
    pub row_stride: usize,
}

impl SeqLayout {
    /// A contiguous `[batch, len, width]` tensor starting at `offset`.
    pub fn contiguous(len: usize, width: usize) -> Self {
        SeqLayout {
            offset: 0,
            batch_stride: len * width,
            row_stride: width,
        }
    }
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AttentionImpl {
    #[default]
    Auto,
    /// Scores, masked softmax and weighted sum with plain loops: the reference kernel.
    Naive,
    /// Online softmax over key tiles (flash-attention style).
    Flash,
    /// Query length 1: keys split across workgroups, partial results merged.
    SplitKeys,
}

/// Arguments of [`attention`].
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// f32; written at `out_layout` for every (b, t, h).
    pub out: &'a Tensor,
    pub q_layout: SeqLayout,
    pub k_layout: SeqLayout,
    pub v_layout: SeqLayout,
    pub out_layout: SeqLayout,
    /// Query batch rows.
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub q_len: usize,
    /// Keys (and values) per sequence considered: key positions 0..kv_len.
    pub kv_len: usize,
    /// Query batch row b reads key/value batch row b / kv_group (beams share the encoder
    /// output, never copied). 1 when every query row has its own keys.
    pub kv_group: usize,
    /// u32 `[batch / kv_group]`: keys j ≥ length are padding and masked out.
    pub key_lengths: Option<&'a Tensor>,
    /// Causal mask: query i sees keys j ≤ i + offset.
    pub causal_offset: Option<usize>,
    /// f32 additive bias `[1 or batch, heads, q_len, kv_len]` added to the scaled scores
    /// (T5's relative positions).
    pub bias: Option<&'a Tensor>,
    /// Beam indirection: u32 `[batch, kv_rows_stride]`; key/value position t of query batch b
    /// is read from batch row `kv_rows[b * kv_rows_stride + t]` (instead of b / kv_group).
    pub kv_rows: Option<&'a Tensor>,
    pub kv_rows_stride: usize,
    /// If set, f32 `[batch, heads, q_len, kv_len]` receives the attention probabilities
    /// (masked positions exactly 0).
    pub probs: Option<&'a Tensor>,
    /// Multiplies Q·Kᵀ, usually 1/sqrt(head_dim).
    pub scale: f32,
    pub imp: AttentionImpl,
}

/// softmax(scale · Q·Kᵀ + bias, masked) · V. Masked keys get probability exactly 0; a row with
/// every key masked outputs zeros (never NaN).
pub fn attention(rec: &mut Recorder, args: &Attention) -> Result<()> {
    let a = args;
    let bad = |msg: String| shape_err::<()>("attention", msg);
    let f32s = [a.q, a.k, a.v, a.out]
        .iter()
        .all(|t| t.dtype() == DType::F32);
    if !f32s
        || a.heads == 0
        || a.head_dim == 0
        || a.kv_group == 0
        || !a.batch.is_multiple_of(a.kv_group)
    {
        return bad(format!(
            "q {:?} k {:?} v {:?} out {:?} must be f32; heads {} head_dim {} kv_group {} batch {}",
            a.q.shape(),
            a.k.shape(),
            a.v.shape(),
            a.out.shape(),
            a.heads,
            a.head_dim,
            a.kv_group,
            a.batch
        ));
    }
    let kv_batch = a.batch / a.kv_group;
    let span = |l: &SeqLayout, rows: usize, len: usize| {
        if rows == 0 || len == 0 {
            0
        } else {
            l.offset + (rows - 1) * l.batch_stride + (len - 1) * l.row_stride + a.heads * a.head_dim
        }
    };
    let kv_rows_batch = if a.kv_rows.is_some() {
        a.batch
    } else {
        kv_batch
    };
    for (name, t, l, rows, len) in [
        ("q", a.q, &a.q_layout, a.batch, a.q_len),
        ("k", a.k, &a.k_layout, kv_rows_batch, a.kv_len),
        ("v", a.v, &a.v_layout, kv_rows_batch, a.kv_len),
        ("out", a.out, &a.out_layout, a.batch, a.q_len),
    ] {
        if span(l, rows, len) > t.numel() {
            return bad(format!(
                "{name} {:?} is too small for layout {l:?} ({rows} rows of {len})",
                t.shape()
            ));
        }
    }
    for t in [a.q, a.k, a.v] {
        if Arc::ptr_eq(&t.buf, &a.out.buf) {
            return bad(format!(
                "out {:?} must not share a buffer with q/k/v",
                a.out.shape()
            ));
        }
    }
    if let Some(l) = a.key_lengths
        && (l.dtype() != DType::U32 || l.numel() != kv_batch)
    {
        return bad(format!(
            "key_lengths {:?} must be u32 [{kv_batch}]",
            l.shape()
        ));
    }
    if let Some(r) = a.kv_rows
        && (r.dtype() != DType::U32
            || r.numel() < a.batch * a.kv_rows_stride
            || a.kv_rows_stride < a.kv_len)
    {
        return bad(format!(
            "kv_rows {:?} must be u32 [{}, {}] with stride ≥ kv_len {}",
            r.shape(),
            a.batch,
            a.kv_rows_stride,
            a.kv_len
        ));
    }
    let per = a.heads * a.q_len * a.kv_len;
    let bias_batch = match a.bias {
        Some(b) if b.numel() == per => 1,
        Some(b) if b.numel() == per * a.batch => a.batch,
        Some(b) => {
            return bad(format!(
                "bias {:?} must be [1 or {}, {}, {}, {}]",
                b.shape(),
                a.batch,
                a.heads,
                a.q_len,
                a.kv_len
            ));
        }
        None => 0,
    };
    if let Some(p) = a.probs
        && (p.dtype() != DType::F32 || p.numel() != per * a.batch)
    {
        return bad(format!(
            "probs {:?} must be f32 [{}, {}, {}, {}]",
            p.shape(),
            a.batch,
            a.heads,
            a.q_len,
            a.kv_len
        ));
    }
    let mask = (a.key_lengths.is_some() as usize)
        | ((a.bias.is_some() as usize) << 1)
        | ((a.kv_rows.is_some() as usize) << 2)
        | ((a.probs.is_some() as usize) << 3);
    let key = KernelKey::new(Family::Attention, "naive")
        .u32("WG", WG)
        .flag("HAS_LENGTHS", mask & 1 != 0)
        .flag("HAS_BIAS", mask & 2 != 0)
        .flag("HAS_ROWS", mask & 4 != 0)
        .flag("HAS_PROBS", mask & 8 != 0);
    let kernel = rec.gpu().kernel::<AttentionParams>(&key, bindings(mask))?;
    let mut tensors = vec![a.q, a.k, a.v, a.out];
    tensors.extend(a.key_lengths);
    tensors.extend(a.bias);
    tensors.extend(a.kv_rows);
    tensors.extend(a.probs);
    let p = AttentionParams {
        batch: a.batch as u32,
        heads: a.heads as u32,
        head_dim: a.head_dim as u32,
        q_len: a.q_len as u32,
        kv_len: a.kv_len as u32,
        kv_group: a.kv_group as u32,
        q_off: a.q_layout.offset as u32,
        q_bs: a.q_layout.batch_stride as u32,
        q_rs: a.q_layout.row_stride as u32,
        k_off: a.k_layout.offset as u32,
        k_bs: a.k_layout.batch_stride as u32,
        k_rs: a.k_layout.row_stride as u32,
        v_off: a.v_layout.offset as u32,
        v_bs: a.v_layout.batch_stride as u32,
        v_rs: a.v_layout.row_stride as u32,
        o_off: a.out_layout.offset as u32,
        o_bs: a.out_layout.batch_stride as u32,
        o_rs: a.out_layout.row_stride as u32,
        causal: a.causal_offset.is_some() as u32,
        causal_offset: a.causal_offset.unwrap_or(0) as u32,
        rows_stride: a.kv_rows_stride as u32,
        bias_batch: bias_batch as u32,
        scale: a.scale,
    };
    let groups = grid(
        rec.gpu(),
        ((a.batch * a.q_len * a.heads) as u32).div_ceil(WG),
    );
    rec.dispatch(&kernel, &p, &tensors, groups)
}

crate::wgsl_params! {
    /// Parameters of the naive attention.
    pub struct AttentionParams {
        pub batch: u32, pub heads: u32, pub head_dim: u32, pub q_len: u32, pub kv_len: u32,
        pub kv_group: u32, pub q_off: u32, pub q_bs: u32, pub q_rs: u32, pub k_off: u32,
        pub k_bs: u32, pub k_rs: u32, pub v_off: u32, pub v_bs: u32, pub v_rs: u32,
        pub o_off: u32, pub o_bs: u32, pub o_rs: u32, pub causal: u32, pub causal_offset: u32,
        pub rows_stride: u32, pub bias_batch: u32, pub scale: f32,
    }
}

const WG: u32 = 64;

/// The storage bindings for each combination of optional inputs (bit 0 lengths, 1 bias,
/// 2 rows, 3 probs).
fn bindings(mask: usize) -> Bindings {
    static ALL: OnceLock<Vec<Bindings>> = OnceLock::new();
    ALL.get_or_init(|| {
        (0..16usize)
            .map(|m| {
                let mut v = vec![
                    (1, Access::Read),
                    (2, Access::Read),
                    (3, Access::Read),
                    (4, Access::ReadWrite),
                ];
                if m & 1 != 0 {
                    v.push((5, Access::Read));
                }
                if m & 2 != 0 {
                    v.push((6, Access::Read));
                }
                if m & 4 != 0 {
                    v.push((7, Access::Read));
                }
                if m & 8 != 0 {
                    v.push((8, Access::ReadWrite));
                }
                let b: Bindings = Box::leak(v.into_boxed_slice());
                b
            })
            .collect()
    })[mask]
}
