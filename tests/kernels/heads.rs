//! shaders/heads.wgsl against the CPU: split (strided → head-major, with zeroed positions)
//! and merge (head-major → strided, leaving every other element alone).

use rand::Rng;
use seqbridge::gpu::Recorder;
use seqbridge::gpu::ops::attention::SeqLayout;
use seqbridge::gpu::ops::heads::{Heads, Visible, merge_heads, split_heads};

use crate::common::{gpu, rng};

const SENTINEL: f32 = -7.5;

/// The strided index of block element (r, h, t, d).
fn place(h: &Heads, r: usize, head: usize, t: usize, d: usize) -> usize {
    let l = h.layout;
    l.offset + (h.first + r) / h.div * l.batch_stride + t * l.row_stride + head * h.head_dim + d
}

fn block_index(h: &Heads, r: usize, head: usize, t: usize, d: usize) -> usize {
    ((r * h.heads + head) * h.len + t) * h.head_dim + d
}

/// Odd shapes: strided rows wider than the heads (fused projections), gaps between rows,
/// offsets, several block rows per sequence row.
fn cases() -> Vec<(Heads, usize)> {
    let mut out = Vec::new();
    let mut r = rng(5);
    for (i, &(rows, heads, dh, len, div)) in [
        (1, 1, 1, 1, 1),
        (2, 3, 5, 7, 1),
        (4, 2, 4, 9, 2),
        (3, 1, 64, 3, 3),
        (5, 4, 7, 1, 1),
    ]
    .iter()
    .enumerate()
    {
        let width = heads * dh;
        let row_stride = width + r.random_range(0..4usize);
        let batch_stride = len * row_stride + r.random_range(0..5usize);
        let first = i % 2 * div;
        let layout = SeqLayout::new(r.random_range(0..6), batch_stride, row_stride);
        let h = Heads {
            layout,
            first,
            rows,
            div,
            len,
            heads,
            head_dim: dh,
        };
        let seq_rows = (first + rows - 1) / div + 1;
        out.push((h, layout.end(seq_rows, len, width).unwrap() + 3));
    }
    out
}

#[test]
fn split_copies_visible_positions_and_zeroes_the_rest() {
    let g = gpu();
    for (case, (h, n)) in cases().into_iter().enumerate() {
        let mut r = rng(case as u64);
        let src: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let seq_rows = (h.first + h.rows - 1) / h.div + 1;
        let lengths: Vec<u32> = (0..seq_rows)
            .map(|_| r.random_range(0..=h.len as u32 + 1))
            .collect();
        let total = h.rows * h.heads * h.len * h.head_dim;
        for (visible, with_lengths) in [(h.len, false), (h.len.saturating_sub(1), true), (0, false)]
        {
            let src_t = g.upload(&src, &[n]).unwrap();
            let len_t = g.upload(&lengths, &[seq_rows]).unwrap();
            let block = g.upload(&vec![SENTINEL; total], &[total]).unwrap();
            let mut rec = Recorder::new(g);
            let vis = Visible {
                positions: visible,
                lengths: with_lengths.then_some(&len_t),
            };
            split_heads(&mut rec, &src_t, &h, vis, &block).unwrap();
            rec.submit();
            let got = block.to_vec_f32().unwrap();
            for row in 0..h.rows {
                let limit = if with_lengths {
                    visible.min(lengths[(h.first + row) / h.div] as usize)
                } else {
                    visible
                };
                for head in 0..h.heads {
                    for t in 0..h.len {
                        for d in 0..h.head_dim {
                            let want = if t < limit {
                                src[place(&h, row, head, t, d)]
                            } else {
                                0.0
                            };
                            let i = block_index(&h, row, head, t, d);
                            assert_eq!(
                                got[i], want,
                                "case {case} visible {visible} lengths {with_lengths} ({row}, {head}, {t}, {d})"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn merge_writes_its_places_and_nothing_else() {
    let g = gpu();
    for (case, (mut h, n)) in cases().into_iter().enumerate() {
        h.first /= h.div;
        h.div = 1;
        let n = n.max(
            h.layout
                .end(h.first + h.rows, h.len, h.heads * h.head_dim)
                .unwrap(),
        );
        let total = h.rows * h.heads * h.len * h.head_dim;
        let mut r = rng(100 + case as u64);
        let block: Vec<f32> = (0..total).map(|_| r.random_range(-1.0..1.0)).collect();
        let dst = g.upload(&vec![SENTINEL; n], &[n]).unwrap();
        let block_t = g.upload(&block, &[total]).unwrap();
        let mut rec = Recorder::new(g);
        merge_heads(&mut rec, &block_t, &h, &dst).unwrap();
        rec.submit();
        let got = dst.to_vec_f32().unwrap();
        let mut want = vec![SENTINEL; n];
        for row in 0..h.rows {
            for head in 0..h.heads {
                for t in 0..h.len {
                    for d in 0..h.head_dim {
                        want[place(&h, row, head, t, d)] = block[block_index(&h, row, head, t, d)];
                    }
                }
            }
        }
        assert_eq!(got, want, "case {case}");
    }
}

#[test]
fn bad_shapes_are_errors() {
    let g = gpu();
    let h = Heads {
        layout: SeqLayout::contiguous(4, 6),
        first: 0,
        rows: 2,
        div: 1,
        len: 4,
        heads: 2,
        head_dim: 3,
    };
    let src = g.upload(&[0.0f32; 47], &[47]).unwrap();
    let block = g.upload(&[0.0f32; 48], &[48]).unwrap();
    let all = Visible {
        positions: 4,
        lengths: None,
    };
    let mut rec = Recorder::new(g);
    let e = split_heads(&mut rec, &src, &h, all, &block)
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");
    let src = g.upload(&[0.0f32; 48], &[48]).unwrap();
    let short = g.upload(&[0.0f32; 40], &[40]).unwrap();
    let e = split_heads(&mut rec, &src, &h, all, &short)
        .unwrap_err()
        .to_string();
    assert!(e.contains("block [40]"), "{e}");
    let e = merge_heads(&mut rec, &block, &Heads { div: 2, ..h }, &src)
        .unwrap_err()
        .to_string();
    assert!(e.contains("div must be 1"), "{e}");
}
