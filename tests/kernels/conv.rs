//! shaders/conv.wgsl (im2col for 1-D convolutions) against the CPU, and im2col + matmul as
//! Whisper's two encoder convolutions against a CPU Conv1d + gelu.

use seqbridge::gpu::ops::conv::{Conv1d, ConvLayout, im2col_1d};
use seqbridge::gpu::ops::matmul::{Activation, MatmulImpl, MatmulOptions, matmul};
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{act64, assert_close, gpu, randn, rng};

const LAYOUTS: [ConvLayout; 2] = [ConvLayout::ChannelsFirst, ConvLayout::ChannelsLast];

/// x(b, c, p) in either layout.
fn at(x: &[f32], a: &Conv1d, b: usize, c: usize, p: usize) -> f32 {
    match a.layout {
        ConvLayout::ChannelsFirst => x[(b * a.channels + c) * a.t_in + p],
        ConvLayout::ChannelsLast => x[(b * a.t_in + p) * a.channels + c],
    }
}

/// out[b, t, c·K + k] = x(b, c, t·stride + k − pad), 0 outside 0..T_in; `[B, T_out, C·K]`.
fn reference(x: &[f32], a: &Conv1d) -> Vec<f32> {
    let t_out = (a.t_in + 2 * a.pad - a.kernel) / a.stride + 1;
    let mut out = Vec::with_capacity(a.batch * t_out * a.channels * a.kernel);
    for b in 0..a.batch {
        for t in 0..t_out {
            for c in 0..a.channels {
                for k in 0..a.kernel {
                    let p = (t * a.stride + k) as i64 - a.pad as i64;
                    out.push(if (0..a.t_in as i64).contains(&p) {
                        at(x, a, b, c, p as usize)
                    } else {
                        0.0
                    });
                }
            }
        }
    }
    out
}

/// Records the im2col of `a` on seeded data into `rec`; returns the input and the output,
/// which starts as NaN so that an element the kernel skips fails the comparison.
fn record(rec: &mut Recorder, a: &Conv1d, seed: u64) -> (Vec<f32>, Tensor) {
    let gpu = gpu();
    let x = randn(&mut rng(seed), a.batch * a.channels * a.t_in, 4.0);
    let shape = match a.layout {
        ConvLayout::ChannelsFirst => [a.batch, a.channels, a.t_in],
        ConvLayout::ChannelsLast => [a.batch, a.t_in, a.channels],
    };
    let tx = gpu.upload(&x, &shape).unwrap();
    let [b, t, cols] = a.out_shape();
    let out = gpu
        .upload(&vec![f32::NAN; b * t * cols], &[b, t, cols])
        .unwrap();
    im2col_1d(rec, &tx, &out, a).unwrap();
    (x, out)
}

fn name(a: &Conv1d) -> String {
    format!(
        "B{} C{} T{} K{} s{} p{} {:?}",
        a.batch, a.channels, a.t_in, a.kernel, a.stride, a.pad, a.layout
    )
}

/// Runs `cases` in one submit and compares each with the CPU: a gather, so exact.
fn check(cases: &[Conv1d], seed: u64) {
    let mut rec = Recorder::new(gpu());
    let runs: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, a)| record(&mut rec, a, seed + i as u64))
        .collect();
    rec.submit();
    for (a, (x, out)) in cases.iter().zip(runs) {
        assert_close(
            &name(a),
            &out.to_vec_f32().unwrap(),
            &reference(&x, a),
            0.0,
            0.0,
        );
    }
}

/// Every combination of C ∈ {1, 3, 80, 67}, T_in ∈ {1, 2, 7, 61}, K ∈ {1, 3, 5},
/// stride ∈ {1, 2, 3}, pad ∈ {0, 1, 2}, batch ∈ {1, 3} and both layouts whose T_out ≥ 1.
#[test]
fn matches_cpu_over_odd_shapes() {
    let mut run = 0;
    for channels in [1, 3, 80, 67] {
        for t_in in [1, 2, 7, 61] {
            let mut cases = Vec::new();
            for kernel in [1, 3, 5] {
                for stride in [1, 2, 3] {
                    for pad in [0, 1, 2] {
                        for batch in [1, 3] {
                            for layout in LAYOUTS {
                                let a = Conv1d {
                                    batch,
                                    channels,
                                    t_in,
                                    kernel,
                                    stride,
                                    pad,
                                    layout,
                                };
                                if a.t_out() >= 1 {
                                    cases.push(a);
                                }
                            }
                        }
                    }
                }
            }
            run += cases.len();
            check(&cases, (channels * 1000 + t_in) as u64 * 1000);
        }
    }
    // Left out, for T_in 1 and 2 at every stride: K 3 with pad 0, K 5 with pad 0 or 1.
    assert_eq!(run, 4 * (4 * 27 - 2 * 3 * 3) * 2 * 2, "cases run");
}

