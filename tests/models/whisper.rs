//! Whisper on the CTranslate2 weights (tools/whisper/fetch_weights.py) against transformers'
//! `generate` on the Hugging Face conversions of the same weights, stored in
//! tests/fixtures/whisper/reference.json (tools/whisper/make_reference.py): features from
//! the WAV clips through `io::mel`, then greedy and beam search, ids compared exactly.

use std::path::{Path, PathBuf};

use seqbridge::gpu::Gpu;
use seqbridge::models::encoder::EncoderInput;
use seqbridge::models::io::audio;
use seqbridge::models::io::mel::{MelConfig, MelExtractor};
use seqbridge::models::{GenerateOptions, Model};
use serde_json::Value;

use crate::common::ids;
use crate::ctranslate2::whisper_dir;

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whisper/reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// transformers' text of `file` with `model` and `key` (`greedy`, `beam5`) in reference.json.
pub(crate) fn reference_text(model: &str, file: &str, key: &str) -> String {
    let r = reference();
    let e = r["models"][model]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["file"] == file))
        .unwrap_or_else(|| panic!("{model} {file} in reference.json"));
    e[key]["text"].as_str().expect("text").to_string()
}

pub(crate) fn clip(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(file)
}

/// Short-form features `[1, 80, 3000]` of a clip.
pub(crate) fn features(file: &str) -> Vec<f32> {
    let samples = audio::load_audio(&clip(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mel = MelExtractor::new(&MelConfig::whisper(80)).expect("mel config");
    let f = mel.short_form(&samples).expect("features");
    assert_eq!((f.n_mels, f.n_frames), (80, 3000), "{file}");
    f.data
}

/// Generates every clip of `model` in reference.json with `key` (`greedy`, `beam5`) and
/// compares: the prompt, then the generated tokens, then `<|endoftext|>` (which
/// transformers 5 drops from what it returns). Returns the clips that differ.
fn check(name: &str, key: &str, beams: usize) -> Vec<String> {
    let r = reference();
    // Its own GPU context: the stats checked below are per context, and other tests run in
    // parallel on the shared one.
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(whisper_dir(&format!("{name}-ct2")), &gpu)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let eos = model.generation_config().eos_token_id.clone().expect("eos");
    let layers = model.config().decoder_layers as u64;
    let mut bad = Vec::new();
    let entries = r["models"][name].as_array().expect("model entries");
    assert!(!entries.is_empty(), "{name}: no clips in reference.json");
    for e in entries {
        let file = e["file"].as_str().expect("file");
        let lang = e["language"].as_str().expect("language");
        let data = features(file);
        let input = EncoderInput::Features {
            data: &data,
            batch: 1,
            n_mels: 80,
            frames: 3000,
        };
        let multilingual = model.generation_config().is_multilingual == Some(true);
        let opts = GenerateOptions {
            num_beams: Some(beams),
            language: multilingual.then(|| lang.to_string()),
            ..Default::default()
        };
        let out = model
            .generate_input(&input, &opts, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{name} {file}: {e}"));
        let want_ref = &e[key];
        assert!(
            !want_ref["returned_has_prompt"].as_bool().unwrap_or(true),
            "reference.json: transformers' output layout changed"
        );
        let mut want = ids(&e["prompt"]);
        want.extend(ids(&want_ref["generated"]));
        if want_ref["returned_has_eos"].as_bool() == Some(true) || want.len() < 448 {
            want.push(eos[0]);
        }
        let got = &out.sequences[0][0];
        let agree = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        eprintln!(
            "{name} {file} {key}: {agree}/{} tokens agree {}",
            want.len(),
            want_ref["text"]
        );
        if *got != want {
            bad.push(format!("{file}: got {got:?}\n want {want:?}"));
        }
        let s = out.stats;
        assert_eq!(s.encoder_runs, 1, "{name} {file}");
        assert_eq!(s.cross_kv_computes, layers, "{name} {file}");
        assert_eq!(s.weight_bytes_uploaded, 0, "{name} {file}");
        assert!(
            s.submits <= s.decoder_steps + 2,
            "{name} {file}: one submit per step: {s:?}"
        );
    }
    bad
}

#[test]
fn whisper_tiny_en_greedy_matches_transformers() {
    let bad = check("whisper-tiny.en", "greedy", 1);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn whisper_base_greedy_matches_transformers() {
    let bad = check("whisper-base", "greedy", 1);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn whisper_tiny_en_beam5_matches_transformers() {
    let bad = check("whisper-tiny.en", "beam5", 5);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn whisper_base_beam5_matches_transformers() {
    let bad = check("whisper-base", "beam5", 5);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
