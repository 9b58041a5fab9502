// Batched matmul with a fused epilogue: out[b, m, off + n] = act(Σ_k a[b,m,k]·B[b,n,k] + bias[n])
// + residual[b, m, off + n].
//
// Entries (one per MatmulImpl, all sharing the bindings and the epilogue below):
//   naive  one invocation per output element.
//   tiled  BM×BN output tile per workgroup, BK-deep slices of A and B staged in workgroup
//          memory, TM×TN outputs per invocation in registers.
//   rows_nk, rows_kn  few rows of A (decode): weights streamed once, K split across the
//          workgroup and reduced (B as [N, K] and as [K, N]).
//   bcast  CPU adapters: one subgroup per block, B per lane, A by subgroup broadcast.
//
// Constants every key sets:
//   W_F16     B holds f16 pairs in u32 words (else f32 bits)
//   W_I8      B holds int8 quads in u32 words (TRANS_B, K % 4 == 0), with per-row f32 scales
//             that multiply each dot product before the bias
//   TRANS_B   B is [N, K] (else [K, N])
//   HAS_BIAS, HAS_RES, ACT (0 none, 1 gelu erf, 2 gelu tanh, 3 relu, 4 silu; activate() is
//             in activation.wgsl)
//   A_VEC4    a is read as vec4<f32> (K % 4 == 0)
//   W_VEC4    w is declared vec4<u32> (4 f32, 8 f16 or 16 int8 per load), W_VEC2 vec2<u32> (4 f16 per
//             load), neither: u32. The launcher sets one only when B's contiguous dimension
//             (K with TRANS_B, else N) is a multiple of the elements per load.
// Entry-specific constants are listed above each entry; each entry's section is compiled only
// under its flag (NAIVE, TILED, ROWS, BCAST), so its constants need not exist for the others;
// QUADS holds the quad loaders tiled and bcast share.
// Absent bias/residual bindings are bound to `a` by the launcher and never read (the residual's
// declaration is compiled only with HAS_RES: the norm-prologue layout has no binding 4).
// rows_nk may normalise A's rows first: NORM_A, RMS_A, KEEP in norm_prologue.wgsl.

//#if A_VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> a: array<f32>;
//#endif
//#if W_VEC4
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
//#else
//#if W_VEC2
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
//#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
//#endif
//#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
//#if HAS_RES
@group(0) @binding(4) var<storage, read> res: array<f32>;
//#endif
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
//#if W_I8
@group(0) @binding(6) var<storage, read> scales: array<f32>;
//#endif

// ---------------------------------------------------------------------------------------------
// Element access

// Element i of a (scalar view whatever the declaration).
fn a_at(i: u32) -> f32 {
//#if A_VEC4
    return a[i >> 2u][i & 3u];
//#else
    return a[i];
//#endif
}

// Element i of B, widened to f32.
fn b_at(i: u32) -> f32 {
//#if W_I8
    let wi = i >> 2u;
//#else
//#if W_F16
    let wi = i >> 1u;
//#else
    let wi = i;
//#endif
//#endif
//#if W_VEC4
    let word = w[wi >> 2u][wi & 3u];
//#else
//#if W_VEC2
    let word = w[wi >> 1u][wi & 1u];
//#else
    let word = w[wi];
//#endif
//#endif
//#if W_I8
    // Byte i & 3 of the word, sign-extended.
    return f32(extractBits(bitcast<i32>(word), (i & 3u) * 8u, 8u));
//#else
//#if W_F16
    return half_at(word, i);
//#else
    return bitcast<f32>(word);
//#endif
//#endif
}

// ---------------------------------------------------------------------------------------------
// Epilogue

// activate(x) (ACT) comes from activation.wgsl, shared with elementwise's gated product.

// Finishes output element (row bm = b·M + m, column n) from its dot product and stores it.
fn store(acc: f32, bm: u32, n: u32) {
    let o = bm * params.out_ld + params.out_off + n;
    var v = acc;
//#if W_I8
    v *= scales[n];
//#endif
    if HAS_BIAS {
        v += bias[n];
    }
    v = activate(v);
//#if HAS_RES
    v += res[o];
//#endif
    out[o] = v;
}

