//! Audio decoding and Whisper's log-mel features against the clips of tests/fixtures/audio/
//! (tools/whisper/make_clips.py) and transformers' `WhisperFeatureExtractor` output stored in
//! features.safetensors (tools/whisper/make_feature_reference.py). No GPU and no Python.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use seqbridge::models::io::audio::{self, SAMPLE_RATE};
use seqbridge::models::io::mel::{MelConfig, MelExtractor};
use serde_json::Value;

/// Largest |difference| allowed from transformers' features (its own torch and numpy paths
/// differ by up to 4e-5).
const TOLERANCE: f32 = 1e-4;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

fn manifest() -> Value {
    let path = dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(file: &str) -> Vec<f32> {
    audio::load_audio(&dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn tensor<'a>(st: &'a SafeTensors<'a>, name: &str) -> safetensors::tensor::TensorView<'a> {
    st.tensor(name)
        .unwrap_or_else(|e| panic!("features.safetensors: {name}: {e}"))
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    let t = tensor(st, name);
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn i64s(st: &SafeTensors<'_>, name: &str) -> Vec<usize> {
    let t = tensor(st, name);
    assert_eq!(t.dtype(), safetensors::Dtype::I64, "{name}");
    t.data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as usize)
        .collect()
}

#[test]
fn features_match_transformers() {
    let path = dir().join("features.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, header) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
    let meta = header.metadata().as_ref().expect("metadata");
    let entries: BTreeMap<String, Value> =
        serde_json::from_str(&meta["entries"]).expect("entries JSON");
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");

    // every WAV clip has a short-form entry: none goes unchecked
    for clip in manifest()["clips"].as_array().unwrap() {
        let file = clip["file"].as_str().unwrap();
        if let Some(stem) = file.strip_suffix(".wav") {
            assert!(
                entries.contains_key(stem),
                "no reference features for {file}"
            );
        }
    }

    let mut extractors: BTreeMap<usize, MelExtractor> = BTreeMap::new();
    let mut report = Vec::new();
    let mut worst = 0.0f32;
    for (name, e) in &entries {
        let n_mels = e["n_mels"].as_u64().unwrap() as usize;
        let ex = extractors
            .entry(n_mels)
            .or_insert_with(|| MelExtractor::new(&MelConfig::whisper(n_mels)).unwrap());
        let n_frames = ex.config().n_frames();
        let samples = load(e["clip"].as_str().unwrap());
        let got = match e["kind"].as_str().unwrap() {
            "short" => ex.short_form(&samples).unwrap(),
            "longform" => {
                let whole = ex.long_form(&samples).unwrap();
                assert_eq!(
                    whole.n_frames as u64,
                    e["total_frames"].as_u64().unwrap(),
                    "{name}"
                );
                whole.segment(e["seek"].as_u64().unwrap() as usize, n_frames)
            }
            kind => panic!("{name}: unknown kind {kind}"),
        };
        assert_eq!((got.n_mels, got.n_frames), (n_mels, n_frames), "{name}");

        let frames = i64s(&st, &format!("{name}.frames"));
        let values = f32s(&st, &format!("{name}.values"));
        let fill_from = i64s(&st, &format!("{name}.fill_from"))[0];
        let fill = f32s(&st, &format!("{name}.fill"))[0];
        assert_eq!(values.len(), n_mels * frames.len(), "{name}");
        let mut max_diff = 0.0f32;
        let mut at = (0, 0);
        let mut check = |m: usize, t: usize, want: f32| {
            let d = got.get(m, t).map_or(f32::INFINITY, |v| (v - want).abs());
            let d = if d.is_nan() { f32::INFINITY } else { d };
            if d > max_diff {
                max_diff = d;
                at = (m, t);
            }
        };
        for m in 0..n_mels {
            for (k, &t) in frames.iter().enumerate() {
                check(m, t, values[m * frames.len() + k]);
            }
            for t in fill_from..n_frames {
                check(m, t, fill);
            }
        }
        report.push(format!(
            "{name:24} {:5} frames checked, max |diff| {max_diff:.2e}",
            frames.len() + (n_frames - fill_from)
        ));
        assert!(
            max_diff <= TOLERANCE,
            "{name}: max |diff| {max_diff} at mel {}, frame {} (tolerance {TOLERANCE})",
            at.0,
            at.1
        );
        worst = worst.max(max_diff);
    }
    eprintln!("{}\nworst {worst:.2e}", report.join("\n"));
}

/// The whole-clip long-form features of en_long.wav (37.9 s, `truncation=False,
/// padding="longest"`: the `max - 8` floor over the whole clip), every value, as
/// transformers computed them for tools/whisper/make_transcribe_reference.py.
#[test]
fn long_form_features_match_transformers_everywhere() {
    let path = dir().join("features_long.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");
    let want = f32s(&st, "features");
    let shape = tensor(&st, "features").shape().to_vec();
    let got = MelExtractor::new(&MelConfig::whisper(80))
        .unwrap()
        .long_form(&load("en_long.wav"))
        .unwrap();
    assert_eq!(vec![got.n_mels, got.n_frames], shape);
    let worst = got
        .data
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    eprintln!(
        "en_long.wav long-form, {} values: max |diff| {worst:.2e}",
        want.len()
    );
    assert!(
        worst <= TOLERANCE,
        "max |diff| {worst} (tolerance {TOLERANCE})"
    );
}

#[test]
fn flac_is_its_wav_exactly() {
    let wav = audio::read_audio(&dir().join("en_gb.wav")).unwrap();
    let flac = audio::read_audio(&dir().join("en_gb.flac")).unwrap();
    assert_eq!((flac.sample_rate, flac.channels), (16_000, 1));
    assert_eq!(flac.samples, wav.samples);
}

/// The lag (within `max_lag`) that best aligns `y` with `x`, then the SNR of `x` against `y`
/// scaled by its least-squares gain over the overlap, in dB, and their correlation.
fn aligned_snr(x: &[f32], y: &[f32], max_lag: isize) -> (isize, f64, f64) {
    let dot = |lag: isize| -> (f64, f64, f64) {
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for (i, &a) in x.iter().enumerate() {
            let j = i as isize + lag;
            if j >= 0 && (j as usize) < y.len() {
                let b = f64::from(y[j as usize]);
                let a = f64::from(a);
                xy += a * b;
                xx += a * a;
                yy += b * b;
            }
        }
        (xy, xx, yy)
    };
    let corr = |(xy, xx, yy): (f64, f64, f64)| xy / (xx * yy).sqrt().max(1e-30);
    let lag = (-max_lag..=max_lag)
        .max_by(|&a, &b| corr(dot(a)).total_cmp(&corr(dot(b))))
        .unwrap();
    let (xy, xx, yy) = dot(lag);
    let gain = xy / yy;
    let noise = xx - 2.0 * gain * xy + gain * gain * yy; // sum (x - gain * y)^2
    (
        lag,
        10.0 * (xx / noise.max(1e-30)).log10(),
        corr((xy, xx, yy)),
    )
}

#[test]
fn ogg_vorbis_is_close_to_its_wav() {
    let wav = load("en_gb.wav");
    let ogg = audio::read_audio(&dir().join("en_gb.ogg")).unwrap();
    assert_eq!((ogg.sample_rate, ogg.channels), (16_000, 1));
    let (lag, snr, corr) = aligned_snr(&wav, &ogg.samples, 200);
    eprintln!("en_gb.ogg vs en_gb.wav: lag {lag}, SNR {snr:.1} dB, correlation {corr:.4}");
    assert!(
        lag.abs() <= 2 && snr > 10.0 && corr > 0.95,
        "lag {lag}, SNR {snr} dB, corr {corr}"
    );
}

#[test]
fn mp3_44k_stereo_resamples_close_to_its_wav() {
    let wav = load("en_us.wav");
    let clip = audio::read_audio(&dir().join("en_us_44k_stereo.mp3")).unwrap();
    assert_eq!((clip.sample_rate, clip.channels), (44_100, 2));
    let mp3 = audio::resample(&clip.samples, clip.sample_rate, SAMPLE_RATE).unwrap();
    assert_eq!(mp3, load("en_us_44k_stereo.mp3"));
    let (lag, snr, corr) = aligned_snr(&wav, &mp3, 1000);
    eprintln!(
        "en_us_44k_stereo.mp3 -> 16 kHz mono vs en_us.wav: {} vs {} samples, lag {lag}, SNR \
         {snr:.1} dB, correlation {corr:.4}",
        mp3.len(),
        wav.len()
    );
    assert!(
        snr > 20.0 && corr > 0.99,
        "lag {lag}, SNR {snr} dB, corr {corr}"
    );
}

fn error_of(path: &Path) -> String {
    match audio::load_audio(path) {
        Ok(s) => panic!("{} decoded to {} samples", path.display(), s.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn non_audio_and_empty_files_are_named() {
    let json = dir().join("manifest.json");
    let e = error_of(&json);
    assert!(
        e.contains(&json.display().to_string()) && e.contains("not an audio file"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let e = error_of(&empty);
    assert!(
        e.contains(&empty.display().to_string()) && e.contains("empty"),
        "{e}"
    );
    let missing = tmp.path().join("missing.mp3");
    let e = error_of(&missing);
    assert!(e.contains(&missing.display().to_string()), "{e}");
}
