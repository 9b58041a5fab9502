//! Launcher for `shaders/position_bias.wgsl`: T5's relative position bias, expanded on the
//! GPU from a small per-head table into the bias tensor [`attention`](super::attention) reads.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `relative_position_bias`.
    pub struct PositionBiasParams {
        /// Elements written: heads · q_len · kv_len.
        pub n: u32,
        pub q_len: u32,
        pub kv_len: u32,
        /// Absolute position of the first query.
        pub q_offset: u32,
        /// M: relative positions are clamped to [-M, M]; the table has 2M + 1 columns.
        pub max_dist: u32,
    }
}

const WG: u32 = 256;
const BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];

fn key() -> KernelKey {
    KernelKey::new(Family::PositionBias, "relative_position_bias").u32("WG", WG)
}

/// `out[h, i, j] = table[h, clamp(j - (i + q_offset), -M, M) + M]` for h < H, i < q_len,
/// j < kv_len (M = `max_distance`).
///
/// - `table`: f32 `[H, 2M + 1]`; column `r + M` holds head h's bias for relative position
///   r = key − query, and positions beyond ±M use the end columns (T5's buckets stop changing
///   there; the model precomputes the table once at load).
/// - `q_offset`: absolute position of query 0 (decode step t: `q_len` 1, `q_offset` t,
///   `kv_len` t + 1); keys are at positions 0..kv_len.
/// - `out`: f32 with H · q_len · kv_len elements, laid out `[H, q_len, kv_len]`: the
///   `bias` of [`Attention`](super::attention::Attention) shared by the batch
///   (`[1, heads, q_len, kv_len]`). A different buffer than `table`.
pub fn relative_position_bias(
    rec: &mut Recorder,
    table: &Tensor,
    max_distance: usize,
    q_offset: usize,
    q_len: usize,
    kv_len: usize,
    out: &Tensor,
) -> Result<()> {
    let op = "relative_position_bias";
    if table.dtype() != DType::F32 || out.dtype() != DType::F32 {
        return shape_err(
            op,
            format!(
                "table {:?} ({}) and out {:?} ({}) must be f32",
                table.shape(),
                table.dtype().name(),
                out.shape(),
                out.dtype().name()
            ),
        );
    }
    let width = max_distance.checked_mul(2).and_then(|w| w.checked_add(1));
    let heads = table.dim(0);
    if table.shape().len() != 2 || Some(table.dim(1)) != width {
        return shape_err(
            op,
            format!(
                "table {:?} must be [heads, 2 * max_distance + 1] with max_distance {max_distance}",
                table.shape()
            ),
        );
    }
    let n = heads.checked_mul(q_len).and_then(|n| n.checked_mul(kv_len));
    if n != Some(out.numel()) {
        return shape_err(
            op,
            format!(
                "out {:?} must hold heads {heads} x q_len {q_len} x kv_len {kv_len} elements",
                out.shape()
            ),
        );
    }
    let n = out.numel();
    // Every index the kernel forms stays below 2^32: the element index (rounded up to whole
    // workgroups), the query positions and the table index.
    let max = (u32::MAX - WG) as usize;
    if n > max || table.numel() > max || q_offset.saturating_add(q_len) > max {
        return shape_err(
            op,
            format!(
                "table {:?}, q_offset {q_offset}, q_len {q_len}, kv_len {kv_len}, out {:?}: \
                 sizes or positions beyond 32-bit indexing",
                table.shape(),
                out.shape()
            ),
        );
    }
    if Arc::ptr_eq(&table.buf, &out.buf) {
        return shape_err(
            op,
            format!(
                "table {:?} and out {:?} must be different buffers",
                table.shape(),
                out.shape()
            ),
        );
    }
    if n == 0 {
        return Ok(());
    }
    let kernel = rec.gpu().kernel::<PositionBiasParams>(&key(), BINDINGS)?;
    let params = PositionBiasParams {
        n: n as u32,
        q_len: q_len as u32,
        kv_len: kv_len as u32,
        q_offset: q_offset as u32,
        max_dist: max_distance as u32,
    };
    let groups = grid(rec.gpu(), (n as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[table, out], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn every_variant_validates() {
        validate::<PositionBiasParams>(&key(), false);
    }
}
