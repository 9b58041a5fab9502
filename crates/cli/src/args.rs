//! Arguments shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use seqbridge_gpu::{Gpu, GpuOptions};
use seqbridge_models::{Constrain, LoadOptions, Model, Quantization, WeightDtype};

/// The GPU: `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER` when set, else native APIs before GL
/// ([`Gpu::open`]).
/// A model shipped in assets/ (`assets/NAME`): under the working directory, else in the
/// source tree this binary was built from.
pub fn shipped_model_dir(name: &str) -> PathBuf {
    let here = Path::new("assets").join(name);
    if here.join("config.json").exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(name)
}

pub fn open_gpu() -> Result<Gpu> {
    Gpu::open(&GpuOptions::from_env()?).context("no usable GPU adapter")
}

/// How a model's weights are stored on the GPU (`--dtype`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// As the checkpoint stores them (f16 stays f16; f32 and bf16 become f32).
    #[default]
    Auto,
    F32,
    F16,
    /// Linear weights as int8 with one scale per output row; embeddings in f16.
    Int8,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Auto => "auto",
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Int8 => "int8",
        }
    }

    pub fn load_options(self) -> LoadOptions {
        let (weight_dtype, quantization) = match self {
            Dtype::Auto => (WeightDtype::Auto, Quantization::None),
            Dtype::F32 => (WeightDtype::F32, Quantization::None),
            Dtype::F16 => (WeightDtype::F16, Quantization::None),
            Dtype::Int8 => (WeightDtype::F16, Quantization::Int8),
        };
        LoadOptions {
            weight_dtype,
            quantization,
            ..Default::default()
        }
    }
}

/// Loads the model in `dir` on `gpu` with the weights stored as `dtype` says.
pub fn load_model(dir: &Path, gpu: &Gpu, dtype: Dtype) -> Result<Model> {
    Model::load_with(dir, gpu, &dtype.load_options())
        .with_context(|| format!("loading {}", dir.display()))
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
    /// How the weights are stored on the GPU.
    #[arg(long, value_enum, default_value_t = Dtype::Auto)]
    pub dtype: Dtype,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Model> {
        let gpu = open_gpu()?;
        load_model(&self.model, &gpu, self.dtype)
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

/// `--constrain REGEX` and `--no-constrain`.
#[derive(Args, Debug, Default)]
pub struct ConstrainArgs {
    /// Decode under a constraint: the output text must be a full match of REGEX (the Rust
    /// `regex` crate's syntax). Overrides the model directory's constraint.regex.
    #[arg(long, value_name = "REGEX", conflicts_with = "no_constrain")]
    pub constrain: Option<String>,
    /// Decode without any constraint, not even the model directory's constraint.regex.
    #[arg(long)]
    pub no_constrain: bool,
}

impl ConstrainArgs {
    /// The generation option (`None`: the model directory's default).
    pub fn option(&self) -> Option<Constrain> {
        if self.no_constrain {
            return Some(Constrain::Off);
        }
        self.constrain.clone().map(Constrain::Regex)
    }
}
