//! Launcher for `shaders/token_mask.wgsl`: each row of logits keeps only the tokens its
//! mask allows (constrained decoding). The masks of every state of a constraint are uploaded
//! once; a step then only says which state each row is in.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `token_mask`.
    pub struct TokenMaskParams {
        /// Rows of logits.
        pub rows: u32,
        /// Row width (vocabulary size) V.
        pub v: u32,
        /// u32 words per mask, ceil(V / 32).
        pub words: u32,
        /// Mask rows; a row state at or above this leaves its row untouched.
        pub states: u32,
        /// -inf, passed in so that no shader compiler folds it away.
        pub neg_inf: f32,
    }
}

const WG: u32 = 64;
const BINDINGS: Bindings = &[(1, Access::ReadWrite), (2, Access::Read), (3, Access::Read)];

/// u32 words of one mask over a vocabulary of `v` tokens.
pub fn mask_words(v: usize) -> usize {
    v.div_ceil(32)
}

/// A row state that leaves its row of logits untouched.
pub const UNCONSTRAINED: u32 = u32::MAX;

fn key() -> KernelKey {
    KernelKey::new(Family::TokenMask, "token_mask").u32("WG", WG)
}

/// Sets `logits[r, i] = -inf` (f32 `[rows, V]`, in place) wherever bit `i % 32` of word
/// `i / 32` of mask row `row_state[r]` is clear. `masks`: u32 `[states, ceil(V / 32)]`;
/// `row_state`: u32 `[rows]`, a value ≥ `states` (e.g. [`UNCONSTRAINED`]) leaves row r as it
/// is. Allowed entries are left bit for bit as they were.
pub fn token_mask(
    rec: &mut Recorder,
    logits: &Tensor,
    masks: &Tensor,
    row_state: &Tensor,
) -> Result<()> {
    let op = "token_mask";
    if logits.dtype() != DType::F32 || logits.shape().is_empty() || logits.dim(-1) == 0 {
        return shape_err(
            op,
            format!(
                "logits {:?} {} must be f32 with non-empty rows",
                logits.shape(),
                logits.dtype().name()
            ),
        );
    }
    let v = logits.dim(-1);
    let rows = logits.numel() / v;
    let words = mask_words(v);
    if masks.dtype() != DType::U32 || masks.shape().len() != 2 || masks.dim(1) != words {
        return shape_err(
            op,
            format!(
                "masks {:?} {} must be u32 [states, {words}]: one bit per token of logits {:?}",
                masks.shape(),
                masks.dtype().name(),
                logits.shape()
            ),
        );
    }
    if row_state.dtype() != DType::U32 || row_state.numel() != rows {
        return shape_err(
            op,
            format!(
                "row_state {:?} {} must be u32 [{rows}]: one state per row of logits {:?}",
                row_state.shape(),
                row_state.dtype().name(),
                logits.shape()
            ),
        );
    }
    // The kernel's flat (row, word) index and its element offsets stay below 2^32.
    if logits.numel() > (u32::MAX - 64) as usize || masks.numel() > u32::MAX as usize {
        return shape_err(
            op,
            format!(
                "logits {:?} or masks {:?} have too many elements for u32 indices",
                logits.shape(),
                masks.shape()
            ),
        );
    }
    for (name, t) in [("masks", masks), ("row_state", row_state)] {
        if Arc::ptr_eq(&logits.buf, &t.buf) {
            return shape_err(
                op,
                format!(
                    "logits {:?} must not share a buffer with {name} {:?}",
                    logits.shape(),
                    t.shape()
                ),
            );
        }
    }
    if rows == 0 || masks.dim(0) == 0 {
        return Ok(());
    }
    let kernel = rec.gpu().kernel::<TokenMaskParams>(&key(), BINDINGS)?;
    let params = TokenMaskParams {
        rows: rows as u32,
        v: v as u32,
        words: words as u32,
        states: masks.dim(0) as u32,
        neg_inf: f32::NEG_INFINITY,
    };
    let groups = grid(rec.gpu(), ((rows * words) as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[logits, masks, row_state], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn the_kernel_validates() {
        validate::<TokenMaskParams>(&key(), false);
    }
}
