//! Whisper token timestamps, words and the streamed cross-attention against transformers,
//! stored in tests/fixtures/whisper/token_timestamps.json
//! (tools/whisper/make_token_timestamps.py): the median filter, DTW and timestamp extraction
//! on small random matrices; the pipeline's word assembly on tokenized text; and, on the
//! real CTranslate2 weights, `generate(..., return_token_timestamps=True)` (greedy and beam
//! 5) with the pipeline's words.

use std::path::Path;

use seqbridge::gpu::Gpu;
use seqbridge::models::arch::whisper::alignment::{
    self, AlignmentWeights, dynamic_time_warping, median_filter,
};
use seqbridge::models::arch::whisper::words::{self, SpecialTokens, Word};
use seqbridge::models::encoder::EncoderInput;
use seqbridge::models::io::audio;
use seqbridge::models::io::mel::MelConfig;
use seqbridge::models::{GenerateOptions, Model, Tokenizer};
use serde_json::Value;

use crate::common::ids;
use crate::ctranslate2::whisper_dir;
use crate::whisper::{clip, features};

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whisper/token_timestamps.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected numbers, got {v}"))
        .iter()
        .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    ids(v).into_iter().map(|x| x as usize).collect()
}

fn num(v: &Value) -> usize {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}")) as usize
}

#[test]
fn median_filter_matches_transformers() {
    let f = fixture();
    let cases = f["functions"]["median_filter"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        let shape = usizes(&c["shape"]);
        let cols = shape[shape.len() - 1];
        let got = median_filter(&floats(&c["input"]), cols, num(&c["width"])).unwrap();
        // A median is one of the inputs: exact.
        assert_eq!(got, floats(&c["output"]), "shape {shape:?}");
    }
}

#[test]
fn dtw_matches_transformers() {
    let f = fixture();
    let cases = f["functions"]["dtw"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        let (rows, cols) = (num(&c["rows"]), num(&c["cols"]));
        let m: Vec<f64> = c["matrix"]
            .as_array()
            .expect("matrix")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect();
        let (text, time) = dynamic_time_warping(&m, rows, cols).unwrap();
        let want = |k: &str| -> Vec<i64> {
            c[k].as_array()
                .expect("indices")
                .iter()
                .map(|x| x.as_i64().expect("index"))
                .collect()
        };
        assert_eq!(text, want("text_indices"), "[{rows}, {cols}]");
        assert_eq!(time, want("time_indices"), "[{rows}, {cols}]");
    }
}

#[test]
fn token_timestamp_extraction_matches_transformers() {
    let f = fixture();
    let cases = f["functions"]["extract"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        let (heads, rows, src) = (num(&c["heads"]), num(&c["rows"]), num(&c["source"]));
        let all = floats(&c["weights"]);
        let align: Vec<Vec<usize>> = c["alignment_heads"]
            .as_array()
            .expect("heads")
            .iter()
            .map(usizes)
            .collect();
        let block = rows * src;
        let data = align
            .iter()
            .flat_map(|lh| {
                let at = (lh[0] * heads + lh[1]) * block;
                all[at..at + block].iter().copied()
            })
            .collect();
        let w = AlignmentWeights {
            heads: align.len(),
            rows,
            source: src,
            data,
        };
        let got = alignment::token_timestamps(&w, num(&c["num_input_ids"]), num(&c["num_frames"]))
            .unwrap();
        assert_eq!(got, floats(&c["token_timestamps"]), "{rows} rows × {src}");
    }
}

/// The language code of the fixture's language name.
fn code(name: &Value) -> Option<&'static str> {
    let name = name.as_str()?;
    let codes = [
        ("english", "en"),
        ("french", "fr"),
        ("japanese", "ja"),
        ("chinese", "zh"),
    ];
    let found = codes.iter().find(|(n, _)| *n == name);
    Some(found.unwrap_or_else(|| panic!("no code for {name}")).1)
}

fn special(tok: &Tokenizer) -> SpecialTokens {
    let id = |t: &str| tok.token_id(t).unwrap_or_else(|| panic!("no {t}"));
    SpecialTokens {
        eot: id("<|endoftext|>"),
        timestamp_begin: id("<|notimestamps|>") + 1,
        sot: id("<|startoftranscript|>"),
        prev: tok.token_id("<|startofprev|>"),
    }
}

