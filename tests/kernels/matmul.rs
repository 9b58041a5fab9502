//! shaders/matmul.wgsl against a CPU reference computed in f64.
//!
//! Tolerances: the GPU accumulates in f32, so |err| <= 2e-6·K + 1e-6 + 1e-5·|want| for f32
//! and f16 weights alike (f16 weights are rounded on the host first and the reference uses
//! the rounded values, so f16 adds no error of its own). Activations alone are checked to
//! 3e-6 + 3e-6·|want|. Columns of a wider `out` outside the written range must keep their
//! contents bit for bit. Int8 weights are quantized per row on the host (symmetric, scale
//! max|row| / 127) and the reference uses the dequantized values q·scale, so the kernels'
//! scale-after-the-sum is checked to the same tolerance.

use half::f16;
use seqbridge::gpu::ops::matmul::{
    Activation, MatmulImpl, MatmulOptions, Tuning, matmul, matmul_tuned,
};
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{act64, assert_close, gpu, randn, rng};

const ACTS: [Activation; 5] = [
    Activation::None,
    Activation::Gelu,
    Activation::GeluTanh,
    Activation::Relu,
    Activation::Silu,
];

/// One matmul problem and its epilogue.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    /// B has one matrix per batch (else one shared 2-D B).
    b_batched: bool,
    f16: bool,
    /// B as int8 with per-row scales (trans_b, one shared B).
    i8: bool,
    bias: bool,
    residual: bool,
    act: Activation,
    /// Extra columns of out: W = n + extra, written at column `off`.
    extra: usize,
    off: usize,
    imp: MatmulImpl,
    tuning: Tuning,
}

impl Case {
    fn new(batch: usize, m: usize, n: usize, k: usize) -> Case {
        Case {
            batch,
            m,
            n,
            k,
            trans_b: true,
            b_batched: false,
            f16: false,
            i8: false,
            bias: false,
            residual: false,
            act: Activation::None,
            extra: 0,
            off: 0,
            imp: MatmulImpl::Auto,
            tuning: Tuning::Adapter,
        }
    }

    fn name(&self) -> String {
        format!(
            "{:?} ({:?} tuning) batch {} M {} N {} K {} trans_b {} b_batched {} {} bias {} res {} {:?} W {} off {}",
            self.imp,
            self.tuning,
            self.batch,
            self.m,
            self.n,
            self.k,
            self.trans_b,
            self.b_batched,
            match (self.f16, self.i8) {
                (_, true) => "i8",
                (true, _) => "f16",
                _ => "f32",
            },
            self.bias,
            self.residual,
            self.act,
            self.n + self.extra,
            self.off
        )
    }
}

/// Host data of a case.
struct Data {
    a: Vec<f32>,
    /// B as the GPU sees it (f16-rounded when the case is f16).
    b: Vec<f32>,
    bias: Vec<f32>,
    res: Vec<f32>,
    /// Initial contents of out.
    out0: Vec<f32>,
    /// Int8 cases: B's quantized rows and their scales (b holds q·scale).
    q: Vec<i8>,
    scales: Vec<f32>,
}

/// Symmetric per-row int8 quantization of `[rows, k]`: (q, scales), q·scale ≈ row.
pub(crate) fn quantize_rows(b: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(b.len());
    let mut scales = Vec::new();
    for row in b.chunks(k.max(1)) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(s);
    }
    (q, scales)
}

fn make_data(c: &Case, seed: u64) -> Data {
    let mut r = rng(seed);
    let w = c.n + c.extra;
    let b_mats = if c.b_batched { c.batch } else { 1 };
    let mut b = randn(&mut r, b_mats * c.n * c.k, 1.0);
    if c.f16 {
        b.iter_mut().for_each(|v| *v = f16::from_f32(*v).to_f32());
    }
    let (q, scales) = if c.i8 {
        assert!(
            c.trans_b && !c.b_batched,
            "{}: int8 B is [N, K], shared",
            c.name()
        );
        quantize_rows(&b, c.k)
    } else {
        (Vec::new(), Vec::new())
    };
    if c.i8 {
        for (i, v) in b.iter_mut().enumerate() {
            *v = f32::from(q[i]) * scales[i / c.k];
        }
    }
    Data {
        a: randn(&mut r, c.batch * c.m * c.k, 1.0),
        b,
        bias: randn(&mut r, c.n, 1.0),
        res: randn(&mut r, c.batch * c.m * w, 1.0),
        out0: randn(&mut r, c.batch * c.m * w, 100.0),
        q,
        scales,
    }
}

