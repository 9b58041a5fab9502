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
//   SUBGROUPS  reductions through subgroupAdd plus one slot per subgroup in workgroup memory;
//              otherwise a shared-memory tree. Correct for any subgroup size (read at run time).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Shared tree: one slot per invocation. Subgroups: one slot per subgroup (at most WG).
var<workgroup> red: array<f32, WG>;

var<private> lid: u32;
//#if SUBGROUPS
var<private> sg_lane: u32;
var<private> sg_size: u32;
var<private> sg_id: u32;
var<private> sg_count: u32;
//#endif

// Sum of `v` over the workgroup, returned to every invocation. Leaves `red` free for reuse.
fn wg_sum(v: f32) -> f32 {
//#if SUBGROUPS
    let s = subgroupAdd(v);
    if sg_lane == 0u {
        red[sg_id] = s;
    }
    workgroupBarrier();
    // Every subgroup adds up the per-subgroup sums itself (the trip count is subgroup-uniform).
    var acc = 0.0;
    for (var base = 0u; base < sg_count; base += sg_size) {
        let i = base + sg_lane;
        acc += select(0.0, red[min(i, WG - 1u)], i < sg_count);
    }
    let total = subgroupAdd(acc);
    workgroupBarrier();
    return total;
//#else
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
//#endif
}

//#if SUBGROUPS
fn init(l: u32, lane: u32, size: u32, id: u32, count: u32) {
    lid = l;
    sg_lane = lane;
    sg_size = size;
    sg_id = id;
    sg_count = count;
}
//#else
fn init(l: u32) {
    lid = l;
}
//#endif

@compute @workgroup_size(WG)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) l: u32,
//#if SUBGROUPS
              @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32,
              @builtin(subgroup_id) id: u32, @builtin(num_subgroups) count: u32,
//#endif
) {
//#if SUBGROUPS
    init(l, lane, size, id, count);
//#else
    init(l);
//#endif
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
            @builtin(local_invocation_index) l: u32,
//#if SUBGROUPS
            @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32,
            @builtin(subgroup_id) id: u32, @builtin(num_subgroups) count: u32,
//#endif
) {
//#if SUBGROUPS
    init(l, lane, size, id, count);
//#else
    init(l);
//#endif
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
