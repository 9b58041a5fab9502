//! shaders/norm.wgsl against the CPU (f64 references).
//!
//! Tolerances (f32 kernels against f64 references): |err| <= 4e-6 + 4e-6·|want| for layer norm
//! and RMS norm; outputs are O(1), so this is a few f32 ulps.

use seqbridge::gpu::ops::norm::{self, NormImpl};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{assert_close, gpu, randn, rng};

const ATOL: f32 = 4e-6;
const RTOL: f32 = 4e-6;

pub(crate) fn layer_norm_ref(x: &[f32], g: &[f32], b: &[f32], d: usize, eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        out.extend(
            row.iter()
                .enumerate()
                .map(|(i, &v)| ((v as f64 - mean) * rstd * g[i] as f64 + b[i] as f64) as f32),
        );
    }
    out
}

pub(crate) fn rms_norm_ref(x: &[f32], g: &[f32], d: usize, eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        out.extend(
            row.iter()
                .enumerate()
                .map(|(i, &v)| (v as f64 * r * g[i] as f64) as f32),
        );
    }
    out
}

// 1, primes, n±1 around the 128/256 workgroup sizes and the register kernel's widths
// (128·VPT, 256·VPT), model widths, and rows past the register limit (plain fallback).
const SHAPES: [(usize, usize); 16] = [
    (1, 1),
    (1, 7),
    (3, 31),
    (2, 127),
    (5, 128),
    (1, 129),
    (4, 255),
    (3, 256),
    (2, 257),
    (7, 512),
    (2, 513),
    (3, 1000),
    (6, 1024),
    (2, 2048),
    (2, 2049),
    (1, 4099),
];

#[test]
fn layer_norm_matches_reference() {
    let gpu = gpu();
    let mut r = rng(11);
    for imp in [NormImpl::Plain, NormImpl::Registers, NormImpl::Auto] {
        for (rows, d) in SHAPES {
            // An offset mean checks the two-pass variance; small rows make eps matter.
            let offset = if d % 2 == 0 { 3.0 } else { -1.5 };
            let x: Vec<f32> = randn(&mut r, rows * d, 1.0)
                .into_iter()
                .map(|v| v + offset)
                .collect();
            let g: Vec<f32> = randn(&mut r, d, 1.0).into_iter().map(|v| v + 1.0).collect();
            let b = randn(&mut r, d, 0.5);
            for eps in [1e-5f32, 1e-12] {
                let want = layer_norm_ref(&x, &g, &b, d, eps);
                let tx = gpu.upload(&x, &[rows, d]).unwrap();
                let tg = gpu.upload(&g, &[d]).unwrap();
                let tb = gpu.upload(&b, &[d]).unwrap();
                let out = gpu.empty(&[rows, d], DType::F32).unwrap();
                let mut rec = Recorder::new(gpu);
                norm::layer_norm_with(&mut rec, &tx, &tg, &tb, &out, eps, imp).unwrap();
                rec.submit();
                let got = out.to_vec_f32().unwrap();
                assert_close(
                    &format!("layer_norm {imp:?} {rows}x{d} eps {eps}"),
                    &got,
                    &want,
                    ATOL,
                    RTOL,
                );
            }
        }
    }
    gpu.check_errors().unwrap();
}

#[test]
fn layer_norm_eps_inside_sqrt_and_constant_rows() {
    let gpu = gpu();
    let mut r = rng(12);
    for imp in [NormImpl::Plain, NormImpl::Registers] {
        // Tiny variance (1e-6) next to eps 1e-5: eps dominates, so eps outside the sqrt or an
        // unbiased variance would be far off. The constant row normalises to beta exactly.
        let d = 300;
        let mut x: Vec<f32> = randn(&mut r, 2 * d, 1e-3)
            .into_iter()
            .map(|v| v + 0.25)
            .collect();
        x[d..].fill(0.5);
        let g = randn(&mut r, d, 1.0);
        let b = randn(&mut r, d, 1.0);
        let want = layer_norm_ref(&x, &g, &b, d, 1e-5);
        let tx = gpu.upload(&x, &[2, d]).unwrap();
        let tg = gpu.upload(&g, &[d]).unwrap();
        let tb = gpu.upload(&b, &[d]).unwrap();
        let out = gpu.empty(&[2, d], DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        norm::layer_norm_with(&mut rec, &tx, &tg, &tb, &out, 1e-5, imp).unwrap();
        rec.submit();
        let got = out.to_vec_f32().unwrap();
        // eps-dominated rows amplify the f32 rounding of x - mean: 1e-4 absolute.
        assert_close(
            &format!("layer_norm {imp:?} 2x{d} small variance"),
            &got,
            &want,
            1e-4,
            1e-4,
        );
        assert_eq!(
            &got[d..],
            &b[..],
            "layer_norm {imp:?}: a constant row must give beta"
        );
    }
}

#[test]
fn rms_norm_matches_reference() {
    let gpu = gpu();
    let mut r = rng(13);
    for imp in [NormImpl::Plain, NormImpl::Registers] {
        for (rows, d) in SHAPES {
            let x = randn(&mut r, rows * d, 2.0);
            let g = randn(&mut r, d, 1.0);
            let eps = 1e-6;
            let want = rms_norm_ref(&x, &g, d, eps);
            let tx = gpu.upload(&x, &[rows, d]).unwrap();
            let tg = gpu.upload(&g, &[d]).unwrap();
            let out = gpu.empty(&[rows, d], DType::F32).unwrap();
            let mut rec = Recorder::new(gpu);
            norm::rms_norm_with(&mut rec, &tx, &tg, &out, eps, imp).unwrap();
            rec.submit();
            let got = out.to_vec_f32().unwrap();
            assert_close(
                &format!("rms_norm {imp:?} {rows}x{d}"),
                &got,
                &want,
                ATOL,
                RTOL,
            );
        }
    }
}

#[test]
fn norms_reject_bad_shapes() {
    let gpu = gpu();
    let x = gpu.upload(&[1.0f32; 6], &[2, 3]).unwrap();
    let g4 = gpu.upload(&[1.0f32; 4], &[4]).unwrap();
    let g3 = gpu.upload(&[1.0f32; 3], &[3]).unwrap();
    let out = gpu.empty(&[2, 3], DType::F32).unwrap();
    let out_bad = gpu.empty(&[3, 2], DType::F32).unwrap();
    let mut rec = Recorder::new(gpu);
    let err = norm::layer_norm(&mut rec, &x, &g4, &g3, &out, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("[4]"), "{err}");
    let err = norm::rms_norm(&mut rec, &x, &g3, &out_bad, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[3, 2]") && err.contains("[2, 3]"), "{err}");
    let err = norm::layer_norm(&mut rec, &x, &g3, &g3, &x, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("share a buffer") && err.contains("[2, 3]"),
        "{err}"
    );
    let xi = gpu.upload(&[1u32; 6], &[2, 3]).unwrap();
    let err = norm::layer_norm(&mut rec, &xi, &g3, &g3, &out, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("f32"), "{err}");
}
