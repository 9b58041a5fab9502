// Layout copies between a strided sequence of heads and head-major contiguous blocks, so that
// attention can run as batched matmuls (ops/attention/gemm.rs).
//
// Element e of the block is (r, h, t, d) with e = ((r * heads + h) * len + t) * head_dim + d;
// its strided place is off + ((first + r) / div) * bs + t * rs + h * head_dim + d.
//   split: block[e] = strided[place], or 0 when t >= visible or t >= lengths[(first + r) / div]
//          (has_lengths): keys and values no query sees never reach a product, even as NaN
//          garbage times a zero probability.
//   merge: strided[place] = block[e] (div is 1).

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> lengths: array<u32>;

struct Place {
    strided: u32,
    row: u32,
    t: u32,
}

fn place(e: u32) -> Place {
    let d = e % params.head_dim;
    let rest = e / params.head_dim;
    let t = rest % params.len;
    let rh = rest / params.len;
    let h = rh % params.heads;
    let row = (params.first + rh / params.heads) / params.div;
    return Place(params.off + row * params.bs + t * params.rs + h * params.head_dim + d, row, t);
}

//#if SPLIT
@compute @workgroup_size(WG)
fn split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.total {
        return;
    }
    let p = place(e);
    var x = 0.0;
    if p.t < params.visible && (params.has_lengths == 0u || p.t < lengths[p.row]) {
        x = src[p.strided];
    }
    dst[e] = x;
}
//#else
@compute @workgroup_size(WG)
fn merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.total {
        return;
    }
    dst[place(e).strided] = src[e];
}
//#endif
