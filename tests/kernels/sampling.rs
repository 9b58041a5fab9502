//! shaders/sampling.wgsl against the CPU.
//!
//! Tolerances: argmax and top-k ids exact, top-k values exact (the kernel and the reference
//! both form x + addend in f32); log_softmax and its gather |err| <= 2e-6 + 2e-7·|want|
//! against f64 (about one f32 ulp at |want| ≈ 16); edit_logits relative 1e-6 (WGSL's
//! division is not required to round correctly).

use rand::Rng;
use seqbridge::gpu::ops::sampling::{self, ArgmaxImpl, LogitEdit, TopkImpl};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{assert_close, gpu, randn, rng};

/// [`assert_close`] where both sides may hold the same infinity (banned tokens).
#[track_caller]
fn assert_close_inf(case: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() {
            assert_eq!(g, w, "{case}: index {i}: got {g}, want {w}");
        }
    }
    let finite = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .map(|&e| if e.is_infinite() { 0.0 } else { e })
            .collect()
    };
    assert_close(case, &finite(got), &finite(want), atol, rtol);
}

/// (value, index) order of torch.topk / torch.argmax: larger value, then lower index.
fn ranked(row: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx
}

/// Random logits with ties at the maximum and a few -inf entries.
fn logits(r: &mut rand::rngs::StdRng, rows: usize, v: usize) -> Vec<f32> {
    let mut x = randn(r, rows * v, 8.0);
    for row in x.chunks_mut(v) {
        for _ in 0..(v / 50).min(40) {
            row[r.random_range(0..v)] = f32::NEG_INFINITY;
        }
        if v > 2 {
            // The maximum, repeated at two or three places (same stride or not).
            let m = 9.0 + r.random_range(0..4) as f32;
            for _ in 0..3 {
                row[r.random_range(0..v)] = m;
            }
        }
    }
    x
}

const ARGMAX_SHAPES: [(usize, usize); 11] = [
    (1, 1),
    (1, 2),
    (1, 7),
    (3, 255),
    (2, 256),
    (5, 257),
    (4, 1000),
    (2, 4097),
    (3, 58101),
    (1, 128112),
    (300, 13),
];

#[test]
fn argmax_first_maximum() {
    let gpu = gpu();
    let mut r = rng(21);
    for imp in [ArgmaxImpl::Plain, ArgmaxImpl::Fast] {
        for (rows, v) in ARGMAX_SHAPES {
            let mut x = logits(&mut r, rows, v);
            if rows > 1 {
                // A row of -inf only (the first index wins), and a maximum in the last column.
                x[..v].fill(f32::NEG_INFINITY);
                x[2 * v - 1] = 100.0;
            }
            let want: Vec<u32> = x.chunks(v).map(|row| ranked(row)[0] as u32).collect();
            let tx = gpu.upload(&x, &[rows, v]).unwrap();
            let ids = gpu.empty(&[rows], DType::U32).unwrap();
            let mut rec = Recorder::new(gpu);
            sampling::argmax_with(&mut rec, &tx, &ids, imp).unwrap();
            rec.submit();
            assert_eq!(ids.to_vec_u32().unwrap(), want, "argmax {imp:?} {rows}x{v}");
        }
    }
    gpu.check_errors().unwrap();
}

fn topk_ref(x: &[f32], add: Option<&[f32]>, v: usize, k: usize) -> (Vec<f32>, Vec<u32>) {
    let (mut vals, mut ids) = (Vec::new(), Vec::new());
    for (ri, row) in x.chunks(v).enumerate() {
        let a = add.map_or(0.0, |a| a[ri]);
        let row: Vec<f32> = row.iter().map(|&e| e + a).collect();
        for &i in &ranked(&row)[..k] {
            vals.push(row[i]);
            ids.push(i as u32);
        }
    }
    (vals, ids)
}

