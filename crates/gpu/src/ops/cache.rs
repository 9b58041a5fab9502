//! Launcher for `shaders/cache.wgsl`: KV-cache writes and beam bookkeeping.
//!
//! Both kernels run one invocation per element written; every region is checked against
//! its tensor before launch, so the kernels never index outside their bindings.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `copy_rows` and `reorder_rows_table`.
    pub struct CacheParams {
        /// copy_rows: rows copied; reorder: batch.
        pub rows: u32,
        /// copy_rows: columns copied; reorder: entries written per row.
        pub cols: u32,
        pub src_off: u32,
        pub src_stride: u32,
        pub dst_off: u32,
        /// copy_rows: destination row stride; reorder: the table's row stride.
        pub dst_stride: u32,
        /// reorder: the positions already in the table.
        pub len: u32,
    }
}

const WG: u32 = 256;
const COPY_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];
const REORDER_BINDINGS: Bindings = &[(3, Access::Read), (4, Access::Read), (5, Access::ReadWrite)];

/// A strided 2-D region: row r, column c at `offset + r * row_stride + c` (elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    pub offset: usize,
    pub row_stride: usize,
}

/// One past the last element a `rows × cols` region at `at` touches (0 when empty), or
/// `None` on overflow.
fn region_end(at: Rows, rows: usize, cols: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(at.row_stride)?
        .checked_add(at.offset)?
        .checked_add(cols)
}

/// `dst[dst.offset + r*dst.row_stride + c] = src[src.offset + r*src.row_stride + c]` for
/// r < rows, c < cols; f32 tensors. Appends new K/V rows (from a fused projection) to a
/// `[B, Tmax, D]` cache at one position without a host round trip. `src` and `dst` must be
/// different buffers; the regions must lie inside their tensors.
pub fn copy_rows(
    rec: &mut Recorder,
    src: &Tensor,
    src_at: Rows,
    dst: &Tensor,
    dst_at: Rows,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let op = "copy_rows";
    if src.dtype() != DType::F32 || dst.dtype() != DType::F32 {
        return shape_err(
            op,
            format!(
                "src {:?} and dst {:?} must be f32",
                src.shape(),
                dst.shape()
            ),
        );
    }
    for (name, t, at) in [("src", src, src_at), ("dst", dst, dst_at)] {
        match region_end(at, rows, cols) {
            Some(end) if end <= t.numel() && end <= u32::MAX as usize => {}
            _ => {
                return shape_err(
                    op,
                    format!(
                        "{rows}x{cols} region at offset {} row stride {} is outside {name} {:?}",
                        at.offset,
                        at.row_stride,
                        t.shape()
                    ),
                );
            }
        }
    }
    if Arc::ptr_eq(&src.buf, &dst.buf) {
        return shape_err(
            op,
            format!(
                "src {:?} and dst {:?} must be different buffers",
                src.shape(),
                dst.shape()
            ),
        );
    }
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let key = KernelKey::new(Family::Cache, "copy_rows").u32("WG", WG);
    let kernel = rec.gpu().kernel::<CacheParams>(&key, COPY_BINDINGS)?;
    let params = CacheParams {
        rows: rows as u32,
        cols: cols as u32,
        src_off: src_at.offset as u32,
        src_stride: src_at.row_stride as u32,
        dst_off: dst_at.offset as u32,
        dst_stride: dst_at.row_stride as u32,
        len: 0,
    };
    let groups = grid(rec.gpu(), ((rows * cols) as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[src, dst], groups)
}

/// Beam reordering of the cache indirection table (u32 `[batch, stride]`, see
/// `Attention::kv_rows`): `new[b, t] = old[parents[b], t]` for t < len, and `new[b, len] = b`
/// (the slot the next step writes) when len < stride. `parents`: u32 `[batch]`; a parent
/// outside the batch (a caller bug the launcher cannot see) copies row b itself.
/// Requires len ≤ stride and `new` distinct from `old`.
pub fn reorder_rows_table(
    rec: &mut Recorder,
    parents: &Tensor,
    old: &Tensor,
    new: &Tensor,
    len: usize,
) -> Result<()> {
    let op = "reorder_rows_table";
    if [parents, old, new].iter().any(|t| t.dtype() != DType::U32) || old.shape().len() != 2 {
        return shape_err(
            op,
            format!(
                "parents {:?}, old {:?} and new {:?} must be u32, old [batch, stride]",
                parents.shape(),
                old.shape(),
                new.shape()
            ),
        );
    }
    let (batch, stride) = (old.shape()[0], old.shape()[1]);
    if new.shape() != old.shape() || parents.numel() != batch {
        return shape_err(
            op,
            format!(
                "parents {:?} must be [{batch}] and new {:?} the shape of old {:?}",
                parents.shape(),
                new.shape(),
                old.shape()
            ),
        );
    }
    if len > stride || old.numel() > u32::MAX as usize {
        return shape_err(
            op,
            format!(
                "len {len} must be at most the stride of old {:?}",
                old.shape()
            ),
        );
    }
    for (n, t) in [("old", old), ("parents", parents)] {
        if Arc::ptr_eq(&t.buf, &new.buf) {
            return shape_err(
                op,
                format!(
                    "new {:?} must not share a buffer with {n} {:?}",
                    new.shape(),
                    t.shape()
                ),
            );
        }
    }
    let cols = if len < stride { len + 1 } else { len };
    if batch == 0 || cols == 0 {
        return Ok(());
    }
    let key = KernelKey::new(Family::Cache, "reorder_rows_table").u32("WG", WG);
    let kernel = rec.gpu().kernel::<CacheParams>(&key, REORDER_BINDINGS)?;
    let params = CacheParams {
        rows: batch as u32,
        cols: cols as u32,
        src_off: 0,
        src_stride: stride as u32,
        dst_off: 0,
        dst_stride: stride as u32,
        len: len as u32,
    };
    let groups = grid(rec.gpu(), ((batch * cols) as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[parents, old, new], groups)
}