// Offset of B[n, k] (TRANS_B) or B[k, n] inside one batch's B.
fn b_index(n: u32, k: u32) -> u32 {
    if TRANS_B {
        return n * params.k + k;
    }
    return k * params.n + n;
}

// ---------------------------------------------------------------------------------------------
// naive: one invocation per output element, plain loop over K. Constant: WG.
//#if NAIVE

@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    if idx >= params.batch * params.m * params.n {
        return;
    }
    let n = idx % params.n;
    let bm = idx / params.n;
    let batch = bm / params.m;
    let a_row = bm * params.k;
    let b_base = batch * params.b_bstride;
    var acc = 0.0;
    for (var k = 0u; k < params.k; k++) {
        acc += a_at(a_row + k) * b_at(b_base + b_index(n, k));
    }
    store(acc, bm, n);
}
//#endif

// ---------------------------------------------------------------------------------------------
// tiled: workgroup tile BM×BN; K in BK-deep slices staged in workgroup memory as vec4 (A
// transposed to [k][m/4], B as [k][n/4]); each invocation accumulates TM×TN outputs in
// registers: row quads ty + i·TY and column quads tx + j·TX (i < TM/4, j < TN/4), so
// neighbouring invocations read neighbouring vec4s of workgroup memory (no bank conflicts on
// GPUs) and write neighbouring columns of out.
//
// Constants: BM, BN, BK (multiples of 4), TM, TN ∈ {4, 8} with flags TM8, TN8 (the register
// block is written out by hand: a CPU driver keeps a constant-indexed block in registers but
// turns loop-indexed ones into memory). Loads are quads of 4 elements along the contiguous
// dimension, vector loads when A_VEC4 / W_VEC2 / W_VEC4 allow, per-element masks otherwise.
// TILED_SG (8×8 blocks, TX = 8, subgroups whose size range contains 8): when the subgroups
// really are TX wide, A comes from workgroup memory once per 4 k steps and by
// subgroupBroadcast, cutting the workgroup-memory reads per k step from 4 to 2.25 (on
// lavapipe each such read is a per-lane loop: ~1.3× overall).

//#if QUADS
// a[i .. i+4), where i is row `ok`'s element at column k; zero beyond K or for a masked row.
fn a_quad(ok: bool, i: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
//#if A_VEC4
    if ok && k < params.k {
        v = a[i >> 2u];
    }
//#else
    for (var e = 0u; e < 4u; e++) {
        if ok && k + e < params.k {
            v[e] = a[i + e];
        }
    }
//#endif
    return v;
}

// B[i .. i+4) along its contiguous dimension, at position c of lim; zero beyond.
fn b_quad(ok: bool, i: u32, c: u32, lim: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
//#if W_I8
    // One word: int8 quads start at multiples of 4 along K (K % 4 == 0).
    if ok && c < lim {
        v = vec4<f32>(unpack4xI8(w[i >> 2u]));
    }
//#else
//#if W_VEC2
    if ok && c < lim {
        let q = w[i >> 2u];
        v = vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
    }
//#else
//#if W_VEC4
    if ok && c < lim {
        v = bitcast<vec4<f32>>(w[i >> 2u]);
    }
//#else
    for (var e = 0u; e < 4u; e++) {
        if ok && c + e < lim {
            v[e] = b_at(i + e);
        }
    }
//#endif
//#endif
//#endif
    return v;
}

//#endif

//#if TILED
const TX: u32 = BN / TN;
const TY: u32 = BM / TM;
const NT: u32 = TX * TY;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;
const BK4: u32 = BK / 4u;
const NACC: u32 = TM * TN / 4u;

var<workgroup> a_tile: array<vec4<f32>, BK * BM4>;
var<workgroup> b_tile: array<vec4<f32>, BK * BN4>;

// Rows q0..q3 of a 4×4 block, stored transposed: tile[(k + e)·stride + r4] holds column e.
fn a_block(k4: u32, r4: u32, q0: vec4<f32>, q1: vec4<f32>, q2: vec4<f32>, q3: vec4<f32>) {
    let o = k4 * 4u * BM4 + r4;
    a_tile[o] = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
    a_tile[o + BM4] = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
    a_tile[o + 2u * BM4] = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
    a_tile[o + 3u * BM4] = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
}

