//! Launcher for `shaders/logit_rules.wgsl`: per-row token-range bans and Whisper's timestamp
//! rule, applied in place so that a decode step (Whisper's timestamp logits processor,
//! language detection) edits its logits on the GPU without reading a row back.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::ops::sampling::wg;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

/// u32 words per row of the rules tensor.
pub const RULE_WORDS: usize = 16;
/// Ranges per row.
pub const RULE_RANGES: usize = 7;
/// The word of a rules row that turns the timestamp rule on (non-zero).
pub const RULE_FLAG: usize = 2 * RULE_RANGES;

crate::wgsl_params! {
    /// Parameters of `logit_rules`.
    pub struct LogitRulesParams {
        /// Rows of logits.
        pub rows: u32,
        /// Row width (vocabulary size) V.
        pub v: u32,
        /// First timestamp token id.
        pub timestamp_begin: u32,
        /// -inf, passed in so that no shader compiler folds it away.
        pub neg_inf: f32,
    }
}

const BINDINGS: Bindings = &[(1, Access::ReadWrite), (2, Access::Read)];

fn key(wg: u32) -> KernelKey {
    // No subgroups: the shared-memory reductions run everywhere (GL too), and the kernel
    // reads each row only once or twice, so they are not what it waits on.
    KernelKey::new(Family::LogitRules, "logit_rules")
        .u32("WG", wg)
        .flag("SUBGROUPS", false)
}

/// Applies each row's rules in place to `logits` f32 `[rows, V]` (or log-probs).
///
/// `rules`: u32 `[rows, RULE_WORDS]`, exactly one row per row of logits. Per row, words
/// `0..14` are [`RULE_RANGES`] pairs (lo, hi): `logits[r, lo..min(hi, V)] = -inf` (empty when
/// lo ≥ hi; pairs may overlap; (0, 0) is a no-op). Word 14 ([`RULE_FLAG`]) turns on the
/// timestamp rule; word 15 is reserved (0).
///
/// After a row's bans, if its flag is non-zero and `timestamp_begin < V`: with
/// m = max(logits[r, ..timestamp_begin]) (-inf when timestamp_begin is 0) and
/// s = logsumexp(logits[r, timestamp_begin..]) (-inf when all are -inf), if s > m the text
/// tokens `logits[r, ..timestamp_begin]` become -inf: the timestamps together are more
/// likely than any single text token (transformers' WhisperTimeStampLogitsProcessor).
/// Entries the rules do not ban are left bit for bit as they were.
pub fn logit_rules(
    rec: &mut Recorder,
    logits: &Tensor,
    rules: &Tensor,
    timestamp_begin: u32,
) -> Result<()> {
    let op = "logit_rules";
    if logits.dtype() != DType::F32 {
        return shape_err(
            op,
            format!(
                "logits {:?} must be f32, not {}",
                logits.shape(),
                logits.dtype().name()
            ),
        );
    }
    let v = logits.dim(-1);
    if logits.shape().is_empty() || v == 0 {
        return shape_err(
            op,
            format!("logits {:?} needs non-empty rows", logits.shape()),
        );
    }
    // Indices below 2^32 - 2 WG keep the kernel's strided loops from wrapping.
    if logits.numel() > (u32::MAX - 1024) as usize {
        return shape_err(
            op,
            format!(
                "logits {:?} has too many elements for u32 indices",
                logits.shape()
            ),
        );
    }
    let rows = logits.numel() / v;
    if rules.dtype() != DType::U32
        || rules.shape().len() != 2
        || rules.dim(0) != rows
        || rules.dim(1) != RULE_WORDS
    {
        return shape_err(
            op,
            format!(
                "rules {:?} {} must be u32 [{rows}, {RULE_WORDS}]: one row of {RULE_WORDS} words \
                 per row of logits {:?}",
                rules.shape(),
                rules.dtype().name(),
                logits.shape()
            ),
        );
    }
    if Arc::ptr_eq(&logits.buf, &rules.buf) {
        return shape_err(
            op,
            format!(
                "logits {:?} must not share a buffer with rules {:?}",
                logits.shape(),
                rules.shape()
            ),
        );
    }
    if rows == 0 {
        return Ok(());
    }
    let wg = wg(rec.gpu());
    let kernel = rec.gpu().kernel::<LogitRulesParams>(&key(wg), BINDINGS)?;
    let params = LogitRulesParams {
        rows: rows as u32,
        v: v as u32,
        timestamp_begin,
        neg_inf: f32::NEG_INFINITY,
    };
    let groups = grid(rec.gpu(), rows as u32);
    rec.dispatch(&kernel, &params, &[logits, rules], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn every_variant_validates_without_subgroups() {
        for wg in [1, 8, 64, 256] {
            validate::<LogitRulesParams>(&key(wg), false);
        }
    }
}
