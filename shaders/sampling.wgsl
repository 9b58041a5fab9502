// Per-row reductions over logits x f32 [rows, V], so a decode step reads back token ids:
// argmax, log_softmax (out of place or in place), top-k (plain or local lists), logit edits
// and the teacher-forced log-probability gather. One workgroup of WG invocations per row.
//
// Ordering of (value, index) pairs everywhere: larger value first, lower index among equal
// values (torch.argmax / torch.topk on CPU). NaN logits give unspecified results.
//
// Constants (every key sets all of them):
//   WG          invocations per workgroup (a power of two).
//   SUBGROUPS   reductions through subgroup operations (any subgroup size, read at run time);
//               otherwise shared-memory trees. wg_max, wg_sum, red, lid and init come from
//               shaders/reduce.wgsl, composed in front of this file.
//   INPLACE     log_softmax reads and writes `xio` instead of reading `x` and writing `out`.
//   HAS_ADDEND  top-k adds addend[row] to every value of the row.
//   CAP         topk_threshold's candidate capacity (1 for the other kernels).
//   UNROLL      argmax and topk_threshold scan four strided elements per iteration.
//
// Each entry point uses its own binding numbers, so one module serves them all.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> xio: array<f32>;
@group(0) @binding(5) var<storage, read> addend: array<f32>;
@group(0) @binding(6) var<storage, read_write> topk_values: array<f32>;
@group(0) @binding(7) var<storage, read_write> topk_ids: array<u32>;
@group(0) @binding(8) var<storage, read> edits: array<u32>;
@group(0) @binding(9) var<storage, read> targets: array<u32>;
@group(0) @binding(10) var<storage, read_write> gathered: array<f32>;

// Index of "no entry": loses every tie.
const NONE: u32 = 0xffffffffu;

// The indices beside the values in reduce.wgsl's `red` (wg_best and topk_threshold): one
// slot per invocation, or per subgroup.
var<workgroup> red_i: array<u32, WG>;

struct Best {
    v: f32,
    i: u32,
}

// Whether (av, ai) comes before (bv, bi): larger value, then lower index.
fn better(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
    return av > bv || (av == bv && ai < bi);
}

// The first pair of the workgroup in that order, returned to every invocation. It stays here
// rather than in reduce.wgsl: only sampling reduces pairs, and they need `red_i` beside
// `red`, which the other families would declare for nothing.
fn wg_best(v: f32, i: u32) -> Best {
//#if SUBGROUPS
    let m = subgroupMax(v);
    let mi = subgroupMin(select(NONE, i, v == m));
    if sg_lane == 0u {
        red[sg_id] = m;
        red_i[sg_id] = mi;
    }
    workgroupBarrier();
    var bv = params.neg_inf;
    var bi = NONE;
    for (var base = 0u; base < sg_count; base += sg_size) {
        let j = min(base + sg_lane, WG - 1u);
        if base + sg_lane < sg_count && better(red[j], red_i[j], bv, bi) {
            bv = red[j];
            bi = red_i[j];
        }
    }
    let m2 = subgroupMax(bv);
    let i2 = subgroupMin(select(NONE, bi, bv == m2));
    workgroupBarrier();
    return Best(m2, i2);
//#else
    red[lid] = v;
    red_i[lid] = i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s && better(red[lid + s], red_i[lid + s], red[lid], red_i[lid]) {
            red[lid] = red[lid + s];
            red_i[lid] = red_i[lid + s];
        }
        workgroupBarrier();
    }
    let r = Best(red[0], red_i[0]);
    workgroupBarrier();
    return r;
//#endif
}

// ---------------------------------------------------------------------------------------
// argmax: ids[row] = first index of the row's maximum. Each invocation scans a stride of
// the row keeping its best pair, then one workgroup reduction.

