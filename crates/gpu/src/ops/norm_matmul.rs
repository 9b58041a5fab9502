//! Launcher of matmul's norm prologue (`shaders/norm_prologue.wgsl` inside `rows_nk`):
//! `out = epilogue(norm(A) · Bᵀ)` in one dispatch.
//!
//! Why: a transformer sub-layer starts with a norm whose only reader is one matmul (fused
//! Q/K/V, the cross-attention query, fc1, the LM head). In a decode step A has a few rows, so
//! the norm kernel is one more dispatch (and barrier) for almost no work, while the matmul's
//! workgroups can normalise their own rows of A for the price of reading them twice more from
//! cache. With many rows (encoders, teacher forcing) every workgroup would redo the statistics
//! of many rows and the separate norm kernel is cheaper; on CPU adapters, where those extra
//! loads are not free, it is cheaper for all but small products: [`prologue_pays`] says which.
//!
//! The epilogue is the matmul's (bias, activation, int8 scales) without the residual: no
//! sub-layer's first matmul adds one, and the layout stays within WebGPU's default of 8
//! storage buffers (a, w, bias, out, scales, gamma, beta, kept rows).

use crate::error::{Result, shape_err};
use crate::ops::matmul::{
    MatmulImpl, MatmulOptions, RowsPrologue, Tuning, launch_rows, same_buffer, selected_impl,
    validate,
};
use crate::pipeline::{Access, Bindings};
use crate::{DType, Gpu, Recorder, Tensor, Work};

