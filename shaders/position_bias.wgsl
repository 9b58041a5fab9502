// Relative position bias (T5): expands a per-head table over relative positions into the
// attention bias of one call or decode step.
//
// relative_position_bias: out[h, i, j] = table[h, clamp(j - (i + q_offset), -M, M) + M]
// for h < heads, i < q_len, j < kv_len; table is [heads, 2M + 1] (M = max_dist), out is
// [heads, q_len, kv_len], attention's bias layout with batch 1. One invocation per element
// of out. Constant: WG.

@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn relative_position_bias(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.n {
        return;
    }
    let j = e % params.kv_len;
    let hi = e / params.kv_len;
    let i = hi % params.q_len;
    let h = hi / params.q_len;
    // Column M + clamp(j - pos, -M, M) in unsigned arithmetic: no signed wrap for any u32 j
    // and pos (the launcher keeps pos = i + q_offset below 2^32).
    let m = params.max_dist;
    let pos = i + params.q_offset;
    var col: u32;
    if j >= pos {
        col = m + min(j - pos, m);
    } else {
        col = m - min(pos - j, m);
    }
    out[e] = table[h * (2u * m + 1u) + col];
}