fn reference(c: &Case, d: &Data) -> Vec<f32> {
    let w = c.n + c.extra;
    let mut out = d.out0.clone();
    for bi in 0..c.batch {
        let bb = if c.b_batched { bi * c.n * c.k } else { 0 };
        for m in 0..c.m {
            for n in 0..c.n {
                let mut acc = 0f64;
                for k in 0..c.k {
                    let bv = if c.trans_b {
                        d.b[bb + n * c.k + k]
                    } else {
                        d.b[bb + k * c.n + n]
                    };
                    acc += d.a[(bi * c.m + m) * c.k + k] as f64 * bv as f64;
                }
                if c.bias {
                    acc += d.bias[n] as f64;
                }
                acc = act64(c.act, acc);
                let o = (bi * c.m + m) * w + c.off + n;
                if c.residual {
                    acc += d.res[o] as f64;
                }
                out[o] = acc as f32;
            }
        }
    }
    out
}

/// Shapes with the batch dimension only when there is more than one batch (both forms are
/// accepted; the 2-D form is what linear layers pass).
pub(crate) fn shape3(batch: usize, rows: usize, cols: usize) -> Vec<usize> {
    if batch == 1 {
        vec![rows, cols]
    } else {
        vec![batch, rows, cols]
    }
}

fn run(c: &Case, seed: u64) {
    let gpu = gpu();
    let d = make_data(c, seed);
    let w = c.n + c.extra;
    let a = gpu.upload(&d.a, &shape3(c.batch, c.m, c.k)).unwrap();
    let (rows, cols) = if c.trans_b { (c.n, c.k) } else { (c.k, c.n) };
    let b_shape = if c.b_batched {
        vec![c.batch, rows, cols]
    } else {
        vec![rows, cols]
    };
    let b = if c.i8 {
        gpu.upload(&d.q, &b_shape).unwrap()
    } else if c.f16 {
        let h: Vec<f16> = d.b.iter().map(|&v| f16::from_f32(v)).collect();
        gpu.upload(&h, &b_shape).unwrap()
    } else {
        gpu.upload(&d.b, &b_shape).unwrap()
    };
    let bias = gpu.upload(&d.bias, &[c.n]).unwrap();
    let scales = c.i8.then(|| gpu.upload(&d.scales, &[c.n]).unwrap());
    let res = gpu.upload(&d.res, &shape3(c.batch, c.m, w)).unwrap();
    let out = gpu.upload(&d.out0, &shape3(c.batch, c.m, w)).unwrap();
    let opts = MatmulOptions {
        trans_b: c.trans_b,
        bias: c.bias.then_some(&bias),
        act: c.act,
        residual: c.residual.then_some(&res),
        out_col_offset: c.off,
        imp: c.imp,
        scales: scales.as_ref(),
    };
    let mut rec = Recorder::new(gpu);
    matmul_tuned(&mut rec, &a, &b, &out, &opts, c.tuning)
        .unwrap_or_else(|e| panic!("{}: {e}", c.name()));
    rec.submit();
    let got = out.to_vec_f32().unwrap();
    gpu.check_errors()
        .unwrap_or_else(|e| panic!("{}: {e}", c.name()));
    let want = reference(c, &d);
    let atol = 2e-6 * c.k.max(1) as f32 + 1e-6;
    assert_close(&c.name(), &got, &want, atol, 1e-5);
    // Columns outside off..off+n were not written: bit-exact.
    for (i, (&g, &o)) in got.iter().zip(&d.out0).enumerate() {
        let col = i % w;
        if col < c.off || col >= c.off + c.n {
            assert_eq!(
                g.to_bits(),
                o.to_bits(),
                "{}: column {col} of row {} was written",
                c.name(),
                i / w
            );
        }
    }
}

/// Sizes around a tile edge `t` plus 1 and primes.
fn sizes(t: usize) -> Vec<usize> {
    vec![1, 7, 13, t - 1, t + 1, 61, 127]
}

