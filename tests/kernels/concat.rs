//! Concatenated sources in one cross-attention, the two ways of laying them out: packed
//! (each row's real keys of every source one after another, one length per row; what
//! `ConcatDecoder` does) and side by side (each source padded to its own longest, the
//! padding masked per segment, here by an additive bias). Both must give the same output;
//! `concat_pack_vs_segment_mask_timing` (ignored) times one decode step of each.

use std::time::Instant;

use seqbridge::gpu::ops::attention::{Attention, attention};
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{assert_close, gpu, randn, rng};

/// A decode step over `rows` sources × `beams` queries, sources of `lengths[source][row]`.
struct Case {
    rows: usize,
    beams: usize,
    heads: usize,
    head_dim: usize,
    lengths: Vec<Vec<usize>>,
}

/// (output of the packed layout, output of the side-by-side layout, their kv lengths).
struct Layouts {
    q: Tensor,
    packed: (Tensor, Tensor, usize),
    side: (Tensor, Tensor, usize),
}

fn layouts(c: &Case, seed: u64) -> Layouts {
    let g = gpu();
    let w = c.heads * c.head_dim;
    let mut r = rng(seed);
    let n = c.rows * c.beams;
    let maxes: Vec<usize> = c
        .lengths
        .iter()
        .map(|l| l.iter().copied().max().unwrap())
        .collect();
    let side_len: usize = maxes.iter().sum();
    let totals: Vec<usize> = (0..c.rows)
        .map(|b| c.lengths.iter().map(|l| l[b]).sum())
        .collect();
    let pack_len = totals.iter().copied().max().unwrap();
    // Keys/values of every source, [rows, side_len, w] side by side.
    let side_kv = randn(&mut r, c.rows * side_len * w, 1.0);
    let mut packed_kv = vec![0f32; c.rows * pack_len * w];
    let mut bias = vec![0f32; n * c.heads * side_len];
    for b in 0..c.rows {
        let (mut at, mut start) = (0, 0);
        for (s, l) in c.lengths.iter().enumerate() {
            let src = (b * side_len + start) * w;
            let dst = (b * pack_len + at) * w;
            packed_kv[dst..dst + l[b] * w].copy_from_slice(&side_kv[src..src + l[b] * w]);
            for row in b * c.beams..(b + 1) * c.beams {
                for h in 0..c.heads {
                    let o = (row * c.heads + h) * side_len + start;
                    bias[o + l[b]..o + maxes[s]].fill(-1e30);
                }
            }
            at += l[b];
            start += maxes[s];
        }
    }
    let q = g.upload(&randn(&mut r, n * w, 1.0), &[n, 1, w]).unwrap();
    let lengths: Vec<u32> = totals.iter().map(|&t| t as u32).collect();
    Layouts {
        q,
        packed: (
            g.upload(&packed_kv, &[c.rows, pack_len, w]).unwrap(),
            g.upload(&lengths, &[c.rows]).unwrap(),
            pack_len,
        ),
        side: (
            g.upload(&side_kv, &[c.rows, side_len, w]).unwrap(),
            g.upload(&bias, &[n, c.heads, 1, side_len]).unwrap(),
            side_len,
        ),
    }
}

/// Records the step in one layout: packed (`lengths`) or side by side (`bias`).
fn record(rec: &mut Recorder, c: &Case, x: &Layouts, packed: bool, out: &Tensor) {
    let n = c.rows * c.beams;
    let (kv, mask, len) = if packed { &x.packed } else { &x.side };
    let mut a = Attention::new(&x.q, kv, kv, out, n, c.heads, c.head_dim, 1, len.to_owned());
    a.kv_group = c.beams;
    if packed {
        a.key_lengths = Some(mask);
    } else {
        a.bias = Some(mask);
    }
    attention(rec, &a).unwrap();
}

fn case(rows: usize, beams: usize, lengths: Vec<Vec<usize>>) -> Case {
    Case {
        rows,
        beams,
        heads: 3,
        head_dim: 8,
        lengths,
    }
}

#[test]
fn concat_pack_equals_segment_mask() {
    let c = case(3, 2, vec![vec![5, 1, 7], vec![10, 10, 10], vec![2, 6, 3]]);
    let x = layouts(&c, 7);
    let g = gpu();
    let n = c.rows * c.beams;
    let outs: Vec<Tensor> = (0..2)
        .map(|_| g.empty(&[n, 1, c.heads * c.head_dim], DType::F32).unwrap())
        .collect();
    let mut rec = Recorder::new(g);
    record(&mut rec, &c, &x, true, &outs[0]);
    record(&mut rec, &c, &x, false, &outs[1]);
    let rbs: Vec<_> = outs.iter().map(|o| rec.read_back(o).unwrap()).collect();
    rec.submit();
    let v: Vec<Vec<f32>> = rbs.into_iter().map(|r| r.wait_f32().unwrap()).collect();
    assert_close("packed vs side by side", &v[0], &v[1], 1e-5, 1e-5);
}

/// `cargo test --release --test kernels -- --ignored concat_pack --nocapture`: one decode
/// step of 8 examples × 4 beams, 8 heads of 64, over a text of 8..64 tokens, an image of
/// 197 positions and a second text of 8..64 tokens.
#[test]
#[ignore]
fn concat_pack_vs_segment_mask_timing() {
    let rows = 8;
    let text = |k: usize| (0..rows).map(|b| 8 + (b * k * 7) % 57).collect::<Vec<_>>();
    let c = Case {
        rows,
        beams: 4,
        heads: 8,
        head_dim: 64,
        lengths: vec![text(3), vec![197; rows], text(5)],
    };
    let x = layouts(&c, 1);
    let g = gpu();
    let out = g
        .empty(&[rows * c.beams, 1, c.heads * c.head_dim], DType::F32)
        .unwrap();
    const REPS: usize = 50;
    for packed in [true, false, true, false] {
        let t = Instant::now();
        let mut rec = Recorder::new(g);
        for _ in 0..REPS {
            record(&mut rec, &c, &x, packed, &out);
        }
        rec.submit();
        g.wait_idle().unwrap();
        let len = if packed { x.packed.2 } else { x.side.2 };
        eprintln!(
            "{}: {len} keys, {:.3} ms a step",
            if packed {
                "packed"
            } else {
                "side by side + mask"
            },
            t.elapsed().as_secs_f64() * 1e3 / REPS as f64
        );
    }
}
