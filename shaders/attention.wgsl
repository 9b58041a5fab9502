// STAND-IN (branch model): naive attention until branch `attention` lands. One invocation
// per (batch row, query, head); three passes over the keys (max, sum, weighted values).

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
//#if HAS_LENGTHS
@group(0) @binding(5) var<storage, read> key_lengths: array<u32>;
//#endif
//#if HAS_BIAS
@group(0) @binding(6) var<storage, read> bias: array<f32>;
//#endif
//#if HAS_ROWS
@group(0) @binding(7) var<storage, read> kv_rows: array<u32>;
//#endif
//#if HAS_PROBS
@group(0) @binding(8) var<storage, read_write> probs: array<f32>;
//#endif

fn kv_row(b: u32, j: u32) -> u32 {
//#if HAS_ROWS
    return kv_rows[b * params.rows_stride + j];
//#else
    return b / params.kv_group;
//#endif
}

fn masked(b: u32, t: u32, j: u32) -> bool {
    var m = false;
//#if HAS_LENGTHS
    m = m || j >= key_lengths[b / params.kv_group];
//#endif
    if params.causal == 1u {
        m = m || j > t + params.causal_offset;
    }
    return m;
}

fn score(b: u32, t: u32, h: u32, j: u32) -> f32 {
    let qb = params.q_off + b * params.q_bs + t * params.q_rs + h * params.head_dim;
    let r = kv_row(b, j);
    let kb = params.k_off + r * params.k_bs + j * params.k_rs + h * params.head_dim;
    var s = 0.0;
    for (var d = 0u; d < params.head_dim; d++) {
        s += q[qb + d] * k[kb + d];
    }
    s *= params.scale;
//#if HAS_BIAS
    var bb = b;
    if params.bias_batch == 1u {
        bb = 0u;
    }
    s += bias[((bb * params.heads + h) * params.q_len + t) * params.kv_len + j];
//#endif
    return s;
}

@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    if idx >= params.batch * params.q_len * params.heads {
        return;
    }
    let h = idx % params.heads;
    let t = (idx / params.heads) % params.q_len;
    let b = idx / (params.heads * params.q_len);
    var mx = -3.0e38;
    var any = false;
    for (var j = 0u; j < params.kv_len; j++) {
        if !masked(b, t, j) {
            mx = max(mx, score(b, t, h, j));
            any = true;
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < params.kv_len; j++) {
        if !masked(b, t, j) {
            sum += exp(score(b, t, h, j) - mx);
        }
    }
    let ob = params.o_off + b * params.o_bs + t * params.o_rs + h * params.head_dim;
    for (var d = 0u; d < params.head_dim; d++) {
        out[ob + d] = 0.0;
    }
    for (var j = 0u; j < params.kv_len; j++) {
        var p = 0.0;
        if any && !masked(b, t, j) {
            p = exp(score(b, t, h, j) - mx) / sum;
            let r = kv_row(b, j);
            let vb = params.v_off + r * params.v_bs + j * params.v_rs + h * params.head_dim;
            for (var d = 0u; d < params.head_dim; d++) {
                out[ob + d] += p * v[vb + d];
            }
        }
//#if HAS_PROBS
        probs[((b * params.heads + h) * params.q_len + t) * params.kv_len + j] = p;
//#endif
    }
}
