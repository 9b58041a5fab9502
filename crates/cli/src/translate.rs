//! `seqbridge translate`: text in, text out, with the shipped model by default; a file mode
//! that batches lines on the GPU; and the cross-attention alignment as a grid or a heatmap.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seqbridge_models::{GenerateOptions, Model};

use crate::align::{Alignment, render_grid, write_png};
use crate::args::{ConstrainArgs, Dtype, load_model, open_gpu};
use crate::dates;
use crate::output::{Lines, Stdout};

#[derive(Args, Debug)]
pub struct TranslateArgs {
    /// Texts to translate, one source each (or use --input).
    #[arg(value_name = "TEXT", conflicts_with = "input")]
    pub texts: Vec<String>,
    /// Model directory with a tokenizer (tokenizer.json, or opus-mt / T5 / mBART SentencePiece
    /// files; default: the shipped date normaliser).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Read sources from FILE, one a line ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write translations to FILE, one a line, in input order (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub num_beams: Option<usize>,
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Sources per GPU batch in file mode.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Also print the cross-attention alignment of each source as a grid.
    #[arg(long)]
    pub align: bool,
    /// Decoder layer of the alignment (0-based; default: the last).
    #[arg(long, value_name = "L")]
    pub align_layer: Option<usize>,
    /// Write the alignment of the (single) source as a PNG heatmap.
    #[arg(long, value_name = "FILE")]
    pub align_png: Option<PathBuf>,
    /// How the weights are stored on the GPU.
    #[arg(long, value_enum, default_value_t = Dtype::Auto)]
    pub dtype: Dtype,
    /// The shipped date normaliser decodes under its ISO 8601 grammar (constraint.regex in
    /// its directory) unless told otherwise.
    #[command(flatten)]
    pub constrain: ConstrainArgs,
    /// Date model: read ambiguous numeric dates month-first (03/04/2021 -> 2021-03-04);
    /// the default is day-first (-> 2021-04-03). A date with a field > 12 reads the only way
    /// it can either way.
    #[arg(long)]
    pub month_first: bool,
}

/// The shipped date model (`assets/date-normalizer`).
pub fn default_model_dir() -> PathBuf {
    crate::args::shipped_model_dir("date-normalizer")
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    reader
        .lines()
        .enumerate()
        .map(|(i, l)| {
            l.with_context(|| format!("{}: line {} is not UTF-8 text", path.display(), i + 1))
        })
        .collect()
}

pub fn run(a: &TranslateArgs) -> Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    // Opened first: an unwritable --output fails before any work, not after it.
    let mut out = Lines::open(a.output.as_deref())?;
    match translate(a, &mut out) {
        Ok(done) => {
            out.finish()?;
            done()
        }
        Err(e) => Err(out.explain(e)),
    }
}

/// Translates into `out`; returns what is left to do once `out` is complete (the summary
/// and the alignments, which go to stderr and stdout).
fn translate<'a>(
    a: &'a TranslateArgs,
    out: &mut Lines,
) -> Result<impl FnOnce() -> Result<()> + use<'a>> {
    let lines = match &a.input {
        Some(path) => read_lines(path)?,
        None if !a.texts.is_empty() => a.texts.clone(),
        None => bail!("give the text to translate, or --input FILE"),
    };
    if a.align_png.is_some() && lines.len() != 1 {
        bail!("--align-png draws one source; {} were given", lines.len());
    }
    let dir = a.model.clone().unwrap_or_else(default_model_dir);
    let gpu = open_gpu()?;
    let model = load_model(&dir, &gpu, a.dtype)?;
    let opts = GenerateOptions {
        num_beams: a.num_beams,
        max_new_tokens: a.max_new_tokens,
        constrain: a.constrain.option(),
        ..Default::default()
    };
    let sources = if a.month_first {
        dates::month_first(model.require_tokenizer()?, &dir, &lines)?
    } else {
        lines.clone()
    };
    let progress = a.input.is_some();
    let done = translate_lines(&model, &sources, &opts, a.batch_size, progress, &mut |t| {
        out.line(t)
    })?;
    Ok(move || {
        for line in dates::no_date_lines(&lines, &done.texts) {
            eprintln!("{line}");
        }
        if progress {
            eprintln!("{} on {}", done.summary(), gpu.adapter().name);
        }
        if !a.align && a.align_png.is_none() {
            return Ok(());
        }
        let mut stdout = Stdout::new();
        for (line, ids) in done.sources.iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let al = alignment(&model, ids, &done.sequences[line], a.align_layer)?;
            if a.align {
                stdout.line(&lines[line])?;
                stdout.text(&render_grid(&al)?)?;
            }
            if let Some(path) = &a.align_png {
                write_png(&al, path)?;
                eprintln!("wrote {}", path.display());
            }
        }
        stdout.flush()
    })
}

