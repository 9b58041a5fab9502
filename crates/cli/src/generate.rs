//! `seqbridge generate`: greedy or beam search from token ids or text, or from the sources
//! of one example of a multi-source model (`--source`).

use anyhow::{Result, bail};
use clap::Args;
use seqbridge_models::{EarlyStopping, GenerateOptions};
use serde_json::json;

use crate::args::{
    ConstrainArgs, Format, IdList, ModelArgs, parse_finite, parse_id_list, parse_ids,
};
use crate::output::{Stdout, ids_line, stats_json, stats_line};
use crate::sources::{Source, parse_source};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub common: ModelArgs,
    /// One source of a multi-source model, in the order of its encoders: text:TEXT,
    /// ids:IDS or image:FILE; repeat once per source.
    #[arg(long = "source", value_name = "KIND:VALUE", value_parser = parse_source,
          conflicts_with_all = ["input_ids", "text"])]
    pub source: Vec<Source>,
    /// With --source: draw each generated token's cross-attention over every source's
    /// positions (last layer, mean over heads), with each source's share, to a PNG.
    #[arg(long, value_name = "FILE")]
    pub align_png: Option<std::path::PathBuf>,
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    #[arg(long)]
    pub max_length: Option<usize>,
    #[arg(long)]
    pub min_length: Option<usize>,
    #[arg(long)]
    pub num_beams: Option<usize>,
    #[arg(long)]
    pub num_return_sequences: Option<usize>,
    #[arg(long, value_parser = parse_finite)]
    pub length_penalty: Option<f64>,
    /// true, false or never.
    #[arg(long, value_parser = parse_early_stopping)]
    pub early_stopping: Option<EarlyStopping>,
    #[arg(long)]
    pub no_repeat_ngram_size: Option<usize>,
    #[arg(long, value_parser = parse_finite)]
    pub repetition_penalty: Option<f64>,
    /// A banned token sequence, comma-separated; repeat for more.
    #[arg(long = "bad-words-ids", value_parser = parse_ids)]
    pub bad_words_ids: Vec<Vec<u32>>,
    #[arg(long)]
    pub forced_bos_token_id: Option<u32>,
    /// Token ids forced at the last step, comma-separated.
    #[arg(long, value_parser = parse_id_list)]
    pub forced_eos_token_id: Option<IdList>,
    #[command(flatten)]
    pub constrain: ConstrainArgs,
}

fn parse_early_stopping(s: &str) -> Result<EarlyStopping, String> {
    match s {
        "true" => Ok(EarlyStopping::True),
        "false" => Ok(EarlyStopping::False),
        "never" => Ok(EarlyStopping::Never),
        _ => Err(format!("{s:?} is not one of true, false, never")),
    }
}

impl GenerateArgs {
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            num_beams: self.num_beams,
            max_new_tokens: self.max_new_tokens,
            max_length: self.max_length,
            min_length: self.min_length,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            num_return_sequences: self.num_return_sequences,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            repetition_penalty: self.repetition_penalty,
            bad_words_ids: (!self.bad_words_ids.is_empty()).then(|| self.bad_words_ids.clone()),
            forced_bos_token_id: self.forced_bos_token_id,
            forced_eos_token_id: self.forced_eos_token_id.clone().map(|l| l.0),
            constrain: self.constrain.option(),
            ..Default::default()
        }
    }
}

pub fn run(a: &GenerateArgs) -> Result<()> {
    if a.align_png.is_some() && a.source.is_empty() {
        bail!("--align-png draws the sources of --source; translate --align-png aligns text");
    }
    let model = a.common.load()?;
    let out = if a.source.is_empty() {
        let sources = a.common.sources(&model)?;
        model.generate(&sources, &a.options())?
    } else {
        let loaded = crate::sources::load(&model, &a.source)?;
        let inputs: Vec<_> = loaded.iter().map(|l| l.input()).collect();
        let input = seqbridge_models::encoder::EncoderInput::Sources(&inputs);
        let out = model.generate_input(&input, &a.options(), &mut |_, _| {})?;
        if let Some(path) = &a.align_png {
            let best = out.sequences.first().and_then(|h| h.first());
            let a = crate::sources::alignment(&model, &loaded, best.map_or(&[], Vec::as_slice))?;
            crate::align::write_png(&a, path)?;
        }
        out
    };
    let best: Vec<&Vec<u32>> = out.sequences.iter().filter_map(|h| h.first()).collect();
    let has_text = a.source.iter().any(|s| matches!(s, Source::Text(_)));
    let texts = if a.common.text.is_empty() && !has_text {
        None
    } else {
        let tok = model.require_tokenizer()?;
        Some(
            best.iter()
                .map(|s| tok.decode(s))
                .collect::<seqbridge_models::Result<Vec<_>>>()?,
        )
    };
    let mut stdout = Stdout::new();
    match a.common.format {
        Format::Json => {
            let mut v = json!({ "sequences": best });
            if out.sequences.iter().any(|h| h.len() > 1) {
                v["all_sequences"] = json!(out.sequences);
            }
            if let Some(s) = &out.scores {
                v["sequences_scores"] = json!(s);
            }
            if let Some(t) = &texts {
                v["text"] = json!(t);
            }
            if a.common.stats {
                v["stats"] = stats_json(&out.stats);
            }
            stdout.line(v)?;
        }
        Format::Text => {
            for (i, hyps) in out.sequences.iter().enumerate() {
                for (j, h) in hyps.iter().enumerate() {
                    let score = out
                        .scores
                        .as_ref()
                        .map(|s| format!(" (score {:.4})", s[i][j]))
                        .unwrap_or_default();
                    let beam = if hyps.len() > 1 {
                        format!(" #{j}")
                    } else {
                        String::new()
                    };
                    stdout.line(format_args!("source {i}{beam}: {}{score}", ids_line(h)))?;
                }
                if let Some(t) = &texts {
                    stdout.line(format_args!("text {i}: {}", t[i]))?;
                }
            }
            if a.common.stats {
                stdout.line(stats_line(&out.stats))?;
            }
        }
    }
    stdout.flush()
}
