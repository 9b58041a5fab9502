//! shaders/logit_rules.wgsl against the CPU: the -inf pattern exactly, every other entry bit
//! for bit unchanged.
//!
//! The timestamp rule compares a logsumexp the kernel forms in f32 with a maximum, so the
//! rows are built (and nudged) to keep the two at least `MARGIN` apart in the f64 reference:
//! the rule then clearly fires or clearly holds, and both outcomes must occur.

use rand::Rng;
use rand::rngs::StdRng;
use seqbridge::gpu::ops::logit_rules::{self, RULE_FLAG, RULE_RANGES, RULE_WORDS};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{gpu, randn, rng};

const NEG: f32 = f32::NEG_INFINITY;
/// Least |logsumexp(timestamps) - max(text)| of a flagged row in the random cases.
const MARGIN: f64 = 1e-2;

/// The rules applied to one row on the CPU. Returns `Some(fired)` when the timestamp rule
/// was evaluated, with the f64 gap `s - m` (infinite or NaN when either side is -inf).
fn reference_row(row: &mut [f32], rule: &[u32], tb: u32) -> Option<(bool, f64)> {
    let v = row.len();
    for p in 0..RULE_RANGES {
        let (lo, hi) = (rule[2 * p] as usize, (rule[2 * p + 1] as usize).min(v));
        if lo < hi {
            row[lo..hi].fill(NEG);
        }
    }
    let tb = tb as usize;
    if rule[RULE_FLAG] == 0 || tb >= v {
        return None;
    }
    let m = row[..tb]
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let tm = row[tb..]
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let s = if tm == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else {
        tm + row[tb..]
            .iter()
            .map(|&x| (x as f64 - tm).exp())
            .sum::<f64>()
            .ln()
    };
    let fired = s > m;
    if fired {
        row[..tb].fill(NEG);
    }
    Some((fired, s - m))
}

/// Asserts equal bits everywhere (so -inf exactly where wanted, other entries untouched).
#[track_caller]
fn assert_bits(case: &str, got: &[f32], want: &[f32], v: usize) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{case}: row {} column {}: got {g}, want {w}",
            i / v,
            i % v
        );
    }
}

/// Runs the kernel on `x` [rows, v] with `rules` [rows, RULE_WORDS]; returns the edited rows.
fn run(x: &[f32], rules: &[u32], v: usize, tb: u32) -> Vec<f32> {
    let gpu = gpu();
    let rows = x.len() / v;
    let tx = gpu.upload(x, &[rows, v]).unwrap();
    let tr = gpu.upload(rules, &[rows, RULE_WORDS]).unwrap();
    let mut rec = Recorder::new(gpu);
    logit_rules::logit_rules(&mut rec, &tx, &tr, tb).unwrap();
    rec.submit();
    tx.to_vec_f32().unwrap()
}

/// Seven random pairs for a row of `v`: no-ops, empty, ordinary, overlapping the previous
/// pair, past the row's end, starting past it, and wide spans.
fn random_ranges(r: &mut StdRng, v: usize) -> [u32; RULE_WORDS] {
    let v32 = v as u32;
    let mut w = [0u32; RULE_WORDS];
    for p in 0..RULE_RANGES {
        let (lo, hi) = match r.random_range(0..8) {
            0 => (0, 0),
            1 => {
                // lo >= hi: empty, whatever lo is.
                let lo = r.random_range(0..=v32 + 5);
                (lo, r.random_range(0..=lo))
            }
            2 => {
                let lo = r.random_range(0..v32);
                (lo, lo + r.random_range(1..=8))
            }
            3 if p > 0 => {
                let (plo, phi) = (w[2 * p - 2], w[2 * p - 1]);
                let lo = plo.saturating_add(r.random_range(0..4));
                (lo, phi.max(lo).saturating_add(r.random_range(0..6)))
            }
            4 => (r.random_range(0..v32), v32 + r.random_range(1..100)),
            5 => (r.random_range(0..v32), u32::MAX),
            6 => {
                let lo = v32 + r.random_range(0..10);
                (lo, lo + r.random_range(0..10))
            }
            _ => {
                let lo = r.random_range(0..v32);
                (lo, lo + r.random_range(0..=v32 / 3 + 1))
            }
        };
        w[2 * p] = lo;
        w[2 * p + 1] = hi;
    }
    w
}

/// How a row's logits are built around tb: `Random`, or shaped so that the rule clearly fires
/// (`Fires`: text maximum 10, every timestamp 9.9) or clearly holds (`Holds`: the text
/// maximum beats 9.9 + ln(#timestamps) by 3), or with one side all -inf.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Random,
    Fires,
    Holds,
    TimestampsNegInf,
    TextNegInf,
}

fn build_row(r: &mut StdRng, v: usize, tb: usize, shape: Shape) -> Vec<f32> {
    let mut row = randn(r, v, 4.0);
    let tb = tb.min(v);
    let n_ts = (v - tb) as f32;
    let text_max = |row: &mut [f32], r: &mut StdRng, m: f32| {
        if tb > 0 {
            row[r.random_range(0..tb)] = m;
        }
    };
    match shape {
        Shape::Random => {}
        Shape::Fires => {
            text_max(&mut row, r, 10.0);
            row[tb..].fill(9.9);
        }
        Shape::Holds => {
            row[tb..].iter_mut().for_each(|x| *x = x.min(9.9));
            text_max(&mut row, r, 9.9 + n_ts.max(1.0).ln() + 3.0);
        }
        Shape::TimestampsNegInf => row[tb..].fill(NEG),
        Shape::TextNegInf => row[..tb].fill(NEG),
    }
    row
}

