//! Launcher for `shaders/sampling.wgsl`: per-row argmax, log-softmax, top-k and logit edits,
//! so that a decode step reads back token ids rather than logits.
//!
//! Every row kernel runs one workgroup per row and reduces (value, index) pairs in the
//! order "larger value, then lower index" (torch.argmax / torch.topk on CPU). Reductions use
//! subgroups when the adapter has them, a shared-memory tree otherwise; the `Plain` variants
//! never use subgroups and stay as the reference kernels.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Gpu, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of every kernel in `sampling.wgsl`.
    pub struct SamplingParams {
        /// Rows of x.
        pub rows: u32,
        /// Row width (vocabulary size) V.
        pub v: u32,
        /// Top-k: values kept per row.
        pub k: u32,
        /// edit_logits: number of triples.
        pub n_edits: u32,
        /// edit_logits: the repetition penalty.
        pub penalty: f32,
        /// -inf, passed in so that no shader compiler folds it away.
        pub neg_inf: f32,
    }
}

/// Which argmax kernel runs. `Auto` picks `Fast`; the others force one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ArgmaxImpl {
    #[default]
    Auto,
    /// Strided scan and a shared-memory tree: the reference kernel.
    Plain,
    /// Four strided elements per iteration in independent chains, subgroup reductions where
    /// the adapter has them.
    Fast,
}

/// Which top-k kernel runs. `Auto` picks [`TopkImpl::Threshold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TopkImpl {
    #[default]
    Auto,
    /// k scans of the row, each finding the next pair: any k, the reference kernel.
    Plain,
    /// A scan for each invocation's maximum and k reductions for a threshold (the k-th
    /// largest of those maxima, below which no answer lies); a second scan gathers the
    /// entries ≥ threshold in workgroup memory; k reductions over those pick the answer.
    /// Reads the row twice whatever k is; with massive ties at the threshold (more than
    /// the candidate capacity) the k rounds scan the row instead, as `Plain` does.
    Threshold,
}

const ARGMAX_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];
const LOG_SOFTMAX_BINDINGS: Bindings = &[(1, Access::Read), (3, Access::ReadWrite)];
const LOG_SOFTMAX_INPLACE_BINDINGS: Bindings = &[(4, Access::ReadWrite)];
const TOPK_BINDINGS: Bindings = &[
    (1, Access::Read),
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
];
const TOPK_ADDEND_BINDINGS: Bindings = &[
    (1, Access::Read),
    (5, Access::Read),
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
];
const EDIT_BINDINGS: Bindings = &[(4, Access::ReadWrite), (8, Access::Read)];
const GATHER_BINDINGS: Bindings = &[
    (1, Access::Read),
    (9, Access::Read),
    (10, Access::ReadWrite),
];

/// The specialisation of one sampling kernel; every key carries every constant.
struct Variant {
    entry: &'static str,
    subgroups: bool,
    inplace: bool,
    addend: bool,
    unroll: bool,
    cap: u32,
}

impl Variant {
    fn new(entry: &'static str, subgroups: bool) -> Self {
        Variant {
            entry,
            subgroups,
            inplace: false,
            addend: false,
            unroll: false,
            cap: 1,
        }
    }

    fn key(&self, gpu: &Gpu) -> KernelKey {
        KernelKey::new(Family::Sampling, self.entry)
            .u32("WG", wg(gpu))
            .u32("CAP", self.cap)
            .flag("SUBGROUPS", self.subgroups && gpu.caps().subgroups)
            .flag("INPLACE", self.inplace)
            .flag("HAS_ADDEND", self.addend)
            .flag("UNROLL", self.unroll)
    }
}

/// Invocations per workgroup: 256, or the adapter's limit if lower (a power of two).
fn wg(gpu: &Gpu) -> u32 {
    let n = gpu
        .limits()
        .max_compute_invocations_per_workgroup
        .clamp(1, 256);
    1 << (31 - n.leading_zeros())
}

/// Candidates `topk_threshold` keeps in workgroup memory: 4 per invocation, less if the
/// adapter's workgroup storage is small (a power of two, at least 1).
fn topk_capacity(gpu: &Gpu) -> u32 {
    let wg = wg(gpu);
    // Two WG-wide reduction arrays, two words of counters, 8 bytes per candidate.
    let free = gpu
        .limits()
        .max_compute_workgroup_storage_size
        .saturating_sub(8 * wg + 16)
        / 8;
    let cap = free.clamp(1, 4 * wg);
    1 << (31 - cap.leading_zeros())
}

fn params(rows: usize, v: usize) -> SamplingParams {
    SamplingParams {
        rows: rows as u32,
        v: v as u32,
        k: 0,
        n_edits: 0,
        penalty: 1.0,
        neg_inf: f32::NEG_INFINITY,
    }
}

