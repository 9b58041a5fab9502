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

// VEC4 (flash and split only): every Q/K/V offset, stride and head_dim is a multiple of 4,
// so head vectors are read as whole vec4s.
//#if VEC4
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
//#endif
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

//#if NAIVE
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

//#endif

// ---------------------------------------------------------------------------------------
// Row loads of dh-element head vectors as vec4s (zero-padded past dh; dh is the constant DH
// where they are used, so the bounds fold away).

//#if FLASH
const DH4: u32 = (DH + 3u) / 4u;
//#endif
//#if SPLIT
const DH4: u32 = (DH + 3u) / 4u;
//#endif

//#if VEC4
fn q4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    return q[(base >> 2u) + c];
}

fn k4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    return k[(base >> 2u) + c];
}

fn v4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    return v[(base >> 2u) + c];
}
//#else
// One loader per binding (a WGSL function cannot take a storage array: naga does not
// implement unrestricted_pointer_parameters), sharing the bounds: the indices of column c
// clamped into the row, and the lanes past dh zeroed.
fn col4(base: u32, c: u32, dh: u32) -> vec4<u32> {
    return base + min(vec4<u32>(c * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(dh - 1u));
}

fn keep4(x: vec4<f32>, c: u32, dh: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), x, vec4<u32>(c * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(dh));
}

fn q4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    let i = col4(base, c, dh);
    return keep4(vec4<f32>(q[i.x], q[i.y], q[i.z], q[i.w]), c, dh);
}

fn k4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    let i = col4(base, c, dh);
    return keep4(vec4<f32>(k[i.x], k[i.y], k[i.z], k[i.w]), c, dh);
}

fn v4(base: u32, c: u32, dh: u32) -> vec4<f32> {
    let i = col4(base, c, dh);
    return keep4(vec4<f32>(v[i.x], v[i.y], v[i.z], v[i.w]), c, dh);
}

//#endif

fn hsum(x: vec4<f32>) -> f32 {
    return (x.x + x.y) + (x.z + x.w);
}

//#if FLASH
// ---------------------------------------------------------------------------------------
// Flash: a workgroup takes BQ = WG / TD consecutive queries of one (b, h) and walks the keys
// in tiles of BK rows. Per tile: K and V rows are staged in workgroup memory (the Q tile
// stays there throughout), the BQ x BK scores are computed by all invocations into `st`,
// then each query's TD invocations update the online softmax (running max m, sum l,
// accumulator rescaled once per tile; the TD invocations of a query compute m and l
// redundantly) and accumulate P.V for their NA vec4 columns (c = td + n * TD). The key loop
// stops at the largest visible key of the workgroup (limits grow with i within one b), so
// causal tiles past the diagonal are skipped. Small private arrays only (NA <= 4 vec4s):
// drivers that do not unroll loops (llvmpipe's GL) index them cheaply.
// With probabilities requested, a second pass recomputes each tile's scores the same way and
// writes exp(s - m) / l.
// Constants: WG invocations, TD invocations per query, BK keys per tile (a multiple of 4),
// DH = head_dim; BQ is even.

const BQ: u32 = WG / TD;
const NA: u32 = (DH4 + TD - 1u) / TD;
// Padded row strides (bank conflicts).
const QSTR: u32 = DH4 + 1u;
const SSTR: u32 = BK + 1u;

var<workgroup> qt: array<vec4<f32>, BQ * QSTR>;
var<workgroup> ktile: array<vec4<f32>, BK * QSTR>;
var<workgroup> vtile: array<vec4<f32>, BK * DH4>;
var<workgroup> st: array<f32, BQ * SSTR>;
var<workgroup> lim: array<u32, BQ>;
var<workgroup> mrow: array<f32, BQ>;
var<workgroup> irow: array<f32, BQ>;

// Stages K rows k0 .. k0 + BK of (b, h) (and the V rows when with_v); rows >= end are zero.
fn load_tile(b: u32, h: u32, k0: u32, end: u32, lid: u32, with_v: bool) {
    for (var e = lid; e < BK * DH4; e += WG) {
        let r = e / DH4;
        let c = e % DH4;
        let j = k0 + r;
        var kk = vec4<f32>(0.0);
        var vv = vec4<f32>(0.0);
        if j < end {
            let row = kv_row(b, j);
            kk = k4(k_base(row, j, h), c, DH);
            if with_v {
                vv = v4(v_base(row, j, h), c, DH);
            }
        }
        ktile[r * QSTR + c] = kk;
        if with_v {
            vtile[e] = vv;
        }
    }
}

