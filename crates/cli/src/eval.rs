//! `seqbridge eval`: exact-match accuracy of a model on a `source<TAB>reference` file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use seqbridge_models::GenerateOptions;

use crate::args::{Dtype, load_model, open_gpu};
use crate::output::Stdout;
use crate::translate::{default_model_dir, translate_lines};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Tab-separated file: a source and its reference translation on each line.
    #[arg(long, value_name = "FILE")]
    pub tsv: PathBuf,
    /// Model directory with a tokenizer.json (default: the shipped date normaliser).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub num_beams: Option<usize>,
    /// Sources per GPU batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// How many misses to list.
    #[arg(long, default_value_t = 10)]
    pub show_misses: usize,
    /// How the weights are stored on the GPU.
    #[arg(long, value_enum, default_value_t = Dtype::Auto)]
    pub dtype: Dtype,
}

pub fn run(a: &EvalArgs) -> Result<()> {
    let text =
        std::fs::read_to_string(&a.tsv).with_context(|| format!("reading {}", a.tsv.display()))?;
    let mut sources = Vec::new();
    let mut references = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // Sources may start or end with spaces on purpose: split, never trim.
        let Some((src, reference)) = line.split_once('\t') else {
            bail!(
                "{}: line {} has no tab between source and reference",
                a.tsv.display(),
                i + 1
            );
        };
        sources.push(src.to_string());
        references.push(reference.to_string());
    }
    if sources.is_empty() {
        bail!("{} holds no examples", a.tsv.display());
    }
    let dir = a.model.clone().unwrap_or_else(default_model_dir);
    let gpu = open_gpu()?;
    let model = load_model(&dir, &gpu, a.dtype)?;
    let opts = GenerateOptions {
        num_beams: a.num_beams,
        ..Default::default()
    };
    let done = translate_lines(
        &model,
        &sources,
        &opts,
        a.batch_size.max(1),
        true,
        &mut |_| Ok(()),
    )?;
    let misses: Vec<usize> = (0..sources.len())
        .filter(|&i| done.texts[i] != references[i])
        .collect();
    let mut out = Stdout::new();
    for &i in misses.iter().take(a.show_misses) {
        out.line(format_args!(
            "miss: {:?} -> {:?}, reference {:?}",
            sources[i], done.texts[i], references[i]
        ))?;
    }
    let hits = sources.len() - misses.len();
    out.line(format_args!(
        "exact match: {hits}/{} = {:.2}% ({})",
        sources.len(),
        100.0 * hits as f64 / sources.len() as f64,
        dir.display()
    ))?;
    out.flush()?;
    eprintln!("{} on {}", done.summary(), gpu.adapter().name);
    Ok(())
}
