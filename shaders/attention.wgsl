// Fused scaled dot-product attention: out = softmax(scale * Q.K^T + bias, masked) . V
//
// Element (b, t, h, d) of Q, K, V and out is at `off + row * batch_stride + t * row_stride +
// h * head_dim + d`; for Q and out row = b, for K and V row = kv_row(b, t): b / kv_group, or
// the beam table kv_rows[b * kv_rows_stride + t] (clamped to the rows the tensors hold).
//
// Masks: query i of batch row b sees keys j < limit(b, i) with
//     limit = min(kv_len, lengths[b / kv_group] (if has_lengths), i + causal_offset + 1 (if causal)).
// Keys j >= limit are excluded by index: they are never read into a max, a sum or the
// weighted sum of V (so garbage, even NaN, in padded cache rows cannot leak), and their
// probability is exactly 0. A row with limit 0 outputs zeros. Scores are scale * dot + bias
// in f32; running maxima start at the most negative finite f32 (no infinities).
//
// Kernels (one section each, chosen by the FLASH / SPLIT flags of the key):
//   naive_scores, naive_pv   plain loops around a materialised score matrix (the softmax in
//                            between is shaders/softmax.wgsl). The reference kernels.
//   flash                    WG queries of one (b, h) per workgroup, one per invocation; key and
//                            value tiles of BK rows staged in workgroup memory; online softmax.
//   split, merge             keys of one query row split over several workgroups (decode);
//                            partial (max, sum, acc) merged by `merge`.

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> kv_rows: array<u32>;
// [batch, heads, q_len, kv_len]: the probabilities (naive: the scores first, then softmaxed
// in place).
@group(0) @binding(8) var<storage, read_write> probs: array<f32>;

const NEG_MAX: f32 = -3.40282346e38;

fn row_limit(b: u32, i: u32) -> u32 {
    var limit = params.kv_len;
    if params.has_lengths != 0u {
        limit = min(limit, lengths[b / params.kv_group]);
    }
    if params.causal != 0u {
        limit = min(limit, i + params.causal_offset + 1u);
    }
    return limit;
}

fn kv_row(b: u32, t: u32) -> u32 {
    if params.has_kv_rows != 0u {
        return min(kv_rows[b * params.kv_rows_stride + t], params.kv_rows_max);
    }
    return b / params.kv_group;
}

fn q_base(b: u32, i: u32, h: u32) -> u32 {
    return params.q_off + b * params.q_bs + i * params.q_rs + h * params.head_dim;
}

fn k_base(row: u32, j: u32, h: u32) -> u32 {
    return params.k_off + row * params.k_bs + j * params.k_rs + h * params.head_dim;
}

fn v_base(row: u32, j: u32, h: u32) -> u32 {
    return params.v_off + row * params.v_bs + j * params.v_rs + h * params.head_dim;
}

fn o_base(b: u32, i: u32, h: u32) -> u32 {
    return params.o_off + b * params.o_bs + i * params.o_rs + h * params.head_dim;
}

// Start of the probability row of (b, h, i).
fn p_base(b: u32, h: u32, i: u32) -> u32 {
    return ((b * params.heads + h) * params.q_len + i) * params.kv_len;
}

// Start of the bias row of (b, h, i) (bias_bs is 0 for a bias shared by the batch).
fn bias_base(b: u32, h: u32, i: u32) -> u32 {
    return b * params.bias_bs + (h * params.q_len + i) * params.kv_len;
}

// ---------------------------------------------------------------------------------------
// Naive: one invocation per score, then (after the softmax) one per output element.

// probs[b, h, i, j] = q(b, i, h) . k(b, j, h)   (unscaled; the softmax applies the scale)
@compute @workgroup_size(WG)
fn naive_scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.total {
        return;
    }
    let j = e % params.kv_len;
    let r = e / params.kv_len;
    let i = r % params.q_len;
    let bh = r / params.q_len;
    let h = bh % params.heads;
    let b = bh / params.heads;
    let qb = q_base(b, i, h);
    let kb = k_base(kv_row(b, j), j, h);
    var acc = 0.0;
    for (var d = 0u; d < params.head_dim; d++) {
        acc += q[qb + d] * k[kb + d];
    }
    probs[e] = acc;
}

// out(b, i, h, d) = sum over visible j of probs[b, h, i, j] * v(b, j, h, d)
@compute @workgroup_size(WG)
fn naive_pv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.total {
        return;
    }
    let d = e % params.head_dim;
    let r = e / params.head_dim; // (b * q_len + i) * heads + h
    let h = r % params.heads;
    let bi = r / params.heads;
    let i = bi % params.q_len;
    let b = bi / params.q_len;
    let limit = row_limit(b, i);
    let pb = p_base(b, h, i);
    var acc = 0.0;
    for (var j = 0u; j < limit; j++) {
        acc += probs[pb + j] * v[v_base(kv_row(b, j), j, h) + d];
    }
    out[o_base(b, i, h) + d] = acc;
}