/// Words against the fixture's: the same text, spans within `tol` seconds.
fn check_words(what: &str, got: &[Word], want: &Value, tol: f32) {
    let want = want.as_array().expect("words");
    let text = |w: &[Word]| w.iter().map(|w| w.word.clone()).collect::<Vec<_>>();
    let want_text: Vec<String> = want
        .iter()
        .map(|w| w["word"].as_str().expect("word").to_string())
        .collect();
    assert_eq!(text(got), want_text, "{what}");
    for (g, w) in got.iter().zip(want) {
        for (k, v) in [("start", g.start), ("end", g.end)] {
            let x = w[k].as_f64().expect("time") as f32;
            assert!(
                (v - x).abs() <= tol,
                "{what}: {:?} {k} {v} vs transformers' {x}",
                g.word
            );
        }
    }
}

#[test]
fn words_match_transformers_pipeline() {
    let f = fixture();
    let tok = Tokenizer::from_file(&whisper_dir("whisper-base-ct2").join("tokenizer.json"))
        .expect("whisper-base tokenizer");
    let cases = f["words"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        let tokens = ids(&c["tokens"]);
        let got = words::words(
            &tok,
            &tokens,
            &floats(&c["token_timestamps"]),
            special(&tok),
            code(&c["language"]),
        )
        .unwrap();
        check_words(&format!("{:?}", c["language"]), &got, &c["words"], 1e-6);
    }
}

/// Compares the timestamps of the generated tokens with transformers' (within one frame),
/// and checks the prompt's zeros and the repeated last value. Returns (exact, total).
fn check_timestamps(what: &str, ts: &[f32], prompt: usize, want: &[f32]) -> (usize, usize) {
    assert_eq!(ts.len(), prompt + want.len() + 1, "{what}: {ts:?}");
    assert!(ts[..prompt].iter().all(|&t| t == 0.0), "{what}: {ts:?}");
    assert_eq!(ts[ts.len() - 1], ts[ts.len() - 2], "{what}");
    let got = &ts[prompt..prompt + want.len()];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 0.02 + 1e-6,
            "{what}: token {i}: {g} s vs transformers' {w} s\n got  {got:?}\n want {want:?}"
        );
    }
    let exact = got.iter().zip(want).filter(|(g, w)| g == w).count();
    (exact, want.len())
}

