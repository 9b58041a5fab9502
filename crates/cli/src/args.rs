//! Arguments shared by the subcommands.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use seqbridge_gpu::{Gpu, GpuOptions};
use seqbridge_models::Model;

/// The GPU: `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER` when set, else native APIs before GL
/// ([`Gpu::open`]).
pub fn open_gpu() -> Result<Gpu> {
    Gpu::open(&GpuOptions::from_env()?).context("no usable GPU adapter")
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// A comma-separated list of token ids, e.g. `5,17,99,0`. Ids are parsed as `u32`, so an
/// id of 2^32 or more is an error, never wrapped.
pub fn parse_ids(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<u32>()
                .map_err(|_| format!("invalid token id {x:?} (expected e.g. 5,17,99,0)"))
        })
        .collect()
}

/// One list of token ids as a single option value (`--forced-eos-token-id 0,2`).
///
/// clap's derive reads `Option<Vec<T>>` as "an option with several values of `T`" and then
/// asks for `T` at access time; a parser that returns `Vec<u32>` for such a field panics
/// ("Mismatch between definition and access"). Wrapping the list gives clap one value type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdList(pub Vec<u32>);

/// [`parse_ids`] into an [`IdList`].
pub fn parse_id_list(s: &str) -> Result<IdList, String> {
    parse_ids(s).map(IdList)
}

/// A float option that must be finite (`NaN`, `inf` are refused: they would silently turn
/// every score into NaN).
pub fn parse_finite(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !x.is_finite() {
        return Err(format!("{s:?} is not a finite number"));
    }
    Ok(x)
}

/// The model and the sources.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Model directory (config.json, generation_config.json, model.safetensors, and a tokenizer:
    /// tokenizer.json or SentencePiece files).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Source token ids, comma-separated; repeat once per source.
    #[arg(long = "input-ids", value_name = "IDS", value_parser = parse_ids)]
    pub input_ids: Vec<Vec<u32>>,
    /// Source text (needs a tokenizer: tokenizer.json, or opus-mt / T5 / mBART SentencePiece
    /// files); repeat once per source.
    #[arg(long, value_name = "TEXT", conflicts_with = "input_ids")]
    pub text: Vec<String>,
    /// Add the call's work counters to the output.
    #[arg(long)]
    pub stats: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Model> {
        let gpu = open_gpu()?;
        Model::load(&self.model, &gpu).with_context(|| format!("loading {}", self.model.display()))
    }

    /// Source ids: given, or tokenized from --text.
    pub fn sources(&self, model: &Model) -> Result<Vec<Vec<u32>>> {
        if !self.text.is_empty() {
            let tok = model.require_tokenizer()?;
            return self.text.iter().map(|t| Ok(tok.encode(t)?)).collect();
        }
        if self.input_ids.is_empty() {
            bail!("give the sources with --input-ids IDS or --text TEXT");
        }
        Ok(self.input_ids.clone())
    }
}
