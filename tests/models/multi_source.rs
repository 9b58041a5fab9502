//! The tiny `multi_source` checkpoints of tests/fixtures/multi_source against
//! tools/multi_source/reference.py (written by tools/multi_source/make_fixtures.py): text +
//! image and text + image + text, fused by concatenation (transformers' own BART decoder
//! reading the sources' states side by side with their masks) and by separate
//! cross-attention blocks; padded batches, greedy and beam search, teacher-forced
//! log-probabilities, cross-attention maps per source, and the work counters.

use std::path::PathBuf;
use std::sync::OnceLock;

use seqbridge::models::GenerateOptions;
use seqbridge::models::encoder::EncoderInput;
use serde_json::Value;

use crate::common::{Fixture, assert_close, fixture_in, floats, id_lists, options};

/// Log-probabilities, beam scores and attention probabilities.
const TOL: f32 = 1e-4;
const FIXTURES: [&str; 4] = ["concat-2", "separate-2", "concat-3", "separate-3"];

fn model_dir(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multi_source");
    fixture_in(&root, name, "tools/multi_source/make_fixtures.py")
}

/// Every fixture, loaded once per test binary.
fn fixture(name: &str) -> &'static Fixture {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|n| Fixture::load(&model_dir(n)))
            .collect()
    });
    &all[FIXTURES.iter().position(|n| *n == name).expect("a fixture")]
}

/// The reference's inputs, owned: per source, token id lists or pixel values.
enum Owned {
    Text(Vec<Vec<u32>>),
    Image(Vec<f32>),
}

/// Examples `rows` of every source.
fn owned(r: &Value, rows: std::ops::Range<usize>) -> Vec<Owned> {
    let per = floats(&r["pixel_shape"]).iter().product::<f32>() as usize;
    r["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .zip(r["inputs"].as_array().expect("inputs"))
        .map(|(kind, x)| match kind.as_str() {
            Some("text") => Owned::Text(id_lists(x)[rows.clone()].to_vec()),
            _ => Owned::Image(floats(x)[rows.start * per..rows.end * per].to_vec()),
        })
        .collect()
}

fn inputs<'a>(r: &Value, owned: &'a [Owned]) -> Vec<EncoderInput<'a>> {
    let s = floats(&r["pixel_shape"]);
    let (c, h, w) = (s[0] as usize, s[1] as usize, s[2] as usize);
    owned
        .iter()
        .map(|o| match o {
            Owned::Text(ids) => EncoderInput::Tokens(ids),
            Owned::Image(data) => EncoderInput::Pixels {
                data,
                batch: data.len() / (c * h * w),
                channels: c,
                height: h,
                width: w,
            },
        })
        .collect()
}

#[test]
fn multi_source_generate_greedy_and_beams() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let data = owned(r, 0..3);
        let srcs = inputs(r, &data);
        for case in r["generate"].as_array().expect("cases") {
            let case_name = format!("{name}/{}", case["name"].as_str().unwrap_or("?"));
            let out = model
                .generate_input(
                    &EncoderInput::Sources(&srcs),
                    &options(&case["kwargs"]),
                    &mut |_, _| {},
                )
                .unwrap_or_else(|e| panic!("{case_name}: {e}"));
            let got: Vec<Vec<u32>> = out.sequences.iter().flatten().cloned().collect();
            assert_eq!(got, id_lists(&case["sequences"]), "{case_name}");
            if let Some(scores) = case.get("sequences_scores") {
                let got = out.scores.expect("beam scores").concat();
                assert_close(&case_name, &got, &floats(scores), TOL, 0.0);
            }
        }
    }
}

#[test]
fn multi_source_logprobs() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let data = owned(r, 0..3);
        let srcs = inputs(r, &data);
        let targets: Vec<Vec<u32>> = id_lists(&r["score"]["sequences"])
            .iter()
            .map(|s| s[1..].to_vec())
            .collect();
        let out = model
            .score_input(&EncoderInput::Sources(&srcs), &targets)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = r["score"]["logprobs"].as_array().expect("logprobs");
        assert_eq!(out.logprobs.len(), want.len(), "{name}");
        for (i, (g, w)) in out.logprobs.iter().zip(want).enumerate() {
            assert_close(&format!("{name}: example {i}"), g, &floats(w), TOL, 0.0);
        }
    }
}