/// Whisper's lengths (3000 frames in, 1500 out of conv2) and other long inputs: many
/// workgroups, rows that straddle them.
#[test]
fn matches_cpu_on_long_inputs() {
    let c = |batch, channels, kernel, stride, pad, layout| Conv1d {
        batch,
        channels,
        t_in: 3000,
        kernel,
        stride,
        pad,
        layout,
    };
    use ConvLayout::{ChannelsFirst as First, ChannelsLast as Last};
    check(
        &[
            // conv1 on log-mel features, conv2 on conv1's output (d 67 for size).
            c(1, 80, 3, 1, 1, First),
            c(3, 80, 3, 1, 1, First),
            c(3, 67, 3, 2, 1, Last),
            c(1, 67, 3, 2, 1, First),
            c(3, 1, 1, 1, 0, Last),
            c(1, 3, 5, 3, 2, First),
            c(3, 3, 5, 3, 2, Last),
            c(1, 80, 5, 2, 0, Last),
        ],
        77,
    );
}

/// More workgroups than one grid dimension holds: the launcher folds them into two.
#[test]
fn grid_past_one_dimension() {
    let per_dim = gpu().limits().max_compute_workgroups_per_dimension as usize;
    let (channels, t_in, kernel) = (80, 3000, 3);
    // One workgroup more than a dimension holds at 256 invocations each.
    let batch = (per_dim * 256 + 256).div_ceil(t_in * channels * kernel);
    check(
        &[Conv1d {
            batch,
            channels,
            t_in,
            kernel,
            stride: 1,
            pad: 1,
            layout: ConvLayout::ChannelsLast,
        }],
        5,
    );
}

