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

// Four consecutive columns per invocation (D % 4 == 0): a quarter of the index arithmetic,
// one f16 unpack per pair of halves, and wider contiguous loads.
@compute @workgroup_size(WG)
fn embed_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    let d = params.d;
    let quads = d / 4u;
    if i >= params.n_tokens * quads {
        return;
    }
    let tok = i / quads;
    let c = (i - tok * quads) * 4u;
    let id = ids[tok];
    if id < params.row_start || id - params.row_start >= params.v {
        return;
    }
    let e = (id - params.row_start) * d + c;
//#if W_F16
    var val = vec4<f32>(unpack2x16float(table[e >> 1u]), unpack2x16float(table[(e >> 1u) + 1u]));
//#else
    var val = bitcast<vec4<f32>>(vec4<u32>(table[e], table[e + 1u], table[e + 2u], table[e + 3u]));
//#endif
    val *= params.scale;
//#if POSITIONS
    let p = ((tok % params.t_len) + params.pos_offset) * d + c;
    val += vec4<f32>(pos[p], pos[p + 1u], pos[p + 2u], pos[p + 3u]);
//#endif
    let o = tok * d + c;
    out[o] = val.x;
    out[o + 1u] = val.y;
    out[o + 2u] = val.z;
    out[o + 3u] = val.w;
}
