//! `seqbridge transcribe`: audio files in, text, segments and word timestamps out, with a
//! Whisper model (a Hugging Face or CTranslate2 directory), as transformers' Whisper
//! `generate` transcribes them: one 30 s window for short clips, timestamp-driven windows
//! over 30 s; short files in batches. Output goes to stdout, or whole to `--output` once
//! every file is done.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use seqbridge_models::io::audio::load_audio;
use seqbridge_models::{GenerateOptions, Model, TranscribeOptions, Transcript};
use serde_json::{Value, json};

use crate::args::open_gpu;
use crate::output::Lines;
use crate::subtitles::{Cue, srt, vtt};

/// Output format of `transcribe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TranscriptFormat {
    /// One line per file: the text.
    #[default]
    Txt,
    /// One JSON object: `{"results": [{file, language, text, tokens, segments, words?}]}`.
    Json,
    /// SubRip subtitles: a cue per segment (per word with --word-timestamps).
    Srt,
    /// WebVTT subtitles: a cue per segment (per word with --word-timestamps).
    Vtt,
}

/// Whisper's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Task {
    #[default]
    Transcribe,
    /// Into English (multilingual models).
    Translate,
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio files (WAV, FLAC, MP3, OGG; resampled to 16 kHz mono).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Whisper model directory: Hugging Face (config.json, model.safetensors, tokenizer.json)
    /// or CTranslate2 (model.bin, config.json, tokenizer.json or vocabulary.*). Default:
    /// whisper-tiny.en-ct2 in $SEQBRIDGE_WHISPER_DIR or ~/.cache/seqbridge/whisper.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Spoken language (e.g. en, fr), or auto to detect it (the default of multilingual
    /// models).
    #[arg(long, value_name = "xx|auto")]
    pub language: Option<String>,
    #[arg(long, value_enum, default_value_t = Task::Transcribe)]
    pub task: Task,
    #[arg(long)]
    pub num_beams: Option<usize>,
    /// Decode timestamp tokens and split the text into timed segments (always on over 30 s).
    #[arg(long)]
    pub timestamps: bool,
    /// Word timestamps from the alignment heads' cross-attention.
    #[arg(long)]
    pub word_timestamps: bool,
    #[arg(long, value_enum, default_value_t = TranscriptFormat::Txt)]
    pub format: TranscriptFormat,
    /// Write the output to FILE (whole, once every file is transcribed) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Clips up to 30 s decoded together: one encoder pass and one search per batch.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch_size: usize,
}

/// `$SEQBRIDGE_WHISPER_DIR/whisper-tiny.en-ct2`, else under `~/.cache/seqbridge/whisper`.
fn default_model_dir() -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_WHISPER_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/seqbridge/whisper"))
        })
        .unwrap_or_default();
    root.join("whisper-tiny.en-ct2")
}

/// The model directory: `--model`, else the default one when it exists, else an error that
/// says what a model directory is and how to get one.
fn model_dir(a: &TranscribeArgs) -> Result<PathBuf> {
    if let Some(dir) = &a.model {
        return Ok(dir.clone());
    }
    let dir = default_model_dir();
    if !dir.is_dir() {
        bail!(
            "no --model given and the default {} does not exist. `seqbridge transcribe` reads a \
             Whisper model directory: Hugging Face (config.json, generation_config.json, \
             model.safetensors, tokenizer.json) or CTranslate2 as faster-whisper ships it \
             (model.bin, config.json, tokenizer.json or vocabulary.*). \
             `python3 tools/whisper/fetch_weights.py` downloads whisper-tiny.en and whisper-base \
             there",
            dir.display()
        );
    }
    Ok(dir)
}

/// The JSON object of one file.
fn result_json(file: &Path, t: &Transcript) -> Value {
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut v = json!({
        "file": file.display().to_string(),
        "language": t.language,
        "text": t.text,
        "tokens": t.tokens,
        "segments": t.segments.iter().map(|s| json!({
            "start": r3(s.start), "end": r3(s.end), "text": s.text,
            "no_speech_prob": s.no_speech_prob.map(|p| (f64::from(p) * 1e6).round() / 1e6),
        })).collect::<Vec<_>>(),
    });
    if let Some(words) = &t.words {
        v["words"] = words
            .iter()
            .map(|w| json!({"word": w.word, "start": r3(f64::from(w.start)), "end": r3(f64::from(w.end))}))
            .collect();
    }
    v
}

/// Subtitle cues of one file: its words with word timestamps, else its segments.
fn cues(t: &Transcript) -> Vec<Cue> {
    match &t.words {
        Some(words) => words
            .iter()
            .map(|w| Cue {
                start: f64::from(w.start),
                end: f64::from(w.end),
                text: w.word.trim().to_string(),
            })
            .collect(),
        None => t
            .segments
            .iter()
            .map(|s| Cue {
                start: s.start,
                end: s.end,
                text: s.text.clone(),
            })
            .collect(),
    }
}

pub fn run(a: &TranscribeArgs) -> Result<()> {
    if matches!(a.format, TranscriptFormat::Srt | TranscriptFormat::Vtt) && a.files.len() > 1 {
        bail!(
            "--format srt and vtt take one FILE at a time ({} given)",
            a.files.len()
        );
    }
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    // Opened before any work: an unwritable --output fails at once, and a failed run leaves
    // the old file as it was.
    let mut out = Lines::open(a.output.as_deref())?;
    let dir = model_dir(a)?;
    let gpu = open_gpu()?;
    let model = Model::load(&dir, &gpu).with_context(|| {
        format!(
            "loading {} (fetch Whisper weights with `python3 tools/whisper/fetch_weights.py`)",
            dir.display()
        )
    })?;
    model.require_tokenizer()?;
    let mel = model.mel_extractor()?;
    let opts = TranscribeOptions {
        generate: GenerateOptions {
            num_beams: a.num_beams,
            language: a.language.clone().filter(|l| l != "auto"),
            task: (a.task == Task::Translate).then(|| "translate".to_string()),
            timestamps: a.timestamps.then_some(true),
            ..Default::default()
        },
        word_timestamps: a.word_timestamps,
    };
    let mut results = Vec::with_capacity(a.files.len());
    for files in a.files.chunks(a.batch_size) {
        let clips = files
            .iter()
            .map(|f| load_audio(f).with_context(|| format!("reading {}", f.display())))
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
        let transcripts = model
            .transcribe_batch(&views, &mel, &opts)
            .with_context(|| {
                let names: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
                format!("transcribing {}", names.join(", "))
            })?;
        results.extend(files.iter().zip(transcripts));
    }
    let text = match a.format {
        TranscriptFormat::Txt => results
            .iter()
            .map(|(_, t)| format!("{}\n", t.text))
            .collect(),
        TranscriptFormat::Json => {
            let list: Vec<Value> = results.iter().map(|(f, t)| result_json(f, t)).collect();
            format!("{}\n", json!({ "results": list }))
        }
        TranscriptFormat::Srt => srt(&cues(&results[0].1)),
        TranscriptFormat::Vtt => vtt(&cues(&results[0].1)),
    };
    out.line(text.strip_suffix('\n').unwrap_or(&text))?;
    out.finish()
}
