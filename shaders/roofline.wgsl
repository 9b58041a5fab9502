// The adapter's own limits, for the bench's roofline: how fast it can stream a buffer in and
// how many fused multiply-adds it can do, measured with the simplest kernels that reach them.
//
// Every invocation writes one value to `sink` so that no compiler drops the work.
//   read_runs     invocation g sums its own contiguous run of `per_lane` vec4s with four
//                 accumulators (CPU adapters: each lane is a loop, runs stream per core).
//   read_strided  invocation g sums vec4s g, g + lanes, g + 2·lanes, … (GPUs: neighbouring
//                 lanes read neighbouring vec4s, so every load instruction is coalesced).
//   fmas          per_lane rounds of 8 independent vec4 FMA chains: 64 FLOP per round.

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<f32>;

fn lane(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return group_index(wid, nwg) * WG + lid;
}

@compute @workgroup_size(WG)
fn read_runs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let g = lane(wid, nwg, lid);
    if g >= params.lanes {
        return;
    }
    let start = g * params.per_lane;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    // per_lane is a multiple of 4.
    for (var i = start; i < start + params.per_lane; i += 4u) {
        a0 += src[i];
        a1 += src[i + 1u];
        a2 += src[i + 2u];
        a3 += src[i + 3u];
    }
    sink[g] = dot(a0 + a1 + a2 + a3, vec4<f32>(1.0));
}

@compute @workgroup_size(WG)
fn read_strided(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let g = lane(wid, nwg, lid);
    if g >= params.lanes {
        return;
    }
    let n = params.lanes * params.per_lane;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var i = g;
    // n is a multiple of 2 · lanes.
    for (; i < n; i += 2u * params.lanes) {
        a0 += src[i];
        a1 += src[i + params.lanes];
    }
    sink[g] = dot(a0 + a1, vec4<f32>(1.0));
}

@compute @workgroup_size(WG)
fn fmas(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let g = lane(wid, nwg, lid);
    if g >= params.lanes {
        return;
    }
    // Multiplier and addend from the parameters: no compiler can fold the chains.
    let m = vec4<f32>(params.mul);
    let c = vec4<f32>(params.add);
    let x = f32(g % 64u) * 1e-3;
    var a0 = vec4<f32>(x);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var i = 0u; i < params.per_lane; i++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    sink[g] = dot(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7, vec4<f32>(1.0));
}
