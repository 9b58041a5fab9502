//! `Model::transcribe` on the real weights against transformers' Whisper `generate`, stored in
//! tests/fixtures/whisper/transcribe_reference.json (tools/whisper/make_transcribe_reference.py):
//! timestamps (short-form and long-form over 30 s), language detection, translation, greedy
//! and beam 5. Token ids compared exactly; segment times to the timestamp token.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use seqbridge::gpu::Gpu;
use seqbridge::models::io::audio;
use seqbridge::models::io::mel::{MelConfig, MelExtractor};
use seqbridge::models::{GenerateOptions, Model, TranscribeOptions, Transcript};
use serde_json::Value;

use crate::common::ids;
use crate::ctranslate2::whisper_dir;
use crate::whisper::clip;

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/whisper/transcribe_reference.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// The options of a reference entry.
fn options(e: &Value) -> TranscribeOptions {
    TranscribeOptions {
        generate: GenerateOptions {
            num_beams: e["num_beams"].as_u64().map(|b| b as usize),
            language: e["language"].as_str().map(str::to_string),
            task: e["task"].as_str().map(str::to_string),
            timestamps: Some(e["timestamps"].as_bool().unwrap_or(false)),
            ..Default::default()
        },
        word_timestamps: false,
    }
}

/// What differs between our transcript and transformers' for one entry (empty: identical):
/// every window's start, length and whole sequence; the returned tokens of several windows;
/// the segments' times and tokens; the detected language.
fn differences(t: &Transcript, e: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(lang) = e["detected_language"].as_str()
        && t.language != lang
    {
        diffs.push(format!("language {} vs {lang}", t.language));
    }
    let want: Vec<(usize, usize, Vec<u32>)> = e["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| {
            let n = |k: &str| w[k].as_u64().expect(k) as usize;
            (n("seek"), n("frames"), ids(&w["tokens"]))
        })
        .collect();
    let got: Vec<(usize, usize, Vec<u32>)> = t
        .windows
        .iter()
        .map(|w| (w.seek, w.frames, w.tokens.clone()))
        .collect();
    if got != want {
        diffs.push(format!("windows\n  got  {got:?}\n  want {want:?}"));
    }
    // no_speech_prob per window, as a log-probability within the parity tolerance.
    for (i, (w, r)) in t
        .windows
        .iter()
        .zip(e["windows"].as_array().expect("windows"))
        .enumerate()
    {
        let want = r["no_speech_prob"].as_f64().expect("no_speech_prob");
        match w.no_speech_prob {
            Some(p) if (f64::from(p).ln() - want.ln()).abs() < 1e-3 => {}
            got => diffs.push(format!("window {i} no_speech_prob {got:?} vs {want}")),
        }
    }
    if want.len() > 1 && t.tokens != ids(&e["returned"]) {
        diffs.push(format!("returned tokens {:?}", t.tokens));
    }
    if let Some(segs) = e["segments"].as_array() {
        let got: Vec<(f64, f64, Vec<u32>)> = t
            .segments
            .iter()
            .map(|s| (s.start, s.end, s.tokens.clone()))
            .collect();
        let want: Vec<(f64, f64, Vec<u32>)> = segs
            .iter()
            .map(|s| {
                let f = |k: &str| s[k].as_f64().expect(k);
                (f("start"), f("end"), ids(&s["tokens"]))
            })
            .collect();
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(a, b)| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9 && a.2 == b.2);
        if !same {
            diffs.push(format!("segments\n  got  {got:?}\n  want {want:?}"));
        }
    }
    diffs
}

/// Runs every entry of `name` that `filter` accepts (but the runaway ones); returns the
/// entries that differ.
fn check(name: &str, filter: &dyn Fn(&Value) -> bool) -> Vec<String> {
    check_all(name, &|e| filter(e) && !runaway(e))
}