/// Which normalisation the prologue applies to each row of A (as `ops::norm`).
#[derive(Clone, Copy, Debug)]
pub enum RowNorm<'a> {
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`.
    Layer { gamma: &'a Tensor, beta: &'a Tensor },
    /// `x / sqrt(mean(x²) + eps) * gamma` (T5).
    Rms { gamma: &'a Tensor },
}

/// The norm applied to A before [`norm_matmul`]'s product.
#[derive(Clone, Copy, Debug)]
pub struct NormPrologue<'a> {
    pub norm: RowNorm<'a>,
    pub eps: f32,
    /// f32 with A's shape: also receives `norm(A)` (post-norm layers keep it as the
    /// sub-layer's residual). Must not share a buffer with any other operand.
    pub keep: Option<&'a Tensor>,
}

/// Whether fusing the norm into an `a_rows` × `n` × `k` matmul pays: where `Auto` picks the
/// rows kernel, which the prologue extends, and on CPU adapters only up to
/// [`CPU_PROLOGUE_MAX_NK`].
pub fn prologue_pays(gpu: &Gpu, a_rows: usize, n: usize, k: usize) -> bool {
    selected_impl(gpu, a_rows, MatmulImpl::Auto) == MatmulImpl::Rows
        && (!Tuning::Adapter.cpu(gpu) || n * k <= CPU_PROLOGUE_MAX_NK)
}

/// On a CPU adapter every load is a loop over the lanes, and each of the matmul's N / NR
/// workgroups reads its rows of A twice more and gamma and beta once: about 44% more loads
/// than the plain rows kernel at one row, in proportion to N·K, against the fixed cost of the
/// norm dispatch they save (tens of µs on lavapipe). So there the prologue pays only for small
/// products, such as the `tiny` bench config's; at opus-mt's sizes it made a step slower
/// (README, Benchmarks).
pub const CPU_PROLOGUE_MAX_NK: usize = 1 << 16;

/// a, w, bias, out, scales (int8; else bound to gamma and unused), gamma, beta (layer norm;
/// else bound to gamma and unused), then the kept rows: the last entry only with them.
const LAYOUT: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (5, Access::ReadWrite),
    (6, Access::Read),
    (7, Access::Read),
    (8, Access::Read),
    (9, Access::ReadWrite),
];

/// `out[b, m, n] = act(Σ_k norm(a[b, m, :])[k] · B[n, k] + bias[n])`, B `[N, K]` (trans_b).
/// Shapes and dtypes as [`crate::ops::matmul::matmul`]; gamma (and beta) f32 `[K]`; no
/// residual; `opts.imp` Auto or Rows (both run the rows kernel, whatever M).
pub fn norm_matmul(
    rec: &mut Recorder,
    a: &Tensor,
    prologue: &NormPrologue,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
) -> Result<()> {
    norm_matmul_tuned(rec, a, prologue, b, out, opts, Tuning::Adapter)
}

/// [`norm_matmul`] with an explicit tuning table (tests and benches).
pub fn norm_matmul_tuned(
    rec: &mut Recorder,
    a: &Tensor,
    prologue: &NormPrologue,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
    tuning: Tuning,
) -> Result<()> {
    let p = validate(a, b, out, opts)?;
    let (gamma, beta) = check(a, prologue, b, out, opts)?;
    if p.batch == 0 || p.m == 0 || p.n == 0 {
        return Ok(());
    }
    let keep = prologue.keep;
    let bias = opts.bias.unwrap_or(a);
    let mut tensors = vec![a, b, bias, out, opts.scales.unwrap_or(gamma)];
    tensors.extend([gamma, beta.unwrap_or(gamma)]);
    tensors.extend(keep);
    let pr = RowsPrologue {
        rms: beta.is_none(),
        keep: keep.is_some(),
        eps: prologue.eps,
        bindings: &LAYOUT[..LAYOUT.len() - usize::from(keep.is_none())],
    };
    let cpu = tuning.cpu(rec.gpu());
    launch_rows(rec, cpu, &p, opts, &tensors, Some(&pr))?;
    let norm_bytes = gamma.byte_len() + beta.map_or(0, Tensor::byte_len);
    let kept = keep.map_or(0, Tensor::byte_len);
    let w = p.work(opts, b);
    rec.declare_work(Work {
        bytes: w.bytes + norm_bytes + kept,
        flops: w.flops,
    });
    Ok(())
}

/// Checks what [`validate`] does not: the prologue's operands and the options it refuses.
/// Returns (gamma, beta).
fn check<'a>(
    a: &Tensor,
    prologue: &NormPrologue<'a>,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
) -> Result<(&'a Tensor, Option<&'a Tensor>)> {
    let k = a.dim(-1);
    let err = |msg: String| shape_err("norm_matmul", format!("a {:?}: {msg}", a.shape()));
    if !opts.trans_b || opts.residual.is_some() {
        return err("the norm prologue needs trans_b and takes no residual".into());
    }
    if !matches!(opts.imp, MatmulImpl::Auto | MatmulImpl::Rows) {
        return err(format!(
            "the norm prologue runs on Rows, not {:?}",
            opts.imp
        ));
    }
    if !prologue.eps.is_finite() || prologue.eps < 0.0 || k == 0 {
        return err(format!(
            "rows must be non-empty and eps ({}) finite and ≥ 0",
            prologue.eps
        ));
    }
    let (gamma, beta) = match prologue.norm {
        RowNorm::Layer { gamma, beta } => (gamma, Some(beta)),
        RowNorm::Rms { gamma } => (gamma, None),
    };
    for t in std::iter::once(gamma).chain(beta) {
        if t.dtype() != DType::F32 || t.numel() != k {
            return err(format!(
                "gamma/beta {:?} {} must be f32 [{k}]",
                t.shape(),
                t.dtype().name()
            ));
        }
    }
    if let Some(keep) = prologue.keep {
        if keep.dtype() != DType::F32 || keep.shape() != a.shape() {
            return err(format!(
                "keep {:?} {} must be f32 with a's shape",
                keep.shape(),
                keep.dtype().name()
            ));
        }
        let others = [Some(a), Some(b), Some(out), Some(gamma), beta, opts.bias];
        if others
            .into_iter()
            .chain([opts.scales])
            .flatten()
            .any(|t| same_buffer(t, keep))
        {
            return err("keep shares its buffer with another operand".into());
        }
    }
    if std::iter::once(gamma)
        .chain(beta)
        .any(|t| same_buffer(t, out))
    {
        return err("gamma/beta share their buffer with out".into());
    }
    Ok((gamma, beta))
}
