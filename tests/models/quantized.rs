//! Weight-only int8 (`Quantization::Int8`) on every parity fixture.
//!
//! - Exactness: int8 must give what f32 gives with the same int8-rounded weights
//!   (`Int8Dequantized`, quantized and dequantized on the host): the same tokens for every
//!   generate case of reference.json and log-probabilities within the parity tolerance. Only
//!   the kernels differ (the scale multiplies the dot product instead of each weight), so this
//!   is as strict as the parity tests.
//! - Quality: how far int8 and f16 move from the f32 checkpoint, an ignored test that prints
//!   the figures (README, "Weights and speed"). The fixtures are tiny random models whose logits are nearly tied
//!   (reference.json's `min_margin`), the worst case for any rounding, so that is measured,
//!   not bounded; the shipped date model's held-out accuracy is the bounded quality check.

use seqbridge::models::{GenerateOptions, LoadOptions, Model, Quantization, WeightDtype};

use crate::common::{assert_close, fixture_dir, gpu, id_lists, options, reference};
use crate::parity::FAMILIES;

fn load_as(dir: &std::path::Path, weight_dtype: WeightDtype, quantization: Quantization) -> Model {
    let opts = LoadOptions {
        weight_dtype,
        quantization,
        ..Default::default()
    };
    Model::load_with(dir, gpu(), &opts)
        .unwrap_or_else(|e| panic!("loading {} as {quantization:?}: {e}", dir.display()))
}

/// Leading positions where two token sequences agree, and the longer one's length.
fn agreement(a: &[u32], b: &[u32]) -> (usize, usize) {
    let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    (same, a.len().max(b.len()))
}

/// (tokens agreeing, tokens, max |Δ log-prob|) of `b` against `a` over a fixture's cases.
fn compare(family: &str, a: &Model, b: &Model, exact: bool) -> (usize, usize, f32) {
    let r = reference(family);
    let (mut same, mut all, mut drift) = (0, 0, 0f32);
    for case in r["generate"].as_array().expect("generate cases") {
        let name = format!("{family}/{}", case["name"].as_str().unwrap_or("?"));
        let sources = id_lists(&case["input_ids"]);
        let opts = options(&case["kwargs"]);
        let x = a.generate(&sources, &opts).expect("generate");
        let y = b.generate(&sources, &opts).expect("generate");
        if exact {
            assert_eq!(
                x.sequences, y.sequences,
                "{name}: int8 against its dequantized f32"
            );
        }
        for (p, q) in x
            .sequences
            .iter()
            .flatten()
            .zip(y.sequences.iter().flatten())
        {
            let (s, n) = agreement(p, q);
            (same, all) = (same + s, all + n);
        }
    }
    for case in r["score"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let name = format!("{family}/score/{}", case["name"].as_str().unwrap_or("?"));
        let (src, tgt) = (id_lists(&case["input_ids"]), id_lists(&case["target_ids"]));
        let x = a.score(&src, &tgt).expect("score");
        let y = b.score(&src, &tgt).expect("score");
        for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
            if exact {
                assert_close(&name, q, p, 1e-3, 0.0);
            }
            for (u, v) in p.iter().zip(q) {
                drift = drift.max((u - v).abs());
            }
        }
    }
    (same, all, drift)
}

#[test]
fn int8_equals_f32_with_the_same_rounded_weights() {
    for family in FAMILIES {
        let dir = fixture_dir(family);
        let q = load_as(&dir, WeightDtype::F32, Quantization::Int8);
        let d = load_as(&dir, WeightDtype::F32, Quantization::Int8Dequantized);
        compare(family, &d, &q, true);
    }
}

/// The figures for README (a measurement, ~2 minutes):
/// `cargo test --test models -- --ignored int8_and_f16 --nocapture`.
#[test]
#[ignore]
fn int8_and_f16_against_f32() {
    let (mut t16, mut t8) = ((0, 0), (0, 0));
    for family in FAMILIES {
        let dir = fixture_dir(family);
        let full = load_as(&dir, WeightDtype::F32, Quantization::None);
        let half = load_as(&dir, WeightDtype::F16, Quantization::None);
        let q = load_as(&dir, WeightDtype::F16, Quantization::Int8);
        // Widths that are not a multiple of 4 (bart's d_model 45) keep f16.
        assert!(
            q.step_weight_bytes() < full.step_weight_bytes(),
            "{family}: int8 step reads {} bytes, f32 {}",
            q.step_weight_bytes(),
            full.step_weight_bytes()
        );
        let h = compare(family, &full, &half, false);
        let i = compare(family, &full, &q, false);
        eprintln!(
            "{family}: tokens agreeing with f32: f16 {}/{}, int8 {}/{}; max log-prob drift: f16 {:.4}, int8 {:.4}",
            h.0, h.1, i.0, i.1, h.2, i.2
        );
        assert!(h.2.is_finite() && i.2.is_finite(), "{family}: drift");
        (t16, t8) = ((t16.0 + h.0, t16.1 + h.1), (t8.0 + i.0, t8.1 + i.1));
    }
    let pct = |t: (usize, usize)| 100.0 * t.0 as f64 / t.1.max(1) as f64;
    eprintln!(
        "all fixtures: f16 {:.1}%, int8 {:.1}% of tokens agree with f32",
        pct(t16),
        pct(t8)
    );
}

/// The shipped date model, a real trained checkpoint: int8 keeps its held-out accuracy,
/// within one point of the shipped f16 weights on the same lines (every tenth of the 3,000
/// held-out lines, all categories, to keep CI short).
#[test]
fn int8_date_model_keeps_its_held_out_accuracy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/date-normalizer");
    let tsv = std::fs::read_to_string(root.join("heldout.tsv")).expect("heldout.tsv");
    // source<TAB>target<TAB>category; the target may be empty ("no date").
    let pairs: Vec<(&str, &str)> = tsv
        .lines()
        .step_by(10)
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?, cols.next()?))
        })
        .collect();
    let sources: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let exact = |quantization: Quantization| {
        let model = load_as(&root, WeightDtype::F16, quantization);
        let mut right = 0;
        for (chunk, refs) in sources.chunks(100).zip(pairs.chunks(100)) {
            let (_, texts) = model
                .generate_text(chunk, &GenerateOptions::default())
                .expect("generate");
            right += texts
                .iter()
                .zip(refs)
                .filter(|(t, r)| t.as_str() == r.1)
                .count();
        }
        right
    };
    let (f16, int8) = (exact(Quantization::None), exact(Quantization::Int8));
    let n = pairs.len();
    eprintln!("date model: f16 {f16}/{n}, int8 {int8}/{n} exact");
    assert!(
        f16 as f64 >= 0.97 * n as f64 && int8 + n / 100 >= f16,
        "date model: f16 {f16}/{n}, int8 {int8}/{n} exact"
    );
}