#[test]
fn logit_rules_match_the_cpu() {
    let mut r = rng(41);
    let shapes = [
        Shape::Random,
        Shape::Fires,
        Shape::Holds,
        Shape::TimestampsNegInf,
        Shape::TextNegInf,
    ];
    let (mut fired, mut held, mut case_no) = (0, 0, 0);
    for v in [1usize, 7, 257, 1000, 51865] {
        let mut tbs = vec![0, v / 2, v - 1, v];
        tbs.dedup();
        for tb in tbs {
            case_no += 1;
            let rows = 1 + case_no % 5;
            let mut x = Vec::with_capacity(rows * v);
            let mut rules = Vec::with_capacity(rows * RULE_WORDS);
            let mut want = Vec::with_capacity(rows * v);
            for i in 0..rows {
                let shape = shapes[(case_no + i) % shapes.len()];
                let mut row = build_row(&mut r, v, tb, shape);
                let mut rule = random_ranges(&mut r, v);
                // Most rows flagged, with any non-zero flag value.
                rule[RULE_FLAG] = match r.random_range(0..4) {
                    0 => 0,
                    1 => 0xdead_beef,
                    _ => 1,
                };
                // Nudge the timestamps down until the rule's outcome is clear.
                let outcome = loop {
                    let mut edited = row.clone();
                    let out = reference_row(&mut edited, &rule, tb as u32);
                    match out {
                        Some((_, gap)) if gap.is_finite() && gap.abs() < MARGIN => {
                            row[tb..].iter_mut().for_each(|x| *x -= 0.05);
                        }
                        _ => {
                            want.extend(edited);
                            break out;
                        }
                    }
                };
                match outcome {
                    Some((true, _)) => fired += 1,
                    Some((false, _)) => held += 1,
                    None => {}
                }
                x.extend(row);
                rules.extend(rule);
            }
            let got = run(&x, &rules, v, tb as u32);
            assert_bits(&format!("{rows}x{v} timestamp_begin {tb}"), &got, &want, v);
        }
    }
    // Both outcomes of the rule were exercised, more than once.
    assert!(fired >= 5 && held >= 5, "fired {fired}, held {held}");
    gpu().check_errors().unwrap();
}

/// The brief's example: 1500 timestamps at 9.9 outweigh a text maximum of 10 (9.9 + ln 1500
/// ≈ 17.2), not one of 20. Bans apply first: banning the text maximum 20 lets the rule fire.
#[test]
fn logit_rules_timestamp_rule_fires_and_holds() {
    let (tb, v) = (200usize, 1700usize);
    let mut r = rng(42);
    let mut x = Vec::new();
    for text_max in [10.0f32, 20.0, 20.0] {
        let mut row = randn(&mut r, v, 2.0);
        row[tb..].fill(9.9);
        row[17] = text_max;
        x.extend(row);
    }
    let mut rules = vec![0u32; 3 * RULE_WORDS];
    for row in 0..3 {
        rules[row * RULE_WORDS + RULE_FLAG] = 1;
    }
    // Row 2 bans its text maximum (overlapping pairs around column 17).
    rules[2 * RULE_WORDS..2 * RULE_WORDS + 4].copy_from_slice(&[15, 18, 17, 19]);
    let got = run(&x, &rules, v, tb as u32);
    assert!(
        got[..tb].iter().all(|&e| e == NEG),
        "row 0 must lose its text"
    );
    assert_eq!(&got[tb..v], &x[tb..v], "row 0 timestamps unchanged");
    assert_eq!(&got[v..2 * v], &x[v..2 * v], "row 1 unchanged");
    assert!(got[2 * v..2 * v + tb].iter().all(|&e| e == NEG), "row 2");
    assert_eq!(&got[2 * v + tb..], &x[2 * v + tb..], "row 2 timestamps");
}

#[test]
fn logit_rules_rejects_bad_shapes() {
    let gpu = gpu();
    let x = gpu.upload(&[0.5f32; 30], &[3, 10]).unwrap();
    let mut rec = Recorder::new(gpu);
    let mut err = |rules: &seqbridge::gpu::Tensor| {
        logit_rules::logit_rules(&mut rec, &x, rules, 5)
            .unwrap_err()
            .to_string()
    };
    let two_rows = gpu.upload(&[0u32; 32], &[2, RULE_WORDS]).unwrap();
    let e = err(&two_rows);
    assert!(e.contains("[2, 16]") && e.contains("[3, 10]"), "{e}");
    let narrow = gpu.upload(&[0u32; 45], &[3, 15]).unwrap();
    let e = err(&narrow);
    assert!(e.contains("[3, 15]") && e.contains("[3, 10]"), "{e}");
    let flat = gpu.upload(&[0u32; 48], &[48]).unwrap();
    let e = err(&flat);
    assert!(e.contains("[48]"), "{e}");
    let float = gpu.empty(&[3, RULE_WORDS], DType::F32).unwrap();
    let e = err(&float);
    assert!(e.contains("f32") && e.contains("u32"), "{e}");

    let ints = gpu.upload(&[0u32; 30], &[3, 10]).unwrap();
    let rules = gpu.upload(&[0u32; 48], &[3, RULE_WORDS]).unwrap();
    let e = logit_rules::logit_rules(&mut rec, &ints, &rules, 5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("logits [3, 10]") && e.contains("f32"), "{e}");
}
