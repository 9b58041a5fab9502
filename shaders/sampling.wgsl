// Per-row reductions over logits x f32 [rows, V], so a decode step reads back token ids:
// argmax, log_softmax (out of place or in place), top-k (plain, threshold, or register
// lists), logit edits and the teacher-forced log-probability gather. One workgroup of WG
// invocations per row, except for the register-list top-k (one invocation per chunk).
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
//   LISTS       compiles topk_scan / topk_merge (register lists, below), with K and KB;
//   X4          topk_scan reads x as vec4s through binding 13.
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
// topk_scan / topk_merge: top-k as sorted lists in registers, no workgroup memory, no
// barriers (one invocation's work never waits for another's). Stage 1 (topk_scan): each
// invocation scans one strided chunk of a row (elements c, c + L, c + 2L, ... of a row split
// into L chunks) and writes its sorted list of K pairs; stage 2 (topk_merge, once or more):
// each invocation merges G of a row's lists into one. The last pass writes [rows, K] into
// topk_values / topk_ids; earlier ones write [rows, lists, K] scratch through the same
// bindings. A list slot that holds nothing is (-inf, NONE), which loses every comparison
// with a real pair (NONE is the largest index), so a chunk of fewer than K entries or k = V
// needs no special case, and -inf entries rank by index like any other value.
//
// Constants: K (list length = k), KB = ceil(K / 4) register blocks of 4 pairs (at most 8),
// WG (invocations per workgroup), HAS_ADDEND. The list is lv0..lv7 / li0..li7: blocks past
// KB are never touched, and with constant indices everywhere the driver keeps them in
// registers (a loop-indexed private array can become memory on CPU drivers). The section is
// compiled under LISTS only, so the other kernels need not define K and KB.

//#if LISTS
@group(0) @binding(11) var<storage, read> cand_in_v: array<f32>;
@group(0) @binding(12) var<storage, read> cand_in_i: array<u32>;
// x again, as whole vec4s (X4: x holds at least 4 entries).
@group(0) @binding(13) var<storage, read> x4: array<vec4<f32>>;

var<private> lv0: vec4<f32>;
var<private> lv1: vec4<f32>;
var<private> lv2: vec4<f32>;
var<private> lv3: vec4<f32>;
var<private> lv4: vec4<f32>;
var<private> lv5: vec4<f32>;
var<private> lv6: vec4<f32>;
var<private> lv7: vec4<f32>;
var<private> li0: vec4<u32>;
var<private> li1: vec4<u32>;
var<private> li2: vec4<u32>;
var<private> li3: vec4<u32>;
var<private> li4: vec4<u32>;
var<private> li5: vec4<u32>;
var<private> li6: vec4<u32>;
var<private> li7: vec4<u32>;
// The list's K-th pair: a pair that is not better than it cannot enter.
var<private> kth_v: f32;
var<private> kth_i: u32;

fn list_clear() {
    let nv = vec4<f32>(params.neg_inf);
    let ni = vec4<u32>(NONE);
    lv0 = nv; lv1 = nv; lv2 = nv; lv3 = nv; lv4 = nv; lv5 = nv; lv6 = nv; lv7 = nv;
    li0 = ni; li1 = ni; li2 = ni; li3 = ni; li4 = ni; li5 = ni; li6 = ni; li7 = ni;
    kth_v = params.neg_inf;
    kth_i = NONE;
}

// The last pair of the block before, and whether the new pair beat it.
struct Carry {
    v: f32,
    i: u32,
    b: bool,
}

// One block of the insertion of (x, xi) into the sorted list: a slot keeps its pair when x
// does not beat it, takes x where x first beats, and takes its predecessor after that (the
// slots x beats form a suffix of the sorted list).
fn list_block(bv: ptr<private, vec4<f32>>, bi: ptr<private, vec4<u32>>, c: Carry, x: f32,
              xi: u32) -> Carry {
    let ov = *bv;
    let oi = *bi;
    let xv4 = vec4<f32>(x);
    let b = (xv4 > ov) | ((xv4 == ov) & (vec4<u32>(xi) < oi));
    let pb = vec4<bool>(c.b, b.x, b.y, b.z);
    *bv = select(select(ov, xv4, b), vec4<f32>(c.v, ov.x, ov.y, ov.z), pb);
    *bi = select(select(oi, vec4<u32>(xi), b), vec4<u32>(c.i, oi.x, oi.y, oi.z), pb);
    return Carry(ov.w, oi.w, b.w);
}

fn list_kth() {
    const B: u32 = (K - 1u) / 4u;
    const E: u32 = (K - 1u) % 4u;
    switch B {
        case 0u: { kth_v = lv0[E]; kth_i = li0[E]; }
        case 1u: { kth_v = lv1[E]; kth_i = li1[E]; }
        case 2u: { kth_v = lv2[E]; kth_i = li2[E]; }
        case 3u: { kth_v = lv3[E]; kth_i = li3[E]; }
        case 4u: { kth_v = lv4[E]; kth_i = li4[E]; }
        case 5u: { kth_v = lv5[E]; kth_i = li5[E]; }
        case 6u: { kth_v = lv6[E]; kth_i = li6[E]; }
        default: { kth_v = lv7[E]; kth_i = li7[E]; }
    }
}