#[test]
fn topk_sorted_with_ties_and_banned_entries() {
    let gpu = gpu();
    let mut r = rng(22);
    // (rows, V, k, addend): k = 1, k = V for small V, large k, wide rows. The threshold
    // kernel (WG = 256 on lavapipe and llvmpipe) ranks few candidates in one step (most
    // cases), runs rounds over up to CAP = 1024 of them (k = 300 > WG: every entry is a
    // candidate), or over the row (topk_massive_ties).
    let cases = [
        (1, 1, 1, false),
        (3, 7, 7, true),
        (2, 31, 5, false),
        (4, 257, 16, true),
        (1, 1000, 64, false),
        (2, 300, 33, true),
        (2, 700, 300, false),
        (5, 58101, 10, true),
        (1, 128112, 4, false),
        (70, 19, 3, true),
        // Lists: k at its largest (8 register blocks), k = V = 32, beam-search rows.
        (2, 40, 32, true),
        (1, 32, 32, false),
        (5, 1000, 32, true),
        (32, 1001, 8, true),
    ];
    for imp in [
        TopkImpl::Plain,
        TopkImpl::Threshold,
        TopkImpl::Lists,
        TopkImpl::Auto,
    ] {
        for (rows, v, k, with_add) in cases {
            if imp == TopkImpl::Lists && k > sampling::LISTS_MAX_K {
                continue;
            }
            let mut x = logits(&mut r, rows, v);
            // Quantised values in one row: many ties below the maximum.
            for e in &mut x[..v] {
                if e.is_finite() {
                    *e = e.round();
                }
            }
            let add = with_add.then(|| randn(&mut r, rows, 3.0));
            let (want_v, want_i) = topk_ref(&x, add.as_deref(), v, k);
            let tx = gpu.upload(&x, &[rows, v]).unwrap();
            let ta = add.as_ref().map(|a| gpu.upload(a, &[rows]).unwrap());
            let vals = gpu.empty(&[rows, k], DType::F32).unwrap();
            let ids = gpu.empty(&[rows, k], DType::U32).unwrap();
            let mut rec = Recorder::new(gpu);
            sampling::topk_with(&mut rec, &tx, ta.as_ref(), k, &vals, &ids, imp).unwrap();
            rec.submit();
            let case = format!("topk {imp:?} {rows}x{v} k={k} addend={with_add}");
            assert_eq!(ids.to_vec_u32().unwrap(), want_i, "{case}");
            assert_eq!(vals.to_vec_f32().unwrap(), want_v, "{case}");
        }
    }
    gpu.check_errors().unwrap();
}

#[test]
fn topk_more_than_finite_entries() {
    // k exceeds the finite entries: the -inf entries fill in, lowest index first.
    let gpu = gpu();
    let v = 600;
    let mut x = vec![f32::NEG_INFINITY; 2 * v];
    for (i, &j) in [5usize, 400, 17].iter().enumerate() {
        x[j] = i as f32;
        x[v + 599 - j] = -(i as f32);
    }
    let k = 8;
    let (want_v, want_i) = topk_ref(&x, None, v, k);
    assert_eq!(&want_i[..k], &[17, 400, 5, 0, 1, 2, 3, 4]);
    for imp in [TopkImpl::Plain, TopkImpl::Threshold, TopkImpl::Lists] {
        let tx = gpu.upload(&x, &[2, v]).unwrap();
        let vals = gpu.empty(&[2, k], DType::F32).unwrap();
        let ids = gpu.empty(&[2, k], DType::U32).unwrap();
        let mut rec = Recorder::new(gpu);
        sampling::topk_with(&mut rec, &tx, None, k, &vals, &ids, imp).unwrap();
        rec.submit();
        assert_eq!(
            ids.to_vec_u32().unwrap(),
            want_i,
            "topk {imp:?} 2x{v} k={k} mostly -inf"
        );
        assert_eq!(
            vals.to_vec_f32().unwrap(),
            want_v,
            "topk {imp:?} 2x{v} k={k} mostly -inf"
        );
    }
}

#[test]
fn topk_massive_ties() {
    // Thousands of entries equal to the threshold (more than the threshold kernel's
    // candidate capacity): its rounds fall back to scanning the row. Ties go to lower ids.
    let gpu = gpu();
    let v = 5003;
    let mut x = vec![1.0f32; 3 * v];
    x[v..2 * v].fill(f32::NEG_INFINITY);
    for j in (0..v).step_by(3) {
        x[2 * v + j] = -2.0;
    }
    x[2 * v + 4000] = 3.0;
    for k in [1, 7] {
        let (want_v, want_i) = topk_ref(&x, None, v, k);
        for imp in [TopkImpl::Plain, TopkImpl::Threshold, TopkImpl::Lists] {
            let tx = gpu.upload(&x, &[3, v]).unwrap();
            let vals = gpu.empty(&[3, k], DType::F32).unwrap();
            let ids = gpu.empty(&[3, k], DType::U32).unwrap();
            let mut rec = Recorder::new(gpu);
            sampling::topk_with(&mut rec, &tx, None, k, &vals, &ids, imp).unwrap();
            rec.submit();
            assert_eq!(
                ids.to_vec_u32().unwrap(),
                want_i,
                "topk {imp:?} 3x{v} k={k} ties"
            );
            assert_eq!(
                vals.to_vec_f32().unwrap(),
                want_v,
                "topk {imp:?} 3x{v} k={k} ties"
            );
        }
    }
}