// Stores one score of the tile when key k0 + r is visible to query i0 + qi.
fn store_score(b: u32, h: u32, i0: u32, k0: u32, qi: u32, r: u32, d4: vec4<f32>) {
    let j = k0 + r;
    if j < lim[qi] {
        var s = params.scale * hsum(d4);
        if params.has_bias != 0u {
            s += bias[bias_base(b, h, i0 + qi) + j];
        }
        st[qi * SSTR + r] = s;
    }
}

// st[qi][r] = scale * q(i0 + qi) . k(k0 + r) + bias for the visible keys of each query. Each
// invocation computes 2 queries x 4 keys at a time (6 loads per 8 vec4 products).
fn tile_scores(b: u32, h: u32, i0: u32, k0: u32, lid: u32) {
    let kq = BK / 4u;
    for (var e = lid; e < (BQ / 2u) * kq; e += WG) {
        let qa = (e / kq) * 2u;
        let r0 = (e % kq) * 4u;
        var s00 = vec4<f32>(0.0);
        var s01 = vec4<f32>(0.0);
        var s02 = vec4<f32>(0.0);
        var s03 = vec4<f32>(0.0);
        var s10 = vec4<f32>(0.0);
        var s11 = vec4<f32>(0.0);
        var s12 = vec4<f32>(0.0);
        var s13 = vec4<f32>(0.0);
        for (var c = 0u; c < DH4; c++) {
            let x0 = qt[qa * QSTR + c];
            let x1 = qt[(qa + 1u) * QSTR + c];
            let y0 = ktile[r0 * QSTR + c];
            let y1 = ktile[(r0 + 1u) * QSTR + c];
            let y2 = ktile[(r0 + 2u) * QSTR + c];
            let y3 = ktile[(r0 + 3u) * QSTR + c];
            s00 += x0 * y0;
            s01 += x0 * y1;
            s02 += x0 * y2;
            s03 += x0 * y3;
            s10 += x1 * y0;
            s11 += x1 * y1;
            s12 += x1 * y2;
            s13 += x1 * y3;
        }
        store_score(b, h, i0, k0, qa, r0, s00);
        store_score(b, h, i0, k0, qa, r0 + 1u, s01);
        store_score(b, h, i0, k0, qa, r0 + 2u, s02);
        store_score(b, h, i0, k0, qa, r0 + 3u, s03);
        store_score(b, h, i0, k0, qa + 1u, r0, s10);
        store_score(b, h, i0, k0, qa + 1u, r0 + 1u, s11);
        store_score(b, h, i0, k0, qa + 1u, r0 + 2u, s12);
        store_score(b, h, i0, k0, qa + 1u, r0 + 3u, s13);
    }
}

