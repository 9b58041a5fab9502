// Token embedding gather plus positions:
//   out[b, t, c] = table[ids[b, t] - row_start, c] * scale + pos[t + pos_offset, c]
// for ids inside the table chunk [row_start, row_start + v); other ids leave their output
// row untouched (another chunk's launch writes it). One invocation per output element.
//
// Constants:
//   WG         invocations per workgroup.
//   W_F16      the table holds f16 pairs in u32 words (low half first); otherwise f32 bits.
//   POSITIONS  add the position table.

@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    let d = params.d;
    if i >= params.n_tokens * d {
        return;
    }
    let tok = i / d;
    let c = i - tok * d;
    let id = ids[tok];
    if id < params.row_start || id - params.row_start >= params.v {
        return;
    }
    let e = (id - params.row_start) * d + c;
//#if W_F16
    var val = half_at(table[e >> 1u], e);
//#else
    var val = bitcast<f32>(table[e]);
//#endif
    val *= params.scale;
//#if POSITIONS
    let t = tok % params.t_len;
    val += pos[(t + params.pos_offset) * d + c];
//#endif
    out[i] = val;
}
