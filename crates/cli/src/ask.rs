//! `seqbridge ask IMAGE QUESTION…`: answers questions about an image with a model that reads
//! both, a `multi_source` model with one image and one text encoder (default: the shipped
//! shapes model, `assets/shapes-qa`). The questions go through the GPU as one batch beside
//! the image: one run of each encoder, one submit per step. `--align-png` draws where each
//! answer token looked in the image and which question word it read most; `--eval FILE`
//! measures exact match on a held-out set (`heldout/examples.jsonl` beside the model).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use seqbridge_models::encoder::{EncoderInput, PatchGrid, SourceKind};
use seqbridge_models::io::image::decode;
use seqbridge_models::{GenerateOptions, Generation, Model};
use serde_json::{Value, json};

use crate::align::head_mean;
use crate::args::open_gpu;
use crate::output::{Stdout, stats_json, stats_line};
use crate::overlay::Overlay;

/// Output format of `ask`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AskFormat {
    /// One answer per line, in the order of the questions.
    #[default]
    #[value(alias = "text")]
    Txt,
    /// `{"answers": [...], "sequences": [...]}`.
    Json,
}

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The image (PNG or JPEG).
    #[arg(value_name = "IMAGE", required_unless_present = "eval")]
    pub image: Option<PathBuf>,
    /// One or more questions about it (the shipped model: "what colour is the circle ?",
    /// "what shape is red ?", "how many squares ?", "what colour is the shape left of the
    /// triangle ?").
    #[arg(value_name = "QUESTION", required_unless_present = "eval")]
    pub questions: Vec<String>,
    /// Model directory (a `multi_source` config.json with an image and a text encoder);
    /// default: the shipped shapes model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Exact match on a held-out file instead: JSON lines with `image` (relative to the
    /// file), `question`, `answer` and optionally `type`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["image", "align_png"])]
    pub eval: Option<PathBuf>,
    /// Questions per batch with --eval.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch_size: u64,
    #[arg(long)]
    pub num_beams: Option<usize>,
    #[arg(long, value_enum, default_value_t = AskFormat::Txt)]
    pub format: AskFormat,
    /// Add the call's work counters to the output.
    #[arg(long)]
    pub stats: bool,
    /// Write, per question, the image under each answer token's cross-attention (last
    /// decoder layer, mean over heads), labelled with the token and the question word it
    /// attended most (several questions: FILE-0.png, FILE-1.png, ...).
    #[arg(long, value_name = "FILE")]
    pub align_png: Option<PathBuf>,
}

/// The shipped shapes model (`assets/shapes-qa`).
fn default_model_dir() -> PathBuf {
    crate::args::shipped_model_dir("shapes-qa")
}

/// Where the image and the question go among a model's sources.
struct Layout {
    image: usize,
    text: usize,
    grid: PatchGrid,
}

impl Layout {
    fn of(model: &Model, dir: &Path) -> Result<Layout> {
        let kinds = model.source_kinds();
        let image = kinds.iter().enumerate().find_map(|(i, k)| match k {
            SourceKind::Pixels(grid) => Some((i, *grid)),
            _ => None,
        });
        let text = kinds
            .iter()
            .position(|k| matches!(k, SourceKind::Tokens { .. }));
        match (kinds.len(), image, text) {
            (2, Some((image, grid)), Some(text)) => Ok(Layout { image, text, grid }),
            _ => bail!(
                "{} does not read an image and a question: ask needs a multi_source model with \
                 one image and one text encoder, and it has {} source(s)",
                dir.display(),
                kinds.len()
            ),
        }
    }
}

/// One batch: every question beside its image (one file per question).
struct Batch {
    pixels: seqbridge_models::Pixels,
    ids: Vec<Vec<u32>>,
}

impl Batch {
    fn load(model: &Model, images: &[&Path], questions: &[&str]) -> Result<Batch> {
        let tok = model.require_tokenizer()?;
        let ids = questions
            .iter()
            .map(|q| tok.encode(q))
            .collect::<seqbridge_models::Result<Vec<_>>>()?;
        Ok(Batch {
            pixels: model.load_images(images)?,
            ids,
        })
    }

    /// Rows `lo..hi` as the model's sources, in its order.
    fn sources(&self, layout: &Layout, lo: usize, hi: usize) -> Result<[EncoderInput<'_>; 2]> {
        let image = self.pixels.input().rows(lo, hi)?;
        let text = EncoderInput::Tokens(&self.ids[lo..hi]);
        Ok(if layout.image < layout.text {
            [image, text]
        } else {
            [text, image]
        })
    }

    fn answer(
        &self,
        model: &Model,
        layout: &Layout,
        opts: &GenerateOptions,
    ) -> Result<(Generation, Vec<String>)> {
        let sources = self.sources(layout, 0, self.ids.len())?;
        let g = model.generate_input(&EncoderInput::Sources(&sources), opts, &mut |_, _| {})?;
        let tok = model.require_tokenizer()?;
        let answers = g
            .sequences
            .iter()
            .map(|h| h.first().map_or(Ok(String::new()), |s| tok.decode(s)))
            .collect::<seqbridge_models::Result<Vec<_>>>()?;
        Ok((g, answers))
    }
}

