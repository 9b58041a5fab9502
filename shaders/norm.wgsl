// Row normalisations over the last dimension: one workgroup of WG invocations per row.
//
// layer_norm: out = (x - mean) * rsqrt(var + eps) * gamma + beta, with the biased variance
//             computed in a second pass over (x - mean) (as PyTorch's LayerNorm), in f32.
// rms_norm:   out = x * rsqrt(mean(x^2) + eps) * gamma (T5).
//
// Constants:
//   WG         invocations per workgroup (a power of two).
//   VPT_REGS   false: plain kernel, every pass re-reads the row from memory (any D).
//              true: each invocation keeps VPT strided values in registers, so the row is
//              read once (D <= WG * VPT).
//   SUBGROUPS  reductions through subgroups, otherwise a shared-memory tree: wg_sum, lid and
//              init come from shaders/reduce.wgsl, composed in front of this file.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return; // uniform across the workgroup
    }
    let d = params.d;
    let base = row * d;
    let inv_d = 1.0 / f32(d);
//#if VPT_REGS
    var v: array<f32, VPT>;
    var s = 0.0;
    for (var j = 0u; j < VPT; j++) {
        let i = lid + j * WG;
        v[j] = select(0.0, x[base + min(i, d - 1u)], i < d);
        s += v[j];
    }
    let mean = wg_sum(s) * inv_d;
    var q = 0.0;
    for (var j = 0u; j < VPT; j++) {
        let i = lid + j * WG;
        let c = select(0.0, v[j] - mean, i < d);
        q += c * c;
    }
    let rstd = 1.0 / sqrt(wg_sum(q) * inv_d + params.eps);
    for (var j = 0u; j < VPT; j++) {
        let i = lid + j * WG;
        if i < d {
            out[base + i] = (v[j] - mean) * rstd * gamma[i] + beta[i];
        }
    }
//#else
    var s = 0.0;
    for (var i = lid; i < d; i += WG) {
        s += x[base + i];
    }
    let mean = wg_sum(s) * inv_d;
    var q = 0.0;
    for (var i = lid; i < d; i += WG) {
        let c = x[base + i] - mean;
        q += c * c;
    }
    let rstd = 1.0 / sqrt(wg_sum(q) * inv_d + params.eps);
    for (var i = lid; i < d; i += WG) {
        out[base + i] = (x[base + i] - mean) * rstd * gamma[i] + beta[i];
    }
//#endif
}

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let d = params.d;
    let base = row * d;
//#if VPT_REGS
    var v: array<f32, VPT>;
    var q = 0.0;
    for (var j = 0u; j < VPT; j++) {
        let i = lid + j * WG;
        v[j] = select(0.0, x[base + min(i, d - 1u)], i < d);
        q += v[j] * v[j];
    }
    let r = 1.0 / sqrt(wg_sum(q) / f32(d) + params.eps);
    for (var j = 0u; j < VPT; j++) {
        let i = lid + j * WG;
        if i < d {
            out[base + i] = v[j] * r * gamma[i];
        }
    }
//#else
    var q = 0.0;
    for (var i = lid; i < d; i += WG) {
        let a = x[base + i];
        q += a * a;
    }
    let r = 1.0 / sqrt(wg_sum(q) / f32(d) + params.eps);
    for (var i = lid; i < d; i += WG) {
        out[base + i] = x[base + i] * r * gamma[i];
    }
//#endif
}
