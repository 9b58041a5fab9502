//! Matmul's norm prologue (shaders/norm_prologue.wgsl in `rows_nk`) against a plain CPU
//! reference: the f64 norm of shaders/norm.wgsl's tests, rounded to f32, then the product in
//! f64.
//!
//! Tolerances: the matmul's (2e-6·K + 1e-6 + 1e-5·|want|) plus the norm's few ulps on each of
//! the K normalised inputs, so 4e-6·K + 1e-5 + 1e-5·|want|; the kept rows to the norm
//! kernel's 4e-6 + 4e-6·|want|.

use half::f16;
use seqbridge::gpu::Recorder;
use seqbridge::gpu::ops::matmul::{Activation, MatmulImpl, MatmulOptions, Tuning};
use seqbridge::gpu::ops::norm_matmul::{NormPrologue, RowNorm, norm_matmul, norm_matmul_tuned};

use crate::common::{act64, assert_close, gpu, randn, rng};
use crate::matmul::{quantize_rows, shape3};
use crate::norm::{layer_norm_ref, rms_norm_ref};

#[derive(Clone, Copy, Debug, PartialEq)]
enum W {
    F32,
    F16,
    I8,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    w: W,
    rms: bool,
    bias: bool,
    act: Activation,
    keep: bool,
    /// Extra columns of out, written from column `off`.
    extra: usize,
    off: usize,
    tuning: Tuning,
}

impl Case {
    fn new(batch: usize, m: usize, n: usize, k: usize) -> Case {
        Case {
            batch,
            m,
            n,
            k,
            w: W::F32,
            rms: false,
            bias: true,
            act: Activation::None,
            keep: false,
            extra: 0,
            off: 0,
            tuning: Tuning::Adapter,
        }
    }
}

/// Runs one case; panics naming it on any mismatch.
fn run(c: &Case, seed: u64) {
    let name = format!("{c:?}");
    let gpu = gpu();
    let mut r = rng(seed);
    let (rows, w) = (c.batch * c.m, c.n + c.extra);
    // An offset keeps the rows' means away from 0, as in a residual stream.
    let x: Vec<f32> = randn(&mut r, rows * c.k, 2.0)
        .into_iter()
        .map(|v| v + 0.5)
        .collect();
    let gamma: Vec<f32> = randn(&mut r, c.k, 1.0);
    let beta = randn(&mut r, c.k, 1.0);
    let mut b = randn(&mut r, c.n * c.k, 1.0);
    let bias = randn(&mut r, c.n, 1.0);
    let out0 = randn(&mut r, rows * w, 100.0);
    let eps = 1e-5;
    let (bt, scales) = match c.w {
        W::F32 => (gpu.upload(&b, &[c.n, c.k]).unwrap(), None),
        W::F16 => {
            let h: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
            b = h.iter().map(|v| v.to_f32()).collect();
            (gpu.upload(&h, &[c.n, c.k]).unwrap(), None)
        }
        W::I8 => {
            let (q, s) = quantize_rows(&b, c.k);
            for (i, v) in b.iter_mut().enumerate() {
                *v = f32::from(q[i]) * s[i / c.k];
            }
            let scales = gpu.upload(&s, &[c.n]).unwrap();
            (gpu.upload(&q, &[c.n, c.k]).unwrap(), Some(scales))
        }
    };
    let normed = if c.rms {
        rms_norm_ref(&x, &gamma, c.k, eps)
    } else {
        layer_norm_ref(&x, &gamma, &beta, c.k, eps)
    };
    let mut want = out0.clone();
    for row in 0..rows {
        for n in 0..c.n {
            let dot: f64 = (0..c.k)
                .map(|k| normed[row * c.k + k] as f64 * b[n * c.k + k] as f64)
                .sum();
            let v = dot + if c.bias { bias[n] as f64 } else { 0.0 };
            want[row * w + c.off + n] = act64(c.act, v) as f32;
        }
    }

    let a = gpu.upload(&x, &shape3(c.batch, c.m, c.k)).unwrap();
    let g = gpu.upload(&gamma, &[c.k]).unwrap();
    let be = gpu.upload(&beta, &[c.k]).unwrap();
    let bias_t = gpu.upload(&bias, &[c.n]).unwrap();
    let out = gpu.upload(&out0, &shape3(c.batch, c.m, w)).unwrap();
    let kept = gpu.upload(&vec![7.0f32; rows * c.k], &shape3(c.batch, c.m, c.k));
    let kept = kept.unwrap();
    let prologue = NormPrologue {
        norm: if c.rms {
            RowNorm::Rms { gamma: &g }
        } else {
            RowNorm::Layer {
                gamma: &g,
                beta: &be,
            }
        },
        eps,
        keep: c.keep.then_some(&kept),
    };
    let opts = MatmulOptions {
        trans_b: true,
        bias: c.bias.then_some(&bias_t),
        scales: scales.as_ref(),
        act: c.act,
        out_col_offset: c.off,
        ..Default::default()
    };
    let mut rec = Recorder::new(gpu);
    norm_matmul_tuned(&mut rec, &a, &prologue, &bt, &out, &opts, c.tuning)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    rec.submit();
    let got = out.to_vec_f32().unwrap();
    gpu.check_errors().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_close(&name, &got, &want, 4e-6 * c.k as f32 + 1e-5, 1e-5);
    let kept = kept.to_vec_f32().unwrap();
    if c.keep {
        assert_close(&format!("{name} kept"), &kept, &normed, 4e-6, 4e-6);
    } else {
        assert!(kept.iter().all(|&v| v == 7.0), "{name}: kept rows written");
    }
}

