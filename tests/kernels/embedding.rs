//! shaders/embedding.wgsl against the CPU.
//!
//! Tolerance: |err| <= 1e-6 + 1e-6·|want| for f32 and f16 tables alike (the f16 table is
//! widened exactly; the only rounding is table·scale + position, which a GPU may fuse).

use half::f16;
use rand::Rng;
use seqbridge::gpu::ops::embedding::{self, EmbedImpl, EmbedOptions};
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{assert_close, gpu, randn, rng};

/// Marks output rows the kernel must leave alone.
const UNTOUCHED: f32 = 12345.0;

#[allow(clippy::too_many_arguments)]
fn embed_ref(
    ids: &[u32],
    t_len: usize,
    table: &[f32],
    d: usize,
    row_start: usize,
    scale: f32,
    pos: Option<&[f32]>,
    pos_offset: usize,
) -> Vec<f32> {
    let v = table.len() / d;
    let mut out = vec![UNTOUCHED; ids.len() * d];
    for (tok, &id) in ids.iter().enumerate() {
        let id = id as usize;
        if id < row_start || id >= row_start + v {
            continue;
        }
        let t = tok % t_len;
        for c in 0..d {
            let mut e = table[(id - row_start) * d + c] * scale;
            if let Some(p) = pos {
                e += p[(t + pos_offset) * d + c];
            }
            out[tok * d + c] = e;
        }
    }
    out
}

#[test]
fn embed_matches_reference() {
    let gpu = gpu();
    let mut r = rng(31);
    // (B, T, D, V, row_start, positions): 1s, primes, batch > 1, a chunk of a larger
    // vocabulary (ids outside it stay untouched), f32 and f16 tables.
    let cases = [
        (1, 1, 1, 1, 0, false),
        (1, 1, 512, 97, 0, true),
        (2, 7, 13, 50, 0, true),
        (3, 5, 64, 40, 20, true),
        (5, 1, 257, 61, 0, false),
        (3, 2, 4, 9, 0, true),
        (2, 3, 12, 30, 5, true),
        (2, 31, 255, 30, 100, false),
        (4, 3, 1024, 11, 3, true),
    ];
    for (imp, f16_table) in [
        (EmbedImpl::Plain, false),
        (EmbedImpl::Plain, true),
        (EmbedImpl::Vec4, false),
        (EmbedImpl::Vec4, true),
    ] {
        for (b, t, d, v, row_start, with_pos) in cases {
            let table_f32: Vec<f32> = randn(&mut r, v * d, 1.0)
                .into_iter()
                .map(|e| {
                    if f16_table {
                        f16::from_f32(e).to_f32()
                    } else {
                        e
                    }
                })
                .collect();
            // Ids across [0, row_start + v + 10): some outside the chunk.
            let ids: Vec<u32> = (0..b * t)
                .map(|_| r.random_range(0..row_start + v + 10) as u32)
                .collect();
            let pos_offset = if with_pos { 2 } else { 0 };
            let p_rows = t + pos_offset + 1;
            let pos = randn(&mut r, p_rows * d, 1.0);
            let scale = if d > 1 { (d as f32).sqrt() } else { 1.0 };
            let want = embed_ref(
                &ids,
                t,
                &table_f32,
                d,
                row_start,
                scale,
                with_pos.then_some(&pos[..]),
                pos_offset,
            );

            let table: Tensor = if f16_table {
                let h: Vec<f16> = table_f32.iter().map(|&e| f16::from_f32(e)).collect();
                gpu.upload(&h, &[v, d]).unwrap()
            } else {
                gpu.upload(&table_f32, &[v, d]).unwrap()
            };
            let tids = gpu.upload(&ids, &[b, t]).unwrap();
            let tpos = gpu.upload(&pos, &[p_rows, d]).unwrap();
            let out = gpu.upload(&vec![UNTOUCHED; b * t * d], &[b, t, d]).unwrap();
            let opts = EmbedOptions {
                scale,
                positions: with_pos.then_some(&tpos),
                position_offset: pos_offset,
                table_row_start: row_start,
            };
            let mut rec = Recorder::new(gpu);
            embedding::embed_with(&mut rec, &tids, &table, &out, &opts, imp).unwrap();
            rec.submit();
            let got = out.to_vec_f32().unwrap();
            let dt = if f16_table { "f16" } else { "f32" };
            assert_close(
                &format!(
                    "embed {dt} B={b} T={t} D={d} V={v} start={row_start} positions={with_pos}"
                ),
                &got,
                &want,
                1e-6,
                1e-6,
            );
        }
    }
    gpu.check_errors().unwrap();
}

#[test]
fn embed_rejects_bad_shapes() {
    let gpu = gpu();
    let ids = gpu.upload(&[0u32; 6], &[2, 3]).unwrap();
    let table = gpu.upload(&[0.0f32; 40], &[10, 4]).unwrap();
    let out = gpu.empty(&[2, 3, 4], DType::F32).unwrap();
    let mut rec = Recorder::new(gpu);
    // Position table too short: T + offset = 3 + 2 > 4 rows.
    let pos = gpu.upload(&[0.0f32; 16], &[4, 4]).unwrap();
    let opts = EmbedOptions {
        scale: 1.0,
        positions: Some(&pos),
        position_offset: 2,
        table_row_start: 0,
    };
    let err = embedding::embed(&mut rec, &ids, &table, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[4, 4]") && err.contains("[2, 3]") && err.contains("offset 2"),
        "{err}"
    );
    // Exactly fitting is fine.
    let opts = EmbedOptions {
        position_offset: 1,
        ..opts
    };
    embedding::embed(&mut rec, &ids, &table, &out, &opts).unwrap();
    // Position width differs from the table's.
    let pos3 = gpu.upload(&[0.0f32; 30], &[10, 3]).unwrap();
    let opts = EmbedOptions {
        scale: 1.0,
        positions: Some(&pos3),
        position_offset: 0,
        table_row_start: 0,
    };
    let err = embedding::embed(&mut rec, &ids, &table, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[10, 3]") && err.contains("[10, 4]"), "{err}");
    // Output shape.
    let out_bad = gpu.empty(&[2, 3, 5], DType::F32).unwrap();
    let opts = EmbedOptions {
        scale: 1.0,
        ..Default::default()
    };
    let err = embedding::embed(&mut rec, &ids, &table, &out_bad, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 3, 5]") && err.contains("[2, 3, 4]"),
        "{err}"
    );
    // ids must be u32 [B, T].
    let ids_f = gpu.upload(&[0.0f32; 6], &[2, 3]).unwrap();
    let err = embedding::embed(&mut rec, &ids_f, &table, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ids [2, 3] f32"), "{err}");
}
