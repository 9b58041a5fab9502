//! shaders/softmax.wgsl against the CPU.
//!
//! Reference: v = f32(scale · x) + bias in f32 (as the kernel), softmax in f64. Tolerance:
//! atol 1e-6 + rtol 1e-5; masked entries exactly 0, fully masked rows all 0.

use rand::Rng;
use seqbridge::gpu::ops::softmax::{SoftmaxOptions, masked_softmax};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{assert_close, gpu, randn, rng};

#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    heads: usize,
    q_len: usize,
    kv_len: usize,
    scale: f32,
    lengths: Option<Vec<u32>>,
    causal: Option<usize>,
    /// Bias batch: 1 or batch.
    bias: Option<usize>,
    in_place: bool,
}

impl Case {
    fn new(batch: usize, heads: usize, q_len: usize, kv_len: usize) -> Case {
        Case {
            batch,
            heads,
            q_len,
            kv_len,
            scale: 0.7,
            lengths: None,
            causal: None,
            bias: None,
            in_place: false,
        }
    }

    fn limit(&self, b: usize, i: usize) -> usize {
        let mut l = self.kv_len;
        if let Some(len) = &self.lengths {
            l = l.min(len[b] as usize);
        }
        if let Some(off) = self.causal {
            l = l.min(i + off + 1);
        }
        l
    }
}

fn reference(c: &Case, x: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for b in 0..c.batch {
        for h in 0..c.heads {
            for i in 0..c.q_len {
                let base = ((b * c.heads + h) * c.q_len + i) * c.kv_len;
                let limit = c.limit(b, i);
                let v: Vec<f32> = (0..limit)
                    .map(|j| {
                        let mut v = c.scale * x[base + j];
                        if let Some(bias) = bias {
                            let bb = if bias.len() == x.len() { b } else { 0 };
                            v += bias[((bb * c.heads + h) * c.q_len + i) * c.kv_len + j];
                        }
                        v
                    })
                    .collect();
                let m = v.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
                let sum: f64 = v.iter().map(|&v| (v as f64 - m).exp()).sum();
                for j in 0..limit {
                    out[base + j] = ((v[j] as f64 - m).exp() / sum) as f32;
                }
            }
        }
    }
    out
}

fn check(c: &Case, seed: u64) {
    let g = gpu();
    let mut r = rng(seed);
    let n = c.batch * c.heads * c.q_len * c.kv_len;
    let mut x = randn(&mut r, n, 4.0);
    // Masked entries hold NaN: the kernel must never read them into its sums.
    for b in 0..c.batch {
        for h in 0..c.heads {
            for i in 0..c.q_len {
                let base = ((b * c.heads + h) * c.q_len + i) * c.kv_len;
                for j in c.limit(b, i)..c.kv_len {
                    x[base + j] = f32::NAN;
                }
            }
        }
    }
    let bias = c.bias.map(|bb| {
        let mut v = randn(&mut r, bb * c.heads * c.q_len * c.kv_len, 2.0);
        if let Some(e) = v.get_mut(1) {
            *e = f32::MIN;
        }
        v
    });
    let want = reference(c, &x, bias.as_deref());
    let shape = [c.batch, c.heads, c.q_len, c.kv_len];
    let tx = g.upload(&x, &shape).unwrap();
    let out = if c.in_place {
        tx.clone()
    } else {
        g.upload(&vec![5.0f32; n], &shape).unwrap()
    };
    let lengths = c.lengths.as_ref().map(|l| g.upload(l, &[l.len()]).unwrap());
    let tb = bias.as_ref().map(|b| g.upload(b, &[b.len()]).unwrap());
    let opts = SoftmaxOptions {
        scale: c.scale,
        key_lengths: lengths.as_ref(),
        causal_offset: c.causal,
        bias: tb.as_ref(),
        ..SoftmaxOptions::new(c.batch, c.heads, c.q_len, c.kv_len)
    };
    let mut rec = Recorder::new(g);
    masked_softmax(&mut rec, &tx, &out, &opts).unwrap();
    rec.submit();
    g.check_errors().unwrap();
    let got = out.to_vec_f32().unwrap();
    let case = format!("{c:?}");
    assert_close(&case, &got, &want, 1e-6, 1e-5);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        if w == 0.0 && x[i].is_nan() {
            assert!(g == 0.0, "{case}: masked index {i} = {g}");
        }
    }
}

