//! Launcher for `shaders/sampling.wgsl`: per-row argmax, log-softmax, top-k and logit edits,
//! so that a decode step reads back token ids rather than logits.
//!
//! Every row kernel runs one workgroup per row and reduces (value, index) pairs in the
//! order "larger value, then lower index" (torch.argmax / torch.topk on CPU). Reductions use
//! subgroups when the adapter has them, a shared-memory tree otherwise; the `Plain` variants
//! never use subgroups and stay as the reference kernels. The exception is
//! [`TopkImpl::Lists`], Auto's top-k for k ≤ 32: invocations keep sorted lists in registers
//! over chunks of a row, then merge them, with no workgroup memory and no barriers.

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
        /// topk_scan: chunks (lists) per row; topk_merge: input lists per row.
        pub lists: u32,
        /// topk_merge: input lists merged by one invocation.
        pub group: u32,
        /// topk_merge: output lists per row.
        pub out_lists: u32,
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

/// Which top-k kernel runs. `Auto` picks [`TopkImpl::Lists`] for k ≤ [`LISTS_MAX_K`],
/// [`TopkImpl::Threshold`] above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TopkImpl {
    #[default]
    Auto,
    /// Barrier-free, in two or more dispatches: each invocation scans a strided chunk of a
    /// row keeping a sorted list of k pairs in registers, then invocations merge a row's
    /// lists (fan-in up to [`LISTS_MAX_GROUP`] per pass) until one is left. k ≤ [`LISTS_MAX_K`].
    Lists,
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
const TOPK_X4_BINDINGS: Bindings = &[
    (1, Access::Read),
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
    (13, Access::Read),
];
const TOPK_X4_ADDEND_BINDINGS: Bindings = &[
    (1, Access::Read),
    (5, Access::Read),
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
    (13, Access::Read),
];
const TOPK_MERGE_BINDINGS: Bindings = &[
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
    (11, Access::Read),
    (12, Access::Read),
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
    /// topk_scan / topk_merge: list length k (0 for the other kernels).
    k: u32,
    /// Invocations per workgroup when not [`wg`]'s.
    wg: Option<u32>,
    /// topk_scan reads x as whole vec4s (bound a second time at binding 13).
    x4: bool,
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
            k: 0,
            wg: None,
            x4: false,
        }
    }

    fn key(&self, gpu: &Gpu) -> KernelKey {
        let key = KernelKey::new(Family::Sampling, self.entry)
            .u32("WG", self.wg.unwrap_or_else(|| wg(gpu)))
            .u32("CAP", self.cap)
            .flag("SUBGROUPS", self.subgroups && gpu.caps().subgroups)
            .flag("INPLACE", self.inplace)
            .flag("HAS_ADDEND", self.addend)
            .flag("UNROLL", self.unroll)
            .flag("LISTS", self.k > 0)
            .flag("X4", self.x4);
        if self.k > 0 {
            key.u32("K", self.k).u32("KB", self.k.div_ceil(4))
        } else {
            key
        }
    }
}

/// Invocations per workgroup: 256, or the adapter's limit if lower (a power of two).
pub(crate) fn wg(gpu: &Gpu) -> u32 {
    let n = gpu
        .limits()
        .max_compute_invocations_per_workgroup
        .clamp(1, 256);
    1 << (31 - n.leading_zeros())
}