fn b_block(k4: u32, r4: u32, q0: vec4<f32>, q1: vec4<f32>, q2: vec4<f32>, q3: vec4<f32>) {
    let o = k4 * 4u * BN4 + r4;
    b_tile[o] = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
    b_tile[o + BN4] = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
    b_tile[o + 2u * BN4] = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
    b_tile[o + 3u * BN4] = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
}

// acc rows o, o + TN/4, ... (4 rows of one column quad) += av ⊗ bv.
fn outer4(acc: ptr<function, array<vec4<f32>, NACC>>, o: u32, av: vec4<f32>, bv: vec4<f32>) {
    (*acc)[o] += av.x * bv;
    (*acc)[o + TN / 4u] += av.y * bv;
    (*acc)[o + 2u * (TN / 4u)] += av.z * bv;
    (*acc)[o + 3u * (TN / 4u)] += av.w * bv;
}

// Stores the 4×4 block of acc at o: rows m..m+4 (b·M + m in bm), columns n..n+4.
fn store_block(acc: ptr<function, array<vec4<f32>, NACC>>, o: u32, bm: u32, m: u32, n: u32) {
    for (var e = 0u; e < 4u; e++) {
        var v: vec4<f32>;
        switch e {
            case 0u: { v = (*acc)[o]; }
            case 1u: { v = (*acc)[o + TN / 4u]; }
            case 2u: { v = (*acc)[o + 2u * (TN / 4u)]; }
            default: { v = (*acc)[o + 3u * (TN / 4u)]; }
        }
        if m + e < params.m {
            for (var c = 0u; c < 4u; c++) {
                if n + c < params.n {
                    store(v[c], bm + e, n + c);
                }
            }
        }
    }
}

//#if TILED_SG
// One k step of the 8×8 block with the two A quads already in registers.
fn sg_step(acc: ptr<function, array<vec4<f32>, NACC>>, kk: u32, tx: u32, a0: vec4<f32>,
           a1: vec4<f32>) {
    let b0 = b_tile[kk * BN4 + tx];
    let b1 = b_tile[kk * BN4 + tx + TX];
    outer4(acc, 0u, a0, b0);
    outer4(acc, 1u, a0, b1);
    outer4(acc, TN, a1, b0);
    outer4(acc, TN + 1u, a1, b1);
}
//#endif

@compute @workgroup_size(NT)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32,
//#if TILED_SG
         @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32,
         @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) sg_count: u32