@compute @workgroup_size(WG)
fn flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let bh = g / params.q_tiles;
    if bh >= params.batch * params.heads {
        return; // uniform across the workgroup
    }
    let i0 = (g % params.q_tiles) * BQ;
    let h = bh % params.heads;
    let b = bh / params.heads;
    for (var e = lid; e < BQ; e += WG) {
        let i = i0 + e;
        lim[e] = select(0u, row_limit(b, i), i < params.q_len);
    }
    for (var e = lid; e < BQ * DH4; e += WG) {
        let qi = e / DH4;
        let c = e % DH4;
        let i = i0 + qi;
        var x = vec4<f32>(0.0);
        if i < params.q_len {
            x = q4(q_base(b, i, h), c, DH);
        }
        qt[qi * QSTR + c] = x;
    }
    let tile_end = row_limit(b, min(i0 + BQ, params.q_len) - 1u);
    workgroupBarrier();

    let qi = lid / TD;
    let td = lid % TD;
    let i = i0 + qi;
    let my_lim = lim[qi];
    var acc: array<vec4<f32>, NA>;
    for (var n = 0u; n < NA; n++) {
        acc[n] = vec4<f32>(0.0);
    }
    var m = NEG_MAX;
    var l = 0.0;
    for (var k0 = 0u; k0 < tile_end; k0 += BK) {
        load_tile(b, h, k0, tile_end, lid, true);
        workgroupBarrier();
        tile_scores(b, h, i0, k0, lid);
        workgroupBarrier();
        let nk = select(0u, min(BK, my_lim - k0), my_lim > k0);
        if nk > 0u {
            var tmax = NEG_MAX;
            for (var r = 0u; r < nk; r++) {
                tmax = max(tmax, st[qi * SSTR + r]);
            }
            let m_new = max(m, tmax);
            let corr = select(exp(m - m_new), 1.0, l == 0.0); // nothing accumulated yet
            l *= corr;
            for (var n = 0u; n < NA; n++) {
                acc[n] *= corr;
            }
            for (var r = 0u; r < nk; r++) {
                let p = exp(st[qi * SSTR + r] - m_new);
                l += p;
                for (var n = 0u; n < NA; n++) {
                    let c = td + n * TD;
                    if DH4 % TD == 0u || c < DH4 {
                        acc[n] += p * vtile[r * DH4 + c];
                    }
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    if i < params.q_len {
        let ob = o_base(b, i, h);
        for (var n = 0u; n < NA; n++) {
            let c = td + n * TD;
            let o = acc[n] * inv;
            let d = c * 4u;
            if d < DH { out[ob + d] = o.x; }
            if d + 1u < DH { out[ob + d + 1u] = o.y; }
            if d + 2u < DH { out[ob + d + 2u] = o.z; }
            if d + 3u < DH { out[ob + d + 3u] = o.w; }
        }
    }
    if params.write_probs == 0u {
        return; // uniform
    }
    // Second pass: exact normalised probabilities from the final max and sum.
    if td == 0u {
        mrow[qi] = m;
        irow[qi] = inv;
    }
    for (var k0 = 0u; k0 < params.kv_len; k0 += BK) {
        if k0 < tile_end {
            load_tile(b, h, k0, tile_end, lid, false);
        }
        workgroupBarrier();
        if k0 < tile_end {
            tile_scores(b, h, i0, k0, lid);
        }
        workgroupBarrier();
        for (var e = lid; e < BQ * BK; e += WG) {
            let q2 = e / BK;
            let r = e % BK;
            let j = k0 + r;
            let i2 = i0 + q2;
            if i2 < params.q_len && j < params.kv_len {
                var p = 0.0;
                if j < lim[q2] {
                    p = exp(st[q2 * SSTR + r] - mrow[q2]) * irow[q2];
                }
                probs[p_base(b, h, i2) + j] = p;
            }
        }
        workgroupBarrier();
    }
}
//#endif

//#if SPLIT
// ---------------------------------------------------------------------------------------
// Split keys: workgroup (row, split) with row = (b * heads + h) * q_len + i handles keys
// [split * chunk, (split + 1) * chunk) of that query row (chunk <= CHUNK). Scores go to
// workgroup memory, then max and sum reductions (wg_max, wg_sum from shaders/reduce.wgsl:
// subgroups or a shared tree), then P.V with the invocations spread over the vec4 columns of
// head_dim and over keys.
//   FINAL (one split): writes the normalised output (and probabilities) directly.
//   otherwise: writes (acc[DH], max, sum) to part[(row * splits + split) * (DH + 2)] through the
//   `out` binding, and unnormalised exp(s - max) to probs; `merge` combines the splits and
//   rescales the probabilities.
// Constants: WG invocations (a power of two), CHUNK, DH = head_dim, FINAL, SUBGROUPS.

@group(0) @binding(9) var<storage, read> part: array<f32>;

var<workgroup> qs: array<vec4<f32>, DH4>;
// Scores, then exp(s - max), of the chunk's keys; and each key's V element base.
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> vrow: array<u32, CHUNK>;
// P.V partials, a vec4 per invocation; each of the first DL invocations adds up its column's
// GROUPS partials (a sum per column, not over the workgroup: not a reduce.wgsl reduction).
var<workgroup> red4: array<vec4<f32>, WG>;

// P.V: DL invocations along the vec4 columns of head_dim, GROUPS groups of them along keys.
const DL: u32 = min(DH4, WG);
const GROUPS: u32 = WG / DL;

@compute @workgroup_size(WG)
fn split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         ids: LocalIds) {
    init(ids);
    let g = group_index(wid, nwg);
    let row = g / params.splits;
    if row >= params.total {
        return; // uniform across the workgroup
    }
    let sp = g % params.splits;
    let i = row % params.q_len;
    let bh = row / params.q_len;
    let h = bh % params.heads;
    let b = bh / params.heads;
    let limit = row_limit(b, i);
    let j0 = sp * params.chunk;
    let j1 = min(j0 + params.chunk, limit);
    let n = select(0u, j1 - j0, j1 > j0);

    let qb = q_base(b, i, h);
    for (var c = lid; c < DH4; c += WG) {
        qs[c] = q4(qb, c, DH);
    }
    workgroupBarrier();

    let bb = bias_base(b, h, i);
    var m = NEG_MAX;
    for (var r = lid; r < n; r += WG) {
        let j = j0 + r;
        let kr = kv_row(b, j);
        let kb = k_base(kr, j, h);
        vrow[r] = v_base(kr, j, h);
        var d4 = vec4<f32>(0.0);
        for (var c = 0u; c < DH4; c++) {
            d4 += qs[c] * k4(kb, c, DH);
        }
        var s = params.scale * hsum(d4);
        if params.has_bias != 0u {
            s += bias[bb + j];
        }
        sc[r] = s;
        m = max(m, s);
    }
    m = wg_max(m);
    var lsum = 0.0;
    for (var r = lid; r < n; r += WG) {
        let p = exp(sc[r] - m);
        sc[r] = p;
        lsum += p;
    }
    let l = wg_sum(lsum); // its barriers also publish sc and vrow
    let inv = select(0.0, 1.0 / l, l > 0.0);

    if params.write_probs != 0u {
        let pb = p_base(b, h, i);
        let end = min(j0 + params.chunk, params.kv_len);
        for (var j = j0 + lid; j < end; j += WG) {
            var p = 0.0;
            if j < j1 {
                p = sc[j - j0];
                if FINAL {
                    p *= inv;
                }
            }
            probs[pb + j] = p;
        }
    }

    // P.V: invocation (grp, cl) sums keys grp, grp + GROUPS, ... for vec4 columns cl, cl + DL, ...
    let grp = lid / DL;
    let cl = lid % DL;
    let pbase = (row * params.splits + sp) * (DH + 2u);
    let ob = o_base(b, i, h);
    var a = vec4<f32>(0.0);
    for (var c = cl; c < DH4; c += DL) {
        a = vec4<f32>(0.0);
        if grp < GROUPS {
            for (var r = grp; r < n; r += GROUPS) {
                a += sc[r] * v4(vrow[r], c, DH);
            }
        }
        if GROUPS == 1u {
            store_cols(ob, pbase, c, a * select(1.0, inv, FINAL));
        }
    }
    if GROUPS > 1u {
        red4[lid] = a;
        workgroupBarrier();
        if lid < DL {
            var t = red4[lid];
            for (var gi = 1u; gi < GROUPS; gi++) {
                t += red4[gi * DL + lid];
            }
            store_cols(ob, pbase, lid, t * select(1.0, inv, FINAL));
        }
    }
    if !FINAL && lid == 0u {
        out[pbase + DH] = m;
        out[pbase + DH + 1u] = l;
    }
}

// Writes vec4 column c of a result row: to out at `ob` (FINAL) or to the partial at `pbase`.
fn store_cols(ob: u32, pbase: u32, c: u32, x: vec4<f32>) {
    let d = c * 4u;
    let base = select(pbase, ob, FINAL);
    out[base + d] = x.x;
    if d + 1u < DH { out[base + d + 1u] = x.y; }
    if d + 2u < DH { out[base + d + 2u] = x.z; }
    if d + 3u < DH { out[base + d + 3u] = x.w; }
}

// One workgroup per query row: combines the splits' (acc, max, sum) into the output and
// rescales the probabilities the splits wrote.
@compute @workgroup_size(WG)
fn merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) l_id: u32) {
    let row = group_index(wid, nwg);
    if row >= params.total {
        return;
    }
    let i = row % params.q_len;
    let bh = row / params.q_len;
    let h = bh % params.heads;
    let b = bh / params.heads;
    let ns = params.splits;
    let pr = row * ns * (DH + 2u);
    var mx = NEG_MAX;
    for (var s = 0u; s < ns; s++) {
        let o = pr + s * (DH + 2u) + DH;
        if part[o + 1u] > 0.0 {
            mx = max(mx, part[o]);
        }
    }
    var total = 0.0;
    for (var s = 0u; s < ns; s++) {
        let o = pr + s * (DH + 2u) + DH;
        let ls = part[o + 1u];
        if ls > 0.0 {
            total += ls * exp(part[o] - mx);
        }
    }
    let inv = select(0.0, 1.0 / total, total > 0.0);
    let ob = o_base(b, i, h);
    for (var d = l_id; d < DH; d += WG) {
        var acc = 0.0;
        for (var s = 0u; s < ns; s++) {
            let o = pr + s * (DH + 2u);
            if part[o + DH + 1u] > 0.0 {
                acc += part[o + d] * exp(part[o + DH] - mx);
            }
        }
        out[ob + d] = acc * inv;
    }
    if params.write_probs != 0u {
        let pb = p_base(b, h, i);
        for (var j = l_id; j < params.kv_len; j += WG) {
            let o = pr + (j / params.chunk) * (DH + 2u) + DH;
            var f = 0.0;
            if part[o + 1u] > 0.0 {
                f = exp(part[o] - mx) * inv;
            }
            probs[pb + j] *= f;
        }
    }
}
//#endif