#[test]
fn plain_rows_across_workgroup_sizes() {
    // Workgroups of 32..256 invocations: 1, primes, and each size ± 1.
    for (seed, kv) in [1usize, 7, 31, 32, 33, 63, 65, 127, 255, 256, 257, 1000]
        .into_iter()
        .enumerate()
    {
        check(&Case::new(2, 3, 2, kv), seed as u64);
    }
}

#[test]
fn key_lengths_including_zero() {
    let mut c = Case::new(4, 2, 3, 45);
    c.lengths = Some(vec![45, 0, 1, 300]);
    check(&c, 10);
    let mut c = Case::new(3, 1, 1, 513);
    c.lengths = Some(vec![257, 512, 2]);
    check(&c, 11);
}

#[test]
fn causal_offsets_and_bias() {
    for (seed, off) in [0usize, 4, 100].into_iter().enumerate() {
        let mut c = Case::new(2, 2, 9, 12);
        c.causal = Some(off);
        c.bias = Some(if seed.is_multiple_of(2) { 1 } else { 2 });
        check(&c, 20 + seed as u64);
    }
    let mut c = Case::new(3, 2, 17, 17);
    c.causal = Some(0);
    c.lengths = Some(vec![17, 5, 0]);
    c.bias = Some(3);
    check(&c, 24);
}

#[test]
fn in_place() {
    let mut c = Case::new(2, 3, 5, 70);
    c.in_place = true;
    c.lengths = Some(vec![70, 33]);
    c.bias = Some(1);
    check(&c, 30);
}

#[test]
fn random_sweep() {
    let mut r = rng(77);
    for seed in 0..12u64 {
        let batch = r.random_range(1..=3usize);
        let kv = r.random_range(1..300usize);
        let mut c = Case::new(batch, r.random_range(1..=4), r.random_range(1..=6), kv);
        c.scale = r.random_range(0.1..2.0);
        if r.random_bool(0.5) {
            c.lengths = Some((0..batch).map(|_| r.random_range(0..=kv as u32)).collect());
        }
        if r.random_bool(0.4) {
            c.causal = Some(r.random_range(0..kv));
        }
        if r.random_bool(0.4) {
            c.bias = Some(if r.random_bool(0.5) { 1 } else { batch });
        }
        c.in_place = r.random_bool(0.3);
        check(&c, 100 + seed);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let g = gpu();
    let x = g.upload(&[0.0f32; 24], &[2, 3, 4]).unwrap();
    let out = g.empty(&[2, 3, 4], DType::F32).unwrap();
    let opts = SoftmaxOptions::new(2, 1, 3, 5);
    let mut rec = Recorder::new(g);
    let e = masked_softmax(&mut rec, &x, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 3, 4]") && e.contains("[2, 1, 3, 5]"), "{e}");

    let opts = SoftmaxOptions::new(2, 1, 3, 4);
    let lengths = g.upload(&[1.0f32, 2.0], &[2]).unwrap();
    let e = masked_softmax(
        &mut rec,
        &x,
        &out,
        &SoftmaxOptions {
            key_lengths: Some(&lengths),
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("key_lengths must be u32, got f32"), "{e}");
    let short = g.upload(&[1u32], &[1]).unwrap();
    let e = masked_softmax(
        &mut rec,
        &x,
        &out,
        &SoftmaxOptions {
            key_lengths: Some(&short),
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("key_lengths [1] holds 1 values, 2 needed"),
        "{e}"
    );
    let bias = g.upload(&[0.0f32; 13], &[13]).unwrap();
    let e = masked_softmax(
        &mut rec,
        &x,
        &out,
        &SoftmaxOptions {
            bias: Some(&bias),
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bias [13]") && e.contains("[1 or 2, 1, 3, 4]"),
        "{e}"
    );
    let xi = g.upload(&[0u32; 24], &[2, 3, 4]).unwrap();
    let e = masked_softmax(&mut rec, &xi, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("x must be f32, got u32"), "{e}");
    // Overlapping views of one buffer that are not the same tensor.
    let big = g.empty(&[128], DType::F32).unwrap();
    let a = big.view(0, &[2, 3, 4]).unwrap();
    let b = big.view(64, &[2, 3, 4]).unwrap();
    let e = masked_softmax(&mut rec, &a, &b, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("overlap in one buffer"), "{e}");
}