// The first best pair of x[base + j] + add over this invocation's stride j = lid + m WG.
fn stride_best(base: u32, v: u32, add: f32) -> Best {
    var bv = params.neg_inf;
    var bi = NONE;
    var i = lid;
//#if UNROLL
    // Four independent chains over i, i + WG, i + 2 WG, i + 3 WG (more loads in flight, no
    // branches). Indices rise along each chain, so strict > keeps its first maximum; a chain
    // takes its first element unconditionally.
    var cv = vec4<f32>(params.neg_inf);
    var ci = vec4<u32>(NONE);
    let offs = vec4<u32>(0u, WG, 2u * WG, 3u * WG);
    for (; i + 3u * WG < v; i += 4u * WG) {
        let a = vec4<f32>(x[base + i], x[base + i + WG], x[base + i + 2u * WG], x[base + i + 3u * WG]) + add;
        let up = (a > cv) | (ci == vec4<u32>(NONE));
        cv = select(cv, a, up);
        ci = select(ci, vec4<u32>(i) + offs, up);
    }
    for (var c = 0u; c < 4u; c++) {
        if better(cv[c], ci[c], bv, bi) {
            bv = cv[c];
            bi = ci[c];
        }
    }
//#endif
    for (; i < v; i += WG) {
        let val = x[base + i] + add;
        if better(val, i, bv, bi) {
            bv = val;
            bi = i;
        }
    }
    return Best(bv, bi);
}

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return; // uniform across the workgroup
    }
    let v = params.v;
    let base = row * v;
    let t = stride_best(base, v, 0.0);
    let b = wg_best(t.v, t.i);
    if lid == 0u {
        argmax_ids[row] = b.i;
    }
}

// ---------------------------------------------------------------------------------------
// log_softmax: out = (x - max) - log(sum(exp(x - max))), three passes over the row.

fn load_x(i: u32) -> f32 {
//#if INPLACE
    return xio[i];
//#else
    return x[i];
//#endif
}

// max and log(sum(exp(x - max))) of the row starting at `base`.
fn row_lse(base: u32, v: u32) -> vec2<f32> {
    var m = params.neg_inf;
    for (var i = lid; i < v; i += WG) {
        m = max(m, load_x(base + i));
    }
    m = wg_max(m);
    var s = 0.0;
    for (var i = lid; i < v; i += WG) {
        s += exp(load_x(base + i) - m);
    }
    return vec2<f32>(m, log(wg_sum(s)));
}

@compute @workgroup_size(WG)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let v = params.v;
    let base = row * v;
    let ml = row_lse(base, v);
    for (var i = lid; i < v; i += WG) {
        let r = (load_x(base + i) - ml.x) - ml.y;
//#if INPLACE
        xio[base + i] = r;
//#else
        out[base + i] = r;
//#endif
    }
}

// ---------------------------------------------------------------------------------------
// log_softmax_gather: gathered[row] = x[row, targets[row]] - logsumexp(x[row, :]); a target
// outside the row (PyTorch's ignore_index -100 as u32) gives 0.

@compute @workgroup_size(WG)
fn log_softmax_gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let v = params.v;
    let base = row * v;
    let ml = row_lse(base, v);
    if lid == 0u {
        let t = targets[row];
        gathered[row] = select(0.0, (load_x(base + min(t, v - 1u)) - ml.x) - ml.y, t < v);
    }
}

// ---------------------------------------------------------------------------------------
// top-k of x[row, :] + addend[row], sorted. Two kernels:
//   topk_plain:     k rounds (topk_rounds); round j scans the row for the best pair after
//                   the one round j-1 chose. Any k, no per-invocation state: the reference.
//   topk_threshold: a first scan finds each invocation's best pair and ranks them for a
//                   threshold no answer is below (the k-th best of those); a second scan
//                   gathers the entries >= threshold in workgroup memory; then either each
//                   candidate ranks itself (at most WG of them) or k rounds pick from them.

fn row_addend(row: u32) -> f32 {
//#if HAS_ADDEND
    return addend[row];
//#else
    return 0.0;
//#endif
}

// Writes row `row`'s top k in k rounds, each choosing the best pair after the one the round
// before chose (pairs are distinct by index): over the first `len` candidates in workgroup
// memory (from_cand), or over the row's entries x[base + s] + add, s < len.
fn topk_rounds(row: u32, base: u32, add: f32, len: u32, from_cand: bool) {
    let k = params.k;
    var pv = 0.0;
    var pi = 0u;
    for (var j = 0u; j < k; j++) {
        var bv = params.neg_inf;
        var bi = NONE;
        for (var s = lid; s < len; s += WG) {
            var cv: f32;
            var ci: u32;
            if from_cand {
                cv = cand_v[s];
                ci = cand_i[s];
            } else {
                cv = x[base + s] + add;
                ci = s;
            }
            if (j == 0u || better(pv, pi, cv, ci)) && better(cv, ci, bv, bi) {
                bv = cv;
                bi = ci;
            }
        }
        let b = wg_best(bv, bi);
        pv = b.v;
        pi = b.i;
        if lid == 0u {
            topk_values[row * k + j] = b.v;
            topk_ids[row * k + j] = b.i;
        }
    }
}

