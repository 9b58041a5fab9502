//! Launcher for `shaders/embedding.wgsl`: token embedding gather plus positions.
//!
//! The table is read as u32 words whatever its dtype (`W_F16` selects the f16 unpacking), so
//! one kernel source serves f32 and f16 tables. Two kernels: [`EmbedImpl::Plain`], one
//! invocation per output element (any D), and [`EmbedImpl::Vec4`], four columns per
//! invocation (D % 4 == 0), which `Auto` picks whenever it applies.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `embed`.
    pub struct EmbedParams {
        /// B * T.
        pub n_tokens: u32,
        /// T (positions are t = token index % T).
        pub t_len: u32,
        /// Model width D.
        pub d: u32,
        /// Rows in this table chunk.
        pub v: u32,
        /// Vocabulary id of the chunk's first row.
        pub row_start: u32,
        pub pos_offset: u32,
        pub scale: f32,
    }
}

const WG: u32 = 256;
const BINDINGS: Bindings = &[(1, Access::Read), (2, Access::Read), (4, Access::ReadWrite)];
const POS_BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::ReadWrite),
];

/// Which kernel runs. `Auto` picks `Vec4` when D % 4 == 0; the others force one (tests,
/// benches); `Vec4` falls back to `Plain` for other widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EmbedImpl {
    #[default]
    Auto,
    /// One invocation per output element.
    Plain,
    /// Four consecutive columns per invocation.
    Vec4,
}

/// Options of [`embed`].
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbedOptions<'a> {
    /// Multiplies the token embedding (sqrt(d_model) when `scale_embedding`).
    pub scale: f32,
    /// f32 `[P, D]` position table (learned, or sinusoidal computed on the host at load);
    /// row `t + position_offset` is added to position t.
    pub positions: Option<&'a Tensor>,
    pub position_offset: usize,
    /// The token table holds vocabulary rows `table_row_start .. table_row_start + V`:
    /// a large vocabulary is split in chunks that each fit one binding, and ids outside this
    /// chunk are left untouched (another call writes them).
    pub table_row_start: usize,
}

/// `out[b, t] = table[ids[b, t]] * scale + positions[t + position_offset]`.
/// ids u32 `[B, T]`, table f32 or f16 `[V, D]`, out f32 `[B, T, D]`. Ids are validated
/// by the caller (the kernel skips ids outside the table chunk). Fails when the position
/// table has fewer than `T + position_offset` rows.
pub fn embed(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Tensor,
    out: &Tensor,
    opts: &EmbedOptions,
) -> Result<()> {
    embed_with(rec, ids, table, out, opts, EmbedImpl::Auto)
}

/// [`embed`] with a chosen kernel.
pub fn embed_with(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Tensor,
    out: &Tensor,
    opts: &EmbedOptions,
    imp: EmbedImpl,
) -> Result<()> {
    let op = "embed";
    if ids.dtype() != DType::U32 || ids.shape().len() != 2 {
        return shape_err(
            op,
            format!(
                "ids {:?} {} must be u32 [B, T]",
                ids.shape(),
                ids.dtype().name()
            ),
        );
    }
    let (b, t) = (ids.shape()[0], ids.shape()[1]);
    if table.shape().len() != 2 || !matches!(table.dtype(), DType::F32 | DType::F16) {
        return shape_err(
            op,
            format!(
                "table {:?} {} must be f32 or f16 [V, D]",
                table.shape(),
                table.dtype().name()
            ),
        );
    }
    let (v, d) = (table.shape()[0], table.shape()[1]);
    if out.dtype() != DType::F32 || out.shape() != [b, t, d] {
        return shape_err(
            op,
            format!(
                "out {:?} {} must be f32 [{b}, {t}, {d}] for ids {:?} and table {:?}",
                out.shape(),
                out.dtype().name(),
                ids.shape(),
                table.shape()
            ),
        );
    }
    if let Some(p) = opts.positions {
        if p.dtype() != DType::F32 || p.shape().len() != 2 || p.shape()[1] != d {
            return shape_err(
                op,
                format!(
                    "positions {:?} {} must be f32 [P, {d}] for table {:?}",
                    p.shape(),
                    p.dtype().name(),
                    table.shape()
                ),
            );
        }
        if t + opts.position_offset > p.shape()[0] {
            return shape_err(
                op,
                format!(
                    "positions {:?} has no rows {}..{} for ids {:?} at position offset {}",
                    p.shape(),
                    opts.position_offset,
                    t + opts.position_offset,
                    ids.shape(),
                    opts.position_offset
                ),
            );
        }
    }
    if out.numel() > u32::MAX as usize
        || opts
            .table_row_start
            .checked_add(v)
            .is_none_or(|e| e > u32::MAX as usize)
    {
        return shape_err(
            op,
            format!(
                "out {:?} or table rows {}+{v} exceed u32 indexing",
                out.shape(),
                opts.table_row_start
            ),
        );
    }
    for (n, tt) in [("ids", ids), ("table", table)]
        .into_iter()
        .chain(opts.positions.map(|p| ("positions", p)))
    {
        if Arc::ptr_eq(&tt.buf, &out.buf) {
            return shape_err(
                op,
                format!(
                    "out {:?} must not share a buffer with {n} {:?}",
                    out.shape(),
                    tt.shape()
                ),
            );
        }
    }
    if out.numel() == 0 {
        return Ok(());
    }
    let vec4 = imp != EmbedImpl::Plain && d % 4 == 0;
    let entry = if vec4 { "embed_vec4" } else { "embed" };
    let key = KernelKey::new(Family::Embedding, entry)
        .u32("WG", WG)
        .flag("W_F16", table.dtype() == DType::F16)
        .flag("POSITIONS", opts.positions.is_some());
    let bindings = if opts.positions.is_some() {
        POS_BINDINGS
    } else {
        BINDINGS
    };
    let kernel = rec.gpu().kernel::<EmbedParams>(&key, bindings)?;
    let params = EmbedParams {
        n_tokens: (b * t) as u32,
        t_len: t as u32,
        d: d as u32,
        v: v as u32,
        row_start: opts.table_row_start as u32,
        pos_offset: opts.position_offset as u32,
        scale: opts.scale,
    };
    let invocations = if vec4 { out.numel() / 4 } else { out.numel() };
    let groups = grid(rec.gpu(), (invocations as u32).div_ceil(WG));
    match opts.positions {
        Some(p) => rec.dispatch(&kernel, &params, &[ids, table, p, out], groups),
        None => rec.dispatch(&kernel, &params, &[ids, table, out], groups),
    }?;
    // One table row (and position row) gathered per token, not the whole table.
    let rows = (b * t) as u64;
    let row_bytes = (d * table.dtype().size()) as u64;
    let pos_bytes = opts.positions.map_or(0, |_| (d * 4) as u64);
    rec.declare_work(crate::Work {
        bytes: ids.byte_len() + rows * (row_bytes + pos_bytes + (d * 4) as u64),
        flops: 0,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn every_variant_validates() {
        for entry in ["embed", "embed_vec4"] {
            for f16 in [false, true] {
                for pos in [false, true] {
                    let key = KernelKey::new(Family::Embedding, entry)
                        .u32("WG", WG)
                        .flag("W_F16", f16)
                        .flag("POSITIONS", pos);
                    validate::<EmbedParams>(&key, false);
                }
            }
        }
    }
}