/// Checks that x is f32 with non-empty rows that u32 indices can address; returns (rows, V).
fn check_rows(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    if x.dtype() != DType::F32 {
        return shape_err(
            op,
            format!("x {:?} must be f32, not {}", x.shape(), x.dtype().name()),
        );
    }
    let v = x.dim(-1);
    if x.shape().is_empty() || v == 0 {
        return shape_err(op, format!("x {:?} needs non-empty rows", x.shape()));
    }
    if x.numel() > u32::MAX as usize {
        return shape_err(op, format!("x {:?} has more than 2^32 elements", x.shape()));
    }
    Ok((x.numel() / v, v))
}

fn check_out(
    op: &'static str,
    what: &str,
    t: &Tensor,
    dtype: DType,
    numel: usize,
    x: &Tensor,
) -> Result<()> {
    if t.dtype() != dtype || t.numel() != numel {
        return shape_err(
            op,
            format!(
                "{what} {:?} {} must be {} with {numel} elements for x {:?}",
                t.shape(),
                t.dtype().name(),
                dtype.name(),
                x.shape()
            ),
        );
    }
    Ok(())
}

/// A dispatch may not bind one buffer both writable and under another binding.
fn check_distinct(
    op: &'static str,
    written: &[(&str, &Tensor)],
    all: &[(&str, &Tensor)],
) -> Result<()> {
    for (wn, w) in written {
        for (n, t) in all {
            if wn != n && Arc::ptr_eq(&w.buf, &t.buf) {
                return shape_err(
                    op,
                    format!(
                        "{wn} {:?} must not share a buffer with {n} {:?}",
                        w.shape(),
                        t.shape()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// `ids[r] = argmax_j x[r, j]` (the first index among equal maxima). x f32 `[rows, V]`,
/// ids u32 `[rows]`.
pub fn argmax(rec: &mut Recorder, x: &Tensor, ids: &Tensor) -> Result<()> {
    argmax_with(rec, x, ids, ArgmaxImpl::Auto)
}

/// [`argmax`] with a chosen kernel.
pub fn argmax_with(rec: &mut Recorder, x: &Tensor, ids: &Tensor, imp: ArgmaxImpl) -> Result<()> {
    let (rows, v) = check_rows("argmax", x)?;
    check_out("argmax", "ids", ids, DType::U32, rows, x)?;
    check_distinct("argmax", &[("ids", ids)], &[("x", x), ("ids", ids)])?;
    let fast = imp != ArgmaxImpl::Plain;
    let mut variant = Variant::new("argmax", fast);
    variant.unroll = fast;
    let key = variant.key(rec.gpu());
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, ARGMAX_BINDINGS)?;
    let groups = grid(rec.gpu(), rows as u32);
    rec.dispatch(&kernel, &params(rows, v), &[x, ids], groups)
}

/// `out[r, j] = x[r, j] - logsumexp_j x[r, :]`; `out` may be `x`.
pub fn log_softmax(rec: &mut Recorder, x: &Tensor, out: &Tensor) -> Result<()> {
    let (rows, v) = check_rows("log_softmax", x)?;
    if out.dtype() != DType::F32 || out.shape() != x.shape() {
        return shape_err(
            "log_softmax",
            format!(
                "out {:?} {} must be f32 of the shape of x {:?}",
                out.shape(),
                out.dtype().name(),
                x.shape()
            ),
        );
    }
    let inplace = Arc::ptr_eq(&x.buf, &out.buf);
    if inplace && x.offset != out.offset {
        return shape_err(
            "log_softmax",
            format!(
                "out {:?} overlaps x {:?} in one buffer at another offset",
                out.shape(),
                x.shape()
            ),
        );
    }
    let mut variant = Variant::new("log_softmax", true);
    variant.inplace = inplace;
    let key = variant.key(rec.gpu());
    let bindings = if inplace {
        LOG_SOFTMAX_INPLACE_BINDINGS
    } else {
        LOG_SOFTMAX_BINDINGS
    };
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, bindings)?;
    let groups = grid(rec.gpu(), rows as u32);
    let tensors: &[&Tensor] = if inplace { &[x] } else { &[x, out] };
    rec.dispatch(&kernel, &params(rows, v), tensors, groups)
}

/// The k largest values of each row of `x + addend[r]`, sorted descending (ties: lower index
/// first), into values f32 `[rows, k]` and ids u32 `[rows, k]`. `addend`: f32 `[rows]`
/// (beam scores), optional. Requires k ≤ V.
pub fn topk(
    rec: &mut Recorder,
    x: &Tensor,
    addend: Option<&Tensor>,
    k: usize,
    values: &Tensor,
    ids: &Tensor,
) -> Result<()> {
    topk_with(rec, x, addend, k, values, ids, TopkImpl::Auto)
}

/// [`topk`] with a chosen kernel.
pub fn topk_with(
    rec: &mut Recorder,
    x: &Tensor,
    addend: Option<&Tensor>,
    k: usize,
    values: &Tensor,
    ids: &Tensor,
    imp: TopkImpl,
) -> Result<()> {
    let (rows, v) = check_rows("topk", x)?;
    if k == 0 || k > v {
        return shape_err(
            "topk",
            format!("k = {k} must be in 1..={v} for x {:?}", x.shape()),
        );
    }
    check_out("topk", "values", values, DType::F32, rows * k, x)?;
    check_out("topk", "ids", ids, DType::U32, rows * k, x)?;
    if let Some(a) = addend {
        check_out("topk", "addend", a, DType::F32, rows, x)?;
    }
    let mut all = vec![("x", x), ("values", values), ("ids", ids)];
    all.extend(addend.map(|a| ("addend", a)));
    check_distinct("topk", &[("values", values), ("ids", ids)], &all)?;

    let mut variant = match imp {
        TopkImpl::Auto | TopkImpl::Threshold => {
            let mut v = Variant::new("topk_threshold", true);
            v.cap = topk_capacity(rec.gpu());
            v.unroll = true;
            v
        }
        TopkImpl::Plain => Variant::new("topk_plain", false),
    };
    variant.addend = addend.is_some();
    let key = variant.key(rec.gpu());
    let bindings = if addend.is_some() {
        TOPK_ADDEND_BINDINGS
    } else {
        TOPK_BINDINGS
    };
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, bindings)?;
    let mut p = params(rows, v);
    p.k = k as u32;
    let groups = grid(rec.gpu(), rows as u32);
    match addend {
        Some(a) => rec.dispatch(&kernel, &p, &[x, a, values, ids], groups),
        None => rec.dispatch(&kernel, &p, &[x, values, ids], groups),
    }
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
/// Triples whose row or token fall outside x, or whose kind is unknown, are skipped.
pub fn edit_logits(
    rec: &mut Recorder,
    x: &Tensor,
    edits: &Tensor,
    n: usize,
    penalty: f32,
) -> Result<()> {
    let (rows, v) = check_rows("edit_logits", x)?;
    if edits.dtype() != DType::U32 || edits.numel() < 3 * n {
        return shape_err(
            "edit_logits",
            format!(
                "edits {:?} {} must be u32 holding at least {n} triples ({} values)",
                edits.shape(),
                edits.dtype().name(),
                3 * n
            ),
        );
    }
    if !(penalty.is_finite() && penalty > 0.0) {
        return shape_err(
            "edit_logits",
            format!("penalty {penalty} must be finite and > 0"),
        );
    }
    if n > (u32::MAX / 3) as usize {
        return shape_err(
            "edit_logits",
            format!("{n} edits are too many for one launch"),
        );
    }
    check_distinct("edit_logits", &[("x", x)], &[("x", x), ("edits", edits)])?;
    let key = Variant::new("edit_logits", false).key(rec.gpu());
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, EDIT_BINDINGS)?;
    let mut p = params(rows, v);
    p.n_edits = n as u32;
    p.penalty = penalty;
    let groups = grid(rec.gpu(), (n as u32).div_ceil(wg(rec.gpu())));
    rec.dispatch(&kernel, &p, &[x, edits], groups)
}

/// Teacher-forced scoring: `out[r] = x[r, targets[r]] - logsumexp_j x[r, :]`, without
/// materialising the log-softmax. x f32 `[rows, V]`, targets u32 `[rows]`, out f32 `[rows]`.
/// A target ≥ V (such as PyTorch's ignore_index -100 cast to u32) gives 0.
pub fn log_softmax_gather(
    rec: &mut Recorder,
    x: &Tensor,
    targets: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let (rows, v) = check_rows("log_softmax_gather", x)?;
    check_out(
        "log_softmax_gather",
        "targets",
        targets,
        DType::U32,
        rows,
        x,
    )?;
    check_out("log_softmax_gather", "out", out, DType::F32, rows, x)?;
    check_distinct(
        "log_softmax_gather",
        &[("out", out)],
        &[("x", x), ("targets", targets), ("out", out)],
    )?;
    let key = Variant::new("log_softmax_gather", true).key(rec.gpu());
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, GATHER_BINDINGS)?;
    let groups = grid(rec.gpu(), rows as u32);
    rec.dispatch(&kernel, &params(rows, v), &[x, targets, out], groups)
}