/// [`check`] with the runaway entries too.
fn check_all(name: &str, filter: &dyn Fn(&Value) -> bool) -> Vec<String> {
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(whisper_dir(&format!("{name}-ct2")), &gpu)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let n_mels = model.config().num_mel_bins.expect("whisper");
    let mel = MelExtractor::new(&MelConfig::whisper(n_mels)).expect("mel config");
    let entries = reference()["models"][name]
        .as_array()
        .expect("model entries");
    let mut samples: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    // Entries with the same options decode together, BATCH clips per call, as the CLI
    // batches files: each transcript must still be its clip's alone.
    let mut groups: Vec<(TranscribeOptions, Vec<&Value>)> = Vec::new();
    for e in entries.iter().filter(|e| filter(e)) {
        let file = e["file"].as_str().expect("file");
        samples
            .entry(file.to_string())
            .or_insert_with(|| audio::load_audio(&clip(file)).expect("audio"));
        let o = options(e);
        match groups
            .iter_mut()
            .find(|(g, es)| *g == o && es.len() < BATCH)
        {
            Some((_, es)) => es.push(e),
            None => groups.push((o, vec![e])),
        }
    }
    assert!(
        !groups.is_empty(),
        "{name}: no reference entries for this case"
    );
    let mut bad = Vec::new();
    for (o, es) in groups {
        let clips: Vec<&[f32]> = es
            .iter()
            .map(|e| samples[e["file"].as_str().expect("file")].as_slice())
            .collect();
        let ts = model
            .transcribe_batch(&clips, &mel, &o)
            .unwrap_or_else(|err| panic!("{name} {o:?}: {err}"));
        for (t, e) in ts.iter().zip(&es) {
            let (file, case) = (
                e["file"].as_str().unwrap_or("?"),
                e["case"].as_str().unwrap_or("?"),
            );
            let diffs = differences(t, e);
            eprintln!(
                "{name} {file} {case} (batch of {}): {} ({} windows) {:?}",
                es.len(),
                if diffs.is_empty() { "same" } else { "DIFFERS" },
                t.windows.len(),
                t.text
            );
            if !diffs.is_empty() {
                bad.push(format!("{file} {case}: {}", diffs.join("; ")));
            }
        }
    }
    bad
}

/// Clips per `transcribe_batch` call.
const BATCH: usize = 4;

fn assert_same(bad: Vec<String>) {
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

/// Entries where transformers' decoding runs away (a window of 200+ tokens: tiny.en's beam
/// search on silence, base's greedy German translation): minutes each on a software adapter,
/// so they run in `runaway_decodings_match_transformers` (ignored) only.
fn runaway(e: &Value) -> bool {
    e["windows"].as_array().is_some_and(|ws| {
        ws.iter()
            .any(|w| w["tokens"].as_array().is_some_and(|t| t.len() > 200))
    })
}

/// The entries CI runs: each feature once per model (a transcription takes tens of seconds
/// on a software adapter). `every_entry_matches_transformers` runs them all.
fn in_ci(e: &Value) -> bool {
    let (file, case) = (
        e["file"].as_str().unwrap_or(""),
        e["case"].as_str().unwrap_or(""),
    );
    let beams = e["num_beams"].as_u64().unwrap_or(1);
    matches!(
        (file, case, beams),
        (
            "en_us.wav" | "en_noise.wav" | "silence_2s.wav",
            "timestamps",
            1
        ) | ("en_long.wav", "long_form", 1)
            | ("fr.wav" | "de.wav" | "es.wav" | "en_gb.wav", "detect", 1)
            | ("fr.wav", "translate", 5)
    )
}

#[test]
fn tiny_en_timestamps_and_long_form_match_transformers() {
    assert_same(check("whisper-tiny.en", &in_ci));
}

#[test]
fn base_detection_and_translation_match_transformers() {
    // Base's long-form (two windows of the larger model) runs in every_entry_matches_transformers.
    assert_same(check("whisper-base", &|e| {
        in_ci(e) && e["case"] != "long_form"
    }));
}

#[test]
#[ignore = "about 11 minutes on a software adapter; run by hand"]
fn every_entry_matches_transformers() {
    let mut bad = Vec::new();
    for name in ["whisper-tiny.en", "whisper-base"] {
        bad.extend(check(name, &|_| true));
    }
    assert_same(bad);
}

#[test]
#[ignore = "minutes of runaway decoding on a software adapter; run by hand"]
fn runaway_decodings_match_transformers() {
    let mut bad = Vec::new();
    for name in ["whisper-tiny.en", "whisper-base"] {
        bad.extend(check_all(name, &runaway));
    }
    assert_same(bad);
}

/// A 44.1 kHz stereo MP3 of a clip transcribes to the same text as its 16 kHz mono WAV.
#[test]
fn mp3_44k_stereo_gives_the_wav_text() {
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(whisper_dir("whisper-tiny.en-ct2"), &gpu).expect("tiny.en");
    let mel = MelExtractor::new(&MelConfig::whisper(80)).expect("mel config");
    let s = audio::load_audio(&clip("en_us_44k_stereo.mp3")).expect("mp3");
    let t = model
        .transcribe(&s, &mel, &TranscribeOptions::default())
        .expect("mp3");
    // The WAV's text: transformers' greedy transcription (reference.json), which
    // tests/models/whisper.rs checks seqbridge gives on the WAV.
    let wav = crate::whisper::reference_text("whisper-tiny.en", "en_us.wav", "greedy");
    assert_eq!(t.text, wav.trim());
}