/// Each way rows_nk reads a row of B (and A with it): f32 element by element (K = 1, a prime)
/// and as vec4 (K % 4 == 0, several chunks per invocation at K = 300); f16 by element (odd
/// K), by u32 pairs (even K) and as vec4<u32> (K % 8 == 0); int8 by word (K % 4 == 0) and as
/// vec4<u32> (K % 16 == 0).
const LOADS: [(usize, W); 8] = [
    (1, W::F32),
    (7, W::F32),
    (300, W::F32),
    (45, W::F16),
    (66, W::F16),
    (24, W::F16),
    (20, W::I8),
    (64, W::I8),
];

#[test]
fn shapes_dtypes_and_norms() {
    let mut seed = 1;
    for (t, tuning) in [Tuning::Cpu, Tuning::Gpu].into_iter().enumerate() {
        for (i, (k, w)) in LOADS.into_iter().enumerate() {
            seed += 1;
            // Rows 1..=5 (a partial row block of the CPU plan's 4); the norm kind and keep
            // alternate so every load meets both norms; N past one column block.
            let mut c = Case::new(1, 1 + seed as usize % 5, 13, k);
            c.w = w;
            c.rms = (i + t) % 2 == 0;
            c.keep = (i + t) % 3 != 0;
            c.tuning = tuning;
            run(&c, seed);
        }
    }
}

#[test]
fn row_blocks_and_batches() {
    let mut seed = 100;
    for tuning in [Tuning::Cpu, Tuning::Gpu] {
        for (batch, m, n, k) in [
            (3, 1, 17, 36),
            (2, 3, 9, 64),
            (1, 8, 33, 40),
            (2, 33, 7, 48),
        ] {
            seed += 1;
            let mut c = Case::new(batch, m, n, k);
            c.rms = seed % 2 == 0;
            c.keep = true;
            c.w = [W::F32, W::F16, W::I8][seed as usize % 3];
            c.tuning = tuning;
            run(&c, seed);
        }
    }
}

#[test]
fn epilogues() {
    let mut seed = 200;
    for (i, act) in Activation::ALL.into_iter().enumerate() {
        seed += 1;
        let mut c = Case::new(1, 2, 29, 40);
        c.act = act;
        c.bias = i % 2 == 0;
        c.w = [W::F32, W::F16, W::I8][i % 3];
        run(&c, seed);
    }
    // Into a wider out at an offset (a decoder's Q/K/V written into its cache).
    for (off, extra) in [(0, 5), (7, 7), (31, 40)] {
        seed += 1;
        let mut c = Case::new(1, 1, 31, 24);
        c.off = off;
        c.extra = extra;
        c.keep = true;
        run(&c, seed);
    }
}

#[test]
fn refuses_what_it_cannot_fuse() {
    let gpu = gpu();
    let t = |shape: &[usize]| {
        gpu.upload(&vec![1.0f32; shape.iter().product()], shape)
            .unwrap()
    };
    let (a, b, out, g) = (t(&[2, 8]), t(&[3, 8]), t(&[2, 3]), t(&[8]));
    let res = t(&[2, 3]);
    let prologue = NormPrologue {
        norm: RowNorm::Rms { gamma: &g },
        eps: 1e-6,
        keep: None,
    };
    let base = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    let mut rec = Recorder::new(gpu);
    let cases: [(MatmulOptions, NormPrologue, &str); 6] = [
        (
            MatmulOptions {
                residual: Some(&res),
                ..base
            },
            prologue,
            "no residual",
        ),
        (
            MatmulOptions {
                trans_b: false,
                ..base
            },
            prologue,
            "trans_b",
        ),
        (
            MatmulOptions {
                imp: MatmulImpl::Tiled,
                ..base
            },
            prologue,
            "Rows",
        ),
        (
            base,
            NormPrologue {
                norm: RowNorm::Rms { gamma: &out },
                ..prologue
            },
            "gamma",
        ),
        (
            base,
            NormPrologue {
                keep: Some(&a),
                ..prologue
            },
            "keep",
        ),
        (
            base,
            NormPrologue {
                eps: f32::NAN,
                ..prologue
            },
            "eps",
        ),
    ];
    for (opts, pr, what) in cases {
        let b = if what == "trans_b" {
            t(&[8, 3])
        } else {
            b.clone()
        };
        let e = norm_matmul(&mut rec, &a, &pr, &b, &out, &opts)
            .expect_err(what)
            .to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}
