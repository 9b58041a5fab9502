//! shaders/position_bias.wgsl against the CPU, and its output as attention's bias.

use seqbridge::gpu::ops::attention::{Attention, AttentionImpl, attention};
use seqbridge::gpu::ops::position_bias::relative_position_bias;
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{assert_close, gpu, randn, rng};

/// out[h, i, j] = table[h, clamp(j - (i + q_offset), -M, M) + M], `[H, q_len, kv_len]`.
fn reference(table: &[f32], m: usize, q_offset: usize, q_len: usize, kv_len: usize) -> Vec<f32> {
    let w = 2 * m + 1;
    let heads = table.len() / w;
    let mut out = Vec::with_capacity(heads * q_len * kv_len);
    for h in 0..heads {
        for i in 0..q_len {
            for j in 0..kv_len {
                let r = (j as i64 - (i + q_offset) as i64).clamp(-(m as i64), m as i64);
                out.push(table[h * w + (r + m as i64) as usize]);
            }
        }
    }
    out
}

/// Table and GPU result of one case.
fn run(
    heads: usize,
    m: usize,
    q_offset: usize,
    q_len: usize,
    kv_len: usize,
    seed: u64,
) -> (Vec<f32>, Tensor) {
    let gpu = gpu();
    let table = randn(&mut rng(seed), heads * (2 * m + 1), 4.0);
    let t = gpu.upload(&table, &[heads, 2 * m + 1]).unwrap();
    let out = gpu.empty(&[1, heads, q_len, kv_len], DType::F32).unwrap();
    let mut rec = Recorder::new(gpu);
    relative_position_bias(&mut rec, &t, m, q_offset, q_len, kv_len, &out).unwrap();
    rec.submit();
    (table, out)
}

/// A gather: exact. Cases are (heads, M, q_offset, q_len, kv_len).
#[test]
fn matches_cpu_over_odd_shapes() {
    let cases = [
        (1, 0, 0, 1, 1),
        (1, 1, 0, 1, 1),
        // Encoder self-attention: q_offset 0, kv_len = q_len, M inside and outside the range.
        (7, 3, 0, 13, 13),
        (7, 32, 0, 13, 13),
        // kv_len < q_len + q_offset: the last queries see no key at or after them.
        (1, 2, 5, 3, 4),
        (3, 4, 50, 7, 10),
        // Decode steps: q_len 1, q_offset t, kv_len t + 1.
        (7, 8, 0, 1, 1),
        (7, 8, 10, 1, 11),
        (5, 16, 300, 1, 301),
        // kv_len much larger than M, crossing the 256-wide workgroups.
        (7, 5, 0, 37, 300),
        (3, 7, 2, 129, 257),
        // M = 0: one column, every position gets it.
        (2, 0, 3, 17, 29),
        (7, 0, 0, 1, 1000),
        // Cross-attention-like: more keys than queries, queries late.
        (4, 128, 17, 31, 997),
    ];
    for (n, &(heads, m, q_offset, q_len, kv_len)) in cases.iter().enumerate() {
        let (table, out) = run(heads, m, q_offset, q_len, kv_len, n as u64);
        assert_close(
            &format!("H{heads} M{m} q_offset{q_offset} q{q_len} kv{kv_len}"),
            &out.to_vec_f32().unwrap(),
            &reference(&table, m, q_offset, q_len, kv_len),
            0.0,
            0.0,
        );
    }
}

/// Empty queries or keys write nothing and are not errors.
#[test]
fn empty_is_a_no_op() {
    for (q_len, kv_len) in [(0, 5), (5, 0), (0, 0)] {
        let (_, out) = run(3, 2, 1, q_len, kv_len, 9);
        assert_eq!(out.numel(), 0);
    }
}

/// More workgroups than one grid dimension holds: the launcher folds them into two.
#[test]
fn grid_past_one_dimension() {
    let gpu = gpu();
    let per_dim = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let (heads, q_len, m, q_offset) = (3, 2, 40, 7);
    // One workgroup more than a dimension holds at 256 invocations each.
    let kv_len = (per_dim * 256 + 256).div_ceil(heads * q_len);
    let (table, out) = run(heads, m, q_offset, q_len, kv_len, 11);
    assert_close(
        &format!("H{heads} M{m} q_offset{q_offset} q{q_len} kv{kv_len}"),
        &out.to_vec_f32().unwrap(),
        &reference(&table, m, q_offset, q_len, kv_len),
        0.0,
        0.0,
    );
}

