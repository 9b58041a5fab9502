//! shaders/elementwise.wgsl against the CPU.

use seqbridge::gpu::ops::elementwise;
use seqbridge::gpu::ops::matmul::{Activation, MatmulImpl, MatmulOptions, matmul};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{act64, assert_close, gpu, randn, rng};

#[test]
fn add_same_shape_and_broadcast_rows() {
    let gpu = gpu();
    let mut r = rng(1);
    // 1, primes, non-multiples of the 256-wide workgroup, and a row broadcast.
    for (rows, cols, broadcast) in [
        (1, 1, false),
        (1, 257, false),
        (7, 13, false),
        (3, 1000, true),
        (129, 31, true),
    ] {
        let n = rows * cols;
        let a = randn(&mut r, n, 2.0);
        let b = randn(&mut r, if broadcast { cols } else { n }, 2.0);
        let want: Vec<f32> = (0..n).map(|i| a[i] + b[i % b.len()]).collect();
        let ta = gpu.upload(&a, &[rows, cols]).unwrap();
        let tb = gpu.upload(&b, &[b.len()]).unwrap();
        let out = gpu.empty(&[rows, cols], DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        elementwise::add(&mut rec, &ta, &tb, &out).unwrap();
        rec.submit();
        let got = out.to_vec_f32().unwrap();
        assert_close(
            &format!("add {rows}x{cols} broadcast={broadcast}"),
            &got,
            &want,
            0.0,
            0.0,
        );
    }
}

#[test]
fn add_rejects_mismatched_shapes() {
    let gpu = gpu();
    let a = gpu.upload(&[1.0f32; 6], &[2, 3]).unwrap();
    let b = gpu.upload(&[1.0f32; 4], &[4]).unwrap();
    let mut rec = Recorder::new(gpu);
    let err = elementwise::add(&mut rec, &a, &b, &a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("[4]"), "{err}");
}

/// CPU reference of `gated` in f64: out[r, f] = act(g[r, f]) · g[r, F + f].
fn gated_ref(g: &[f32], f: usize, act: Activation) -> Vec<f32> {
    g.chunks(2 * f)
        .flat_map(|row| (0..f).map(move |c| (act64(act, row[c] as f64) * row[f + c] as f64) as f32))
        .collect()
}

/// Every activation over odd row counts and widths (F = 1, primes, rows that straddle the
/// 256-wide workgroups, leading batch dims). Gates span [-8, 8] (both gelu tails), the other
/// half [-2, 2]. Tolerance: the activation alone is within 3e-6 (abs + rel) of f64, as matmul's
/// epilogue test requires; times |up| <= 2 that is 6e-6 absolute plus 4e-6 relative.
#[test]
fn gated_every_activation_odd_shapes() {
    let gpu = gpu();
    let mut r = rng(2);
    let shapes: [&[usize]; 7] = [
        &[1, 1],
        &[5, 1],
        &[1, 257],
        &[7, 13],
        &[3, 1000],
        &[129, 31],
        &[2, 3, 37],
    ];
    for shape in shapes {
        let f = shape[shape.len() - 1];
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let mut g_shape = shape.to_vec();
        *g_shape.last_mut().unwrap() = 2 * f;
        let mut g = Vec::with_capacity(rows * 2 * f);
        for _ in 0..rows {
            g.extend(randn(&mut r, f, 8.0));
            g.extend(randn(&mut r, f, 2.0));
        }
        let tg = gpu.upload(&g, &g_shape).unwrap();
        for act in Activation::ALL {
            let out = gpu.empty(shape, DType::F32).unwrap();
            let mut rec = Recorder::new(gpu);
            elementwise::gated(&mut rec, &tg, &out, act).unwrap();
            rec.submit();
            assert_close(
                &format!("gated {act:?} g {g_shape:?} out {shape:?}"),
                &out.to_vec_f32().unwrap(),
                &gated_ref(&g, f, act),
                6e-6,
                4e-6,
            );
        }
    }
}

/// With the second half all ones, `gated` is the activation alone, and it equals matmul's
/// epilogue bit for bit (x · 1 with K = 1): both kernels run the one definition in
/// shaders/activation.wgsl.
#[test]
fn gated_activation_is_matmuls_epilogue_bit_for_bit() {
    let gpu = gpu();
    let xs: Vec<f32> = (0..=800).map(|i| -10.0 + i as f32 * 0.025).collect();
    let n = xs.len();
    let mut g = xs.clone();
    g.extend(std::iter::repeat_n(1.0f32, n));
    let tg = gpu.upload(&g, &[1, 2 * n]).unwrap();
    let a = gpu.upload(&xs, &[n, 1]).unwrap();
    let one = gpu.upload(&[1.0f32], &[1, 1]).unwrap();
    for act in Activation::ALL {
        let gated_out = gpu.empty(&[1, n], DType::F32).unwrap();
        let mm_out = gpu.empty(&[n, 1], DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        elementwise::gated(&mut rec, &tg, &gated_out, act).unwrap();
        let opts = MatmulOptions {
            trans_b: true,
            act,
            imp: MatmulImpl::Naive,
            ..Default::default()
        };
        matmul(&mut rec, &a, &one, &mm_out, &opts).unwrap();
        rec.submit();
        let (got, want) = (
            gated_out.to_vec_f32().unwrap(),
            mm_out.to_vec_f32().unwrap(),
        );
        for (i, (x, y)) in got.iter().zip(&want).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "{act:?} at x = {}", xs[i]);
        }
    }
}

#[test]
fn gated_rejects_bad_shapes() {
    let gpu = gpu();
    let z = |shape: &[usize]| gpu.empty(shape, DType::F32).unwrap();
    let err = |g: &_, out: &_| {
        let mut rec = Recorder::new(gpu);
        elementwise::gated(&mut rec, g, out, Activation::Gelu)
            .unwrap_err()
            .to_string()
    };
    // Not twice the columns.
    let e = err(&z(&[3, 10]), &z(&[3, 4]));
    assert!(e.contains("[3, 10]") && e.contains("[3, 4]"), "{e}");
    // Rows differ.
    let e = err(&z(&[3, 8]), &z(&[2, 4]));
    assert!(e.contains("[3, 8]") && e.contains("[2, 4]"), "{e}");
    // Not f32.
    let e = err(&gpu.empty(&[3, 8], DType::F16).unwrap(), &z(&[3, 4]));
    assert!(e.contains("f16") && e.contains("[3, 8]"), "{e}");
    // In place.
    let t = z(&[2, 8]);
    let e = err(&t, &t.view(0, &[2, 4]).unwrap());
    assert!(e.contains("different buffers"), "{e}");
}
