//! Launcher for `shaders/elementwise.wgsl`.

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `add`.
    pub struct AddParams {
        /// Elements of `a` and `out`.
        pub n: u32,
        /// Elements of `b`, repeated over `a` (a divisor of `n`).
        pub n_b: u32,
    }
}

const WG: u32 = 256;
const ADD_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)];

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
    let key = KernelKey::new(Family::Elementwise, "add").u32("WG", WG);
    let kernel = rec.gpu().kernel::<AddParams>(&key, ADD_BINDINGS)?;
    let params = AddParams {
        n: n as u32,
        n_b: n_b as u32,
    };
    let groups = grid(rec.gpu(), (n as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[a, b, out], groups)
}
