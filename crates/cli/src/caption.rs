//! `seqbridge caption`: captions PNG / JPEG images with a vision encoder-decoder model
//! (ViT + GPT-2). All images go through the GPU as one batch: one encoder run, cross K/V
//! projected once, one submit per step.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use seqbridge_models::{GenerateOptions, Model};
use serde_json::json;

use crate::args::open_gpu;
use crate::output::{stats_json, stats_line};

/// Output format of `caption`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CaptionFormat {
    /// One caption per line, in the order of the images.
    #[default]
    #[value(alias = "text")]
    Txt,
    /// `{"sequences": [[…]], "captions": ["…"]}`, one entry per image.
    Json,
}

#[derive(Args, Debug)]
pub struct CaptionArgs {
    /// Image files (PNG or JPEG).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// Model directory (config.json with `encoder` and `decoder`, model.safetensors,
    /// preprocessor_config.json, tokenizer.json).
    #[arg(long, value_name = "DIR", required = true)]
    pub model: PathBuf,
    #[arg(long)]
    pub num_beams: Option<usize>,
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    #[arg(long, value_enum, default_value_t = CaptionFormat::Txt)]
    pub format: CaptionFormat,
    /// Add the call's work counters to the output.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: &CaptionArgs) -> Result<()> {
    let gpu = open_gpu()?;
    let model =
        Model::load(&a.model, &gpu).with_context(|| format!("loading {}", a.model.display()))?;
    let opts = GenerateOptions {
        num_beams: a.num_beams,
        max_new_tokens: a.max_new_tokens,
        ..Default::default()
    };
    let (g, captions) = model.generate_images(&a.images, &opts)?;
    let best: Vec<&Vec<u32>> = g.sequences.iter().filter_map(|h| h.first()).collect();
    match a.format {
        CaptionFormat::Json => {
            let mut v = json!({ "sequences": best, "captions": captions });
            if a.stats {
                v["stats"] = stats_json(&g.stats);
            }
            println!("{v}");
        }
        CaptionFormat::Txt => {
            for c in &captions {
                // One line per image, whatever the caption holds.
                println!("{}", c.replace(['\n', '\r'], " "));
            }
            if a.stats {
                println!("{}", stats_line(&g.stats));
            }
        }
    }
    Ok(())
}
