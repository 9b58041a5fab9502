//! Launcher for `shaders/next_ids.wgsl`: after a greedy step's argmax, the next step's input
//! ids and each row's finished flag are written on the GPU, so that the step loop uploads no
//! ids and can record step t + 1 before step t's ids have come back.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `next_ids`.
    pub struct NextIdsParams {
        /// Rows (sequences) of the batch.
        pub rows: u32,
        /// EOS ids in the `eos` binding.
        pub n_eos: u32,
        /// The id a finished row is fed.
        pub pad: u32,
        /// The token every row took at this step, or `u32::MAX` (the rows' own `chosen`).
        pub forced: u32,
        /// 1 when this step reaches the maximum length: every row finishes.
        pub last: u32,
    }
}

const WG: u32 = 64;
const BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::ReadWrite),
    (4, Access::ReadWrite),
];

fn key() -> KernelKey {
    KernelKey::new(Family::NextIds, "next_ids").u32("WG", WG)
}

/// What one step decides for every row, besides the tokens the GPU chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextStep {
    /// The input id of a finished row.
    pub pad: u32,
    /// A token forced on every row at this step (the host knows it; `chosen` is not read).
    pub forced: Option<u32>,
    /// This step reaches the maximum length: every row finishes.
    pub last: bool,
}

/// For every row r of the batch: its token is `step.forced` or else `chosen[r]`; the row
/// finishes (`finished[r] = 1`) if it had, if the token is one of `eos`, or if `step.last`;
/// `ids[r]` becomes the token, or `step.pad` for a finished row. All u32; `chosen`,
/// `finished` and `ids` `[rows]`, `eos` the EOS ids (`None`: none). `finished` holds 0 or 1
/// and must start at 0 for a new batch.
pub fn next_ids(
    rec: &mut Recorder,
    chosen: &Tensor,
    eos: Option<&Tensor>,
    finished: &Tensor,
    ids: &Tensor,
    step: NextStep,
) -> Result<()> {
    let op = "next_ids";
    let rows = chosen.numel();
    let named = [("chosen", chosen), ("finished", finished), ("ids", ids)];
    for (name, t) in named.iter().copied().chain(eos.map(|e| ("eos", e))) {
        if t.dtype() != DType::U32 {
            return shape_err(
                op,
                format!("{name} {:?} is {}, not u32", t.shape(), t.dtype().name()),
            );
        }
    }
    for (name, t) in &named[1..] {
        if t.numel() != rows {
            return shape_err(
                op,
                format!(
                    "{name} {:?} must hold one value per row of chosen {:?}",
                    t.shape(),
                    chosen.shape()
                ),
            );
        }
    }
    // A written tensor shares its buffer with no other binding.
    let mut bound = vec![("chosen", chosen)];
    bound.extend(eos.map(|e| ("eos", e)));
    for (name, w) in [("finished", finished), ("ids", ids)] {
        if let Some((other, t)) = bound.iter().find(|(_, t)| Arc::ptr_eq(&t.buf, &w.buf)) {
            return shape_err(
                op,
                format!(
                    "{name} {:?} must not share a buffer with {other} {:?}",
                    w.shape(),
                    t.shape()
                ),
            );
        }
        bound.push((name, w));
    }
    if step.forced == Some(u32::MAX) {
        return shape_err(op, "forced token u32::MAX is reserved (it means none)");
    }
    if rows == 0 {
        return Ok(());
    }
    let params = NextIdsParams {
        rows: rows as u32,
        n_eos: eos.map_or(0, |e| e.numel() as u32),
        pad: step.pad,
        forced: step.forced.unwrap_or(u32::MAX),
        last: step.last as u32,
    };
    let kernel = rec.gpu().kernel::<NextIdsParams>(&key(), BINDINGS)?;
    let groups = grid(rec.gpu(), (rows as u32).div_ceil(WG));
    // Without EOS ids the eos binding is chosen again (read-only twice is allowed).
    let eos = eos.unwrap_or(chosen);
    rec.dispatch(&kernel, &params, &[chosen, eos, finished, ids], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn the_kernel_validates() {
        validate::<NextIdsParams>(&key(), false);
    }
}
