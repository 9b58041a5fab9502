// Row normalisation of A in the prologue of matmul's rows_nk kernel: out = epilogue(norm(A)·Bᵀ)
// in one dispatch instead of a norm kernel and a matmul. A decode step has a few rows of A of
// width K = d_model, so each workgroup computes its MR rows' statistics itself (K is read
// twice more, from cache) and normalises every element of A as it loads it. The runtime
// composes this file into the matmul family after activation.wgsl.
//
// Same arithmetic as shaders/norm.wgsl: mean first, then the biased variance over (x - mean)
// in a second pass, rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * gamma + beta; RMS
// norm is the same with mean = 0 and no beta (T5). Only the order of the partial sums
// differs (the workgroup's shape), so results agree with the norm kernel to rounding.
//
// Constants (every matmul key sets the flags):
//   NORM_A  normalise A's rows (rows_nk only; the launcher is crates/gpu/src/ops/norm_matmul.rs)
//   RMS_A   RMS norm (else layer norm)
//   KEEP    the workgroups of the first column block also write the normalised rows to
//           `normed` (post-norm layers read them later as their residual)
// With NORM_A the including kernel provides MR, WG, SUBGROUPS, MAX_SG, `red` (at least
// MR·MAX_SG floats with subgroups, MR·WG without), `a_at` and params.k / params.eps.
//
// Declares: prologue_stats, prologue_keep, norm_el, norm_quad (identities without NORM_A).

//#if NORM_A
// Quads where A is read as quads (A_VEC4: K % 4 == 0): on a CPU adapter every load costs a
// loop over the lanes, so the prologue's extra loads are what fusing costs there.
//#if A_VEC4
@group(0) @binding(7) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> beta: array<vec4<f32>>;

fn gamma_at(k: u32) -> f32 {
    return gamma[k >> 2u][k & 3u];
}

fn beta_at(k: u32) -> f32 {
    return beta[k >> 2u][k & 3u];
}
//#else
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;

fn gamma_at(k: u32) -> f32 {
    return gamma[k];
}

fn beta_at(k: u32) -> f32 {
    return beta[k];
}
//#endif
//#if KEEP
@group(0) @binding(9) var<storage, read_write> normed: array<f32>;
//#endif

// Mean (0 for RMS) and 1 / sqrt(var + eps) of each of the workgroup's MR rows.
var<private> row_mean: array<f32, MR>;
var<private> row_rstd: array<f32, MR>;

// Sums each lane's v[m] over the workgroup into v[m], for every m. Every invocation calls it.
fn rows_sum(v: ptr<function, array<f32, MR>>, lid: u32, sg_lane: u32, sg_id: u32, sg_count: u32) {
//#if SUBGROUPS
    for (var m = 0u; m < MR; m++) {
        let t = subgroupAdd((*v)[m]);
        if sg_lane == 0u {
            red[m * MAX_SG + sg_id] = t;
        }
    }
    workgroupBarrier();
    for (var m = 0u; m < MR; m++) {
        var total = 0.0;
        for (var j = 0u; j < sg_count; j++) {
            total += red[m * MAX_SG + j];
        }
        (*v)[m] = total;
    }
//#else
    for (var m = 0u; m < MR; m++) {
        red[m * WG + lid] = (*v)[m];
    }
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if lid < h {
            for (var m = 0u; m < MR; m++) {
                red[m * WG + lid] += red[m * WG + lid + h];
            }
        }
    }
    workgroupBarrier();
    for (var m = 0u; m < MR; m++) {
        (*v)[m] = red[m * WG];
    }
//#endif
    // `red` is reused by the next reduction.
    workgroupBarrier();
}

// Fills row_mean and row_rstd for the rows starting at arow[m] (elements of a).
fn prologue_stats(arow: ptr<function, array<u32, MR>>, lid: u32, sg_lane: u32, sg_id: u32,
                  sg_count: u32) {
    let kdim = params.k;
    let inv_d = 1.0 / f32(kdim);
    var s: array<f32, MR>;
//#if !RMS_A
    for (var m = 0u; m < MR; m++) {
//#if A_VEC4
        for (var k4 = lid; k4 < kdim / 4u; k4 += WG) {
            let q = a[((*arow)[m] >> 2u) + k4];
            s[m] += (q.x + q.y) + (q.z + q.w);
        }
//#else
        for (var k = lid; k < kdim; k += WG) {
            s[m] += a_at((*arow)[m] + k);
        }
//#endif
    }
    rows_sum(&s, lid, sg_lane, sg_id, sg_count);
    for (var m = 0u; m < MR; m++) {
        row_mean[m] = s[m] * inv_d;
        s[m] = 0.0;
    }
//#endif
    for (var m = 0u; m < MR; m++) {
//#if A_VEC4
        for (var k4 = lid; k4 < kdim / 4u; k4 += WG) {
            let c = a[((*arow)[m] >> 2u) + k4] - row_mean[m];
            s[m] += dot(c, c);
        }
//#else
        for (var k = lid; k < kdim; k += WG) {
            let c = a_at((*arow)[m] + k) - row_mean[m];
            s[m] += c * c;
        }
//#endif
    }
    rows_sum(&s, lid, sg_lane, sg_id, sg_count);
    for (var m = 0u; m < MR; m++) {
        row_rstd[m] = 1.0 / sqrt(s[m] * inv_d + params.eps);
    }
}

// Element k of block row m normalised; v = a[row + k].
fn norm_el(m: u32, k: u32, v: f32) -> f32 {
//#if RMS_A
    return v * row_rstd[m] * gamma_at(k);
//#else
    return (v - row_mean[m]) * row_rstd[m] * gamma_at(k) + beta_at(k);
//#endif
}

// Quad i4 (elements 4·i4 .. 4·i4 + 3) of block row m normalised; v = those elements of a.
// Only with A_VEC4.
fn norm_quad(m: u32, i4: u32, v: vec4<f32>) -> vec4<f32> {
//#if A_VEC4
//#if RMS_A
    return v * row_rstd[m] * gamma[i4];
//#else
    return (v - row_mean[m]) * row_rstd[m] * gamma[i4] + beta[i4];
//#endif
//#else
    return v;
//#endif
}

// KEEP: writes the normalised rows m < rows (the block's rows inside M) to `normed`, whose
// layout is a's. Called by the workgroups of the first column block only.
fn prologue_keep(arow: ptr<function, array<u32, MR>>, rows: u32, lid: u32) {
//#if KEEP
    for (var m = 0u; m < min(rows, MR); m++) {
        for (var k = lid; k < params.k; k += WG) {
            let i = (*arow)[m] + k;
            normed[i] = norm_el(m, k, a_at(i));
        }
    }
//#endif
}
//#else
fn norm_el(m: u32, k: u32, v: f32) -> f32 {
    return v;
}

fn norm_quad(m: u32, i4: u32, v: vec4<f32>) -> vec4<f32> {
    return v;
}
//#endif
