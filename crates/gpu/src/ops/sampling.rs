//! Launcher for `shaders/sampling.wgsl`: per-row argmax, log-softmax, top-k and logit edits,
//! so that a decode step reads back token ids rather than logits.
//!
//! CONTRACT (implementation pending): signatures below are fixed.

use crate::error::Result;
use crate::{Recorder, Tensor};

/// `ids[r] = argmax_j x[r, j]` (the first index among equal maxima). x f32 `[rows, V]`,
/// ids u32 `[rows]`.
pub fn argmax(rec: &mut Recorder, x: &Tensor, ids: &Tensor) -> Result<()> {
    let _ = (rec, x, ids);
    todo!("argmax: pending")
}

/// `out[r, j] = x[r, j] - logsumexp_j x[r, :]`; `out` may be `x`.
pub fn log_softmax(rec: &mut Recorder, x: &Tensor, out: &Tensor) -> Result<()> {
    let _ = (rec, x, out);
    todo!("log_softmax: pending")
}

/// The k largest values of each row of `x + addend[r]`, sorted descending (ties: lower index
/// first), into values f32 `[rows, k]` and ids u32 `[rows, k]`. `addend`: f32 `[rows]`
/// (beam scores), optional. Requires k ≤ V.
pub fn topk(rec: &mut Recorder, x: &Tensor, addend: Option<&Tensor>, k: usize, values: &Tensor, ids: &Tensor) -> Result<()> {
    let _ = (rec, x, addend, k, values, ids);
    todo!("topk: pending")
}

/// What [`edit_logits`] does to one (row, token) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum LogitEdit {
    /// Set to -inf (banned tokens: min_length EOS, bad words, repeated n-grams).
    Ban = 0,
    /// Hugging Face's repetition penalty: x < 0 ? x * penalty : x / penalty.
    Penalize = 1,
}

/// Applies edits in place to x f32 `[rows, V]`. `edits`: u32 `[n, 3]` triples
/// (row, token, LogitEdit as u32), each (row, token) at most once; `n` the number of triples.
pub fn edit_logits(rec: &mut Recorder, x: &Tensor, edits: &Tensor, n: usize, penalty: f32) -> Result<()> {
    let _ = (rec, x, edits, n, penalty);
    todo!("edit_logits: pending")
}

/// Teacher-forced scoring: `out[r] = x[r, targets[r]] - logsumexp_j x[r, :]`, without
/// materialising the log-softmax. x f32 `[rows, V]`, targets u32 `[rows]`, out f32 `[rows]`.
pub fn log_softmax_gather(rec: &mut Recorder, x: &Tensor, targets: &Tensor, out: &Tensor) -> Result<()> {
    let _ = (rec, x, targets, out);
    todo!("log_softmax_gather: pending")
}