#[test]
fn multi_source_cross_attentions_per_source() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let data = owned(r, 0..1);
        let srcs = inputs(r, &data);
        let ca = &r["cross_attentions"];
        let ids = id_lists(&ca["decoder_input_ids"]).remove(0);
        let got = model
            .cross_attentions_sources(&EncoderInput::Sources(&srcs), &ids)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = ca["sources"].as_array().expect("sources");
        assert_eq!(got.len(), want.len(), "{name}: sources");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w = w.as_array().expect("layers");
            assert_eq!(g.len(), w.len(), "{name}: source {i} layers");
            for (l, (g, w)) in g.iter().zip(w).enumerate() {
                let case = format!("{name}: source {i} layer {l}");
                assert_close(&case, g, &floats(w), TOL, 0.0);
            }
        }
    }
}

/// Each encoder runs once, each source's cross K/V is projected once per layer (concat:
/// the packed sources once), one submit for the encoders and one per step, no weights
/// uploaded during the call. (The counters are the calling thread's own, so the shared GPU
/// serves.)
#[test]
fn multi_source_stats() {
    for name in ["concat-3", "separate-3"] {
        let Fixture { r, model: m } = fixture(name);
        let data = owned(r, 0..3);
        let srcs = inputs(r, &data);
        let layers = m.config().decoder_layers as u64;
        let projected = if name.starts_with("concat") { 1 } else { 3 };
        for beams in [1, 3] {
            let opts = GenerateOptions {
                num_beams: Some(beams),
                max_new_tokens: Some(5),
                ..Default::default()
            };
            let s = m
                .generate_input(&EncoderInput::Sources(&srcs), &opts, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{e}"))
                .stats;
            assert_eq!(s.encoder_runs, 3, "{name} beams {beams}");
            assert_eq!(s.cross_kv_computes, projected * layers, "{name}");
            assert_eq!(
                s.submits,
                s.decoder_steps + 1,
                "{name} beams {beams}: {s:?}"
            );
            assert_eq!(s.weight_bytes_uploaded, 0, "{name} beams {beams}");
        }
    }
}

#[test]
fn multi_source_input_errors_are_named() {
    let Fixture { r, model } = fixture("separate-3");
    let data = owned(r, 0..3);
    let srcs = inputs(r, &data);
    let opts = GenerateOptions::default();
    let run = |input: &EncoderInput| {
        model
            .generate_input(input, &opts, &mut |_, _| {})
            .unwrap_err()
            .to_string()
    };
    let e = run(&EncoderInput::Sources(&srcs[..2]));
    assert!(e.contains("reads 3 sources, 2 given"), "{e}");
    let e = run(&srcs[0]);
    assert!(e.contains("give one input per source"), "{e}");
    let short = owned(r, 0..2);
    let mixed = [srcs[0], inputs(r, &short)[1], srcs[2]];
    let e = run(&EncoderInput::Sources(&mixed));
    assert!(
        e.contains("source 1 holds 2 examples, source 0 holds 3"),
        "{e}"
    );
    let bad = vec![vec![3, 999]; 3];
    let mut wrong = srcs.clone();
    wrong[2] = EncoderInput::Tokens(&bad);
    let e = run(&EncoderInput::Sources(&wrong[..]));
    assert!(e.contains("source 2") && e.contains("999"), "{e}");
}

/// Tokens stream per source as each greedy step finishes, the same as the sequences.
#[test]
fn multi_source_tokens_stream() {
    let Fixture { r, model } = fixture("concat-2");
    let data = owned(r, 0..3);
    let srcs = inputs(r, &data);
    let mut streamed = vec![Vec::new(); 3];
    let out = model
        .generate_input(
            &EncoderInput::Sources(&srcs),
            &options(&r["generate"][0]["kwargs"]),
            &mut |src, tok| streamed[src].push(tok),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for (src, hyps) in out.sequences.iter().enumerate() {
        assert_eq!(streamed[src], hyps[0][1..], "source {src}");
    }
}