// Inserts (x, xi) unless it does not beat the K-th pair.
fn list_push(x: f32, xi: u32) {
    if !better(x, xi, kth_v, kth_i) {
        return;
    }
    var c = Carry(0.0, 0u, false);
    c = list_block(&lv0, &li0, c, x, xi);
    if KB > 1u { c = list_block(&lv1, &li1, c, x, xi); }
    if KB > 2u { c = list_block(&lv2, &li2, c, x, xi); }
    if KB > 3u { c = list_block(&lv3, &li3, c, x, xi); }
    if KB > 4u { c = list_block(&lv4, &li4, c, x, xi); }
    if KB > 5u { c = list_block(&lv5, &li5, c, x, xi); }
    if KB > 6u { c = list_block(&lv6, &li6, c, x, xi); }
    if KB > 7u { c = list_block(&lv7, &li7, c, x, xi); }
    list_kth();
}

fn store_list_block(o: u32, q: u32, bv: vec4<f32>, bi: vec4<u32>) {
    for (var e = 0u; e < 4u; e++) {
        let j = q * 4u + e;
        if j < K {
            topk_values[o + j] = bv[e];
            topk_ids[o + j] = bi[e];
        }
    }
}

// Writes the list's K pairs at o.
fn list_store(o: u32) {
    store_list_block(o, 0u, lv0, li0);
    if KB > 1u { store_list_block(o, 1u, lv1, li1); }
    if KB > 2u { store_list_block(o, 2u, lv2, li2); }
    if KB > 3u { store_list_block(o, 3u, lv3, li3); }
    if KB > 4u { store_list_block(o, 4u, lv4, li4); }
    if KB > 5u { store_list_block(o, 5u, lv5, li5); }
    if KB > 6u { store_list_block(o, 6u, lv6, li6); }
    if KB > 7u { store_list_block(o, 7u, lv7, li7); }
}

// Stage 1: invocation (row, c) of rows × L lists; elements c, c + L, ... of x[row] + addend.
@compute @workgroup_size(WG)
fn topk_scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) l: u32) {
    let t = group_index(wid, nwg) * WG + l;
    let lists = params.lists;
    if t >= params.rows * lists {
        return;
    }
    let row = t / lists;
    let c = t % lists;
    let v = params.v;
    let base = row * v;
    let add = row_addend(row);
    list_clear();
//#if X4
    // Whole vec4s of the flat x (x4 is x's buffer): the row's vec4s u0 .. u1, strided by the
    // chunk count; entries of a vec4 outside the row become (-inf, NONE), which never enters.
    // Only a last partial vec4 of x is read element by element.
    let n = params.rows * v;
    let full = n / 4u;
    let u0 = base / 4u;
    let u1 = (base + v + 3u) / 4u;
    let lane = vec4<u32>(0u, 1u, 2u, 3u);
    for (var u = u0 + c; u < u1; u += lists) {
        var a: vec4<f32>;
        if u < full {
            a = x4[u];
        } else {
            let e = min(vec4<u32>(4u * u) + lane, vec4<u32>(n - 1u));
            a = vec4<f32>(x[e.x], x[e.y], x[e.z], x[e.w]);
        }
        let e = vec4<u32>(4u * u) + lane;
        let inside = (e >= vec4<u32>(base)) & (e < vec4<u32>(base + v));
        let iv = select(vec4<f32>(params.neg_inf), a + add, inside);
        let ii = select(vec4<u32>(NONE), e - vec4<u32>(base), inside);
        let kv4 = vec4<f32>(kth_v);
        if any((iv > kv4) | ((iv == kv4) & (ii < vec4<u32>(kth_i)))) {
            list_push(iv.x, ii.x);
            list_push(iv.y, ii.y);
            list_push(iv.z, ii.z);
            list_push(iv.w, ii.w);
        }
    }
//#else
    for (var j = c; j < v; j += lists) {
        list_push(x[base + j] + add, j);
    }
//#endif
    list_store(t * K);
}

// Stage 2: invocation (row, g) merges lists g·G .. g·G + G of the row's L input lists into
// list g of its out_lists. Each input list is sorted, so its first pair that cannot enter
// ends it.
@compute @workgroup_size(WG)
fn topk_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) l: u32) {
    let t = group_index(wid, nwg) * WG + l;
    let outs = params.out_lists;
    if t >= params.rows * outs {
        return;
    }
    let row = t / outs;
    let g = t % outs;
    let first = g * params.group;
    let last = min(first + params.group, params.lists);
    list_clear();
    for (var s = first; s < last; s++) {
        let o = (row * params.lists + s) * K;
        for (var j = 0u; j < K; j++) {
            let cv = cand_in_v[o + j];
            let ci = cand_in_i[o + j];
            if !better(cv, ci, kth_v, kth_i) {
                break;
            }
            list_push(cv, ci);
        }
    }
    list_store(t * K);
}
//#endif

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
