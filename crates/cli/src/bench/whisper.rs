//! `seqbridge bench --model DIR` on a Whisper model (Hugging Face or CTranslate2 directory):
//! short-form transcription of audio clips, timed as a real-time factor, with the features,
//! the encoder and the decode steps apart.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use seqbridge_gpu::Gpu;
use seqbridge_models::encoder::EncoderInput;
use seqbridge_models::generation::SearchConfig;
use seqbridge_models::generation::processors::forced_tokens;
use seqbridge_models::io::audio::load_audio;
use seqbridge_models::io::mel::MelExtractor;
use seqbridge_models::{GenerateOptions, Model, Profile};
use serde_json::{Value, json};

use super::{BenchArgs, kernel_ms, mean, median, percentile};

/// The fixture clips, in the source tree this binary was built from.
const AUDIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/audio");

/// What `load_audio` resamples every file to.
const SAMPLE_RATE: f64 = 16_000.0;

/// The English WAV clips of tests/fixtures/audio/manifest.json that fit one 30-s window:
/// the clips tools/whisper/make_reference.py transcribes with whisper-tiny.en.
fn default_clips() -> Result<Vec<PathBuf>> {
    let missing = |path: &Path| {
        format!(
            "reading {} (name the clips with --audio FILE...)",
            path.display()
        )
    };
    let dir = Path::new(AUDIO_DIR);
    let dir = dir.canonicalize().with_context(|| missing(dir))?;
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| missing(&path))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let files: Vec<PathBuf> = v["clips"]
        .as_array()
        .with_context(|| format!("{}: no \"clips\" list", path.display()))?
        .iter()
        .filter(|c| {
            c["language"] == "en"
                && c["format"] == "wav"
                && c["seconds"].as_f64().is_some_and(|s| s <= 30.0)
        })
        .filter_map(|c| c["file"].as_str())
        .map(|f| dir.join(f))
        .collect();
    if files.is_empty() {
        bail!("{}: no English WAV clip of 30 s or less", path.display());
    }
    Ok(files)
}

/// One clip's transcription: features, then a profiled `generate`.
struct Call {
    features_ms: f64,
    wall_s: f64,
    profile: Profile,
    ids: Vec<u32>,
}

fn transcribe(
    model: &Model,
    mel: &MelExtractor,
    samples: &[f32],
    opts: &GenerateOptions,
    timestamps: bool,
) -> Result<Call> {
    let t = Instant::now();
    let f = mel.short_form(samples)?;
    let features_ms = t.elapsed().as_secs_f64() * 1e3;
    let input = EncoderInput::Features {
        data: &f.data,
        batch: 1,
        n_mels: f.n_mels,
        frames: f.n_frames,
    };
    let (g, profile) = model.generate_input_profiled(&input, opts, timestamps)?;
    Ok(Call {
        features_ms,
        wall_s: t.elapsed().as_secs_f64(),
        profile,
        ids: g.sequences[0][0].clone(),
    })
}