/// The shape sweep for one implementation: every M in `ms` × N in `sizes(tile)` × seven K,
/// with the layout and the weight dtype alternating so both meet every size class.
fn shape_sweep(imp: MatmulImpl, tuning: Tuning, ms: &[usize], tile: usize) {
    let mut seed = 100;
    let ns = sizes(tile);
    for &m in ms {
        for &n in &ns {
            // K: 1, a prime, multiples of 8 (f16 read as vec4<u32>) and of 4 but not 8, even
            // (f16 read as u32 pairs), and either side of the tile.
            for &k in &[1, 8, 13, 20, tile - 1, tile + 1, 2 * tile + 2] {
                // f32/f16 and trans_b alternate so every combination of layout and dtype
                // meets every size class without a full cross product.
                seed += 1;
                let mut c = Case::new(1, m, n, k);
                c.imp = imp;
                c.tuning = tuning;
                c.trans_b = seed % 2 == 0;
                c.f16 = (seed / 2) % 2 == 0;
                run(&c, seed);
            }
        }
    }
}

fn batch_cases(imp: MatmulImpl, m: usize) {
    let mut seed = 500;
    for (batch, n, k) in [(3, 13, 17), (2, 65, 64), (5, 8, 33)] {
        for b_batched in [false, true] {
            for trans_b in [false, true] {
                for f16 in [false, true] {
                    seed += 1;
                    let mut c = Case::new(batch, m, n, k);
                    c.imp = imp;
                    c.b_batched = b_batched;
                    c.trans_b = trans_b;
                    c.f16 = f16;
                    run(&c, seed);
                }
            }
        }
    }
}

fn epilogue_cases(imp: MatmulImpl, m: usize) {
    let mut seed = 900;
    for act in ACTS {
        for (bias, residual) in [(false, false), (true, false), (true, true)] {
            seed += 1;
            let mut c = Case::new(2, m, 29, 40);
            c.imp = imp;
            c.act = act;
            c.bias = bias;
            c.residual = residual;
            c.f16 = seed % 2 == 0;
            run(&c, seed);
        }
    }
    // Into a wider out, at an offset, with everything on; shared and batched B.
    for (off, extra, b_batched) in [(0, 5, false), (7, 7, true), (31, 40, false)] {
        seed += 1;
        let mut c = Case::new(2, m, 31, 24);
        c.imp = imp;
        c.off = off;
        c.extra = extra;
        c.b_batched = b_batched;
        c.bias = true;
        c.residual = true;
        c.act = Activation::Gelu;
        run(&c, seed);
    }
}

#[test]
fn naive_shapes() {
    shape_sweep(MatmulImpl::Naive, Tuning::Adapter, &[1, 13, 65], 64);
}

#[test]
fn naive_batches() {
    batch_cases(MatmulImpl::Naive, 9);
}

#[test]
fn naive_epilogue() {
    epilogue_cases(MatmulImpl::Naive, 5);
}

#[test]
fn auto_shapes() {
    for (m, n, k) in [
        (1, 512, 64),
        (4, 130, 96),
        (32, 64, 64),
        (33, 70, 65),
        (100, 96, 72),
    ] {
        for f16 in [false, true] {
            let mut c = Case::new(1, m, n, k);
            c.f16 = f16;
            c.bias = true;
            run(&c, (m * n + k) as u64);
        }
    }
}

#[test]
fn auto_picks_rows_for_few_rows() {
    use seqbridge::gpu::ops::matmul::{
        CPU_ROWS_MAX_M, CPU_TILED_ROWS_MAX_M, ROWS_MAX_M, selected_impl,
    };
    let gpu = gpu();
    assert_eq!(ROWS_MAX_M, 32);
    assert_eq!(CPU_ROWS_MAX_M, 2);
    assert_eq!(CPU_TILED_ROWS_MAX_M, 4);
    let cpu = gpu.adapter().device_type == "Cpu";
    let caps = gpu.caps();
    let eight = caps.subgroups && caps.subgroup_min_size == 8 && caps.subgroup_max_size == 8;
    let (max, many) = match (cpu, eight) {
        (true, true) => (CPU_ROWS_MAX_M, MatmulImpl::Broadcast),
        (true, false) => (CPU_TILED_ROWS_MAX_M, MatmulImpl::Tiled),
        (false, _) => (ROWS_MAX_M, MatmulImpl::Tiled),
    };
    for (m, want) in [
        (1, MatmulImpl::Rows),
        (max, MatmulImpl::Rows),
        (max + 1, many),
        (33, many),
        (1024, many),
    ] {
        assert_eq!(
            selected_impl(gpu, m, MatmulImpl::Auto),
            want,
            "M = {m} on {}",
            gpu.adapter().device_type
        );
    }
    assert_eq!(selected_impl(gpu, 1, MatmulImpl::Naive), MatmulImpl::Naive);
    assert_eq!(selected_impl(gpu, 500, MatmulImpl::Rows), MatmulImpl::Rows);
    assert_eq!(
        selected_impl(gpu, 1, MatmulImpl::Broadcast),
        MatmulImpl::Broadcast
    );
}

