// Batched matmul with a fused epilogue: out[b, m, off + n] = act(Σ_k a[b,m,k]·B[b,n,k] + bias[n])
// + residual[b, m, off + n].
//
// Entries (one per MatmulImpl, all sharing the bindings and the epilogue below):
//   naive  one invocation per output element.
//
// Constants every key sets:
//   W_F16     B holds f16 pairs in u32 words (else f32 bits)
//   TRANS_B   B is [N, K] (else [K, N])
//   HAS_BIAS, HAS_RES, ACT (0 none, 1 gelu erf, 2 gelu tanh, 3 relu, 4 silu)
//   A_VEC4    a is read as vec4<f32> (K % 4 == 0)
//   B_VEC4    w is read as vec4<u32> (the contiguous dimension of B is a multiple of 4 f32 or
//             8 f16 elements)
// Absent bias/residual bindings are bound to `a` by the launcher and never read.

//#if A_VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> a: array<f32>;
//#endif
//#if B_VEC4
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
//#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
//#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// ---------------------------------------------------------------------------------------------
// Element access

// Element i of a (scalar view whatever the declaration).
fn a_at(i: u32) -> f32 {
//#if A_VEC4
    return a[i >> 2u][i & 3u];
//#else
    return a[i];
//#endif
}

// Element i of B, widened to f32.
fn b_at(i: u32) -> f32 {
//#if B_VEC4
//#if W_F16
    let word = w[i >> 3u][(i >> 1u) & 3u];
//#else
    let word = w[i >> 2u][i & 3u];
//#endif
//#else
//#if W_F16
    let word = w[i >> 1u];
//#else
    let word = w[i];
//#endif
//#endif
//#if W_F16
    return half_at(word, i);
//#else
    return bitcast<f32>(word);
//#endif
}

// ---------------------------------------------------------------------------------------------
// Epilogue

// erfc(z) for z >= 0: Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7), so
// gelu keeps its relative accuracy in the far negative tail, where it is tiny.
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(p - z * z);
}

fn erf(x: f32) -> f32 {
    let r = 1.0 - erfc_pos(abs(x));
    return select(r, -r, x < 0.0);
}

// x·Φ(x) with Φ(x) = erfc(-x/√2)/2, evaluated without cancellation on either side.
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

fn activate(x: f32) -> f32 {
    switch ACT {
        case 1u: { return gelu_erf(x); }
        case 2u: { return gelu_tanh(x); }
        case 3u: { return max(x, 0.0); }
        case 4u: { return x / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

// Finishes output element (row bm = b·M + m, column n) from its dot product and stores it.
fn store(acc: f32, bm: u32, n: u32) {
    let o = bm * params.out_ld + params.out_off + n;
    var v = acc;
    if HAS_BIAS {
        v += bias[n];
    }
    v = activate(v);
    if HAS_RES {
        v += res[o];
    }
    out[o] = v;
}

// Offset of B[n, k] (TRANS_B) or B[k, n] inside one batch's B.
fn b_index(n: u32, k: u32) -> u32 {
    if TRANS_B {
        return n * params.k + k;
    }
    return k * params.n + n;
}

// ---------------------------------------------------------------------------------------------
// naive: one invocation per output element, plain loop over K.

@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    if idx >= params.batch * params.m * params.n {
        return;
    }
    let n = idx % params.n;
    let bm = idx / params.n;
    let batch = bm / params.m;
    let a_row = bm * params.k;
    let b_base = batch * params.b_bstride;
    var acc = 0.0;
    for (var k = 0u; k < params.k; k++) {
        acc += a_at(a_row + k) * b_at(b_base + b_index(n, k));
    }
    store(acc, bm, n);
}
