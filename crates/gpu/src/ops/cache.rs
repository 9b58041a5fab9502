//! Launcher for `shaders/cache.wgsl`: KV-cache writes and beam bookkeeping.
//!
//! CONTRACT (implementation pending): signatures below are fixed.

use crate::error::Result;
use crate::{Recorder, Tensor};

/// A strided 2-D region: row r, column c at `offset + r * row_stride + c` (elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    pub offset: usize,
    pub row_stride: usize,
}

/// `dst[dst.offset + r*dst.row_stride + c] = src[src.offset + r*src.row_stride + c]` for
/// r < rows, c < cols; f32 tensors. Appends new K/V rows (from a fused projection) to a
/// `[B, Tmax, D]` cache at one position without a host round trip.
pub fn copy_rows(rec: &mut Recorder, src: &Tensor, src_at: Rows, dst: &Tensor, dst_at: Rows, rows: usize, cols: usize) -> Result<()> {
    let _ = (rec, src, src_at, dst, dst_at, rows, cols);
    todo!("copy_rows: pending")
}

/// Beam reordering of the cache indirection table (u32 `[batch, stride]`, see
/// `Attention::kv_rows`): `new[b, t] = old[parents[b], t]` for t < len, and `new[b, len] = b`
/// (the slot the next step writes). `parents`: u32 `[batch]`.
pub fn reorder_rows_table(rec: &mut Recorder, parents: &Tensor, old: &Tensor, new: &Tensor, len: usize) -> Result<()> {
    let _ = (rec, parents, old, new, len);
    todo!("reorder_rows_table: pending")
}
