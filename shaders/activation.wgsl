// Activation functions, defined once for every kernel that applies one: matmul's epilogue and
// elementwise's gated product. The runtime composes this file after common.wgsl and before the
// family's source for the families that list it in `Family::modules`
// (crates/gpu/src/pipeline.rs).
//
// Contract with the including kernel:
//   ACT  u32 constant that every key of the family sets: 0 none, 1 gelu erf, 2 gelu tanh,
//        3 relu, 4 silu (the codes of `Activation` in crates/gpu/src/ops/matmul.rs). Being a
//        constant, the switch in `activate` folds away at compile time.
//
// Declares: erfc_pos, gelu_erf, gelu_tanh, activate.

// erfc(z) for z >= 0: Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7), so
// gelu keeps its relative accuracy in the far negative tail, where it is tiny.
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(p - z * z);
}

// gelu(x) = x·Φ(x), Φ(x) = (1 + erf(x/√2))/2 = erfc(-x/√2)/2: through erfc of |x|/√2 so that
// neither tail cancels (erf itself would be 1 - erfc_pos(|x|) with the sign of x).
fn gelu_erf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678118654752;
    let e = erfc_pos(z);
    let phi = select(1.0 - 0.5 * e, 0.5 * e, x < 0.0);
    return x * phi;
}

// 0.5·x·(1 + tanh(u)) = x·sigmoid(2u): no tanh (some backends overflow it to NaN).
fn gelu_tanh(x: f32) -> f32 {
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

// The activation ACT selects, applied to x.
fn activate(x: f32) -> f32 {
    switch ACT {
        case 1u: { return gelu_erf(x); }
        case 2u: { return gelu_tanh(x); }
        case 3u: { return max(x, 0.0); }
        case 4u: { return x / (1.0 + exp(-x)); }
        default: { return x; }
    }
}