//#if DECODE
// ---------------------------------------------------------------------------------------
// Decode (short key rows, one dispatch). A query group is QG query rows that read the same
// keys: batch rows b0 .. b0 + QG of one kv_group (beams of one source; QG divides kv_group,
// no kv_rows table), same head h and position i; their K and V rows are loaded once for all
// of them. LANES lanes take a query group, WG / LANES query groups per workgroup. With
// SUBGROUPS the workgroup is one subgroup (WG is at most the adapter's smallest subgroup
// size) and lanes are subgroup invocations; without, LANES = 1.
// Lane l = g·CL + c of a query group: the G = LANES / CL lane groups take keys g, g + G, ...,
// the CL lanes of a lane group split head_dim (vec4 columns c, c + CL, ..., NA of them). Per
// key: the partial dot products summed over the CL lanes (shuffle-xor; none when CL = 1), an
// online-softmax update of the lane group's own (max, sum, acc), and P.V for the lane's
// columns. At the end the lane groups are rescaled to their overall max and summed
// (shuffle-xor over the lane-group bits; none when G = 1), and lane group 0 stores. No
// workgroup memory, no barriers; every cross-lane operation stays inside the aligned
// LANES-lane segment of its query group. Keys j >= limit are never read. With
// probabilities requested, a second pass recomputes the scores.
// Constants: WG, LANES (a power of two dividing WG), CL (a power of two dividing LANES),
// NA, QG, DH, VEC4, SUBGROUPS.

