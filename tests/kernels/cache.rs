//! shaders/cache.wgsl against the CPU. Both kernels copy bits: comparisons are exact.

use seqbridge::gpu::ops::cache::{self, Rows};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{gpu, randn, rng};

#[test]
fn copy_rows_appends_kv_rows() {
    let gpu = gpu();
    let mut r = rng(41);
    // A fused projection [B, 1, 3D] (K at offset D) appended to a [B, Tmax, D] cache at
    // position `pos`: rows = B, src stride 3D, dst stride Tmax·D. Plus a plain block copy.
    for (b, d, tmax, pos) in [
        (1, 1, 1, 0),
        (3, 64, 7, 4),
        (5, 257, 3, 2),
        (2, 512, 17, 16),
    ] {
        let src = randn(&mut r, b * 3 * d, 1.0);
        let dst0 = randn(&mut r, b * tmax * d, 1.0);
        let mut want = dst0.clone();
        for row in 0..b {
            for c in 0..d {
                want[pos * d + row * tmax * d + c] = src[d + row * 3 * d + c];
            }
        }
        let ts = gpu.upload(&src, &[b, 1, 3 * d]).unwrap();
        let td = gpu.upload(&dst0, &[b, tmax, d]).unwrap();
        let mut rec = Recorder::new(gpu);
        cache::copy_rows(
            &mut rec,
            &ts,
            Rows {
                offset: d,
                row_stride: 3 * d,
            },
            &td,
            Rows {
                offset: pos * d,
                row_stride: tmax * d,
            },
            b,
            d,
        )
        .unwrap();
        rec.submit();
        assert_eq!(
            td.to_vec_f32().unwrap(),
            want,
            "copy_rows B={b} D={d} Tmax={tmax} pos={pos}"
        );
    }
    // Many rows (more than one workgroup), odd strides.
    let (rows, cols) = (300, 5);
    let src = randn(&mut r, rows * 7 + 3, 1.0);
    let dst0 = vec![0.0f32; rows * 6 + 1];
    let mut want = dst0.clone();
    for row in 0..rows {
        for c in 0..cols {
            want[1 + row * 6 + c] = src[3 + row * 7 + c];
        }
    }
    let ts = gpu.upload(&src, &[src.len()]).unwrap();
    let td = gpu.upload(&dst0, &[dst0.len()]).unwrap();
    let mut rec = Recorder::new(gpu);
    cache::copy_rows(
        &mut rec,
        &ts,
        Rows {
            offset: 3,
            row_stride: 7,
        },
        &td,
        Rows {
            offset: 1,
            row_stride: 6,
        },
        rows,
        cols,
    )
    .unwrap();
    rec.submit();
    assert_eq!(
        td.to_vec_f32().unwrap(),
        want,
        "copy_rows {rows}x{cols} strides 7/6"
    );
}

#[test]
fn reorder_rows_table_follows_parents() {
    let gpu = gpu();
    for (batch, stride, len) in [
        (1, 1, 0),
        (1, 4, 4),
        (5, 7, 3),
        (4, 9, 0),
        (3, 6, 6),
        (130, 5, 4),
    ] {
        let old: Vec<u32> = (0..batch * stride).map(|i| 1000 + i as u32).collect();
        let parents: Vec<u32> = (0..batch).map(|b| ((b * 7 + 3) % batch) as u32).collect();
        let mut want = vec![u32::MAX; batch * stride];
        for b in 0..batch {
            for t in 0..len {
                want[b * stride + t] = old[parents[b] as usize * stride + t];
            }
            if len < stride {
                want[b * stride + len] = b as u32;
            }
        }
        let tp = gpu.upload(&parents, &[batch]).unwrap();
        let to = gpu.upload(&old, &[batch, stride]).unwrap();
        let tn = gpu
            .upload(&vec![u32::MAX; batch * stride], &[batch, stride])
            .unwrap();
        let mut rec = Recorder::new(gpu);
        cache::reorder_rows_table(&mut rec, &tp, &to, &tn, len).unwrap();
        rec.submit();
        assert_eq!(
            tn.to_vec_u32().unwrap(),
            want,
            "reorder_rows_table batch={batch} stride={stride} len={len}"
        );
    }
}

#[test]
fn cache_ops_reject_bad_regions() {
    let gpu = gpu();
    let src = gpu.empty(&[2, 6], DType::F32).unwrap();
    let dst = gpu.empty(&[2, 3, 4], DType::F32).unwrap();
    let mut rec = Recorder::new(gpu);
    // Last row ends at 4 + 1·12 + 4 = 20 <= 24: fine; offset 9 ends at 25 > 24.
    cache::copy_rows(
        &mut rec,
        &src,
        Rows {
            offset: 0,
            row_stride: 6,
        },
        &dst,
        Rows {
            offset: 4,
            row_stride: 12,
        },
        2,
        4,
    )
    .unwrap();
    let err = cache::copy_rows(
        &mut rec,
        &src,
        Rows {
            offset: 0,
            row_stride: 6,
        },
        &dst,
        Rows {
            offset: 9,
            row_stride: 12,
        },
        2,
        4,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dst [2, 3, 4]") && err.contains("2x4"),
        "{err}"
    );
    let err = cache::copy_rows(
        &mut rec,
        &src,
        Rows {
            offset: 3,
            row_stride: 6,
        },
        &dst,
        Rows {
            offset: 0,
            row_stride: 4,
        },
        2,
        4,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("src [2, 6]"), "{err}");
    let err = cache::copy_rows(
        &mut rec,
        &dst,
        Rows {
            offset: 0,
            row_stride: 4,
        },
        &dst,
        Rows {
            offset: 8,
            row_stride: 4,
        },
        1,
        4,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different buffers"), "{err}");

    let parents = gpu.upload(&[0u32, 1], &[2]).unwrap();
    let old = gpu.upload(&[0u32; 8], &[2, 4]).unwrap();
    let new = gpu.empty(&[2, 4], DType::U32).unwrap();
    let err = cache::reorder_rows_table(&mut rec, &parents, &old, &new, 5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("len 5") && err.contains("[2, 4]"), "{err}");
    let new_bad = gpu.empty(&[2, 5], DType::U32).unwrap();
    let err = cache::reorder_rows_table(&mut rec, &parents, &old, &new_bad, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 5]") && err.contains("[2, 4]"), "{err}");
}
