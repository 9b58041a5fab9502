//! `seqbridge transcribe`: audio files in, text out, with a Whisper model (a Hugging Face or
//! CTranslate2 directory). Short-form only: each file's first 30 seconds, without
//! timestamps, as transformers' `generate` transcribes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use seqbridge_models::encoder::EncoderInput;
use seqbridge_models::io::audio::load_audio;
use seqbridge_models::io::mel::{MelConfig, MelExtractor};
use seqbridge_models::{GenerateOptions, Model};

use crate::args::open_gpu;

/// Output format of `transcribe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TranscriptFormat {
    /// One line per file: the text.
    #[default]
    Txt,
    /// One JSON object: per file its name, text and token ids.
    Json,
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio files (WAV, FLAC, MP3, OGG; resampled to 16 kHz mono).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Whisper model directory (Hugging Face, or CTranslate2 with tokenizer.json; default:
    /// whisper-tiny.en-ct2 in $SEQBRIDGE_WHISPER_DIR or ~/.cache/seqbridge/whisper).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Spoken language (e.g. en, fr); required by multilingual models.
    #[arg(long, value_name = "xx")]
    pub language: Option<String>,
    #[arg(long)]
    pub num_beams: Option<usize>,
    #[arg(long, value_enum, default_value_t = TranscriptFormat::Txt)]
    pub format: TranscriptFormat,
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

/// The feature extractor of the Whisper model loaded from `dir`: its
/// preprocessor_config.json when there is one (Hugging Face), else Whisper's defaults for
/// the model's mel bins (CTranslate2 directories have none).
pub fn mel_extractor(dir: &Path, model: &Model) -> Result<MelExtractor> {
    let n_mels = model
        .config()
        .num_mel_bins
        .with_context(|| format!("{} is not a Whisper model", dir.display()))?;
    let preprocessor = dir.join("preprocessor_config.json");
    let mels = if preprocessor.exists() {
        MelConfig::from_preprocessor_config(&preprocessor)?
    } else {
        MelConfig::whisper(n_mels)
    };
    Ok(MelExtractor::new(&mels)?)
}

pub fn run(a: &TranscribeArgs) -> Result<()> {
    let dir = a.model.clone().unwrap_or_else(default_model_dir);
    let gpu = open_gpu()?;
    let model = Model::load(&dir, &gpu).with_context(|| {
        format!(
            "loading {} (fetch Whisper weights with `python3 tools/whisper/fetch_weights.py`)",
            dir.display()
        )
    })?;
    let tok = model.require_tokenizer()?;
    let mel = mel_extractor(&dir, &model)?;
    let opts = GenerateOptions {
        num_beams: a.num_beams,
        language: a.language.clone(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(a.files.len());
    for file in &a.files {
        let samples = load_audio(file).with_context(|| format!("reading {}", file.display()))?;
        let f = mel.short_form(&samples)?;
        let input = EncoderInput::Features {
            data: &f.data,
            batch: 1,
            n_mels: f.n_mels,
            frames: f.n_frames,
        };
        let g = model
            .generate_input(&input, &opts, &mut |_, _| {})
            .with_context(|| format!("transcribing {}", file.display()))?;
        let ids = g.sequences[0][0].clone();
        let text = tok.decode(&ids)?.trim().to_string();
        match a.format {
            TranscriptFormat::Txt => println!("{text}"),
            TranscriptFormat::Json => out.push(serde_json::json!({
                "file": file.display().to_string(),
                "text": text,
                "ids": ids,
            })),
        }
    }
    if a.format == TranscriptFormat::Json {
        println!("{}", serde_json::json!({ "transcripts": out }));
    }
    Ok(())
}
