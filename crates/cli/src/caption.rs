//! `seqbridge caption`: captions PNG / JPEG images with a vision encoder-decoder model
//! (ViT or DeiT + GPT-2). All images go through the GPU as one batch: one encoder run,
//! cross K/V projected once, one submit per step. `--align-png` draws where each token
//! looked (`overlay.rs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use seqbridge_models::io::image::decode;
use seqbridge_models::{GenerateOptions, Model, Pixels};
use serde_json::json;

use crate::args::open_gpu;
use crate::output::{Stdout, stats_json, stats_line};
use crate::overlay::Overlay;

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
    /// Write each image with its tokens' cross-attention over the patches, one panel per
    /// token, to FILE (several images: FILE-0.png, FILE-1.png, ...).
    #[arg(long, value_name = "FILE")]
    pub align_png: Option<PathBuf>,
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
    let tok = model.require_tokenizer()?;
    let pixels = model.load_images(&a.images)?;
    let g = model.generate_input(&pixels.input(), &opts, &mut |_, _| {})?;
    let best: Vec<&Vec<u32>> = g.sequences.iter().filter_map(|h| h.first()).collect();
    let captions = best
        .iter()
        .map(|s| tok.decode(s))
        .collect::<seqbridge_models::Result<Vec<_>>>()?;
    if let Some(path) = &a.align_png {
        for (i, seq) in best.iter().enumerate() {
            let out = overlay_path(path, i, a.images.len());
            write_overlay(&model, &pixels, i, &a.images[i], seq, &out)?;
        }
    }
    let mut stdout = Stdout::new();
    match a.format {
        CaptionFormat::Json => {
            let mut v = json!({ "sequences": best, "captions": captions });
            if a.stats {
                v["stats"] = stats_json(&g.stats);
            }
            stdout.line(v)?;
        }
        CaptionFormat::Txt => {
            for c in &captions {
                // One line per image, whatever the caption holds.
                stdout.line(c.replace(['\n', '\r'], " "))?;
            }
            if a.stats {
                stdout.line(stats_line(&g.stats))?;
            }
        }
    }
    stdout.flush()
}

/// FILE for one image, FILE-i.png for several.
pub(crate) fn overlay_path(path: &Path, i: usize, n: usize) -> PathBuf {
    if n == 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map_or("align".into(), |s| s.to_string_lossy());
    path.with_file_name(format!("{stem}-{i}.png"))
}

/// The overlay of image `i` of the batch and its caption `seq` (decoder start first).
fn write_overlay(
    model: &Model,
    pixels: &Pixels,
    i: usize,
    file: &Path,
    seq: &[u32],
    out: &Path,
) -> Result<()> {
    let grid = model
        .patch_grid()
        .context("--align-png needs an image model")?;
    let tok = model.require_tokenizer()?;
    let input = pixels.input().rows(i, i + 1)?;
    let dec_in = &seq[..seq.len().saturating_sub(1).max(1)];
    let layers = model.cross_attentions_input(&input, dec_in)?;
    let last = layers.last().context("a decoder without layers")?;
    let s = grid.leading + grid.rows * grid.cols;
    let t = dec_in.len();
    let heads = last.len() / (t * s).max(1);
    let maps = crate::align::head_mean(last, heads, t, s);
    let tokens: Vec<String> = seq[1..].iter().map(|&id| tok.target_token(id)).collect();
    let n = tokens.len().min(maps.len());
    let image = decode(file)?.to_rgb8();
    Overlay {
        image: &image,
        grid,
        tokens: tokens[..n].to_vec(),
        notes: Vec::new(),
        maps: maps[..n].to_vec(),
    }
    .write_png(out)
}