#[test]
fn rejects_bad_arguments() {
    let gpu = gpu();
    let z = |shape: &[usize]| gpu.empty(shape, DType::F32).unwrap();
    let err = |table: &Tensor, m, q_len, kv_len, out: &Tensor| {
        let mut rec = Recorder::new(gpu);
        relative_position_bias(&mut rec, table, m, 0, q_len, kv_len, out)
            .unwrap_err()
            .to_string()
    };
    // Table width is not 2M + 1.
    let e = err(&z(&[4, 9]), 3, 2, 2, &z(&[4, 2, 2]));
    assert!(e.contains("[4, 9]") && e.contains("max_distance 3"), "{e}");
    // Table not 2-D.
    let e = err(&z(&[63]), 31, 1, 1, &z(&[1]));
    assert!(e.contains("[63]"), "{e}");
    // Out has the wrong size.
    let e = err(&z(&[4, 7]), 3, 5, 6, &z(&[4, 5, 5]));
    assert!(
        e.contains("[4, 5, 5]") && e.contains("q_len 5") && e.contains("kv_len 6"),
        "{e}"
    );
    // Not f32.
    let e = err(
        &z(&[4, 7]),
        3,
        1,
        1,
        &gpu.empty(&[4, 1, 1], DType::U32).unwrap(),
    );
    assert!(e.contains("u32") && e.contains("[4, 1, 1]"), "{e}");
    // Positions past 32 bits.
    let mut rec = Recorder::new(gpu);
    let e = relative_position_bias(&mut rec, &z(&[1, 3]), 1, u32::MAX as usize, 1, 1, &z(&[1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("q_offset {}", u32::MAX)), "{e}");
    // Writing into the table's buffer.
    let t = z(&[2, 3]);
    let e = err(&t, 1, 1, 3, &t.reshape(&[2, 1, 3]).unwrap());
    assert!(e.contains("different buffers"), "{e}");
}

/// The expanded bias through `attention` (causal, as a decoder's self-attention at a later
/// step) against a CPU attention with the CPU bias: the layouts agree.
#[test]
fn feeds_attention_as_its_bias() {
    let gpu = gpu();
    let (batch, heads, dh, m) = (2, 3, 8, 4);
    // (q_offset, q_len, kv_len): a prompt, a chunk after a prefix, a decode step.
    for (q_offset, q_len, kv_len) in [(0, 7, 7), (5, 4, 9), (12, 1, 13)] {
        let mut r = rng(21);
        let d = heads * dh;
        let q = randn(&mut r, batch * q_len * d, 1.0);
        let k = randn(&mut r, batch * kv_len * d, 1.0);
        let v = randn(&mut r, batch * kv_len * d, 1.0);
        let table = randn(&mut r, heads * (2 * m + 1), 2.0);
        let bias = reference(&table, m, q_offset, q_len, kv_len);

        let scale = 1.0 / (dh as f32).sqrt();
        let mut want = vec![0f32; batch * q_len * d];
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..q_len {
                    let at = |t: usize, len: usize| ((b * len + t) * heads + h) * dh;
                    let qi = &q[at(i, q_len)..at(i, q_len) + dh];
                    let visible = (i + q_offset + 1).min(kv_len);
                    let s: Vec<f64> = (0..visible)
                        .map(|j| {
                            let kj = &k[at(j, kv_len)..at(j, kv_len) + dh];
                            let dot: f32 = qi.iter().zip(kj).map(|(x, y)| x * y).sum();
                            (dot * scale + bias[(h * q_len + i) * kv_len + j]) as f64
                        })
                        .collect();
                    let mx = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for c in 0..dh {
                        let o: f64 = (0..visible)
                            .map(|j| e[j] / sum * v[at(j, kv_len) + c] as f64)
                            .sum();
                        want[at(i, q_len) + c] = o as f32;
                    }
                }
            }
        }

        let tq = gpu.upload(&q, &[batch, q_len, d]).unwrap();
        let tk = gpu.upload(&k, &[batch, kv_len, d]).unwrap();
        let tv = gpu.upload(&v, &[batch, kv_len, d]).unwrap();
        let tt = gpu.upload(&table, &[heads, 2 * m + 1]).unwrap();
        for imp in [AttentionImpl::Naive, AttentionImpl::Auto] {
            let tb = gpu.empty(&[1, heads, q_len, kv_len], DType::F32).unwrap();
            let out = gpu.empty(&[batch, q_len, d], DType::F32).unwrap();
            let mut rec = Recorder::new(gpu);
            relative_position_bias(&mut rec, &tt, m, q_offset, q_len, kv_len, &tb).unwrap();
            let mut a = Attention::new(&tq, &tk, &tv, &out, batch, heads, dh, q_len, kv_len);
            a.bias = Some(&tb);
            a.causal_offset = Some(q_offset);
            a.imp = imp;
            attention(&mut rec, &a).unwrap();
            rec.submit();
            assert_close(
                &format!("{imp:?} q_offset{q_offset} q{q_len} kv{kv_len}"),
                &out.to_vec_f32().unwrap(),
                &want,
                2e-5,
                2e-5,
            );
        }
    }
}