//#endif
) {
    let tiles_n = (params.n + BN - 1u) / BN;
    let tiles_m = (params.m + BM - 1u) / BM;
    let g = group_index(wid, nwg);
    let batch = g / (tiles_n * tiles_m);
    let m0 = ((g / tiles_n) % tiles_m) * BM;
    let n0 = (g % tiles_n) * BN;
//#if TILED_SG
    // Subgroups of exactly TX invocations (checked at run time, uniform per workgroup): one
    // subgroup per ty, lanes as tx, so the A quads every lane of a subgroup needs can be read
    // once, spread over the lanes, and broadcast.
    let sg_fit = sg_size == TX && sg_count == TY;
    let tx = select(lid % TX, sg_lane, sg_fit);
    let ty = select(lid / TX, sg_id, sg_fit);
//#else
    let tx = lid % TX;
    let ty = lid / TX;
//#endif
    let a_base = batch * params.m * params.k;
    let b_base = batch * params.b_bstride;
    let kdim = params.k;

    var acc: array<vec4<f32>, NACC>;

    for (var k0 = 0u; k0 < kdim; k0 += BK) {
        // A: BM × BK as 4×4 blocks, each read as 4 row quads and stored transposed.
        for (var c = lid; c < BM4 * BK4; c += NT) {
            let r4 = c / BK4;
            let k4 = c % BK4;
            let m = m0 + r4 * 4u;
            let k = k0 + k4 * 4u;
            let i = a_base + m * kdim + k;
            a_block(k4, r4,
                a_quad(m < params.m, i, k),
                a_quad(m + 1u < params.m, i + kdim, k),
                a_quad(m + 2u < params.m, i + 2u * kdim, k),
                a_quad(m + 3u < params.m, i + 3u * kdim, k));
        }
        if TRANS_B {
            // B is [N, K]: like A.
            for (var c = lid; c < BN4 * BK4; c += NT) {
                let r4 = c / BK4;
                let k4 = c % BK4;
                let n = n0 + r4 * 4u;
                let k = k0 + k4 * 4u;
                let i = b_base + n * kdim + k;
                b_block(k4, r4,
                    b_quad(n < params.n, i, k, kdim),
                    b_quad(n + 1u < params.n, i + kdim, k, kdim),
                    b_quad(n + 2u < params.n, i + 2u * kdim, k, kdim),
                    b_quad(n + 3u < params.n, i + 3u * kdim, k, kdim));
            }
        } else {
            // B is [K, N]: quads along n are already the tile's layout.
            for (var c = lid; c < BK * BN4; c += NT) {
                let kr = c / BN4;
                let n = n0 + (c % BN4) * 4u;
                let k = k0 + kr;
                b_tile[c] = b_quad(k < kdim, b_base + k * params.n + n, n, params.n);
            }
        }
        workgroupBarrier();

//#if TILED_SG
        if sg_fit {
            // Lane l reads quad (l & 1) of k step kb + l / 2: 1 read for 4 k steps instead of 8.
            for (var kb = 0u; kb < BK; kb += 4u) {
                let mine = a_tile[(kb + (tx >> 1u)) * BM4 + ty + (tx & 1u) * TY];
                sg_step(&acc, kb, tx, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u));
                sg_step(&acc, kb + 1u, tx, subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u));
                sg_step(&acc, kb + 2u, tx, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u));
                sg_step(&acc, kb + 3u, tx, subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
            }
        } else {
//#endif
        for (var kk = 0u; kk < BK; kk++) {
            let a0 = a_tile[kk * BM4 + ty];
            let b0 = b_tile[kk * BN4 + tx];
            outer4(&acc, 0u, a0, b0);
//#if TN8
            let b1 = b_tile[kk * BN4 + tx + TX];
            outer4(&acc, 1u, a0, b1);
//#endif
//#if TM8
            let a1 = a_tile[kk * BM4 + ty + TY];
            outer4(&acc, TN, a1, b0);
//#if TN8
            outer4(&acc, TN + 1u, a1, b1);
//#endif
//#endif
        }
//#if TILED_SG
        }
//#endif
        workgroupBarrier();
    }

    let bm = batch * params.m + m0;
    store_block(&acc, 0u, bm + ty * 4u, m0 + ty * 4u, n0 + tx * 4u);
//#if TN8
    store_block(&acc, 1u, bm + ty * 4u, m0 + ty * 4u, n0 + (tx + TX) * 4u);
//#endif
//#if TM8
    store_block(&acc, TN, bm + (ty + TY) * 4u, m0 + (ty + TY) * 4u, n0 + tx * 4u);
//#if TN8
    store_block(&acc, TN + 1u, bm + (ty + TY) * 4u, m0 + (ty + TY) * 4u, n0 + (tx + TX) * 4u);
//#endif
//#endif
}
//#endif

// ---------------------------------------------------------------------------------------------
// bcast (CPU adapters): one subgroup of 8 lanes per workgroup, BR = 8·RI rows × 64 columns;
// lane l owns the column quads n0 + 4l and n0 + 32 + 4l for every row. On lavapipe a load
// at a per-lane address is a loop over the lanes, and a lane-independent address does not
// help (only constant ones are scalarised), while subgroupBroadcast from a constant lane is
// one extract and splat. So a lane loads only what is its own, B's 8 columns (with TRANS_B
// as 8 quads along k, 4 k steps each, regrouped into column quads in registers), and A's BR
// values per k step, the same for every lane, come from one quad load per lane per 8 rows
// and 4 k steps (lane l holds row 8i + l) and broadcasts: 8 + RI per-lane loads per k step
// for 64·RI multiply-adds (tiled's 8×8 blocks: 8 loads from workgroup memory, plus staging,
// for 64). Measured ~2× tiled's CPU tiles (32x512x2048: 13.8 → 29 GFLOP/s). The
// accumulators (up to 64 vec4) spill to the stack, but those loads and stores are vector-wide.
// No workgroup memory and no barriers. Needs subgroups of exactly 8 lanes (the launcher
// refuses other adapters): a variant sharing the quads through workgroup memory instead
// compiled so slowly on llvmpipe GL (82 s for one test's specialisations, cold) that other
// threads outwaited wgpu's 6 s GL context lock and panicked.
//
// Constants: RI ∈ {1, 2, 4} with flags BC16 (RI ≥ 2) and BC32 (RI = 4).
//#if BCAST
const BR: u32 = 8u * RI;

