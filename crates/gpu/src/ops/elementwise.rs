//! Launcher for `shaders/elementwise.wgsl`: residual/bias sums and gated activations.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::ops::matmul::{Activation, act_code};
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of every kernel in `elementwise.wgsl`.
    pub struct ElementwiseParams {
        /// Elements of `out` (and, for `add`, of `a`).
        pub n: u32,
        /// add: elements of `b`, repeated over `a` (a divisor of `n`). gated: unused.
        pub n_b: u32,
        /// gated: F, the row length of `out` (`a`'s rows are 2F long). add: unused.
        pub cols: u32,
    }
}

const WG: u32 = 256;
const ADD_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)];
const GATED_BINDINGS: Bindings = &[(1, Access::Read), (3, Access::ReadWrite)];

/// The key of `entry`: every key of the family sets `ACT` (activation.wgsl).
fn key(entry: &'static str, act: Activation) -> KernelKey {
    KernelKey::new(Family::Elementwise, entry)
        .u32("WG", WG)
        .u32("ACT", act_code(act))
}

/// Whether `n` invocations in workgroups of WG keep every index below 2^32.
fn fits_u32(n: usize) -> bool {
    n <= (u32::MAX - WG) as usize
}

/// `out = a + b`, where `b` is either the same size as `a` or repeated over it (a bias row).
pub fn add(rec: &mut Recorder, a: &Tensor, b: &Tensor, out: &Tensor) -> Result<()> {
    let (n, n_b) = (a.numel(), b.numel());
    if [a, b, out].iter().any(|t| t.dtype() != DType::F32) {
        return shape_err("add", "a, b and out must be f32");
    }
    if out.numel() != n || n_b == 0 || n % n_b != 0 {
        return shape_err(
            "add",
            format!(
                "a {:?}, b {:?}, out {:?}: b must divide a, out must match a",
                a.shape(),
                b.shape(),
                out.shape()
            ),
        );
    }
    let kernel = rec
        .gpu()
        .kernel::<ElementwiseParams>(&key("add", Activation::None), ADD_BINDINGS)?;
    let params = ElementwiseParams {
        n: n as u32,
        n_b: n_b as u32,
        cols: 0,
    };
    let groups = grid(rec.gpu(), (n as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[a, b, out], groups)
}

/// Gated activation: `out[r, f] = act(g[r, f]) · g[r, F + f]`.
///
/// - `g`: f32 `[.., R, 2F]` (any leading dims, flattened into rows): each row holds the
///   gate's projection in columns `0..F` and the other projection in `F..2F`, as one matmul
///   with the two weights stacked `[2F, D]` writes them (T5 v1.1's `wi_0` and `wi_1`).
/// - `out`: f32 `[.., R, F]`, as many rows; a different buffer than `g`.
/// - `act`: computed exactly as matmul's epilogue computes it (one WGSL definition).
pub fn gated(rec: &mut Recorder, g: &Tensor, out: &Tensor, act: Activation) -> Result<()> {
    let op = "gated";
    if g.dtype() != DType::F32 || out.dtype() != DType::F32 {
        return shape_err(
            op,
            format!(
                "g {:?} ({}) and out {:?} ({}) must be f32",
                g.shape(),
                g.dtype().name(),
                out.shape(),
                out.dtype().name()
            ),
        );
    }
    let f = out.dim(-1);
    if g.dim(-1) != 2 * f || g.numel() != 2 * out.numel() {
        return shape_err(
            op,
            format!(
                "g {:?} must be [R, 2F] for out {:?} = [R, F]: as many rows, twice the columns",
                g.shape(),
                out.shape()
            ),
        );
    }
    if !fits_u32(g.numel()) {
        return shape_err(
            op,
            format!(
                "g {:?} has {} elements, more than 32-bit indexing allows",
                g.shape(),
                g.numel()
            ),
        );
    }
    if Arc::ptr_eq(&g.buf, &out.buf) {
        return shape_err(
            op,
            format!(
                "g {:?} and out {:?} must be different buffers",
                g.shape(),
                out.shape()
            ),
        );
    }
    let n = out.numel();
    if n == 0 {
        return Ok(());
    }
    let kernel = rec
        .gpu()
        .kernel::<ElementwiseParams>(&key("gated", act), GATED_BINDINGS)?;
    let params = ElementwiseParams {
        n: n as u32,
        n_b: 0,
        cols: f as u32,
    };
    let groups = grid(rec.gpu(), (n as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[g, out], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn every_variant_validates() {
        validate::<ElementwiseParams>(&key("add", Activation::None), false);
        for act in Activation::ALL {
            validate::<ElementwiseParams>(&key("gated", act), false);
        }
    }
}
