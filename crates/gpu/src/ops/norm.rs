//! Launcher for `shaders/norm.wgsl`: layer norm and RMS norm over the last dimension.
//!
//! One workgroup per row. Two kernels from one source:
//! - [`NormImpl::Plain`]: three (layer norm) or two (RMS) passes over the row in memory,
//!   shared-memory tree reductions; any width. The reference kernel.
//! - [`NormImpl::Registers`]: each invocation keeps its strided slice of the row in registers
//!   (rows up to [`MAX_REGISTER_WIDTH`]), reductions through subgroups when the adapter has
//!   them. `Auto` picks it whenever the row fits.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Gpu, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `layer_norm` and `rms_norm`.
    pub struct NormParams {
        /// Rows (product of all dimensions but the last).
        pub rows: u32,
        /// Row width D.
        pub d: u32,
        pub eps: f32,
    }
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NormImpl {
    #[default]
    Auto,
    /// Passes over memory with a shared-memory tree reduction: any width, no subgroups.
    Plain,
    /// The row in registers, subgroup reductions where available. Falls back to `Plain` for
    /// rows wider than [`MAX_REGISTER_WIDTH`].
    Registers,
}

/// Values per invocation the register kernel may keep.
const MAX_VPT: usize = 8;
/// Widest row the register kernel handles (with 256 invocations).
pub const MAX_REGISTER_WIDTH: usize = 256 * MAX_VPT;

const LN_BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::ReadWrite),
];
const RMS_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::Read), (4, Access::ReadWrite)];

/// `out = (x - mean) / sqrt(var + eps) * gamma + beta` per row; x, out f32 `[rows, D]`,
/// gamma and beta f32 `[D]`. `out` must differ from `x`.
pub fn layer_norm(
    rec: &mut Recorder,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    out: &Tensor,
    eps: f32,
) -> Result<()> {
    layer_norm_with(rec, x, gamma, beta, out, eps, NormImpl::Auto)
}

/// [`layer_norm`] with a chosen kernel.
pub fn layer_norm_with(
    rec: &mut Recorder,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    out: &Tensor,
    eps: f32,
    imp: NormImpl,
) -> Result<()> {
    let (rows, d) = check("layer_norm", x, &[gamma, beta], out, eps)?;
    let key = select(rec.gpu(), Family::Norm, "layer_norm", d, imp);
    launch(rec, &key, LN_BINDINGS, &[x, gamma, beta, out], rows, d, eps)
}

/// `out = x / sqrt(mean(x²) + eps) * gamma` per row (T5). Shapes as [`layer_norm`].
pub fn rms_norm(
    rec: &mut Recorder,
    x: &Tensor,
    gamma: &Tensor,
    out: &Tensor,
    eps: f32,
) -> Result<()> {
    rms_norm_with(rec, x, gamma, out, eps, NormImpl::Auto)
}

/// [`rms_norm`] with a chosen kernel.
pub fn rms_norm_with(
    rec: &mut Recorder,
    x: &Tensor,
    gamma: &Tensor,
    out: &Tensor,
    eps: f32,
    imp: NormImpl,
) -> Result<()> {
    let (rows, d) = check("rms_norm", x, &[gamma], out, eps)?;
    let key = select(rec.gpu(), Family::Norm, "rms_norm", d, imp);
    launch(rec, &key, RMS_BINDINGS, &[x, gamma, out], rows, d, eps)
}

/// Validates shapes; returns (rows, D).
fn check(
    op: &'static str,
    x: &Tensor,
    params: &[&Tensor],
    out: &Tensor,
    eps: f32,
) -> Result<(usize, usize)> {
    if x.shape().is_empty() {
        return shape_err(
            op,
            format!("x {:?} needs at least one dimension", x.shape()),
        );
    }
    let d = x.dim(-1);
    let rows = x.numel() / d.max(1);
    if std::iter::once(x)
        .chain(params.iter().copied())
        .chain([out])
        .any(|t| t.dtype() != DType::F32)
    {
        return shape_err(op, "x, gamma, beta and out must be f32");
    }
    for p in params {
        if p.numel() != d {
            return shape_err(
                op,
                format!(
                    "x {:?} has rows of {d}, but gamma/beta is {:?}",
                    x.shape(),
                    p.shape()
                ),
            );
        }
    }
    if out.shape() != x.shape() {
        return shape_err(
            op,
            format!(
                "out {:?} must have the shape of x {:?}",
                out.shape(),
                x.shape()
            ),
        );
    }
    if Arc::ptr_eq(&x.buf, &out.buf) {
        return shape_err(
            op,
            format!(
                "out {:?} must not share a buffer with x {:?}",
                out.shape(),
                x.shape()
            ),
        );
    }
    if d == 0 || !eps.is_finite() || eps < 0.0 {
        return shape_err(
            op,
            format!(
                "x {:?}: rows must be non-empty and eps ({eps}) finite and ≥ 0",
                x.shape()
            ),
        );
    }
    if rows > u32::MAX as usize || x.numel() > u32::MAX as usize {
        return shape_err(op, format!("x {:?} has more than 2^32 elements", x.shape()));
    }
    Ok((rows, d))
}

/// Largest power of two ≤ `cap` and ≤ `n`.
fn pow2_at_most(n: u32, cap: u32) -> u32 {
    let n = n.min(cap).max(1);
    1 << (31 - n.leading_zeros())
}

/// Picks the kernel variant (workgroup size, registers, subgroups) for rows of width `d`.
fn select(gpu: &Gpu, family: Family, entry: &'static str, d: usize, imp: NormImpl) -> KernelKey {
    let max_inv = gpu.limits().max_compute_invocations_per_workgroup;
    let regs = matches!(imp, NormImpl::Auto | NormImpl::Registers) && d <= MAX_REGISTER_WIDTH;
    let (wg, vpt, subgroups) = if regs {
        // 128 invocations for model widths up to 512, 256 above.
        let wg = pow2_at_most(if d <= 512 { 128 } else { 256 }, max_inv);
        let vpt = d.div_ceil(wg as usize).next_power_of_two() as u32;
        (wg, vpt, gpu.caps().subgroups)
    } else {
        (pow2_at_most(256, max_inv), 1, false)
    };
    if regs && vpt as usize > MAX_VPT {
        // Only when the adapter allows fewer than 256 invocations.
        return KernelKey::new(family, entry)
            .u32("WG", pow2_at_most(256, max_inv))
            .u32("VPT", 1)
            .flag("VPT_REGS", false)
            .flag("SUBGROUPS", false);
    }
    KernelKey::new(family, entry)
        .u32("WG", wg)
        .u32("VPT", vpt)
        .flag("VPT_REGS", regs)
        .flag("SUBGROUPS", subgroups)
}

fn launch(
    rec: &mut Recorder,
    key: &KernelKey,
    bindings: Bindings,
    tensors: &[&Tensor],
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<()> {
    let kernel = rec.gpu().kernel::<NormParams>(key, bindings)?;
    let params = NormParams {
        rows: rows as u32,
        d: d as u32,
        eps,
    };
    let groups = grid(rec.gpu(), rows as u32);
    rec.dispatch(&kernel, &params, tensors, groups)
}