// acc rows r: columns of quad 0 in acc[2r], of quad 1 in acc[2r + 1].
fn bc_row(acc: ptr<function, array<vec4<f32>, 2u * BR>>, r: u32, av: f32, b0: vec4<f32>,
          b1: vec4<f32>) {
    (*acc)[2u * r] += av * b0;
    (*acc)[2u * r + 1u] += av * b1;
}

// Rows o .. o + 8 at k step kk of the chunk: row o + s's value is x in lane s.
fn bc_group(acc: ptr<function, array<vec4<f32>, 2u * BR>>, o: u32, x: f32, kk: u32,
            b0: vec4<f32>, b1: vec4<f32>) {
    bc_row(acc, o, subgroupBroadcast(x, 0u), b0, b1);
    bc_row(acc, o + 1u, subgroupBroadcast(x, 1u), b0, b1);
    bc_row(acc, o + 2u, subgroupBroadcast(x, 2u), b0, b1);
    bc_row(acc, o + 3u, subgroupBroadcast(x, 3u), b0, b1);
    bc_row(acc, o + 4u, subgroupBroadcast(x, 4u), b0, b1);
    bc_row(acc, o + 5u, subgroupBroadcast(x, 5u), b0, b1);
    bc_row(acc, o + 6u, subgroupBroadcast(x, 6u), b0, b1);
    bc_row(acc, o + 7u, subgroupBroadcast(x, 7u), b0, b1);
}

// Stores row r of acc (block rows start at m, bm = b·M + m; the lane's quads at n, n + 32).
fn bc_store_row(acc: ptr<function, array<vec4<f32>, 2u * BR>>, r: u32, bm: u32, m: u32, n: u32) {
    if m + r < params.m {
        let v0 = (*acc)[2u * r];
        let v1 = (*acc)[2u * r + 1u];
        for (var c = 0u; c < 4u; c++) {
            if n + c < params.n {
                store(v0[c], bm + r, n + c);
            }
            if n + 32u + c < params.n {
                store(v1[c], bm + r, n + 32u + c);
            }
        }
    }
}

// Rows o .. o + 8 (written out: acc is indexed by constants only, so it stays in registers).
fn bc_store(acc: ptr<function, array<vec4<f32>, 2u * BR>>, o: u32, bm: u32, m: u32, n: u32) {
    bc_store_row(acc, o, bm, m, n);
    bc_store_row(acc, o + 1u, bm, m, n);
    bc_store_row(acc, o + 2u, bm, m, n);
    bc_store_row(acc, o + 3u, bm, m, n);
    bc_store_row(acc, o + 4u, bm, m, n);
    bc_store_row(acc, o + 5u, bm, m, n);
    bc_store_row(acc, o + 6u, bm, m, n);
    bc_store_row(acc, o + 7u, bm, m, n);
}

//#if TRANS_B
// B[n, k .. k+4) (zero past N or K).
fn bc_b(n: u32, b_base: u32, k: u32) -> vec4<f32> {
    return b_quad(n < params.n, b_base + n * params.k + k, k, params.k);
}
//#endif