#[test]
fn topk_lists_many_rows_and_wide_rows() {
    // Lists at the shapes its plan treats differently: many short rows (one list per row,
    // rows straddling vec4s), and wide rows whose lists merge over one or more passes; rows
    // of one repeated value (ties everywhere: the lowest ids win) and a row whose finite
    // entries are fewer than k.
    let gpu = gpu();
    let mut r = rng(26);
    for (rows, v, k) in [(300, 13, 5), (33, 1001, 16), (3, 4099, 8), (2, 128112, 31)] {
        let mut x = logits(&mut r, rows, v);
        x[..v].fill(2.5);
        if rows > 2 {
            x[v..2 * v].fill(f32::NEG_INFINITY);
            x[v + v / 2] = 1.0;
        }
        let add = randn(&mut r, rows, 3.0);
        let (want_v, want_i) = topk_ref(&x, Some(&add), v, k);
        let tx = gpu.upload(&x, &[rows, v]).unwrap();
        let ta = gpu.upload(&add, &[rows]).unwrap();
        let vals = gpu.empty(&[rows, k], DType::F32).unwrap();
        let ids = gpu.empty(&[rows, k], DType::U32).unwrap();
        let mut rec = Recorder::new(gpu);
        sampling::topk_with(&mut rec, &tx, Some(&ta), k, &vals, &ids, TopkImpl::Lists).unwrap();
        rec.submit();
        let case = format!("topk Lists {rows}x{v} k={k}");
        assert_eq!(ids.to_vec_u32().unwrap(), want_i, "{case}");
        assert_eq!(vals.to_vec_f32().unwrap(), want_v, "{case}");
    }
    // k past the register lists is an error for Lists (Auto takes Threshold there).
    let x = gpu.upload(&vec![0.0f32; 2 * 40], &[2, 40]).unwrap();
    let vals = gpu.empty(&[2, 33], DType::F32).unwrap();
    let ids = gpu.empty(&[2, 33], DType::U32).unwrap();
    let mut rec = Recorder::new(gpu);
    let err = sampling::topk_with(&mut rec, &x, None, 33, &vals, &ids, TopkImpl::Lists)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("k up to 32") && err.contains("[2, 40]"),
        "{err}"
    );
    gpu.check_errors().unwrap();
}

fn log_softmax_ref(x: &[f32], v: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(v) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let s: f64 = row.iter().map(|&e| (e as f64 - m).exp()).sum();
        out.extend(row.iter().map(|&e| (e as f64 - m - s.ln()) as f32));
    }
    out
}

#[test]
fn log_softmax_matches_reference() {
    let gpu = gpu();
    let mut r = rng(23);
    for (rows, v) in [
        (1, 1),
        (1, 7),
        (3, 255),
        (2, 257),
        (4, 1000),
        (2, 58101),
        (33, 31),
    ] {
        let x = logits(&mut r, rows, v);
        let want = log_softmax_ref(&x, v);
        for inplace in [false, true] {
            let tx = gpu.upload(&x, &[rows, v]).unwrap();
            let out = if inplace {
                tx.clone()
            } else {
                gpu.empty(&[rows, v], DType::F32).unwrap()
            };
            let mut rec = Recorder::new(gpu);
            sampling::log_softmax(&mut rec, &tx, &out).unwrap();
            rec.submit();
            let got = out.to_vec_f32().unwrap();
            assert_close_inf(
                &format!("log_softmax {rows}x{v} inplace={inplace}"),
                &got,
                &want,
                2e-6,
                2e-7,
            );
        }
    }
    gpu.check_errors().unwrap();
}

#[test]
fn log_softmax_gather_matches_reference() {
    let gpu = gpu();
    let mut r = rng(24);
    for (rows, v) in [(1, 1), (5, 7), (3, 257), (2, 58101), (40, 100)] {
        let x = logits(&mut r, rows, v);
        let full = log_softmax_ref(&x, v);
        let mut targets: Vec<u32> = (0..rows).map(|_| r.random_range(0..v) as u32).collect();
        if rows > 2 {
            targets[1] = (-100i32) as u32; // ignore_index: gives 0
            targets[2] = v as u32; // just outside the row: gives 0
        }
        let want: Vec<f32> = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if (t as usize) < v {
                    full[i * v + t as usize]
                } else {
                    0.0
                }
            })
            .collect();
        let tx = gpu.upload(&x, &[rows, v]).unwrap();
        let tt = gpu.upload(&targets, &[rows]).unwrap();
        let out = gpu.empty(&[rows], DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        sampling::log_softmax_gather(&mut rec, &tx, &tt, &out).unwrap();
        rec.submit();
        let got = out.to_vec_f32().unwrap();
        assert_close(
            &format!("log_softmax_gather {rows}x{v}"),
            &got,
            &want,
            2e-6,
            2e-7,
        );
    }
}

