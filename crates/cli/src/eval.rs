//! `seqbridge eval`: exact-match accuracy of a model on a `source<TAB>reference` file, and
//! per category when the file has a third column (`source<TAB>reference<TAB>category`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use seqbridge_models::GenerateOptions;

use crate::args::{Dtype, load_model, open_gpu};
use crate::output::Stdout;
use crate::translate::{default_model_dir, translate_lines};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Tab-separated file: a source and its reference translation on each line, and
    /// optionally a category (accuracy is then reported per category too). An empty
    /// reference means an empty output (the date model's "no date").
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
    let mut categories = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // Sources may start or end with spaces on purpose: split, never trim.
        let mut cols = line.split('\t');
        let (Some(src), Some(reference), category, None) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            bail!(
                "{}: line {} is not source<TAB>reference[<TAB>category]",
                a.tsv.display(),
                i + 1
            );
        };
        sources.push(src.to_string());
        references.push(reference.to_string());
        categories.push(category.map(str::to_string));
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
    for (category, hits, total) in per_category(&categories, &misses) {
        out.line(format_args!(
            "  {category}: {hits}/{total} = {:.2}%",
            100.0 * hits as f64 / total as f64
        ))?;
    }
    out.flush()?;
    eprintln!("{} on {}", done.summary(), gpu.adapter().name);
    Ok(())
}

/// (category, hits, total) in order of first appearance; none when no line has a category
/// (a line without one counts as "-").
fn per_category(categories: &[Option<String>], misses: &[usize]) -> Vec<(String, usize, usize)> {
    if categories.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut rows: Vec<(String, usize, usize)> = Vec::new();
    for (i, c) in categories.iter().enumerate() {
        let c = c.as_deref().unwrap_or("-");
        let at = match rows.iter().position(|r| r.0 == c) {
            Some(at) => at,
            None => {
                rows.push((c.to_string(), 0, 0));
                rows.len() - 1
            }
        };
        rows[at].2 += 1;
        if misses.binary_search(&i).is_err() {
            rows[at].1 += 1;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_category_counts_hits_in_order_of_first_appearance() {
        let cats: Vec<Option<String>> = ["numeric", "no-date", "numeric", "numeric"]
            .iter()
            .map(|c| Some(c.to_string()))
            .collect();
        assert_eq!(
            per_category(&cats, &[2]),
            [("numeric".to_string(), 2, 3), ("no-date".to_string(), 1, 1)]
        );
        assert!(per_category(&[None, None], &[0]).is_empty());
    }
}