@compute @workgroup_size(8)
fn bcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let tiles_n = (params.n + 63u) / 64u;
    let tiles_m = (params.m + BR - 1u) / BR;
    let g = group_index(wid, nwg);
    let batch = g / (tiles_n * tiles_m);
    let m0 = ((g / tiles_n) % tiles_m) * BR;
    let n0 = (g % tiles_n) * 64u;
    let kdim = params.k;
    let a_base = batch * params.m * kdim;
    let b_base = batch * params.b_bstride;
    let nq = n0 + 4u * lid;
    // The lane loads A's rows m0 + 8i + lid.
    let ar = m0 + lid;
    let ai = a_base + ar * kdim;

    var acc: array<vec4<f32>, 2u * BR>;
    for (var k = 0u; k < kdim; k += 4u) {
//#if TRANS_B
        // B[n, k .. k+4) of the lane's 8 columns.
        let bq0 = bc_b(nq, b_base, k);
        let bq1 = bc_b(nq + 1u, b_base, k);
        let bq2 = bc_b(nq + 2u, b_base, k);
        let bq3 = bc_b(nq + 3u, b_base, k);
        let bq4 = bc_b(nq + 32u, b_base, k);
        let bq5 = bc_b(nq + 33u, b_base, k);
        let bq6 = bc_b(nq + 34u, b_base, k);
        let bq7 = bc_b(nq + 35u, b_base, k);
//#endif
        let aq0 = a_quad(ar < params.m, ai + k, k);
//#if BC16
        let aq1 = a_quad(ar + 8u < params.m, ai + 8u * kdim + k, k);
//#endif
//#if BC32
        let aq2 = a_quad(ar + 16u < params.m, ai + 16u * kdim + k, k);
        let aq3 = a_quad(ar + 24u < params.m, ai + 24u * kdim + k, k);
//#endif
        for (var kk = 0u; kk < 4u; kk++) {
//#if TRANS_B
            let b0 = vec4<f32>(bq0[kk], bq1[kk], bq2[kk], bq3[kk]);
            let b1 = vec4<f32>(bq4[kk], bq5[kk], bq6[kk], bq7[kk]);
//#else
            let kr = k + kk;
            let bi = b_base + kr * params.n + nq;
            let b0 = b_quad(kr < kdim, bi, nq, params.n);
            let b1 = b_quad(kr < kdim, bi + 32u, nq + 32u, params.n);
//#endif
            bc_group(&acc, 0u, aq0[kk], kk, b0, b1);
//#if BC16
            bc_group(&acc, 8u, aq1[kk], kk, b0, b1);
//#endif
//#if BC32
            bc_group(&acc, 16u, aq2[kk], kk, b0, b1);
            bc_group(&acc, 24u, aq3[kk], kk, b0, b1);
//#endif
        }
    }

    let bm = batch * params.m + m0;
    bc_store(&acc, 0u, bm, m0, nq);
//#if BC16
    bc_store(&acc, 8u, bm, m0, nq);
//#endif
//#if BC32
    bc_store(&acc, 16u, bm, m0, nq);
    bc_store(&acc, 24u, bm, m0, nq);
//#endif
}
//#endif

// ---------------------------------------------------------------------------------------------
// Few rows (decode steps): memory-bound, so each workgroup streams its weights once for all of
// its MR rows of A, with K split across the workgroup's WG invocations and the partial sums
// reduced at the end: subgroupAdd then one slot per subgroup when SUBGROUPS, a tree in
// workgroup memory otherwise. Output (row m, column n) of a workgroup is slot n·MR + m.
//
// Grid: one workgroup per (NR-column block, MR-row block, batch), column blocks fastest.
//
// Constants: WG, MR, NR (columns per workgroup), SUBGROUPS, RED_SLOTS (workgroup-memory
// floats for the reduction), PAIRS (f16 read as whole u32 words when not W_VEC4), QN (rows_kn),
// MAX_SG (with SUBGROUPS). ROWS covers the shared helpers, ROWS_NK / ROWS_KN one entry each.

//#if ROWS
var<workgroup> red: array<f32, RED_SLOTS>;

// Sums each slot of acc over the workgroup into red; slot_total(s) then reads slot s. Every
// invocation must call it (it contains barriers).
fn reduce_slots(acc: ptr<function, array<f32, NR * MR>>, lid: u32, sg_lane: u32, sg_id: u32) {
//#if SUBGROUPS
    // RED_SLOTS = NR·MR·MAX_SG; MAX_SG bounds the subgroups of a workgroup for the smallest
    // subgroup size the adapter reports.
    for (var s = 0u; s < NR * MR; s++) {
        let t = subgroupAdd((*acc)[s]);
        if sg_lane == 0u {
            red[s * MAX_SG + sg_id] = t;
        }
    }
//#else
    // RED_SLOTS = NR·MR·WG, WG a power of two.
    for (var s = 0u; s < NR * MR; s++) {
        red[s * WG + lid] = (*acc)[s];
    }
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if lid < h {
            for (var s = 0u; s < NR * MR; s++) {
                red[s * WG + lid] += red[s * WG + lid + h];
            }
        }
    }