#[test]
fn edit_logits_bans_and_penalizes() {
    let gpu = gpu();
    let mut r = rng(25);
    let (rows, v) = (3, 301);
    let x = randn(&mut r, rows * v, 4.0);
    let penalty = 1.3f32;
    let mut triples: Vec<[u32; 3]> = Vec::new();
    let mut want = x.clone();
    for row in 0..rows {
        for tok in (row * 7..v).step_by(37) {
            let kind = if tok % 2 == 0 {
                LogitEdit::Ban
            } else {
                LogitEdit::Penalize
            };
            triples.push([row as u32, tok as u32, kind as u32]);
            let e = &mut want[row * v + tok];
            *e = match kind {
                LogitEdit::Ban => f32::NEG_INFINITY,
                LogitEdit::Penalize if *e < 0.0 => *e * penalty,
                LogitEdit::Penalize => *e / penalty,
            };
        }
    }
    // Skipped: row out of range, token out of range, unknown kind.
    triples.push([rows as u32, 0, 0]);
    triples.push([0, v as u32, 0]);
    triples.push([1, 3, 7]);
    let n = triples.len();
    let flat: Vec<u32> = triples.concat();
    let tx = gpu.upload(&x, &[rows, v]).unwrap();
    // One spare triple past n that must not be applied.
    let mut padded = flat.clone();
    padded.extend([0, 0, 0]);
    let te = gpu.upload(&padded, &[n + 1, 3]).unwrap();
    let mut rec = Recorder::new(gpu);
    sampling::edit_logits(&mut rec, &tx, &te, n, penalty).unwrap();
    rec.submit();
    let got = tx.to_vec_f32().unwrap();
    assert_close_inf(
        &format!("edit_logits {rows}x{v} {n} edits"),
        &got,
        &want,
        0.0,
        1e-6,
    );
}