pub fn bench(a: &BenchArgs, gpu: &Gpu, model: &Model, dir: &Path, load_ms: f64) -> Result<Value> {
    if a.batch.is_some() || a.src_len.is_some() || a.new_tokens.is_some() {
        bail!(
            "--batch, --src-len and --new-tokens are for text models; a Whisper bench transcribes each clip whole"
        );
    }
    let default = a.audio.is_empty();
    let files = if default {
        default_clips()?
    } else {
        a.audio.clone()
    };
    let clips = files
        .iter()
        .map(|f| load_audio(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let mel = model.mel_extractor()?;
    let opts = GenerateOptions {
        num_beams: Some(a.beams),
        // The default clips are English; multilingual models need to be told.
        language: a
            .language
            .clone()
            .or_else(|| default.then(|| "en".to_string())),
        ..Default::default()
    };
    let search = SearchConfig::resolve(model.config(), model.generation_config(), &opts)?;
    // Forced steps (Whisper's prompt) are submitted without waiting for the GPU, so their
    // time is only their recording, and the first free step waits for their work too.
    // The step figures are over the other steps: one token's work each, waited for.
    let forced = |t: usize| forced_tokens(&search, t + 1).is_some();

    // GPU time per kernel family: the first warm-up call (the first clip) is timed with
    // timestamp queries around every dispatch, which split every dispatch into a pass, so it
    // stays out of the timings; without warm-up, one extra call.
    let timestamps = gpu.caps().timestamps;
    let mut timed_profile = None;
    if timestamps && a.warmup == 0 {
        timed_profile = Some(transcribe(model, &mel, &clips[0], &opts, true)?.profile);
    }
    for w in 0..a.warmup {
        for (i, (file, samples)) in files.iter().zip(&clips).enumerate() {
            let timed = timestamps && w == 0 && i == 0;
            let c = transcribe(model, &mel, samples, &opts, timed)
                .with_context(|| format!("transcribing {}", file.display()))?;
            if timed {
                timed_profile = Some(c.profile);
            }
        }
    }
    let (mut run_wall, mut calls) = (Vec::new(), Vec::new());
    for _ in 0..a.iters {
        let mut wall = 0.0;
        for (file, samples) in files.iter().zip(&clips) {
            let c = transcribe(model, &mel, samples, &opts, false)
                .with_context(|| format!("transcribing {}", file.display()))?;
            wall += c.wall_s;
            calls.push(c);
        }
        run_wall.push(wall);
    }

    let (mut steps, mut host, mut dispatches, mut submits) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in &calls {
        let p = &c.profile;
        for t in (1..p.step_ms.len()).filter(|&t| !forced(t) && !forced(t - 1)) {
            steps.push(p.step_ms[t]);
            host.push(p.host_ms[t]);
            dispatches.push(p.step_dispatches[t]);
            submits.push(p.step_submits[t]);
        }
    }
    if steps.is_empty() {
        bail!("the clips gave no decode step beyond the prompt to time");
    }
    // Free steps: one generated token each (EOS included), the prompt left out.
    let free = |c: &Call| (0..c.profile.step_ms.len()).filter(|&t| !forced(t)).count();
    let tokens_per_run = calls[..clips.len()].iter().map(free).sum::<usize>();
    let audio_s = clips.iter().map(|s| s.len() as f64).sum::<f64>() / SAMPLE_RATE;
    let wall_s = median(&run_wall);
    let step_ms = median(&steps);
    let step_bytes = model.step_weight_bytes();
    let tok = model.tokenizer();
    let per_clip = files
        .iter()
        .zip(&clips)
        .zip(&calls)
        .map(|((file, samples), c)| {
            let text = tok
                .map(|t| t.decode(&c.ids))
                .transpose()?
                .map(|s| s.trim().to_string());
            Ok(json!({
                "file": file.display().to_string(),
                "audio_seconds": samples.len() as f64 / SAMPLE_RATE,
                "tokens": free(c),
                "text": text,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let adapter = gpu.adapter();
    Ok(json!({
        "audio_seconds": audio_s,
        "wall_seconds": wall_s,
        "rtf": wall_s / audio_s,
        "features_ms": median(&calls.iter().map(|c| c.features_ms).collect::<Vec<_>>()),
        "encoder_ms": median(&calls.iter().map(|c| c.profile.encoder_ms).collect::<Vec<_>>()),
        "step_ms_median": step_ms,
        "step_ms_p90": percentile(&steps, 0.9),
        "host_ms_per_step": median(&host),
        "dispatches_per_step": mean(&dispatches),
        "submits_per_step": mean(&submits),
        "tokens_per_run": tokens_per_run,
        "tokens_per_s": tokens_per_run as f64 / wall_s,
        "weight_bytes": model.weight_bytes(),
        "step_weight_bytes": step_bytes,
        "step_weight_gb_per_s": step_bytes as f64 / (step_ms * 1e6),
        "roofline": super::roofline::roofline(gpu, step_bytes, step_ms, timed_profile.as_ref())?,
        "load_ms": load_ms,
        "gpu_bytes_allocated": gpu.stats().bytes_allocated,
        "gpu_ms_by_kernel": timed_profile.as_ref().map_or(Value::Null, kernel_ms),
        "adapter": format!("{} ({})", adapter.name, adapter.driver),
        "backend": adapter.backend,
        "engine": format!("seqbridge {}", env!("CARGO_PKG_VERSION")),
        "model": dir.display().to_string(),
        "clips": per_clip,
        "beams": a.beams,
        "language": opts.language,
        "dtype": a.dtype.name(),
        "warmup": a.warmup,
        "runs": a.iters,
    }))
}