//#endif
    workgroupBarrier();
}

fn slot_total(s: u32, sg_count: u32) -> f32 {
//#if SUBGROUPS
    var total = 0.0;
    for (var j = 0u; j < sg_count; j++) {
        total += red[s * MAX_SG + j];
    }
    return total;
//#else
    return red[s * WG];
//#endif
}

struct RowsBlock {
    batch: u32,
    m0: u32,
    n0: u32,
}

fn rows_block(wid: vec3<u32>, nwg: vec3<u32>) -> RowsBlock {
    let blocks_n = (params.n + NR - 1u) / NR;
    let blocks_m = (params.m + MR - 1u) / MR;
    let g = group_index(wid, nwg);
    return RowsBlock(g / (blocks_n * blocks_m), ((g / blocks_n) % blocks_m) * MR, (g % blocks_n) * NR);
}

//#if ROWS_NK
// B is [N, K]: each of the NR weight rows is contiguous; invocation lid reads chunks lid,
// lid + WG, ... of every row (neighbouring invocations read neighbouring words) and each
// chunk meets all MR rows of A while in registers.
@compute @workgroup_size(WG)
fn rows_nk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32,
//#if SUBGROUPS
           @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
           @builtin(num_subgroups) sg_count: u32
//#endif
) {
//#if !SUBGROUPS
    let sg_lane = 0u;
    let sg_id = 0u;
    let sg_count = 0u;
//#endif
    let blk = rows_block(wid, nwg);
    let kdim = params.k;
    let b_base = blk.batch * params.b_bstride;
    let a_base = (blk.batch * params.m + blk.m0) * kdim;
    // Rows past N or M read row 0 (in bounds) and are never stored.
    var wrow: array<u32, NR>;
    for (var r = 0u; r < NR; r++) {
        wrow[r] = b_base + select(0u, (blk.n0 + r) * kdim, blk.n0 + r < params.n);
    }
    var arow: array<u32, MR>;
    for (var m = 0u; m < MR; m++) {
        arow[m] = select(a_base - blk.m0 * kdim, a_base + m * kdim, blk.m0 + m < params.m);
    }

//#if NORM_A
    prologue_stats(&arow, lid, sg_lane, sg_id, sg_count);
    if blk.n0 == 0u {
        prologue_keep(&arow, params.m - blk.m0, lid);
    }
//#endif

    var acc: array<f32, NR * MR>;
//#if W_VEC4
    // Chunks of one vec4<u32>: 16 int8 (four quads), 8 f16 (two quads) or 4 f32 (one quad);
    // K is a multiple of the chunk, so A is vec4-aligned too.
//#if W_I8
    const Q: u32 = 4u;
//#else
//#if W_F16
    const Q: u32 = 2u;
//#else
    const Q: u32 = 1u;
//#endif
//#endif
    for (var c = lid; c < kdim / (4u * Q); c += WG) {
        var wq: array<vec4<f32>, NR * Q>;
        for (var r = 0u; r < NR; r++) {
//#if W_I8
            let u = w[(wrow[r] >> 4u) + c];
            wq[r * 4u] = vec4<f32>(unpack4xI8(u.x));
            wq[r * 4u + 1u] = vec4<f32>(unpack4xI8(u.y));
            wq[r * 4u + 2u] = vec4<f32>(unpack4xI8(u.z));
            wq[r * 4u + 3u] = vec4<f32>(unpack4xI8(u.w));
//#else
//#if W_F16
            let u = w[(wrow[r] >> 3u) + c];
            wq[r * 2u] = vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
            wq[r * 2u + 1u] = vec4<f32>(unpack2x16float(u.z), unpack2x16float(u.w));
//#else
            wq[r] = bitcast<vec4<f32>>(w[(wrow[r] >> 2u) + c]);
//#endif
//#endif
        }
        for (var m = 0u; m < MR; m++) {
            for (var q = 0u; q < Q; q++) {
                let av = norm_quad(m, c * Q + q, a[(arow[m] >> 2u) + c * Q + q]);
                for (var r = 0u; r < NR; r++) {
                    acc[r * MR + m] += dot(av, wq[r * Q + q]);
                }
            }
        }
    }
//#else
//#if PAIRS
    // f16 with K even: one u32 word (two halves) per step.
    for (var c = lid; c < kdim / 2u; c += WG) {
        var wp: array<vec2<f32>, NR>;
        for (var r = 0u; r < NR; r++) {
            wp[r] = unpack2x16float(w[(wrow[r] >> 1u) + c]);
        }
        for (var m = 0u; m < MR; m++) {
            let k = 2u * c;
            let av = vec2<f32>(norm_el(m, k, a_at(arow[m] + k)),
                               norm_el(m, k + 1u, a_at(arow[m] + k + 1u)));
            for (var r = 0u; r < NR; r++) {
                acc[r * MR + m] += dot(av, wp[r]);
            }
        }
    }
//#else
    for (var k = lid; k < kdim; k += WG) {
        var wv: array<f32, NR>;
        for (var r = 0u; r < NR; r++) {
            wv[r] = b_at(wrow[r] + k);
        }
        for (var m = 0u; m < MR; m++) {
            let av = norm_el(m, k, a_at(arow[m] + k));
            for (var r = 0u; r < NR; r++) {
                acc[r * MR + m] += av * wv[r];
            }
        }
    }
//#endif
//#endif

    reduce_slots(&acc, lid, sg_lane, sg_id);
    for (var s = lid; s < NR * MR; s += WG) {
        let n = blk.n0 + s / MR;
        let m = blk.m0 + s % MR;
        if n < params.n && m < params.m {
            store(slot_total(s, sg_count), blk.batch * params.m + m, n);
        }
    }
}

