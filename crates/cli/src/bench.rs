//! `seqbridge bench`: a headless benchmark of generation on a model directory or on
//! built-in shapes with random weights (nothing to download); a Whisper directory benches
//! transcription ([`whisper`]).

mod roofline;
mod whisper;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use seqbridge_gpu::Gpu;
use seqbridge_models::encoder::{EncoderInput, PatchGrid, SourceData, SourceKind};
use seqbridge_models::{Constrain, GenerateOptions, Model, Pixels, Profile};
use serde_json::{Value, json};

use crate::args::{Dtype, open_gpu};
use crate::output::Stdout;

/// Built-in shapes: Hugging Face config.json files in assets/bench (the transformers
/// baseline, tools/baseline/bench_transformers.py, reads the same files).
const CONFIGS: &[(&str, &str)] = &[
    ("tiny", include_str!("../../../assets/bench/tiny.json")),
    (
        "opus-mt",
        include_str!("../../../assets/bench/opus-mt.json"),
    ),
    (
        "bart-base",
        include_str!("../../../assets/bench/bart-base.json"),
    ),
    (
        "m2m100-418m",
        include_str!("../../../assets/bench/m2m100-418m.json"),
    ),
    (
        "t5-small",
        include_str!("../../../assets/bench/t5-small.json"),
    ),
    (
        "vit-gpt2",
        include_str!("../../../assets/bench/vit-gpt2.json"),
    ),
    // A text (opus-mt-sized) and an image (ViT-small 224/16) source read by a 6-layer
    // decoder of width 512, concatenated or in separate cross-attention blocks.
    (
        "multi-concat",
        include_str!("../../../assets/bench/multi-concat.json"),
    ),
    (
        "multi-separate",
        include_str!("../../../assets/bench/multi-separate.json"),
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A model directory to benchmark (Whisper: transcription of audio clips).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub model: Option<PathBuf>,
    /// Built-in shape with random weights: tiny, opus-mt, bart-base, m2m100-418m, t5-small,
    /// vit-gpt2 (image captioning, random pixels), multi-concat or multi-separate (a text and
    /// an image source, concatenated or in separate cross-attention blocks).
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
    /// Sources per call (text models; default 1).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Beams per source (1: greedy).
    #[arg(long, visible_alias = "num-beams", default_value_t = 1)]
    pub beams: usize,
    /// Tokens per source, random ids with EOS last (text models; default 32).
    #[arg(long)]
    pub src_len: Option<usize>,
    /// New tokens per source (text models; default 32); EOS is held off so every call
    /// generates exactly this many.
    #[arg(long)]
    pub new_tokens: Option<usize>,
    /// How the weights are stored on the GPU.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Untimed calls first (pipelines compile, pools fill).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed calls (Whisper: timed runs over every clip).
    #[arg(long, visible_alias = "runs", default_value_t = 3)]
    pub iters: usize,
    /// Whisper: audio files to transcribe (default: the English clips of
    /// tests/fixtures/audio/manifest.json that fit one 30-s window).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub audio: Vec<PathBuf>,
    /// Whisper: the spoken language (default: en with the default clips).
    #[arg(long, value_name = "xx")]
    pub language: Option<String>,
    /// Seed of the random weights and sources.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,
    /// Text models: decode under this regular expression (needs the model directory's
    /// tokenizer), and report what the constraint costs. Without it the bench runs
    /// unconstrained, even on a model whose directory has a constraint.regex.
    #[arg(long, value_name = "REGEX")]
    pub constrain: Option<String>,
}

/// The text bench's shape: --batch, --src-len and --new-tokens with their defaults.
struct Shape {
    batch: usize,
    src_len: usize,
    new_tokens: usize,
}

/// GPU ms per kernel family of a call profiled with timestamps.
fn kernel_ms(p: &Profile) -> Value {
    let mut m = serde_json::Map::new();
    for (family, ms) in &p.kernel_ms {
        m.insert(family.name().to_string(), json!(ms));
    }
    Value::Object(m)
}

fn median(xs: &[f64]) -> f64 {
    percentile(xs, 0.5)
}

/// Linear interpolation between order statistics (numpy's default).
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let k = (v.len() - 1) as f64 * q;
    let (lo, hi) = (k.floor() as usize, k.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (k - lo as f64)
}

fn mean(xs: &[u64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<u64>() as f64 / xs.len() as f64
    }
}

/// Random source ids below `vocab` (at most `max` of them), avoiding the special tokens,
/// each ending with EOS.
fn sources(
    model: &Model,
    a: &BenchArgs,
    shape: &Shape,
    (vocab, max): (usize, Option<usize>),
) -> Result<Vec<Vec<u32>>> {
    let gc = model.generation_config();
    let max = max.unwrap_or(usize::MAX);
    if shape.src_len == 0 || shape.src_len > max {
        bail!(
            "--src-len {} must be between 1 and the source's {max} positions",
            shape.src_len,
        );
    }
    let eos = gc
        .eos_token_id
        .as_ref()
        .and_then(|e| e.first().copied())
        .context("the model has no eos_token_id")?;
    let specials: Vec<u32> = [
        Some(eos),
        gc.pad_token_id,
        gc.bos_token_id,
        gc.decoder_start_token_id,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut state = a.seed ^ 0x5eed;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let vocab = vocab as u64;
    Ok((0..shape.batch)
        .map(|_| {
            let mut s: Vec<u32> = (1..shape.src_len)
                .map(|_| {
                    loop {
                        let t = (3 + next() % (vocab - 3)) as u32;
                        if !specials.contains(&t) {
                            break t;
                        }
                    }
                })
                .collect();
            s.push(eos);
            s
        })
        .collect())
}

/// Random pixel values in [-1, 1] for the image size of `g`.
fn pixels(g: PatchGrid, a: &BenchArgs, batch: usize) -> Pixels {
    let (height, width) = g.image;
    let n = batch * 3 * height * width;
    let mut state = a.seed ^ 0x9e37_79b9;
    let data = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    Pixels {
        data,
        batch,
        channels: 3,
        height,
        width,
    }
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.batch == Some(0) || a.beams == 0 || a.new_tokens == Some(0) || a.iters == 0 {
        bail!("--batch, --beams, --new-tokens and --iters must be at least 1");
    }
    let gpu = open_gpu()?;
    let load = a.dtype.load_options();
    let t0 = Instant::now();
    let (model, what) = match (&a.model, &a.config) {
        (Some(dir), _) => (
            Model::load_with(dir, &gpu, &load)
                .with_context(|| format!("loading {}", dir.display()))?,
            dir.display().to_string(),
        ),
        (None, Some(name)) => {
            let Some((_, json)) = CONFIGS.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = CONFIGS.iter().map(|(n, _)| *n).collect();
                bail!(
                    "unknown --config {name:?}: choose one of {}",
                    names.join(", ")
                );
            };
            (
                Model::random(name, json, &gpu, &load, a.seed)?,
                name.clone(),
            )
        }
        (None, None) => bail!("give --model DIR or --config NAME"),
    };
    gpu.wait_idle()?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let result = match &a.model {
        Some(dir) if model.config().num_mel_bins.is_some() => {
            whisper::bench(a, &gpu, &model, dir, load_ms)?
        }
        _ => text(a, &gpu, &model, &what, load_ms)?,
    };
    let mut out = Stdout::new();
    match a.format {
        BenchFormat::Json => out.line(&result)?,
        BenchFormat::Table => out.text(&table(&result))?,
    }
    out.flush()
}

/// Generation from random token sources, EOS held off.
fn text(a: &BenchArgs, gpu: &Gpu, model: &Model, what: &str, load_ms: f64) -> Result<Value> {
    if !a.audio.is_empty() || a.language.is_some() {
        bail!("--audio and --language are for Whisper models; {what} is not one");
    }
    let shape = Shape {
        batch: a.batch.unwrap_or(1),
        src_len: a.src_len.unwrap_or(32),
        new_tokens: a.new_tokens.unwrap_or(32),
    };
    // Per source: random ids, or random pixels for an image (its length is the patch
    // grid's); a multi-source model reads them all.
    let kinds = model.source_kinds();
    let loaded = kinds
        .iter()
        .map(|kind| match *kind {
            SourceKind::Pixels(g) => Ok(SourceData::Pixels(pixels(g, a, shape.batch))),
            SourceKind::Tokens { vocab, max_len } => Ok(SourceData::Tokens(sources(
                model,
                a,
                &shape,
                (vocab, max_len),
            )?)),
            SourceKind::Features => bail!("{what} reads audio features; bench it with --model"),
        })
        .collect::<Result<Vec<_>>>()?;
    let inputs: Vec<EncoderInput> = loaded.iter().map(SourceData::input).collect();
    let input = match inputs.as_slice() {
        [one] => *one,
        _ => EncoderInput::Sources(&inputs),
    };
    let src_len: Vec<usize> = kinds
        .iter()
        .map(|k| match k {
            SourceKind::Pixels(g) => g.leading + g.rows * g.cols,
            _ => shape.src_len,
        })
        .collect();
    let constraint = a
        .constrain
        .as_deref()
        .map(|pattern| {
            let t = Instant::now();
            let c = model.compile_constraint(pattern)?;
            anyhow::Ok((c, t.elapsed().as_secs_f64() * 1e3))
        })
        .transpose()?;
    let opts = GenerateOptions {
        num_beams: Some(a.beams),
        max_new_tokens: Some(shape.new_tokens),
        min_new_tokens: Some(shape.new_tokens),
        constrain: Some(match &a.constrain {
            Some(p) => Constrain::Regex(p.clone()),
            None => Constrain::Off,
        }),
        ..Default::default()
    };
    for _ in 0..a.warmup {
        model.generate_input(&input, &opts, &mut |_, _| {})?;
    }
    let (mut wall, mut profiles) = (Vec::new(), Vec::new());
    for _ in 0..a.iters {
        let t = Instant::now();
        let (g, p) = model.generate_input_profiled(&input, &opts, false)?;
        wall.push(t.elapsed().as_secs_f64());
        let produced = g
            .sequences
            .iter()
            .map(|h| h[0].len() - 1)
            .min()
            .unwrap_or(0);
        if produced != shape.new_tokens {
            bail!(
                "a call generated {produced} tokens instead of {}",
                shape.new_tokens
            );
        }
        profiles.push(p);
    }
    // One more call with timestamp queries around every dispatch, for the GPU time per
    // kernel family (kept out of the timings above: it splits every dispatch into a pass).
    let timed = if gpu.caps().timestamps {
        Some(model.generate_input_profiled(&input, &opts, true)?.1)
    } else {
        None
    };
    let kernels = timed.as_ref().map_or(Value::Null, kernel_ms);
    // The constraint's cost: compiling it once, and the mask kernel's GPU time per step
    // (its host side, one node lookup per row, is inside host_ms_per_step).
    let constraint = constraint.map_or(Value::Null, |(c, compile_ms)| {
        let per_step = timed.as_ref().map(|p| {
            let ms: f64 = p
                .kernel_ms
                .iter()
                .filter(|(f, _)| f.name() == "token_mask")
                .map(|(_, ms)| ms)
                .sum();
            ms / p.step_ms.len().max(1) as f64
        });
        json!({
            "pattern": c.pattern(),
            "nodes": c.nodes(),
            "compile_ms": compile_ms,
            "gpu_ms_per_step": per_step,
        })
    });

    let all = |f: fn(&Profile) -> &Vec<f64>| -> Vec<f64> {
        profiles.iter().flat_map(|p| f(p).iter().copied()).collect()
    };
    let all_u = |f: fn(&Profile) -> &Vec<u64>| -> Vec<u64> {
        profiles.iter().flat_map(|p| f(p).iter().copied()).collect()
    };
    let steps = all(|p| &p.step_ms);
    let enc: Vec<f64> = profiles.iter().map(|p| p.encoder_ms).collect();
    let adapter = gpu.adapter();
    let step_ms = median(&steps);
    Ok(json!({
        "tokens_per_s": (shape.batch * shape.new_tokens) as f64 / median(&wall),
        "load_ms": load_ms,
        "encoder_ms": median(&enc),
        "step_ms_median": step_ms,
        "roofline": roofline::roofline(gpu, model.step_weight_bytes(), step_ms, timed.as_ref())?,
        "step_ms_p90": percentile(&steps, 0.9),
        "host_ms_per_step": median(&all(|p| &p.host_ms)),
        "dispatches_per_step": mean(&all_u(|p| &p.step_dispatches)),
        "submits_per_step": mean(&all_u(|p| &p.step_submits)),
        "bytes_uploaded_per_step": mean(&all_u(|p| &p.step_bytes_uploaded)),
        "gpu_bytes_allocated": gpu.stats().bytes_allocated,
        "gpu_ms_by_kernel": kernels,
        "constraint": constraint,
        "adapter": format!("{} ({})", adapter.name, adapter.driver),
        "backend": adapter.backend,
        "engine": format!("seqbridge {}", env!("CARGO_PKG_VERSION")),
        "config": what,
        "batch": shape.batch,
        "beams": a.beams,
        "src_len": if src_len.len() == 1 { json!(src_len[0]) } else { json!(src_len) },
        "new_tokens": shape.new_tokens,
        "dtype": a.dtype.name(),
        "warmup": a.warmup,
        "iters": a.iters,
        "seed": a.seed,
    }))
}

/// Two aligned columns, numbers rounded for reading.
fn table(v: &Value) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Value::Object(m) = v {
        for (k, x) in m {
            match x {
                Value::Object(inner) => {
                    for (ik, ix) in inner {
                        rows.push((format!("{k}.{ik}"), cell(ix)));
                    }
                }
                Value::Array(items) => {
                    for (i, ix) in items.iter().enumerate() {
                        rows.push((format!("{k}[{i}]"), cell(ix)));
                    }
                }
                _ => rows.push((k.clone(), cell(x))),
            }
        }
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, x)| format!("{k:<w$}  {x}\n"))
        .collect()
}

fn cell(x: &Value) -> String {
    match x {
        Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&xs), 2.5);
        assert!((percentile(&xs, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn built_in_configs_parse() {
        for (name, json) in CONFIGS {
            let v: Value = serde_json::from_str(json).unwrap();
            assert!(v["model_type"].is_string(), "{name}");
        }
    }
}