/// Each activation alone (K = 1, B = 1: out = act(x + bias)) over a wide range, against f64.
#[test]
fn activations_match_f64() {
    let gpu = gpu();
    let xs: Vec<f32> = (0..=800).map(|i| -10.0 + i as f32 * 0.025).collect();
    let a = gpu.upload(&xs, &[xs.len(), 1]).unwrap();
    let b = gpu.upload(&[1.0f32], &[1, 1]).unwrap();
    for imp in [MatmulImpl::Naive, MatmulImpl::Auto] {
        for act in ACTS {
            let out = gpu.empty(&[xs.len(), 1], DType::F32).unwrap();
            let mut rec = Recorder::new(gpu);
            let opts = MatmulOptions {
                trans_b: true,
                act,
                imp,
                ..Default::default()
            };
            matmul(&mut rec, &a, &b, &out, &opts).unwrap();
            rec.submit();
            let got = out.to_vec_f32().unwrap();
            let want: Vec<f32> = xs.iter().map(|&x| act64(act, x as f64) as f32).collect();
            assert_close(
                &format!("{imp:?} {act:?} on [-10, 10]"),
                &got,
                &want,
                3e-6,
                3e-6,
            );
        }
    }
}

fn err_of(a: &Tensor, b: &Tensor, out: &Tensor, opts: &MatmulOptions) -> String {
    let mut rec = Recorder::new(gpu());
    match matmul(&mut rec, a, b, out, opts) {
        Ok(()) => panic!(
            "matmul accepted a {:?}, b {:?}, out {:?}",
            a.shape(),
            b.shape(),
            out.shape()
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn rejects_bad_shapes() {
    let gpu = gpu();
    let z = |shape: &[usize]| gpu.empty(shape, DType::F32).unwrap();
    let t = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    // K mismatch.
    let e = err_of(&z(&[4, 8]), &z(&[6, 9]), &z(&[4, 6]), &t);
    assert!(
        e.contains("[4, 8]") && e.contains("[6, 9]") && e.contains("K"),
        "{e}"
    );
    // K mismatch in the [K, N] layout.
    let e = err_of(
        &z(&[4, 8]),
        &z(&[6, 9]),
        &z(&[4, 9]),
        &MatmulOptions::default(),
    );
    assert!(e.contains("[6, 9]") && e.contains("K = 8"), "{e}");
    // out too narrow, with and without an offset.
    let e = err_of(&z(&[4, 8]), &z(&[6, 8]), &z(&[4, 5]), &t);
    assert!(e.contains("[4, 5]") && e.contains("narrow"), "{e}");
    let o = MatmulOptions {
        out_col_offset: 3,
        ..t
    };
    let e = err_of(&z(&[4, 8]), &z(&[6, 8]), &z(&[4, 8]), &o);
    assert!(e.contains("[4, 8]") && e.contains("3..9"), "{e}");
    // Wrong row count and batch count of out.
    let e = err_of(&z(&[4, 8]), &z(&[6, 8]), &z(&[5, 6]), &t);
    assert!(e.contains("[5, 6]"), "{e}");
    let e = err_of(&z(&[2, 4, 8]), &z(&[6, 8]), &z(&[3, 4, 6]), &t);
    assert!(e.contains("[3, 4, 6]"), "{e}");
    // Batched B with the wrong batch count.
    let e = err_of(&z(&[2, 4, 8]), &z(&[3, 6, 8]), &z(&[2, 4, 6]), &t);
    assert!(e.contains("[3, 6, 8]") && e.contains("batches"), "{e}");
    // Residual aliasing out, residual of the wrong shape, bias of the wrong length.
    let out = z(&[4, 6]);
    let e = err_of(
        &z(&[4, 8]),
        &z(&[6, 8]),
        &out,
        &MatmulOptions {
            residual: Some(&out),
            ..t
        },
    );
    assert!(e.contains("alias") && e.contains("[4, 6]"), "{e}");
    let r = z(&[4, 7]);
    let e = err_of(
        &z(&[4, 8]),
        &z(&[6, 8]),
        &out,
        &MatmulOptions {
            residual: Some(&r),
            ..t
        },
    );
    assert!(e.contains("[4, 7]"), "{e}");
    let bias = z(&[5]);
    let e = err_of(
        &z(&[4, 8]),
        &z(&[6, 8]),
        &out,
        &MatmulOptions {
            bias: Some(&bias),
            ..t
        },
    );
    assert!(e.contains("[5]") && e.contains("[6]"), "{e}");
    // a aliasing out (in place).
    let sq = z(&[4, 4]);
    let e = err_of(&sq, &z(&[4, 4]), &sq, &t);
    assert!(e.contains("a shares"), "{e}");
    // Wrong dtypes: u32 b, f16 a, f16 out, f16 bias.
    let bu = gpu.empty(&[6, 8], DType::U32).unwrap();
    let e = err_of(&z(&[4, 8]), &bu, &out, &t);
    assert!(e.contains("u32") && e.contains("[6, 8]"), "{e}");
    let ah = gpu.empty(&[4, 8], DType::F16).unwrap();
    let e = err_of(&ah, &z(&[6, 8]), &out, &t);
    assert!(e.contains("a [4, 8] f16"), "{e}");
    let oh = gpu.empty(&[4, 6], DType::F16).unwrap();
    let e = err_of(&z(&[4, 8]), &z(&[6, 8]), &oh, &t);
    assert!(e.contains("out [4, 6] f16"), "{e}");
    let bh = gpu.empty(&[6], DType::F16).unwrap();
    let e = err_of(
        &z(&[4, 8]),
        &z(&[6, 8]),
        &out,
        &MatmulOptions {
            bias: Some(&bh),
            ..t
        },
    );
    assert!(e.contains("bias [6] f16"), "{e}");
    // Too few dimensions.
    let e = err_of(&z(&[8]), &z(&[6, 8]), &out, &t);
    assert!(e.contains("[8]") && e.contains("2 dimensions"), "{e}");
}
// Both tuning tables on every adapter: the CPU table's 64×64 tile with 8×8 blocks and
// BK = 32 (thin tiles for M ≤ 32), the GPU table's 64×64 tile with 4×4 blocks and BK = 16.
#[test]
fn tiled_shapes_cpu_tuning() {
    shape_sweep(MatmulImpl::Tiled, Tuning::Cpu, &[1, 13, 63, 65, 129], 64);
}

// The CPU table's thin tiles (8, 16, 32 rows) at and either side of each height.
#[test]
fn tiled_thin_tiles_cpu_tuning() {
    shape_sweep(
        MatmulImpl::Tiled,
        Tuning::Cpu,
        &[5, 8, 9, 16, 17, 31, 32],
        64,
    );
}

#[test]
fn tiled_shapes_gpu_tuning() {
    shape_sweep(MatmulImpl::Tiled, Tuning::Gpu, &[1, 13, 63, 65, 129], 64);
}

#[test]
fn tiled_batches() {
    batch_cases(MatmulImpl::Tiled, 70);
}

#[test]
fn tiled_epilogue() {
    epilogue_cases(MatmulImpl::Tiled, 66);
}

// CPU table: 8 invocations, up to 4 rows of A per pass; GPU table: 32..256 invocations
// (several subgroups on lavapipe, a 256-wide workgroup-memory tree on GL), up to 32 rows.
#[test]
fn rows_shapes_cpu_tuning() {
    shape_sweep(MatmulImpl::Rows, Tuning::Cpu, &[1, 2, 5, 32, 33], 64);
}

#[test]
fn rows_shapes_gpu_tuning() {
    shape_sweep(MatmulImpl::Rows, Tuning::Gpu, &[1, 2, 5, 32, 33], 64);
}

#[test]
fn rows_batches() {
    batch_cases(MatmulImpl::Rows, 3);
}

#[test]
fn rows_epilogue() {
    epilogue_cases(MatmulImpl::Rows, 4);
}

/// Whether this adapter runs `Broadcast` (subgroups of exactly 8 lanes). Where it does not,
/// forcing it must be an error that says so, and the other Broadcast tests have nothing to run.
fn broadcast_runs_here() -> bool {
    let gpu = gpu();
    let c = gpu.caps();
    if c.subgroups && c.subgroup_min_size == 8 && c.subgroup_max_size == 8 {
        return true;
    }
    let a = gpu.upload(&[1.0f32; 4], &[2, 2]).unwrap();
    let out = gpu.empty(&[2, 2], DType::F32).unwrap();
    let opts = MatmulOptions {
        trans_b: true,
        imp: MatmulImpl::Broadcast,
        ..Default::default()
    };
    let mut rec = Recorder::new(gpu);
    let err = matmul_tuned(&mut rec, &a, &a, &out, &opts, Tuning::Adapter)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exactly 8 lanes"), "{err}");
    false
}

// Broadcast ignores the tuning table; its blocks hold 8, 16 or 32 rows (at and either side of
// each, and several blocks), 64 columns.
#[test]
fn broadcast_shapes() {
    if !broadcast_runs_here() {
        return;
    }
    shape_sweep(
        MatmulImpl::Broadcast,
        Tuning::Adapter,
        &[1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 65],
        64,
    );
}

#[test]
fn broadcast_batches() {
    if !broadcast_runs_here() {
        return;
    }
    batch_cases(MatmulImpl::Broadcast, 19);
}

#[test]
fn broadcast_epilogue() {
    if !broadcast_runs_here() {
        return;
    }
    epilogue_cases(MatmulImpl::Broadcast, 5);
    epilogue_cases(MatmulImpl::Broadcast, 40);
}

/// An infinity in one row of A (or one row of B) poisons that row (column) of out only: the
/// kernels must not let it leak into a neighbour through a load past the end of a row, even
/// one multiplied by a masked zero (∞·0 = NaN). K = 20 is a multiple of the vector width but
/// not of any tile depth, so every tiled kernel has a partial last K slice; K = 21 is not, so
/// the scalar loaders run (the infinity sits at column 0 of its row, right after the end of
/// the row before).
#[test]
fn infinity_stays_in_its_row() {
    let mut imps = vec![MatmulImpl::Naive, MatmulImpl::Tiled, MatmulImpl::Rows];
    if broadcast_runs_here() {
        imps.push(MatmulImpl::Broadcast);
    }
    for imp in imps {
        for (tuning, k) in [Tuning::Cpu, Tuning::Gpu]
            .into_iter()
            .flat_map(|t| [(t, 20), (t, 21)])
        {
            for (trans_b, f16, in_b) in [
                (true, false, false),
                (true, true, true),
                (false, false, true),
            ] {
                let c = Case {
                    imp,
                    tuning,
                    trans_b,
                    f16,
                    ..Case::new(1, 9, 13, k)
                };
                let mut d = make_data(&c, 77);
                let (bad_row, bad_col) = (3, 5);
                if in_b {
                    // B[n = 5, k = 0]: the first element of column 5's weights.
                    let i = if trans_b { bad_col * c.k } else { bad_col };
                    d.b[i] = f32::INFINITY;
                } else {
                    d.a[bad_row * c.k] = f32::INFINITY;
                }
                let gpu = gpu();
                let a = gpu.upload(&d.a, &[c.m, c.k]).unwrap();
                let (rows, cols) = if trans_b { (c.n, c.k) } else { (c.k, c.n) };
                let b = if f16 {
                    let h: Vec<f16> = d.b.iter().map(|&v| f16::from_f32(v)).collect();
                    gpu.upload(&h, &[rows, cols]).unwrap()
                } else {
                    gpu.upload(&d.b, &[rows, cols]).unwrap()
                };
                let out = gpu.empty(&[c.m, c.n], DType::F32).unwrap();
                let opts = MatmulOptions {
                    trans_b,
                    imp,
                    ..Default::default()
                };
                let mut rec = Recorder::new(gpu);
                matmul_tuned(&mut rec, &a, &b, &out, &opts, tuning).unwrap();
                rec.submit();
                let got = out.to_vec_f32().unwrap();
                let want = reference(&c, &d);
                for m in 0..c.m {
                    for n in 0..c.n {
                        let poisoned = if in_b { n == bad_col } else { m == bad_row };
                        let (g, w) = (got[m * c.n + n], want[m * c.n + n]);
                        let ok = if poisoned {
                            !g.is_finite()
                        } else {
                            (g - w).abs() <= 1e-4
                        };
                        assert!(
                            ok,
                            "{} inf in {}: out[{m}, {n}] = {g}, want {w}",
                            c.name(),
                            if in_b { "B" } else { "A" }
                        );
                    }
                }
            }
        }
    }
}

/// Every implementation and tuning with int8 weights: K a multiple of 16 (rows reads whole
/// vec4<u32> words of 16 weights), of 4 only (one word per quad), and either side of the CPU
/// tiles' depth; M across the rows / thin-tile / full-tile boundaries; N with partial blocks.
#[test]
fn int8_shapes() {
    let mut imps = vec![
        (MatmulImpl::Naive, Tuning::Adapter),
        (MatmulImpl::Tiled, Tuning::Cpu),
        (MatmulImpl::Tiled, Tuning::Gpu),
        (MatmulImpl::Rows, Tuning::Cpu),
        (MatmulImpl::Rows, Tuning::Gpu),
        (MatmulImpl::Auto, Tuning::Adapter),
    ];
    if broadcast_runs_here() {
        imps.push((MatmulImpl::Broadcast, Tuning::Adapter));
    }
    let mut seed = 3000;
    for (imp, tuning) in imps {
        for &m in &[1, 3, 33, 65] {
            for &(n, k) in &[(1, 4), (7, 16), (61, 20), (65, 36), (127, 64), (13, 132)] {
                seed += 1;
                let c = Case {
                    imp,
                    tuning,
                    i8: true,
                    ..Case::new(1, m, n, k)
                };
                run(&c, seed);
            }
        }
    }
}

/// The scale multiplies the dot product before bias, activation and residual, into a wider
/// out at an offset.
#[test]
fn int8_epilogue() {
    let mut seed = 4000;
    for imp in [
        MatmulImpl::Naive,
        MatmulImpl::Rows,
        MatmulImpl::Tiled,
        MatmulImpl::Auto,
    ] {
        for (m, act) in [
            (1, Activation::Gelu),
            (2, Activation::Relu),
            (40, Activation::Silu),
        ] {
            seed += 1;
            let c = Case {
                imp,
                i8: true,
                bias: true,
                residual: true,
                act,
                off: 3,
                extra: 5,
                ..Case::new(1, m, 29, 48)
            };
            run(&c, seed);
        }
    }
}

#[test]
fn int8_misuse_is_an_error() {
    let gpu = gpu();
    let a = gpu.empty(&[2, 8], DType::F32).unwrap();
    let q = gpu.upload(&[1i8; 24], &[3, 8]).unwrap();
    let scales = gpu.upload(&[1.0f32; 3], &[3]).unwrap();
    let out = gpu.empty(&[2, 3], DType::F32).unwrap();
    let t = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    let e = err_of(&a, &q, &out, &t);
    assert!(e.contains("needs its scales"), "{e}");
    let with = MatmulOptions {
        scales: Some(&scales),
        ..t
    };
    let e = err_of(&a, &a, &out, &with);
    assert!(e.contains("scales [3] f32") && e.contains("int8"), "{e}");
    let kn = MatmulOptions {
        trans_b: false,
        ..with
    };
    let e = err_of(&a, &gpu.upload(&[1i8; 24], &[8, 3]).unwrap(), &out, &kn);
    assert!(e.contains("[N, K] matrix (trans_b)"), "{e}");
    let odd = gpu.empty(&[2, 6], DType::F32).unwrap();
    let e = err_of(&odd, &gpu.upload(&[1i8; 18], &[3, 6]).unwrap(), &out, &with);
    assert!(e.contains("multiple of 4"), "{e}");
    let short = gpu.upload(&[1.0f32; 2], &[2]).unwrap();
    let e = err_of(
        &a,
        &q,
        &out,
        &MatmulOptions {
            scales: Some(&short),
            ..t
        },
    );
    assert!(e.contains("scales [2]"), "{e}");
}