//#endif

//#if ROWS_KN
// B is [K, N]: the workgroup's NR = 4·QN columns are contiguous along a row of B; invocation
// lid takes column quad lid % QN and rows k ≡ lid / QN (mod KS), KS = WG / QN, and reduces
// over the KS slices. One slot per (column, row of A).
@compute @workgroup_size(WG)
fn rows_kn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let blk = rows_block(wid, nwg);
    let kdim = params.k;
    let qn = lid % QN;
    let ks = lid / QN;
    let n = blk.n0 + qn * 4u;
    let b_base = blk.batch * params.b_bstride;
    let a_base = (blk.batch * params.m + blk.m0) * kdim;
    var arow: array<u32, MR>;
    for (var m = 0u; m < MR; m++) {
        arow[m] = select(a_base - blk.m0 * kdim, a_base + m * kdim, blk.m0 + m < params.m);
    }
    var acc: array<vec4<f32>, MR>;
    for (var k = ks; k < kdim; k += WG / QN) {
        let i = b_base + k * params.n + n;
        var wq = vec4<f32>(0.0);
//#if W_VEC4
        if n < params.n {
            wq = bitcast<vec4<f32>>(w[i >> 2u]);
        }
//#else
//#if W_VEC2
        if n < params.n {
            let u = w[i >> 2u];
            wq = vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
        }
//#else
        for (var e = 0u; e < 4u; e++) {
            if n + e < params.n {
                wq[e] = b_at(i + e);
            }
        }
//#endif
//#endif
        for (var m = 0u; m < MR; m++) {
            acc[m] += a_at(arow[m] + k) * wq;
        }
    }
    // Reduce over the KS slices: red holds MR·NR·KS floats as [m][column][slice].
    const KS: u32 = WG / QN;
    for (var m = 0u; m < MR; m++) {
        for (var e = 0u; e < 4u; e++) {
            red[((m * NR) + qn * 4u + e) * KS + ks] = acc[m][e];
        }
    }
    for (var h = KS / 2u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if ks < h {
            for (var m = 0u; m < MR; m++) {
                for (var e = 0u; e < 4u; e++) {
                    let s = ((m * NR) + qn * 4u + e) * KS;
                    red[s + ks] += red[s + ks + h];
                }
            }
        }
    }
    workgroupBarrier();
    for (var s = lid; s < MR * NR; s += WG) {
        let m = blk.m0 + s / NR;
        let col = blk.n0 + s % NR;
        if m < params.m && col < params.n {
            store(red[s * KS], blk.batch * params.m + m, col);
        }
    }
}
//#endif
//#endif
