//! Launcher for `shaders/embedding.wgsl`: token embedding gather plus positions.
//!
//! CONTRACT (implementation pending): signatures below are fixed.

use crate::error::Result;
use crate::{Recorder, Tensor};

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
/// by the caller (the kernel skips ids outside the table chunk).
pub fn embed(rec: &mut Recorder, ids: &Tensor, table: &Tensor, out: &Tensor, opts: &EmbedOptions) -> Result<()> {
    let _ = (rec, ids, table, out, opts);
    todo!("embed: pending")
}
