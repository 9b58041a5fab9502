// STAND-IN (branch model): naive matmul until branch `matmul` lands. One invocation per
// output element; epilogue act(acc + bias) + residual, written at column out_col_offset + n.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
//#if HAS_BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
//#endif
//#if HAS_RES
@group(0) @binding(5) var<storage, read> residual: array<f32>;
//#endif

fn b_at(i: u32) -> f32 {
//#if W_F16
    return half_at(b[i >> 1u], i);
//#else
    return bitcast<f32>(b[i]);
//#endif
}

fn erf_approx(x: f32) -> f32 {
    // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
    let s = sign(x);
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-ax * ax);
    return s * y;
}

fn activate(x: f32) -> f32 {
    switch params.act {
        case 1u: { return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
        case 2u: { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
        case 3u: { return max(x, 0.0); }
        case 4u: { return x / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    let total = params.batch * params.m * params.n;
    if idx >= total {
        return;
    }
    let n = idx % params.n;
    let m = (idx / params.n) % params.m;
    let bt = idx / (params.n * params.m);
    let a_base = (bt * params.m + m) * params.k;
    let b_base = bt * params.b_batch_stride;
    var acc = 0.0;
    for (var k = 0u; k < params.k; k++) {
        var bi: u32;
        if params.trans_b == 1u {
            bi = b_base + n * params.k + k;
        } else {
            bi = b_base + k * params.n + n;
        }
        acc += a[a_base + k] * b_at(bi);
    }
//#if HAS_BIAS
    acc += bias[n];
//#endif
    acc = activate(acc);
    let o = (bt * params.m + m) * params.w + params.out_col_offset + n;
//#if HAS_RES
    acc += residual[o];
//#endif
    out[o] = acc;
}