pub fn run(a: &AskArgs) -> Result<()> {
    let dir = a.model.clone().unwrap_or_else(default_model_dir);
    let gpu = open_gpu()?;
    let model = Model::load(&dir, &gpu).with_context(|| format!("loading {}", dir.display()))?;
    let layout = Layout::of(&model, &dir)?;
    let opts = GenerateOptions {
        num_beams: a.num_beams,
        ..Default::default()
    };
    if let Some(file) = &a.eval {
        return eval(&model, &layout, &opts, file, a);
    }
    let image = a.image.as_deref().context("give an IMAGE")?;
    let questions: Vec<&str> = a.questions.iter().map(String::as_str).collect();
    let batch = Batch::load(&model, &vec![image; questions.len()], &questions)?;
    let (g, answers) = batch.answer(&model, &layout, &opts)?;
    if let Some(path) = &a.align_png {
        for (i, hyps) in g.sequences.iter().enumerate() {
            let seq = hyps.first().map_or(&[][..], Vec::as_slice);
            let out = crate::caption::overlay_path(path, i, questions.len());
            write_overlay(&model, &layout, &batch, i, image, seq, &out)?;
        }
    }
    let mut stdout = Stdout::new();
    let best: Vec<&Vec<u32>> = g.sequences.iter().filter_map(|h| h.first()).collect();
    match a.format {
        AskFormat::Json => {
            let mut v = json!({ "answers": answers, "sequences": best });
            if a.stats {
                v["stats"] = stats_json(&g.stats);
            }
            stdout.line(v)?;
        }
        AskFormat::Txt => {
            for answer in &answers {
                stdout.line(answer.replace(['\n', '\r'], " "))?;
            }
            if a.stats {
                stdout.line(stats_line(&g.stats))?;
            }
        }
    }
    stdout.flush()
}

/// One held-out line.
#[derive(serde::Deserialize)]
struct Example {
    image: PathBuf,
    question: String,
    answer: String,
    #[serde(default)]
    r#type: Option<String>,
}

fn read_examples(file: &Path) -> Result<Vec<Example>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let mut e: Example = serde_json::from_str(l).with_context(|| {
                format!(
                    "{} line {}: not an object with image, question and answer",
                    file.display(),
                    i + 1
                )
            })?;
            e.image = base.join(&e.image);
            Ok(e)
        })
        .collect()
}

/// Exact match over `file`, per question type and in all.
fn eval(
    model: &Model,
    layout: &Layout,
    opts: &GenerateOptions,
    file: &Path,
    a: &AskArgs,
) -> Result<()> {
    let examples = read_examples(file)?;
    if examples.is_empty() {
        bail!("{}: no examples", file.display());
    }
    // type → (right, total); "all" for every line.
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for chunk in examples.chunks(a.batch_size as usize) {
        let images: Vec<&Path> = chunk.iter().map(|e| e.image.as_path()).collect();
        let questions: Vec<&str> = chunk.iter().map(|e| e.question.as_str()).collect();
        let (_, answers) = Batch::load(model, &images, &questions)?.answer(model, layout, opts)?;
        for (e, got) in chunk.iter().zip(answers) {
            let ok = got.trim() == e.answer.trim();
            for key in ["all", e.r#type.as_deref().unwrap_or("untyped")] {
                let t = tally.entry(key.to_string()).or_default();
                t.0 += usize::from(ok);
                t.1 += 1;
            }
            if !ok {
                wrong.push(json!({"image": e.image, "question": e.question,
                                  "answer": e.answer, "got": got}));
            }
        }
    }
    let exact = |(r, n): (usize, usize)| r as f64 / n.max(1) as f64;
    let mut stdout = Stdout::new();
    match a.format {
        AskFormat::Json => {
            let by_type: BTreeMap<&String, Value> = tally
                .iter()
                .map(|(k, &(r, n))| (k, json!({"right": r, "total": n, "exact": exact((r, n))})))
                .collect();
            stdout.line(json!({ "exact_match": by_type, "wrong": wrong }))?;
        }
        AskFormat::Txt => {
            for (k, &(r, n)) in &tally {
                stdout.line(format_args!(
                    "{k}: {r}/{n} exact ({:.2}%)",
                    100.0 * exact((r, n))
                ))?;
            }
        }
    }
    stdout.flush()
}

/// The overlay of question `i`: one panel per generated token of `seq` (decoder start
/// first), the image part of its attention over the patches, labelled with the token and
/// the question word that took the largest share of its attention on the question.
fn write_overlay(
    model: &Model,
    layout: &Layout,
    batch: &Batch,
    i: usize,
    file: &Path,
    seq: &[u32],
    out: &Path,
) -> Result<()> {
    if seq.len() < 2 {
        bail!("nothing was generated for question {i} to draw");
    }
    let tok = model.require_tokenizer()?;
    let sources = batch.sources(layout, i, i + 1)?;
    let dec_in = &seq[..seq.len() - 1];
    let maps = model.cross_attentions_sources(&EncoderInput::Sources(&sources), dec_in)?;
    let heads = model.config().decoder_attention_heads;
    let t = dec_in.len();
    // Mean over heads of the last layer's [H, T, S] → T rows of S.
    let last = |src: usize| -> Result<Vec<Vec<f32>>> {
        let l = maps[src].last().context("a decoder without layers")?;
        Ok(head_mean(l, heads, t, l.len() / (heads * t).max(1)))
    };
    let image_maps = last(layout.image)?;
    let text_maps = last(layout.text)?;
    let words: Vec<String> = batch.ids[i].iter().map(|&id| tok.token(id)).collect();
    let tokens = seq[1..].iter().map(|&id| tok.target_token(id)).collect();
    // The panels are narrow: the word alone (its share is in the attention maps).
    let notes = text_maps
        .iter()
        .map(|row| {
            let k = row
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (k, &p)| if p > b.1 { (k, p) } else { b })
                .0;
            words.get(k).cloned().unwrap_or_default()
        })
        .collect();
    let image = decode(file)?.to_rgb8();
    Overlay {
        image: &image,
        grid: layout.grid,
        tokens,
        notes,
        maps: image_maps,
    }
    .write_png(out)
}