@compute @workgroup_size(WG)
fn topk_plain(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    topk_rounds(row, row * params.v, row_addend(row), params.v, false);
}

// Candidates of topk_threshold: pairs >= the threshold, in arrival order.
var<workgroup> cand_v: array<f32, CAP>;
var<workgroup> cand_i: array<u32, CAP>;
var<workgroup> cand_n: atomic<u32>;
var<workgroup> cand_count: u32;
var<workgroup> thr_shared: f32;

fn push_candidate(val: f32, i: u32, thr: f32) {
    if val >= thr {
        let s = atomicAdd(&cand_n, 1u);
        if s < CAP {
            cand_v[s] = val;
            cand_i[s] = i;
        }
    }
}

@compute @workgroup_size(WG)
fn topk_threshold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let v = params.v;
    let k = params.k;
    let base = row * v;
    let add = row_addend(row);
    let m = stride_best(base, v, add);

    // Pass 1: each invocation's best pair m; thr, the k-th best of those, bounds the answer:
    // k invocations hold a value >= thr, so every pair of the top k is >= thr. Each
    // invocation ranks its own pair against all WG (pairs are distinct by index); fewer than
    // k pairs (k > WG) leave thr at -inf, where every entry qualifies.
    red[lid] = m.v;
    red_i[lid] = m.i;
    if lid == 0u {
        atomicStore(&cand_n, 0u);
        thr_shared = params.neg_inf;
    }
    workgroupBarrier();
    var rank = 0u;
    for (var t = 0u; t < WG; t++) {
        rank += u32(better(red[t], red_i[t], m.v, m.i));
    }
    if rank == k - 1u && m.i != NONE {
        thr_shared = m.v;
    }
    workgroupBarrier();
    let thr = thr_shared;

    // Pass 2: the pairs >= thr (usually a few more than k) go to workgroup memory.
    var i = lid;
//#if UNROLL
    for (; i + 3u * WG < v; i += 4u * WG) {
        let a = vec4<f32>(x[base + i], x[base + i + WG], x[base + i + 2u * WG], x[base + i + 3u * WG]) + add;
        if any(a >= vec4<f32>(thr)) {
            for (var c = 0u; c < 4u; c++) {
                push_candidate(a[c], i + c * WG, thr);
            }
        }
    }
//#endif
    for (; i < v; i += WG) {
        push_candidate(x[base + i] + add, i, thr);
    }
    workgroupBarrier();
    if lid == 0u {
        cand_count = atomicLoad(&cand_n);
    }
    let n = workgroupUniformLoad(&cand_count);

    if n <= WG {
        // Few candidates: each ranks its own against all n and lands in its output slot.
        if lid < n {
            let cv = cand_v[lid];
            let ci = cand_i[lid];
            var r = 0u;
            for (var t = 0u; t < n; t++) {
                r += u32(better(cand_v[t], cand_i[t], cv, ci));
            }
            if r < k {
                topk_values[row * k + r] = cv;
                topk_ids[row * k + r] = ci;
            }
        }
        return;
    }

    // Many candidates: k rounds over them, or over the whole row when they overflowed CAP
    // (massive ties at thr). The row needs no filter: at least k of its pairs are >= thr, so
    // the rounds never reach one below.
    let from_cand = n <= CAP;
    topk_rounds(row, base, add, select(v, n, from_cand), from_cand);
}

// ---------------------------------------------------------------------------------------
// edit_logits: one invocation per (row, token, kind) triple; triples outside x are skipped.

@compute @workgroup_size(WG)
fn edit_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) l: u32) {
    let e = group_index(wid, nwg) * WG + l;
    if e >= params.n_edits {
        return;
    }
    let row = edits[3u * e];
    let tok = edits[3u * e + 1u];
    let kind = edits[3u * e + 2u];
    if row >= params.rows || tok >= params.v {
        return;
    }
    let i = row * params.v + tok;
    if kind == 0u {
        xio[i] = params.neg_inf;
    } else if kind == 1u {
        let a = xio[i];
        xio[i] = select(a / params.penalty, a * params.penalty, a < 0.0);
    }
}