/// A batch or channel count of 0 writes nothing and is not an error; T_in 0 with enough
/// padding is all zeros.
#[test]
fn empty_and_all_padding() {
    let gpu = gpu();
    for (batch, channels) in [(0, 4), (2, 0), (0, 0)] {
        let a = Conv1d {
            batch,
            channels,
            t_in: 5,
            kernel: 3,
            stride: 1,
            pad: 1,
            layout: ConvLayout::ChannelsFirst,
        };
        let x = gpu.empty(&[batch, channels, 5], DType::F32).unwrap();
        let out = gpu.empty(&a.out_shape(), DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        im2col_1d(&mut rec, &x, &out, &a).unwrap();
        assert_eq!(rec.dispatches(), 0);
        rec.submit();
    }
    let a = Conv1d {
        batch: 2,
        channels: 3,
        t_in: 0,
        kernel: 2,
        stride: 1,
        pad: 1,
        layout: ConvLayout::ChannelsLast,
    };
    check(&[a], 3);
}

#[test]
fn rejects_bad_arguments() {
    let gpu = gpu();
    let z = |shape: &[usize]| gpu.empty(shape, DType::F32).unwrap();
    let ok = Conv1d {
        batch: 2,
        channels: 3,
        t_in: 7,
        kernel: 3,
        stride: 2,
        pad: 1,
        layout: ConvLayout::ChannelsFirst,
    };
    let err = |x: &Tensor, out: &Tensor, a: Conv1d| {
        let mut rec = Recorder::new(gpu);
        im2col_1d(&mut rec, x, out, &a).unwrap_err().to_string()
    };
    let (x, out) = (z(&[2, 3, 7]), z(&[2, 4, 9]));
    assert_eq!(ok.out_shape(), [2, 4, 9]);
    // Kernel or stride 0.
    let e = err(&x, &out, Conv1d { kernel: 0, ..ok });
    assert!(e.contains("kernel 0") && e.contains("at least 1"), "{e}");
    let e = err(&x, &out, Conv1d { stride: 0, ..ok });
    assert!(e.contains("stride 0") && e.contains("at least 1"), "{e}");
    // Kernel wider than the padded input: T_out would be 0.
    let e = err(
        &z(&[2, 3, 2]),
        &out,
        Conv1d {
            t_in: 2,
            kernel: 5,
            pad: 1,
            ..ok
        },
    );
    assert!(
        e.contains("kernel 5") && e.contains("t_in 2") && e.contains("pad 1"),
        "{e}"
    );
    // x or out of the wrong size.
    let e = err(&z(&[2, 3, 8]), &out, ok);
    assert!(e.contains("x [2, 3, 8]") && e.contains("t_in 7"), "{e}");
    let e = err(&x, &z(&[2, 5, 9]), ok);
    assert!(e.contains("out [2, 5, 9]") && e.contains("t_out 4"), "{e}");
    // Not f32.
    let e = err(&x, &gpu.empty(&[2, 4, 9], DType::U32).unwrap(), ok);
    assert!(e.contains("u32") && e.contains("f32"), "{e}");
    // Positions past 32 bits: T_in + 2·pad ≥ 2^32.
    let huge = Conv1d {
        batch: 1,
        channels: 1,
        t_in: 1,
        kernel: 1,
        stride: 1 << 40,
        pad: 1 << 31,
        layout: ConvLayout::ChannelsLast,
    };
    let e = err(&z(&[1]), &z(&[1]), huge);
    assert!(e.contains("32-bit") && e.contains("pad 2147483648"), "{e}");
    // Writing into the input's buffer.
    let t = z(&[2, 3, 7]);
    let a = Conv1d {
        kernel: 1,
        stride: 1,
        pad: 0,
        ..ok
    };
    let e = err(&t, &t.reshape(&[2, 7, 3]).unwrap(), a);
    assert!(e.contains("different buffers"), "{e}");
}

/// CPU Conv1d + gelu in f64: x in `a.layout`, w `[out, C, K]`, bias `[out]`; the result is
/// channels-last `[B, T_out, out]`, as the matmul writes it.
fn conv_gelu(x: &[f32], w: &[f32], bias: &[f32], a: &Conv1d) -> Vec<f32> {
    let n_out = bias.len();
    let t_out = a.t_out();
    let mut y = Vec::with_capacity(a.batch * t_out * n_out);
    for b in 0..a.batch {
        for t in 0..t_out {
            for o in 0..n_out {
                let mut acc = bias[o] as f64;
                for c in 0..a.channels {
                    for k in 0..a.kernel {
                        let p = (t * a.stride + k) as i64 - a.pad as i64;
                        if (0..a.t_in as i64).contains(&p) {
                            acc += w[(o * a.channels + c) * a.kernel + k] as f64
                                * at(x, a, b, c, p as usize) as f64;
                        }
                    }
                }
                y.push(act64(Activation::Gelu, acc) as f32);
            }
        }
    }
    y
}

/// Whisper's front end at a small size: conv1 (80 mels → d 24, K 3, stride 1, pad 1) on
/// channels-first features, then conv2 (d 24 → d 24, K 3, stride 2, pad 1) on conv1's
/// channels-last output, each as im2col + matmul (weight `[out, C·K]`, trans_b, bias, gelu
/// fused), against f64 Conv1d + gelu. The matmul sums 240 and 72 f32 products of values
/// within ±4 and ±1/√(C·K) · 4 (GPU and CPU orders differ), so 1e-5 + 1e-4·|want| holds
/// with room; conv2's reference starts from the GPU's conv1 output so errors do not compound.
#[test]
fn whisper_front_end_through_matmul() {
    let gpu = gpu();
    let (batch, n_mels, d, t) = (2, 80, 24, 60);
    let conv1 = Conv1d {
        batch,
        channels: n_mels,
        t_in: t,
        kernel: 3,
        stride: 1,
        pad: 1,
        layout: ConvLayout::ChannelsFirst,
    };
    let conv2 = Conv1d {
        batch,
        channels: d,
        t_in: conv1.t_out(),
        kernel: 3,
        stride: 2,
        pad: 1,
        layout: ConvLayout::ChannelsLast,
    };
    assert_eq!((conv1.t_out(), conv2.t_out()), (60, 30));
    let mut r = rng(31);
    let x = randn(&mut r, batch * n_mels * t, 4.0);
    let w1 = randn(&mut r, d * conv1.cols(), 1.0 / (conv1.cols() as f32).sqrt());
    let b1 = randn(&mut r, d, 0.5);
    let w2 = randn(&mut r, d * conv2.cols(), 1.0 / (conv2.cols() as f32).sqrt());
    let b2 = randn(&mut r, d, 0.5);

    let tx = gpu.upload(&x, &[batch, n_mels, t]).unwrap();
    let tw1 = gpu.upload(&w1, &[d, conv1.cols()]).unwrap();
    let tb1 = gpu.upload(&b1, &[d]).unwrap();
    let tw2 = gpu.upload(&w2, &[d, conv2.cols()]).unwrap();
    let tb2 = gpu.upload(&b2, &[d]).unwrap();
    for imp in [MatmulImpl::Naive, MatmulImpl::Auto] {
        let cols1 = gpu.empty(&conv1.out_shape(), DType::F32).unwrap();
        let h1 = gpu.empty(&[batch, conv1.t_out(), d], DType::F32).unwrap();
        let cols2 = gpu.empty(&conv2.out_shape(), DType::F32).unwrap();
        let h2 = gpu.empty(&[batch, conv2.t_out(), d], DType::F32).unwrap();
        let opts = |bias| MatmulOptions {
            trans_b: true,
            bias: Some(bias),
            act: Activation::Gelu,
            imp,
            ..Default::default()
        };
        let mut rec = Recorder::new(gpu);
        im2col_1d(&mut rec, &tx, &cols1, &conv1).unwrap();
        matmul(&mut rec, &cols1, &tw1, &h1, &opts(&tb1)).unwrap();
        im2col_1d(&mut rec, &h1, &cols2, &conv2).unwrap();
        matmul(&mut rec, &cols2, &tw2, &h2, &opts(&tb2)).unwrap();
        rec.submit();

        let got1 = h1.to_vec_f32().unwrap();
        let want1 = conv_gelu(&x, &w1, &b1, &conv1);
        assert_close(&format!("conv1 {imp:?}"), &got1, &want1, 1e-5, 1e-4);
        assert_close(
            &format!("conv2 {imp:?}"),
            &h2.to_vec_f32().unwrap(),
            &conv_gelu(&got1, &w2, &b2, &conv2),
            1e-5,
            1e-4,
        );
    }
}
