//! shaders/elementwise.wgsl against the CPU.

use seqbridge::gpu::{Recorder, ops::elementwise};

use crate::common::{assert_close, gpu, randn, rng};

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
        let out = gpu
            .empty(&[rows, cols], seqbridge::gpu::DType::F32)
            .unwrap();
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
