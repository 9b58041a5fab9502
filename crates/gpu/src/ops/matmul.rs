//! Launcher for `shaders/matmul.wgsl`: batched matmul with a fused epilogue.
//!
//! CONTRACT (implementation pending): signatures below are fixed; the model code calls them.

use crate::error::Result;
use crate::{Recorder, Tensor};

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
    let _ = (rec, a, b, out, opts);
    todo!("matmul: pending")
}