/// Invocations per workgroup of the one-row-per-workgroup kernels that Auto runs at decode
/// (argmax, log_softmax and its gather) for rows of `v` entries: [`wg`] on GPUs. On CPU
/// adapters every barrier switches between the SIMD groups of a workgroup in turn, so
/// argmax takes one SIMD group (8 lanes on lavapipe and llvmpipe, the subgroup size where
/// reported) and the sums of exponentials as few lanes as keep each lane's serial f32 sum
/// to at most 256 terms (their accuracy is what it was with 256 lanes on the widest
/// vocabularies). Measured on lavapipe, 256 lanes vs these: log_softmax of 32 × 1001
/// 290 / 185 µs; argmax of 32 × 1001 214 / 74 µs, of 32 × 58101 1370 / 1161 µs.
fn row_wg(gpu: &Gpu, v: usize, sums: bool) -> u32 {
    if gpu.adapter().device_type != "Cpu" {
        return wg(gpu);
    }
    let simd = gpu
        .caps()
        .subgroup_max_size
        .clamp(8, 64)
        .next_power_of_two();
    let lanes = if sums {
        (v.div_ceil(256).next_power_of_two() as u32).max(simd)
    } else {
        simd
    };
    lanes.min(wg(gpu))
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
        lists: 1,
        group: 1,
        out_lists: 1,
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
    if fast {
        variant.wg = Some(row_wg(rec.gpu(), v, false));
    }
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
    variant.wg = Some(row_wg(rec.gpu(), v, true));
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

    let imp = match imp {
        TopkImpl::Auto if k <= LISTS_MAX_K => TopkImpl::Lists,
        TopkImpl::Auto => TopkImpl::Threshold,
        TopkImpl::Lists if k > LISTS_MAX_K => {
            return shape_err(
                "topk",
                format!(
                    "Lists takes k up to {LISTS_MAX_K}; k = {k} for x {:?}",
                    x.shape()
                ),
            );
        }
        imp => imp,
    };
    if imp == TopkImpl::Lists {
        return topk_lists(rec, x, addend, k, values, ids, rows, v);
    }
    let mut variant = match imp {
        TopkImpl::Auto | TopkImpl::Threshold | TopkImpl::Lists => {
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

/// Largest k of [`TopkImpl::Lists`]: 8 register blocks of 4 pairs.
pub const LISTS_MAX_K: usize = 32;
/// Largest number of lists one `topk_merge` invocation merges.
pub const LISTS_MAX_GROUP: usize = 16;
/// The passes of [`TopkImpl::Lists`] for `rows` rows of V entries: the scan's lists per row,
/// then (input lists, group, output lists) per merge pass, the last with one output list.
///
/// The scan aims at `target` invocations in all (each lane scans a chunk serially, so
/// parallelism is rows × lists) with chunks of at least `min_chunk` entries; merges take
/// at most [`LISTS_MAX_GROUP`] lists each, in as few passes as that allows, with the
/// smallest fan-in that still needs no more passes.
pub fn lists_plan(
    rows: usize,
    v: usize,
    target: usize,
    min_chunk: usize,
) -> (usize, Vec<(usize, usize, usize)>) {
    let by_len = v.div_ceil(min_chunk.max(1)).max(1);
    let lists = target.div_ceil(rows.max(1)).clamp(1, by_len);
    let mut passes = Vec::new();
    let mut l = lists;
    while l > 1 {
        // Fewest passes at fan-in LISTS_MAX_GROUP, then the smallest fan-in for that many.
        let mut n = 1;
        while LISTS_MAX_GROUP.pow(n) < l {
            n += 1;
        }
        let mut g: usize = 2;
        while g.pow(n) < l {
            g += 1;
        }
        let out = l.div_ceil(g);
        passes.push((l, g, out));
        l = out;
    }
    (lists, passes)
}

/// How [`TopkImpl::Lists`] spreads a launch: (scan invocations aimed at, minimum chunk,
/// invocations per workgroup). CPU adapters run 8 lanes per SIMD instruction on a few
/// cores, where a few SIMD groups fill the machine and every dispatch costs 10-40 µs on
/// lavapipe (so 32 × 1001 is one scan dispatch, 1 × 58101 a scan over 32 chunks and one
/// merge); workgroups of one SIMD group, since nothing is shared. GPUs want thousands of
/// lanes: 64 per workgroup, chunks of at least 256 entries, so that vocabularies up to 64k
/// merge in two passes.
fn lists_shape(gpu: &Gpu) -> (usize, usize, u32) {
    if gpu.adapter().device_type == "Cpu" {
        let simd = gpu
            .caps()
            .subgroup_max_size
            .clamp(8, 64)
            .next_power_of_two();
        (32, 256, simd)
    } else {
        (8192, 256, 64)
    }
}

#[allow(clippy::too_many_arguments)]
fn topk_lists(
    rec: &mut Recorder,
    x: &Tensor,
    addend: Option<&Tensor>,
    k: usize,
    values: &Tensor,
    ids: &Tensor,
    rows: usize,
    v: usize,
) -> Result<()> {
    let gpu = rec.gpu().clone();
    let (target, min_chunk, wg) = lists_shape(&gpu);
    let (lists, passes) = lists_plan(rows, v, target, min_chunk);
    // Scratch lists of each pass but the last, which writes values and ids.
    let scratch = |n: usize| -> Result<(Tensor, Tensor)> {
        Ok((
            gpu.empty(&[rows * n, k], DType::F32)?,
            gpu.empty(&[rows * n, k], DType::U32)?,
        ))
    };
    let groups = |n: usize| grid(&gpu, ((rows * n) as u32).div_ceil(wg));
    let mut variant = Variant::new("topk_scan", false);
    variant.addend = addend.is_some();
    variant.k = k as u32;
    variant.wg = Some(wg);
    let mut p = params(rows, v);
    p.k = k as u32;
    p.lists = lists as u32;
    let mut cur = if passes.is_empty() {
        (values.clone(), ids.clone())
    } else {
        scratch(lists)?
    };
    // A vec4 binding needs one whole vec4 (the tensor's offset is storage-aligned).
    variant.x4 = x.numel() >= 4;
    let bindings = match (addend.is_some(), variant.x4) {
        (false, false) => TOPK_BINDINGS,
        (true, false) => TOPK_ADDEND_BINDINGS,
        (false, true) => TOPK_X4_BINDINGS,
        (true, true) => TOPK_X4_ADDEND_BINDINGS,
    };
    let kernel = gpu.kernel::<SamplingParams>(&variant.key(&gpu), bindings)?;
    let mut bound: Vec<&Tensor> = vec![x];
    bound.extend(addend);
    bound.extend([&cur.0, &cur.1]);
    if variant.x4 {
        bound.push(x);
    }
    rec.dispatch(&kernel, &p, &bound, groups(lists))?;
    let mut merge = Variant::new("topk_merge", false);
    merge.k = k as u32;
    merge.wg = Some(wg);
    let kernel = gpu.kernel::<SamplingParams>(&merge.key(&gpu), TOPK_MERGE_BINDINGS)?;
    for (pass, &(l, g, out)) in passes.iter().enumerate() {
        let next = if pass + 1 == passes.len() {
            (values.clone(), ids.clone())
        } else {
            scratch(out)?
        };
        p.lists = l as u32;
        p.group = g as u32;
        p.out_lists = out as u32;
        rec.dispatch(
            &kernel,
            &p,
            &[&next.0, &next.1, &cur.0, &cur.1],
            groups(out),
        )?;
        cur = next;
    }
    Ok(())
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
    let mut variant = Variant::new("log_softmax_gather", true);
    variant.wg = Some(row_wg(rec.gpu(), v, true));
    let key = variant.key(rec.gpu());
    let kernel = rec.gpu().kernel::<SamplingParams>(&key, GATHER_BINDINGS)?;
    let groups = grid(rec.gpu(), rows as u32);
    rec.dispatch(&kernel, &params(rows, v), &[x, targets, out], groups)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::WgslParams;
    use crate::pipeline::compose_source;

    /// Parses and validates a composed kernel with naga, without a GPU. A kernel built
    /// without subgroups must validate without the subgroup capability and must not mention
    /// subgroup builtins at all (GL has none).
    pub(crate) fn validate<P: WgslParams>(key: &KernelKey, subgroups: bool) {
        let src = compose_source(key, P::WGSL).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&src)));
        use naga::valid::Capabilities as C;
        let mut caps = C::all();
        if !subgroups {
            caps -= C::SUBGROUP | C::SUBGROUP_BARRIER | C::SUBGROUP_VERTEX_STAGE;
            let code: String = src
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect();
            assert!(!code.contains("subgroup"), "{key:?} uses subgroups");
        }
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
        if let Err(e) = v.validate(&module) {
            panic!("{key:?}: {}", e.emit_to_string(&src));
        }
    }

    fn key(
        entry: &'static str,
        wg: u32,
        cap: u32,
        subgroups: bool,
        inplace: bool,
        addend: bool,
        unroll: bool,
    ) -> KernelKey {
        KernelKey::new(Family::Sampling, entry)
            .u32("WG", wg)
            .u32("CAP", cap)
            .flag("SUBGROUPS", subgroups)
            .flag("INPLACE", inplace)
            .flag("HAS_ADDEND", addend)
            .flag("UNROLL", unroll)
            .flag("LISTS", false)
            .flag("X4", false)
    }

    #[test]
    fn list_variants_validate() {
        for k in [1u32, 4, 5, 8, 16, 31, 32] {
            for wg in [8, 64] {
                for (entry, addend, x4) in [
                    ("topk_scan", false, false),
                    ("topk_scan", true, true),
                    ("topk_scan", true, false),
                    ("topk_merge", false, false),
                ] {
                    let key = KernelKey::new(Family::Sampling, entry)
                        .u32("WG", wg)
                        .u32("CAP", 1)
                        .flag("SUBGROUPS", false)
                        .flag("INPLACE", false)
                        .flag("HAS_ADDEND", addend)
                        .flag("UNROLL", false)
                        .flag("LISTS", true)
                        .flag("X4", x4)
                        .u32("K", k)
                        .u32("KB", k.div_ceil(4));
                    validate::<SamplingParams>(&key, false);
                }
            }
        }
    }

    #[test]
    fn lists_plan_merges_down_to_one_list() {
        for rows in [1, 3, 32, 1000] {
            for v in [1, 7, 256, 257, 1001, 58101, 128112, 256_000] {
                for (target, chunk) in [(32, 256), (8192, 256), (16384, 32)] {
                    let (lists, passes) = lists_plan(rows, v, target, chunk);
                    let case = format!("{rows}x{v} target {target} chunk {chunk}");
                    assert!(lists >= 1 && lists <= v.max(1), "{case}: {lists} lists");
                    let mut l = lists;
                    for &(inp, g, out) in &passes {
                        assert_eq!(inp, l, "{case}: {passes:?}");
                        assert!((2..=LISTS_MAX_GROUP).contains(&g), "{case}: {passes:?}");
                        assert_eq!(out, inp.div_ceil(g), "{case}: {passes:?}");
                        l = out;
                    }
                    assert_eq!(l, 1, "{case}: {passes:?}");
                }
            }
        }
    }

    #[test]
    fn every_variant_validates() {
        for wg in [1, 64, 256] {
            for sg in [false, true] {
                for flag in [false, true] {
                    for entry in [
                        "argmax",
                        "log_softmax",
                        "log_softmax_gather",
                        "topk_plain",
                        "topk_threshold",
                        "edit_logits",
                    ] {
                        validate::<SamplingParams>(
                            &key(entry, wg, 4 * wg, sg, flag, flag, flag),
                            sg,
                        );
                        validate::<SamplingParams>(&key(entry, wg, 1, sg, !flag, flag, !flag), sg);
                    }
                }
            }
        }
    }
}