const G: u32 = LANES / CL;
const DH4: u32 = (DH + 3u) / 4u;

// Sum over the CL lanes of a lane group.
fn cols_sum(x: f32) -> f32 {
//#if SUBGROUPS
    var s = x;
    for (var m = 1u; m < CL; m <<= 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
//#else
    return x;
//#endif
}

// Sum over the G lane groups of a query group, per column.
fn groups_sum4(x: vec4<f32>) -> vec4<f32> {
//#if SUBGROUPS
    var s = x;
    for (var m = CL; m < LANES; m <<= 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
//#else
    return x;
//#endif
}

fn groups_sum(x: f32) -> f32 {
//#if SUBGROUPS
    var s = x;
    for (var m = CL; m < LANES; m <<= 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
//#else
    return x;
//#endif
}

fn groups_max(x: f32) -> f32 {
//#if SUBGROUPS
    var s = x;
    for (var m = CL; m < LANES; m <<= 1u) {
        s = max(s, subgroupShuffleXor(s, m));
    }
    return s;
//#else
    return x;
//#endif
}

struct DecKey {
    kb: u32,
    vb: u32,
}

fn dec_key(b0: u32, h: u32, j: u32) -> DecKey {
    let kr = kv_row(b0, j);
    return DecKey(k_base(kr, j, h), v_base(kr, j, h));
}

// Scores scale · q.k + bias of key j for the QG queries (NEG_MAX when !ok, then nothing is
// read); every lane of the subgroup calls it (uniform control flow).
fn dec_scores(b0: u32, h: u32, i: u32, j: u32, ok: bool, c: u32, qv: array<vec4<f32>, QG * NA>,
              key: DecKey) -> array<f32, QG> {
    var part: array<f32, QG>;
    if ok {
        for (var a = 0u; a < NA; a++) {
            let col = c + a * CL;
            if DH4 % CL == 0u || col < DH4 {
                let kk = k4(key.kb, col, DH);
                for (var qq = 0u; qq < QG; qq++) {
                    part[qq] += hsum(qv[qq * NA + a] * kk);
                }
            }
        }
    }
    var s: array<f32, QG>;
    for (var qq = 0u; qq < QG; qq++) {
        var x = params.scale * cols_sum(part[qq]);
        if ok && params.has_bias != 0u {
            x += bias[bias_base(b0 + qq, h, i) + j];
        }
        s[qq] = select(NEG_MAX, x, ok);
    }
    return s;
}

@compute @workgroup_size(WG)
fn decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
//#if SUBGROUPS
          @builtin(subgroup_invocation_id) lane: u32
//#else
          @builtin(local_invocation_index) lane: u32
//#endif
) {
    // Query groups in (b / QG, h, i) order.
    let qgroup = group_index(wid, nwg) * (WG / LANES) + lane / LANES;
    let lid = lane % LANES;
    if qgroup >= params.total {
        return; // uniform across the query group's lanes
    }
    let i = qgroup % params.q_len;
    let bh = qgroup / params.q_len;
    let h = bh % params.heads;
    let b0 = (bh / params.heads) * QG;
    let n = row_limit(b0, i);
    let g = lid / CL;
    let c = lid % CL;
    var qv: array<vec4<f32>, QG * NA>;
    var acc: array<vec4<f32>, QG * NA>;
    var m: array<f32, QG>;
    var l: array<f32, QG>;
    for (var qq = 0u; qq < QG; qq++) {
        let qb = q_base(b0 + qq, i, h);
        for (var a = 0u; a < NA; a++) {
            let col = c + a * CL;
            qv[qq * NA + a] = select(vec4<f32>(0.0), q4(qb, min(col, DH4 - 1u), DH), col < DH4);
            acc[qq * NA + a] = vec4<f32>(0.0);
        }
        m[qq] = NEG_MAX;
        l[qq] = 0.0;
    }
    for (var j0 = 0u; j0 < n; j0 += G) {
        let j = j0 + g;
        let ok = j < n;
        var key = DecKey(0u, 0u);
        if ok {
            key = dec_key(b0, h, j);
        }
        let s = dec_scores(b0, h, i, j, ok, c, qv, key);
        if ok {
            // Online softmax of this lane group's keys (its CL lanes agree on s, m and l).
            var p: array<f32, QG>;
            for (var qq = 0u; qq < QG; qq++) {
                let m_new = max(m[qq], s[qq]);
                let corr = select(exp(m[qq] - m_new), 1.0, l[qq] == 0.0); // nothing accumulated yet
                p[qq] = exp(s[qq] - m_new);
                l[qq] = l[qq] * corr + p[qq];
                for (var a = 0u; a < NA; a++) {
                    acc[qq * NA + a] *= corr;
                }
                m[qq] = m_new;
            }
            for (var a = 0u; a < NA; a++) {
                let col = c + a * CL;
                if DH4 % CL == 0u || col < DH4 {
                    let vv = v4(key.vb, col, DH);
                    for (var qq = 0u; qq < QG; qq++) {
                        acc[qq * NA + a] += p[qq] * vv;
                    }
                }
            }
        }
    }
    // Combine the lane groups: rescale each to the overall max, then sum.
    var inv: array<f32, QG>;
    for (var qq = 0u; qq < QG; qq++) {
        let mx = groups_max(m[qq]);
        let f = select(exp(m[qq] - mx), 0.0, l[qq] == 0.0);
        let total = groups_sum(l[qq] * f);
        inv[qq] = select(0.0, 1.0 / total, total > 0.0);
        m[qq] = mx;
        let ob = o_base(b0 + qq, i, h);
        for (var a = 0u; a < NA; a++) {
            let o = groups_sum4(acc[qq * NA + a] * f) * inv[qq];
            let col = c + a * CL;
            if g == 0u && col < DH4 {
                let d = col * 4u;
                out[ob + d] = o.x;
                if d + 1u < DH { out[ob + d + 1u] = o.y; }
                if d + 2u < DH { out[ob + d + 2u] = o.z; }
                if d + 3u < DH { out[ob + d + 3u] = o.w; }
            }
        }
    }
    if params.write_probs == 0u {
        return; // uniform
    }
    for (var j0 = 0u; j0 < n; j0 += G) {
        let j = j0 + g;
        let ok = j < n;
        var key = DecKey(0u, 0u);
        if ok {
            key = dec_key(b0, h, j);
        }
        let s = dec_scores(b0, h, i, j, ok, c, qv, key);
        if ok && c == 0u {
            for (var qq = 0u; qq < QG; qq++) {
                probs[p_base(b0 + qq, h, i) + j] = exp(s[qq] - m[qq]) * inv[qq];
            }
        }
    }
    for (var qq = 0u; qq < QG; qq++) {
        let pb = p_base(b0 + qq, h, i);
        for (var j = n + lid; j < params.kv_len; j += LANES) {
            probs[pb + j] = 0.0;
        }
    }
}
//#endif
