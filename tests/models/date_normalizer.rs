//! The shipped model (assets/date-normalizer) against transformers' generate and
//! output_attentions on held-out samples (tests/fixtures/date_normalizer/reference.json,
//! written by tools/dates/make_reference.py).

use std::path::PathBuf;

use seqbridge::models::{Constrain, GenerateOptions, Model};
use serde_json::Value;

use crate::common::{assert_close, floats, gpu, ids};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    Model::load(root().join("assets/date-normalizer"), gpu()).expect("the shipped model loads")
}

fn reference() -> Value {
    let path = root().join("tests/fixtures/date_normalizer/reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("reference.json")).expect("JSON")
}

/// Tokenizes, generates and decodes every sample as transformers did, batched.
fn check(model: &Model, cases: &[Value], opts: &GenerateOptions, what: &str) {
    let tok = model.tokenizer().expect("tokenizer.json");
    let sources: Vec<Vec<u32>> = cases
        .iter()
        .map(|c| {
            let got = tok.encode(c["text"].as_str().unwrap()).unwrap();
            assert_eq!(
                got,
                ids(&c["input_ids"]),
                "{what}: tokenizer ids of {}",
                c["text"]
            );
            got
        })
        .collect();
    for (chunk, batch) in cases.chunks(16).zip(sources.chunks(16)) {
        let out = model.generate(batch, opts).unwrap();
        for (c, hyps) in chunk.iter().zip(&out.sequences) {
            assert_eq!(hyps[0], ids(&c["sequence"]), "{what}: {}", c["text"]);
            assert_eq!(
                tok.decode(&hyps[0]).unwrap(),
                c["decoded"].as_str().unwrap(),
                "{what}: {}",
                c["text"]
            );
        }
    }
}

#[test]
fn greedy_matches_transformers_on_held_out_samples() {
    let r = reference();
    // transformers decoded without the directory's constraint.regex.
    let opts = GenerateOptions {
        constrain: Some(Constrain::Off),
        ..Default::default()
    };
    check(&model(), r["greedy"].as_array().unwrap(), &opts, "greedy");
}

#[test]
fn beam4_matches_transformers_on_held_out_samples() {
    let r = reference();
    let opts = GenerateOptions {
        num_beams: Some(4),
        constrain: Some(Constrain::Off),
        ..Default::default()
    };
    check(&model(), r["beam4"].as_array().unwrap(), &opts, "beam4");
}

/// The fused attention kernel's probabilities output equals transformers'
/// `output_attentions` cross-attentions, every layer and head.
#[test]
fn alignment_equals_transformers_cross_attentions() {
    let r = &reference()["alignment"];
    let model = model();
    let got = model
        .cross_attentions(&ids(&r["input_ids"]), &ids(&r["decoder_input_ids"]))
        .unwrap();
    let want = r["cross_attentions"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (l, (g, w)) in got.iter().zip(want).enumerate() {
        let w: Vec<f32> = w
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|head| head.as_array().unwrap().iter().flat_map(floats))
            .collect();
        assert_close(
            &format!("date model cross-attention layer {l}"),
            g,
            &w,
            1e-5,
            1e-4,
        );
    }
}

/// `cross_attention_tensors` leaves on the GPU exactly what `cross_attentions` reads back:
/// one `[1, heads, T, S]` tensor per layer (the desktop app draws these without a readback).
#[test]
fn cross_attention_tensors_hold_the_read_back_maps() {
    let r = &reference()["alignment"];
    let model = model();
    let (src, dec) = (ids(&r["input_ids"]), ids(&r["decoder_input_ids"]));
    let host = model.cross_attentions(&src, &dec).unwrap();
    let sources = [src.clone()];
    let input = seqbridge::models::encoder::EncoderInput::Tokens(&sources);
    let tensors = model.cross_attention_tensors(&input, &dec).unwrap();
    assert_eq!(tensors.len(), host.len());
    for (l, (t, h)) in tensors.iter().zip(&host).enumerate() {
        assert_eq!(t.shape()[0], 1);
        assert_eq!(t.shape()[2..], [dec.len(), src.len()], "layer {l}");
        assert_eq!(&t.to_vec_f32().unwrap(), h, "layer {l}");
    }
    // Two sources at once is refused: the maps are of one source.
    let two = [src.clone(), src];
    let e = model
        .cross_attention_tensors(
            &seqbridge::models::encoder::EncoderInput::Tokens(&two),
            &dec,
        )
        .unwrap_err();
    assert!(e.to_string().contains("one source at a time"), "{e}");
}

/// heldout.tsv (source, target, category) holds the five categories the README reports, and
/// the greedy references cover each of them, the month-first prefix and "no date" (the
/// decoder start, then `</s>` at once).
#[test]
fn references_cover_every_held_out_category() {
    let tsv = std::fs::read_to_string(root().join("assets/date-normalizer/heldout.tsv"))
        .expect("heldout.tsv");
    let mut categories = std::collections::BTreeSet::new();
    for line in tsv.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{line:?}");
        categories.insert(cols[2]);
    }
    let want = ["no-date", "numeric", "partial", "time-only", "written"];
    assert_eq!(categories, want.into_iter().collect());
    let r = reference();
    let greedy = r["greedy"].as_array().unwrap();
    for c in want {
        assert!(greedy.iter().any(|g| g["category"] == c), "no {c} sample");
    }
    assert!(
        greedy.iter().any(|g| {
            g["decoded"] == "" && g["sequence"].as_array().is_some_and(|s| s.len() == 2)
        })
    );
    assert!(
        greedy
            .iter()
            .any(|g| g["text"].as_str().is_some_and(|t| t.starts_with("<mdy>")))
    );
}
