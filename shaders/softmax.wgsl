// Masked softmax over the last dimension: one workgroup of WG invocations per row.
//
// The input is seen as [batch, heads, q_len, kv_len]; row r = (b * heads + h) * q_len + i.
// For each row the visible keys are j < limit, where
//     limit = min(kv_len, lengths[b / len_div] (if has_lengths), i + causal_offset + 1 (if causal)).
// Keys j >= limit are excluded (never read into the max or the sum) and written as exactly 0;
// a row with limit 0 is all zeros. Visible entries are exp(v - max) / sum with
// v = scale * x + bias, computed in f32.
//
// Constants:
//   WG         invocations per workgroup (a power of two).
//   IN_PLACE   true: `x` is read and overwritten (one read_write binding);
//              false: `x` is read-only and the result goes to `y`.
//   SUBGROUPS  reductions through subgroups, otherwise a shared-memory tree: wg_max, wg_sum,
//              lid and init come from shaders/reduce.wgsl, composed in front of this file.

//#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
//#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
//#endif
@group(0) @binding(2) var<storage, read> lengths: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

// Most negative finite f32: the running maximum starts here (no infinities needed).
const NEG_MAX: f32 = -3.40282346e38;

fn store(i: u32, v: f32) {
//#if IN_PLACE
    x[i] = v;
//#else
    y[i] = v;
//#endif
}

// What `store` wrote at `i` (each invocation reads back only its own entries).
fn stored(i: u32) -> f32 {
//#if IN_PLACE
    return x[i];
//#else
    return y[i];
//#endif
}

fn score(base: u32, bias_base: u32, j: u32) -> f32 {
    var v = params.scale * x[base + j];
    if params.has_bias != 0u {
        v += bias[bias_base + j];
    }
    return v;
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return; // uniform across the workgroup
    }
    let kv = params.kv_len;
    let i = row % params.q_len;
    let bh = row / params.q_len;
    let b = bh / params.heads;
    let h = bh % params.heads;
    let base = row * kv;
    let bias_base = b * params.bias_batch_stride + (h * params.q_len + i) * kv;

    var limit = kv;
    if params.has_lengths != 0u {
        limit = min(limit, lengths[b / params.len_div]);
    }
    if params.causal != 0u {
        limit = min(limit, i + params.causal_offset + 1u);
    }

    var m = NEG_MAX;
    for (var j = lid; j < limit; j += WG) {
        m = max(m, score(base, bias_base, j));
    }
    m = wg_max(m);
    // The exponentials are stored as they are summed and scaled in place after: one exp per
    // entry (the costly part on CPU adapters), each invocation rereading only what it wrote.
    var s = 0.0;
    for (var j = lid; j < limit; j += WG) {
        let e = exp(score(base, bias_base, j) - m);
        store(base + j, e);
        s += e;
    }
    s = wg_sum(s);
    let inv = select(0.0, 1.0 / s, s > 0.0);
    for (var j = lid; j < kv; j += WG) {
        var p = 0.0;
        if j < limit {
            p = stored(base + j) * inv;
        }
        store(base + j, p);
    }
}