#[test]
fn sampling_rejects_bad_shapes() {
    let gpu = gpu();
    let x = gpu.upload(&[0.5f32; 12], &[3, 4]).unwrap();
    let ids2 = gpu.empty(&[2], DType::U32).unwrap();
    let mut rec = Recorder::new(gpu);
    let err = sampling::argmax(&mut rec, &x, &ids2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2]") && err.contains("[3, 4]"), "{err}");

    let vals = gpu.empty(&[3, 5], DType::F32).unwrap();
    let ids = gpu.empty(&[3, 5], DType::U32).unwrap();
    let err = sampling::topk(&mut rec, &x, None, 5, &vals, &ids)
        .unwrap_err()
        .to_string();
    assert!(err.contains("k = 5") && err.contains("[3, 4]"), "{err}");
    let err = sampling::topk(&mut rec, &x, None, 0, &vals, &ids)
        .unwrap_err()
        .to_string();
    assert!(err.contains("k = 0"), "{err}");
    let vals2 = gpu.empty(&[3, 2], DType::F32).unwrap();
    let err = sampling::topk(&mut rec, &x, None, 3, &vals2, &ids)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("values [3, 2]") && err.contains("[3, 4]"),
        "{err}"
    );
    let add = gpu.upload(&[0.0f32; 2], &[2]).unwrap();
    let ids6 = gpu.empty(&[3, 2], DType::U32).unwrap();
    let err = sampling::topk(&mut rec, &x, Some(&add), 2, &vals2, &ids6)
        .unwrap_err()
        .to_string();
    assert!(err.contains("addend [2]"), "{err}");

    let out_bad = gpu.empty(&[4, 3], DType::F32).unwrap();
    let err = sampling::log_softmax(&mut rec, &x, &out_bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[4, 3]") && err.contains("[3, 4]"), "{err}");

    let t2 = gpu.upload(&[0u32; 2], &[2]).unwrap();
    let o3 = gpu.empty(&[3], DType::F32).unwrap();
    let err = sampling::log_softmax_gather(&mut rec, &x, &t2, &o3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("targets [2]"), "{err}");

    let e = gpu.upload(&[0u32; 5], &[5]).unwrap();
    let err = sampling::edit_logits(&mut rec, &x, &e, 2, 1.2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[5]") && err.contains("2 triples"), "{err}");
    let e6 = gpu.upload(&[0u32; 6], &[2, 3]).unwrap();
    let err = sampling::edit_logits(&mut rec, &x, &e6, 2, 0.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("penalty"), "{err}");
}

/// Wall-clock timing at decode sizes (not part of the suite):
/// `cargo test --release --test kernels decode_timings -- --ignored --nocapture --test-threads 1`.
/// Each figure is one submit of `REPS` dispatches, best of 5, divided by `REPS`.
#[test]
#[ignore]
fn decode_timings() {
    use seqbridge::gpu::ops::embedding;
    use seqbridge::gpu::ops::norm::{self, NormImpl};
    use std::time::Instant;
    const REPS: usize = 50;
    let gpu = gpu();
    let mut r = rng(99);
    // TIMING_FILTER=topk (a substring of the names below) times only those.
    let filter = std::env::var("TIMING_FILTER").unwrap_or_default();
    let time = |name: &str, f: &dyn Fn(&mut Recorder)| {
        if !name.contains(&filter) {
            return;
        }
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let mut rec = Recorder::new(gpu);
            for _ in 0..REPS {
                f(&mut rec);
            }
            let t0 = Instant::now();
            rec.submit();
            gpu.wait_idle().unwrap();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        eprintln!("{name:48} {:9.1} us", best / REPS as f64 * 1e6);
    };
    for rows in [1, 5] {
        let v = 58101;
        let x = logits(&mut r, rows, v);
        let tx = gpu.upload(&x, &[rows, v]).unwrap();
        let ids = gpu.empty(&[rows], DType::U32).unwrap();
        for imp in [ArgmaxImpl::Plain, ArgmaxImpl::Fast] {
            time(&format!("argmax {imp:?} {rows}x{v}"), &|rec| {
                sampling::argmax_with(rec, &tx, &ids, imp).unwrap()
            });
        }
        let add = gpu.upload(&randn(&mut r, rows, 1.0), &[rows]).unwrap();
        for k in [4, 10, 16] {
            let vals = gpu.empty(&[rows, k], DType::F32).unwrap();
            let tid = gpu.empty(&[rows, k], DType::U32).unwrap();
            for imp in [TopkImpl::Plain, TopkImpl::Threshold, TopkImpl::Lists] {
                time(&format!("topk {imp:?} {rows}x{v} k={k}"), &|rec| {
                    sampling::topk_with(rec, &tx, Some(&add), k, &vals, &tid, imp).unwrap()
                });
            }
        }
        let out = gpu.empty(&[rows, v], DType::F32).unwrap();
        time(&format!("log_softmax {rows}x{v}"), &|rec| {
            sampling::log_softmax(rec, &tx, &out).unwrap()
        });
    }
    for (rows, d) in [(5, 512), (5, 1024), (640, 512)] {
        let x = gpu
            .upload(&randn(&mut r, rows * d, 1.0), &[rows, d])
            .unwrap();
        let g = gpu.upload(&randn(&mut r, d, 1.0), &[d]).unwrap();
        let out = gpu.empty(&[rows, d], DType::F32).unwrap();
        for imp in [NormImpl::Plain, NormImpl::Registers] {
            time(&format!("layer_norm {imp:?} {rows}x{d}"), &|rec| {
                norm::layer_norm_with(rec, &x, &g, &g, &out, 1e-5, imp).unwrap()
            });
        }
    }
    for (b, t, d, f16_table) in [(5, 1, 512, false), (5, 1, 512, true), (8, 64, 1024, true)] {
        let vocab = 58101;
        let table = if f16_table {
            let h: Vec<half::f16> = (0..vocab * d)
                .map(|i| half::f16::from_f32((i % 97) as f32))
                .collect();
            gpu.upload(&h, &[vocab, d]).unwrap()
        } else {
            gpu.upload(&vec![0.5f32; vocab * d], &[vocab, d]).unwrap()
        };
        let ids: Vec<u32> = (0..b * t)
            .map(|_| r.random_range(0..vocab as u32))
            .collect();
        let tids = gpu.upload(&ids, &[b, t]).unwrap();
        let pos = gpu
            .upload(&vec![0.25f32; (t + 8) * d], &[t + 8, d])
            .unwrap();
        let out = gpu.empty(&[b, t, d], DType::F32).unwrap();
        let opts = embedding::EmbedOptions {
            scale: 2.0,
            positions: Some(&pos),
            position_offset: 7,
            table_row_start: 0,
        };
        for imp in [embedding::EmbedImpl::Plain, embedding::EmbedImpl::Vec4] {
            let dt = if f16_table { "f16" } else { "f32" };
            time(&format!("embed {imp:?} {dt} {b}x{t}x{d}"), &|rec| {
                embedding::embed_with(rec, &tids, &table, &out, &opts, imp).unwrap()
            });
        }
    }
    gpu.check_errors().unwrap();
}