/// The clips of `name` in `clips` (a few: each costs a 30 s encoder pass or two on a
/// software adapter; the fixture holds them all): greedy with the streamed alignment rows,
/// token timestamps from those rows and words against transformers'; on the first clip,
/// the streamed rows against the rows of a teacher-forced pass; where beam 5 found another
/// sequence, its timestamps and words from the facade's own teacher-forced pass.
fn check_model(name: &str, clips: &[&str]) {
    let f = fixture();
    // Its own GPU context, as tests/models/whisper.rs.
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(whisper_dir(&format!("{name}-ct2")), &gpu)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let eos = model.generation_config().eos_token_id.clone().expect("eos")[0];
    let n_heads = model.alignment_heads().expect("alignment heads").len();
    let multilingual = model.generation_config().is_multilingual == Some(true);
    let entries = f["models"][name].as_array().expect("model entries");
    let (mut exact, mut total) = (0, 0);
    for (n, file) in clips.iter().enumerate() {
        let e = entries
            .iter()
            .find(|e| e["file"] == *file)
            .unwrap_or_else(|| panic!("{name}: no {file} in the fixture"));
        let data = features(file);
        let samples = audio::load_audio(&clip(file)).expect("audio");
        let num_frames = alignment::num_frames(samples.len(), &MelConfig::whisper(80));
        assert_eq!(num_frames, num(&e["num_frames"]), "{file}");
        let prompt = ids(&e["prompt"]);
        let input = EncoderInput::Features {
            data: &data,
            batch: 1,
            n_mels: 80,
            frames: 3000,
        };
        let opts = GenerateOptions {
            language: multilingual.then(|| e["language"].as_str().expect("lang").to_string()),
            ..Default::default()
        };
        if n == 0 {
            let beams = GenerateOptions {
                num_beams: Some(5),
                ..opts.clone()
            };
            let err = model
                .generate_streaming(&input, &beams, &mut |_| {})
                .unwrap_err();
            assert!(err.to_string().contains("num_beams 5"), "{err}");
            let err = model
                .token_timestamps(&data[..100], &prompt, num_frames)
                .unwrap_err();
            assert!(err.to_string().contains("100 feature values"), "{err}");
        }
        let mut rows: Vec<(usize, u32, Vec<f32>)> = Vec::new();
        let out = model
            .generate_streaming(&input, &opts, &mut |ev| {
                assert_eq!((ev.source, ev.heads, ev.source_len), (0, n_heads, 1500));
                assert_eq!(ev.cross_attention.len(), n_heads * 1500);
                rows.push((ev.position, ev.token, ev.cross_attention.to_vec()));
            })
            .unwrap_or_else(|e| panic!("{name} {file}: {e}"));
        let greedy = &e["greedy"];
        let mut seq = prompt.clone();
        seq.extend(ids(&greedy["generated"]));
        seq.push(eos);
        assert_eq!(out.sequences[0][0], seq, "{name} {file}: greedy sequence");
        assert_eq!(rows.len(), seq.len() - 1, "{name} {file}: one event a step");
        for (p, (position, token, _)) in rows.iter().enumerate() {
            assert_eq!((*position, *token), (p, seq[p + 1]), "{name} {file}");
        }
        let streamed: Vec<&[f32]> = rows.iter().map(|r| r.2.as_slice()).collect();
        let w = AlignmentWeights::from_rows(n_heads, 1500, &streamed).unwrap();
        let ts = alignment::token_timestamps(&w, prompt.len(), num_frames).unwrap();
        if n == 0 {
            // The streamed rows are the rows of one teacher-forced pass.
            let tf = model
                .alignment_weights(&data, &seq[..seq.len() - 1])
                .unwrap_or_else(|e| panic!("{name} {file}: {e}"));
            assert_eq!((tf.heads, tf.rows, tf.source), (w.heads, w.rows, w.source));
            let worst = w
                .data
                .iter()
                .zip(&tf.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{name} {file}: streamed rows within {worst:e} of the teacher-forced pass");
            assert!(
                worst <= 1e-5,
                "{name} {file}: streamed rows differ by {worst}"
            );
            let tf_ts = alignment::token_timestamps(&tf, prompt.len(), num_frames).unwrap();
            assert_eq!(tf_ts, ts, "{name} {file}");
        }
        let want = floats(&greedy["token_timestamps"]);
        let what = format!("{name} {file} greedy");
        let (x, t) = check_timestamps(&what, &ts, prompt.len(), &want);
        let words = model.words(&seq, &ts).expect("words");
        check_words(&what, &words, &greedy["words"], 0.02 + 1e-6);
        exact += x;
        total += t;
        let beam = &e["beam5"];
        let mut beam_seq = prompt.clone();
        beam_seq.extend(ids(&beam["generated"]));
        beam_seq.push(eos);
        if beam_seq != seq {
            // transformers' beam sequence (tests/models/whisper.rs checks that seqbridge's
            // beam search returns it).
            let what = format!("{name} {file} beam5");
            let beam_ts = model
                .token_timestamps(&data, &beam_seq, num_frames)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let want = floats(&beam["token_timestamps"]);
            let (x, t) = check_timestamps(&what, &beam_ts, prompt.len(), &want);
            let words = model.words(&beam_seq, &beam_ts).expect("words");
            check_words(&what, &words, &beam["words"], 0.02 + 1e-6);
            exact += x;
            total += t;
        }
    }
    eprintln!("{name}: {exact}/{total} token timestamps equal to transformers'");
}

#[test]
fn whisper_tiny_en_token_timestamps_match_transformers() {
    // en_noise: beam 5 finds another sequence.
    check_model("whisper-tiny.en", &["en_us.wav", "en_noise.wav"]);
}

#[test]
fn whisper_base_token_timestamps_match_transformers() {
    // beam 5 finds another sequence.
    check_model("whisper-base", &["de.wav"]);
}
