//! Launcher for `shaders/matmul.wgsl`: batched matmul with a fused epilogue.
//!
//! STAND-IN (branch model): a naive kernel so the model code can run until branch `matmul`
//! lands; its version replaces this file wholesale.

use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

/// Activation applied in the epilogue, after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    #[default]
    None,
    /// gelu with erf (`gelu` in Hugging Face configs).
    Gelu,
    /// gelu with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
    /// x * sigmoid(x) (`silu`, `swish`).
    Silu,
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MatmulImpl {
    #[default]
    Auto,
    /// One invocation per output element: the plain reference kernel.
    Naive,
    /// Shared-memory tiles, for many rows.
    Tiled,
    /// Few rows (decode steps, 1-32 rows): each workgroup streams weight rows once.
    Rows,
}

/// Options of [`matmul`]. The epilogue computes `act(acc + bias) + residual`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatmulOptions<'a> {
    /// `b` is `[N, K]` (Hugging Face Linear weight layout, C = A·Bᵀ) when true, `[K, N]` when false.
    pub trans_b: bool,
    /// f32 `[N]`, added to every row.
    pub bias: Option<&'a Tensor>,
    pub act: Activation,
    /// f32 with the shape of `out`; must be a different tensor than `out`.
    pub residual: Option<&'a Tensor>,
    /// Write columns `out_col_offset .. out_col_offset + N` of `out`, whose last dimension may
    /// be wider than N (a weight split into row chunks that each fit one binding).
    pub out_col_offset: usize,
    pub imp: MatmulImpl,
}

crate::wgsl_params! {
    /// Parameters of the naive matmul.
    pub struct MatmulParams {
        pub batch: u32,
        pub m: u32,
        pub n: u32,
        pub k: u32,
        pub w: u32,
        pub out_col_offset: u32,
        pub b_batch_stride: u32,
        pub trans_b: u32,
        pub act: u32,
    }
}

const WG: u32 = 64;
const B0: Bindings = &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)];
const B_BIAS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::ReadWrite),
    (4, Access::Read),
];
const B_RES: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::ReadWrite),
    (5, Access::Read),
];
const B_BOTH: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::ReadWrite),
    (4, Access::Read),
    (5, Access::Read),
];

/// `out[b, m, n] = epilogue(Σ_k a[b, m, k] · B[b, n, k])`.
///
/// - `a`: f32 `[M, K]` or `[batch, M, K]` (more leading dims are flattened into batch).
/// - `b`: f32 or f16, `[N, K]` (trans_b) or `[K, N]`; either shared by every batch (2-D) or
///   batched `[batch, N, K]` / `[batch, K, N]`.
/// - `out`: f32 `[M, W]` or `[batch, M, W]` with W ≥ out_col_offset + N.
pub fn matmul(
    rec: &mut Recorder,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
) -> Result<()> {
    let op = "matmul";
    let bad = |msg: String| shape_err::<()>(op, msg);
    if a.dtype() != DType::F32
        || out.dtype() != DType::F32
        || !matches!(b.dtype(), DType::F32 | DType::F16)
    {
        return bad(format!(
            "a {:?} and out {:?} must be f32, b {:?} f32 or f16",
            a.shape(),
            out.shape(),
            b.shape()
        ));
    }
    if a.shape().len() < 2 || b.shape().len() < 2 || out.shape().len() < 2 {
        return bad(format!(
            "a {:?}, b {:?}, out {:?} need at least 2 dims",
            a.shape(),
            b.shape(),
            out.shape()
        ));
    }
    let (m, k) = (a.dim(-2), a.dim(-1));
    let batch = a.numel() / (m * k).max(1);
    let (bn, bk) = if opts.trans_b {
        (b.dim(-2), b.dim(-1))
    } else {
        (b.dim(-1), b.dim(-2))
    };
    let n = bn;
    let b_batch = b.numel() / (bn * bk).max(1);
    let w = out.dim(-1);
    if bk != k
        || (b_batch != 1 && b_batch != batch)
        || out.numel() != batch * m * w
        || w < opts.out_col_offset + n
    {
        return bad(format!(
            "a {:?}, b {:?} (trans_b {}), out {:?}, out_col_offset {}: shapes do not agree",
            a.shape(),
            b.shape(),
            opts.trans_b,
            out.shape(),
            opts.out_col_offset
        ));
    }
    if let Some(bias) = opts.bias
        && (bias.dtype() != DType::F32 || bias.numel() != n)
    {
        return bad(format!("bias {:?} must be f32 [{n}]", bias.shape()));
    }
    if let Some(r) = opts.residual {
        if r.dtype() != DType::F32 || r.numel() != out.numel() {
            return bad(format!(
                "residual {:?} must be f32 of the shape of out {:?}",
                r.shape(),
                out.shape()
            ));
        }
        if Arc::ptr_eq(&r.buf, &out.buf) {
            return bad(format!("residual {:?} must not be out", r.shape()));
        }
    }
    if Arc::ptr_eq(&a.buf, &out.buf) || Arc::ptr_eq(&b.buf, &out.buf) {
        return bad(format!(
            "out {:?} must not share a buffer with a or b",
            out.shape()
        ));
    }
    let key = KernelKey::new(Family::Matmul, "naive")
        .u32("WG", WG)
        .flag("W_F16", b.dtype() == DType::F16)
        .flag("HAS_BIAS", opts.bias.is_some())
        .flag("HAS_RES", opts.residual.is_some());
    let (bindings, tensors): (Bindings, Vec<&Tensor>) = match (opts.bias, opts.residual) {
        (None, None) => (B0, vec![a, b, out]),
        (Some(bi), None) => (B_BIAS, vec![a, b, out, bi]),
        (None, Some(r)) => (B_RES, vec![a, b, out, r]),
        (Some(bi), Some(r)) => (B_BOTH, vec![a, b, out, bi, r]),
    };
    let kernel = rec.gpu().kernel::<MatmulParams>(&key, bindings)?;
    let params = MatmulParams {
        batch: batch as u32,
        m: m as u32,
        n: n as u32,
        k: k as u32,
        w: w as u32,
        out_col_offset: opts.out_col_offset as u32,
        b_batch_stride: if b_batch == 1 { 0 } else { (bn * bk) as u32 },
        trans_b: opts.trans_b as u32,
        act: match opts.act {
            Activation::None => 0,
            Activation::Gelu => 1,
            Activation::GeluTanh => 2,
            Activation::Relu => 3,
            Activation::Silu => 4,
        },
    };
    let groups = grid(rec.gpu(), ((batch * m * n) as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &tensors, groups)
}
