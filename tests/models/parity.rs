//! Every fixture family against reference.json: generate (greedy, beams, padded batches,
//! option cases), sequences_scores, score, cross-attention probabilities and text cases.

use serde_json::Value;

use seqbridge::models::{LoadOptions, Model};

use crate::common::{
    assert_close, fixture_dir, floats, gpu, id_lists, ids, load, options, reference,
};

/// Tolerances (absolute, relative): log-probabilities and beam scores 1e-3; attention
/// probabilities 1e-4 + 1e-3·p (f32 summation order differs from torch's; the tiny random
/// fixtures have large activations).
const LOGPROB_TOL: (f32, f32) = (1e-3, 0.0);
const PROB_TOL: (f32, f32) = (1e-4, 1e-3);

/// Every fixture family (the stats tests run them all too).
pub const FAMILIES: &[&str] = &[
    "marian", "bart", "mbart", "pegasus", "m2m100", "nllb", "t5", "t5_v1_1", "mt5", "umt5",
];

fn check_family(family: &str) {
    check_model(family, family, load(family));
}

/// Runs every case of fixture `fixture`'s reference.json; `family` names the run in messages.
fn check_model(fixture: &str, family: &str, model: Model) {
    let r = reference(fixture);
    let mut cases = 0;
    for case in r["generate"].as_array().expect("generate cases") {
        let name = format!("{family}/{}", case["name"].as_str().unwrap_or("?"));
        let sources = id_lists(&case["input_ids"]);
        let opts = options(&case["kwargs"]);
        let out = model
            .generate(&sources, &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<Vec<u32>> = out.sequences.iter().flatten().cloned().collect();
        let want = id_lists(&case["sequences"]);
        assert_eq!(
            got, want,
            "{name}: sequences (kwargs {}, min_margin {})",
            case["kwargs"], case["min_margin"]
        );
        if let Some(scores) = case.get("sequences_scores").filter(|v| !v.is_null()) {
            let got: Vec<f32> = out
                .scores
                .as_ref()
                .expect("beam scores")
                .iter()
                .flatten()
                .copied()
                .collect();
            assert_close(
                &format!("{name}: sequences_scores"),
                &got,
                &floats(scores),
                LOGPROB_TOL.0,
                LOGPROB_TOL.1,
            );
        }
        cases += 1;
    }
    for case in r["score"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let name = format!("{family}/score/{}", case["name"].as_str().unwrap_or("?"));
        let out = model
            .score(
                &id_lists(&case["input_ids"]),
                &id_lists(&case["target_ids"]),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<Vec<f32>> = match case["logprobs"].as_array() {
            Some(a) if a.first().is_some_and(Value::is_array) => a.iter().map(floats).collect(),
            _ => vec![floats(&case["logprobs"])],
        };
        assert_eq!(out.logprobs.len(), want.len(), "{name}: sources");
        for (i, (g, w)) in out.logprobs.iter().zip(&want).enumerate() {
            assert_close(
                &format!("{name}: source {i}"),
                g,
                w,
                LOGPROB_TOL.0,
                LOGPROB_TOL.1,
            );
        }
        cases += 1;
    }
    if let Some(ca) = r.get("cross_attentions").filter(|v| !v.is_null()) {
        let src = id_lists(&ca["input_ids"]).remove(0);
        let dec = id_lists(&ca["decoder_input_ids"]).remove(0);
        let got = model
            .cross_attentions(&src, &dec)
            .unwrap_or_else(|e| panic!("{family}/cross_attentions: {e}"));
        let layers = ca["layers"].as_array().expect("layers");
        assert_eq!(got.len(), layers.len(), "{family}/cross_attentions: layers");
        for (l, (g, w)) in got.iter().zip(layers).enumerate() {
            let mut flat = Vec::new();
            for h in w.as_array().expect("heads") {
                for t in h.as_array().expect("rows") {
                    flat.extend(floats(t));
                }
            }
            assert_close(
                &format!("{family}/cross_attentions layer {l}"),
                g,
                &flat,
                PROB_TOL.0,
                PROB_TOL.1,
            );
        }
        cases += 1;
    }
    for case in r
        .get("text")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let text = case["text"].as_str().expect("text");
        let name = format!("{family}/text {text:?}");
        let tok = model
            .tokenizer()
            .unwrap_or_else(|| panic!("{name}: fixture has no tokenizer.json"));
        assert_eq!(
            tok.encode(text).unwrap(),
            ids(&case["input_ids"]),
            "{name}: encode"
        );
        let (g, texts) = model
            .generate_text(&[text], &options(&case["kwargs"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            g.sequences[0][0],
            ids(&case["sequence"]),
            "{name}: sequence"
        );
        assert_eq!(
            texts[0],
            case["decoded"].as_str().expect("decoded"),
            "{name}: decoded"
        );
        cases += 1;
    }
    assert!(cases > 0, "{family}: reference.json has no cases");
    eprintln!("{family}: {cases} cases match");
}

#[test]
fn marian() {
    check_family("marian");
}

#[test]
fn bart() {
    check_family("bart");
}

#[test]
fn mbart() {
    check_family("mbart");
}

#[test]
fn pegasus() {
    check_family("pegasus");
}

#[test]
fn m2m100() {
    check_family("m2m100");
}

#[test]
fn nllb() {
    check_family("nllb");
}

#[test]
fn t5() {
    check_family("t5");
}

#[test]
fn t5_v1_1() {
    check_family("t5_v1_1");
}

#[test]
fn mt5() {
    check_family("mt5");
}

#[test]
fn umt5() {
    check_family("umt5");
}

/// Weights split in row chunks of at most 1 KiB (embeddings, lm_head, fused cross K/V, fc1):
/// the path large vocabularies take on 128 MiB bindings gives the same results.
#[test]
fn marian_chunked_weights() {
    let opts = LoadOptions {
        max_chunk_bytes: Some(1024),
        ..Default::default()
    };
    let model = Model::load_with(fixture_dir("marian"), gpu(), &opts).expect("load");
    check_model("marian", "marian (1 KiB chunks)", model);
}