/// Translations of a list of lines, in input order.
pub struct Translations {
    /// One per input line; an empty (or blank) line gives an empty translation.
    pub texts: Vec<String>,
    /// Source ids and best sequence of each line (empty for blank lines).
    pub sources: Vec<Vec<u32>>,
    pub sequences: Vec<Vec<u32>>,
    pub non_empty: usize,
    pub new_tokens: usize,
    pub secs: f64,
}

impl Translations {
    pub fn summary(&self) -> String {
        let secs = self.secs.max(1e-9);
        format!(
            "translated {} lines ({} non-empty, {} tokens) in {:.2} s: {:.1} lines/s, {:.1} tokens/s",
            self.texts.len(),
            self.non_empty,
            self.new_tokens,
            self.secs,
            self.non_empty as f64 / secs,
            self.new_tokens as f64 / secs
        )
    }
}

/// Lines grouped by length within windows of this many batches: enough for batches of
/// similar lengths, small enough that results reach the output as the run goes.
const WINDOW_BATCHES: usize = 8;

/// Tokenizes every line, checks them all before any GPU work (a bad line is named by its
/// number), then translates the non-blank ones in GPU batches of similar lengths, window
/// by window in input order, and hands each translation to `emit` in input order as soon as
/// every line before it is done.
pub fn translate_lines(
    model: &Model,
    lines: &[String],
    opts: &GenerateOptions,
    batch_size: usize,
    progress: bool,
    emit: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Translations> {
    let tok = model.require_tokenizer()?;
    let (max_pos, key) = (
        model.config().max_source_positions.unwrap_or(usize::MAX),
        model.config().positions_key,
    );
    let mut sources: Vec<Vec<u32>> = vec![Vec::new(); lines.len()];
    let mut jobs: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ids = tok.encode(line)?;
        if ids.len() > max_pos {
            bail!(
                "line {}: {} tokens, more than the model's {key} {max_pos}",
                i + 1,
                ids.len()
            );
        }
        sources[i] = ids;
        jobs.push(i);
    }

    let bar = if progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(lines.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} lines {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.inc((lines.len() - jobs.len()) as u64);
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut texts = vec![String::new(); lines.len()];
    // Blank lines are done from the start: they translate to empty lines.
    let mut done: Vec<bool> = lines.iter().map(|l| l.trim().is_empty()).collect();
    let mut emitted = 0;
    let mut sequences = vec![Vec::new(); lines.len()];
    let mut new_tokens = 0usize;
    let window = batch_size.saturating_mul(WINDOW_BATCHES);
    let mut flush = |done: &[bool], texts: &[String], emitted: &mut usize| -> Result<()> {
        while *emitted < done.len() && done[*emitted] {
            emit(&texts[*emitted])?;
            *emitted += 1;
        }
        Ok(())
    };
    flush(&done, &texts, &mut emitted)?;
    for chunk in jobs.chunks(window) {
        // Similar lengths together waste less padding; the output keeps the input order.
        let mut order = chunk.to_vec();
        order.sort_by_key(|&i| std::cmp::Reverse(sources[i].len()));
        for batch in order.chunks(batch_size) {
            let srcs: Vec<Vec<u32>> = batch.iter().map(|&i| sources[i].clone()).collect();
            let g = model
                .generate(&srcs, opts)
                .map_err(|e| batch_error(e, batch, batch_size))?;
            for (&line, hyps) in batch.iter().zip(&g.sequences) {
                let seq = hyps.first().cloned().unwrap_or_default();
                new_tokens += seq.len().saturating_sub(1);
                // One output line per input line, whatever the model emits.
                texts[line] = tok.decode(&seq)?.replace(['\n', '\r'], " ");
                sequences[line] = seq;
                done[line] = true;
            }
            bar.inc(batch.len() as u64);
        }
        flush(&done, &texts, &mut emitted)?;
    }
    bar.finish_and_clear();
    Ok(Translations {
        texts,
        sources,
        sequences,
        non_empty: jobs.len(),
        new_tokens,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The error of a failed batch, naming its first line; a batch too large for one GPU
/// binding says which option makes it smaller.
fn batch_error(e: seqbridge_models::Error, batch: &[usize], batch_size: usize) -> anyhow::Error {
    let first = batch.iter().min().map_or(0, |&i| i + 1);
    let too_large = matches!(
        e,
        seqbridge_models::Error::Gpu(seqbridge_gpu::Error::TooLarge { .. })
    );
    let e = anyhow::Error::new(e).context(format!("translating line {first}"));
    if too_large && batch_size > 1 {
        e.context(format!(
            "a batch of {} lines does not fit this adapter; try a smaller --batch-size (now {batch_size})",
            batch.len()
        ))
    } else {
        e
    }
}

/// The alignment of one translation: the cross-attention of a teacher-forced pass over the
/// generated sequence, averaged over the heads of `layer`. Row t is the step that wrote
/// target token t + 1, so each row is labelled with the token it produced.
fn alignment(
    model: &Model,
    source: &[u32],
    sequence: &[u32],
    layer: Option<usize>,
) -> Result<Alignment> {
    let cfg = model.config();
    let Some(last) = cfg.decoder_layers.checked_sub(1) else {
        bail!("the model has no decoder layer to align");
    };
    let layer = layer.unwrap_or(last);
    if layer > last {
        bail!(
            "--align-layer {layer}: the model has {} decoder layers (0..={last})",
            cfg.decoder_layers,
        );
    }
    if sequence.len() < 2 {
        bail!("nothing was generated to align");
    }
    let inputs = &sequence[..sequence.len() - 1];
    let layers = model.cross_attentions(source, inputs)?;
    let (heads, t, s) = (cfg.decoder_attention_heads, inputs.len(), source.len());
    let probs = crate::align::head_mean(&layers[layer], heads, t, s);
    let tok = model.require_tokenizer()?;
    Ok(Alignment {
        source: source.iter().map(|&id| tok.token(id)).collect(),
        target: sequence[1..]
            .iter()
            .map(|&id| tok.target_token(id))
            .collect(),
        probs,
        layer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch too large for one binding suggests a smaller --batch-size; other errors do not.
    #[test]
    fn a_batch_too_large_suggests_a_smaller_batch_size() {
        let too_large = seqbridge_models::Error::Gpu(seqbridge_gpu::Error::TooLarge {
            what: "tensor [310000, 128] f32".into(),
            needed: 158_720_000,
            limit: 134_217_728,
        });
        let e = format!("{:#}", batch_error(too_large, &[7, 3, 5], 5000));
        assert!(
            e.contains("try a smaller --batch-size (now 5000)") && e.contains("translating line 4"),
            "{e}"
        );
        let other = seqbridge_models::Error::Input("source 0 is empty".into());
        let e = format!("{:#}", batch_error(other, &[0], 5000));
        assert!(!e.contains("--batch-size"), "{e}");
    }
}
