//! One folder per architecture family, each a serde config plus a loader that builds the
//! shared encoder and decoder from its checkpoint, and the `model_type` registry that picks
//! one. Adding a family: a folder here with its config struct and `build`, and one line in
//! [`REGISTRY`].

pub mod bart;
pub mod gpt2;
pub mod multi_source;
pub mod t5;
pub mod trocr;
pub mod vision_encoder_decoder;
pub mod vit;
pub mod whisper;

use std::path::Path;

use serde::Deserialize;

use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::parse_json;
use crate::nn::Loader;

/// A loaded architecture: its description, its encoder and its decoder, weights on the GPU.
pub struct Built {
    pub config: ModelConfig,
    pub encoder: Box<dyn Encoder>,
    pub decoder: Box<dyn Decoder>,
}

/// Parses config.json (`path`, its `text`) for the family and builds it from `vars`.
type Builder = fn(&Path, &str, &Loader, &Vars) -> Result<Built>;

/// `model_type` → family loader.
pub const REGISTRY: &[(&str, Builder)] = &[
    ("marian", bart_family),
    ("bart", bart_family),
    ("mbart", bart_family),
    ("pegasus", bart_family),
    ("m2m_100", bart_family),
    ("t5", t5_family),
    ("mt5", t5_family),
    ("umt5", t5_family),
    ("whisper", whisper_family),
    ("vision-encoder-decoder", vision_family),
    ("multi_source", multi_source_family),
];

fn bart_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    bart::build(path, parse_json(path, text)?, ld, vars)
}

fn t5_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    t5::build(path, parse_json(path, text)?, ld, vars)
}

fn whisper_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    whisper::build(path, parse_json(path, text)?, ld, vars)
}

fn vision_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    vision_encoder_decoder::build(path, parse_json(path, text)?, ld, vars)
}

fn multi_source_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    multi_source::build(path, parse_json(path, text)?, ld, vars)
}

/// The `model_type` of a config.json, checked against the registry.
pub fn model_type(path: &Path, text: &str) -> Result<(String, Builder)> {
    #[derive(Deserialize)]
    struct Head {
        model_type: Option<String>,
    }
    let head: Head = parse_json(path, text)?;
    let name = head.model_type.unwrap_or_else(|| "(absent)".into());
    REGISTRY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| (name.clone(), *b))
        .ok_or_else(|| Error::UnknownModelType {
            path: path.to_path_buf(),
            model_type: name,
        })
}

/// Sane ceilings on config.json sizes, checked before anything is allocated from them (the
/// largest published checkpoints are far below each).
pub mod limits {
    pub const LAYERS: usize = 512;
    pub const WIDTH: usize = 1 << 16;
    pub const HEADS: usize = 1024;
    pub const FFN: usize = 1 << 20;
    pub const VOCAB: usize = 1 << 24;
    pub const POSITIONS: usize = 1 << 20;
}

/// `value` of `key` in config.json `path` must lie in `min..=max`.
pub(crate) fn check_range(
    path: &Path,
    key: &str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<()> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(Error::Config {
        path: path.to_path_buf(),
        msg: format!("{key} is {value}, outside {min}..={max}"),
    })
}

/// Token ids of config.json `path` must lie inside the vocabulary.
pub(crate) fn check_tokens<'a>(
    path: &Path,
    vocab: usize,
    ids: impl IntoIterator<Item = (&'a str, u32)>,
) -> Result<()> {
    for (key, id) in ids {
        if id as usize >= vocab {
            return Err(Error::Config {
                path: path.to_path_buf(),
                msg: format!("{key} {id} is outside the vocabulary of {vocab}"),
            });
        }
    }
    Ok(())
}

/// A composite model's top-level special tokens (EOS ids, then pad, bos and decoder start
/// when given) must lie inside the decoder's vocabulary.
pub(crate) fn check_special_tokens(
    path: &Path,
    vocab: usize,
    eos: &[u32],
    (pad, bos, start): (Option<u32>, Option<u32>, Option<u32>),
) -> Result<()> {
    let ids = eos
        .iter()
        .map(|&t| ("eos_token_id", t))
        .chain(pad.map(|t| ("pad_token_id", t)))
        .chain(bos.map(|t| ("bos_token_id", t)))
        .chain(start.map(|t| ("decoder_start_token_id", t)));
    check_tokens(path, vocab, ids)
}

/// config.json's layer count `layers` (of `key`) against the checkpoint, before any layer
/// is built: at least one, and not fewer than the checkpoint holds (`probe(n)`, a tensor of
/// layer n, present), or the model would load and compute garbage. The error names the key
/// and the layers present. (More layers than present is a missing-tensor error at load.)
pub(crate) fn check_layer_count(
    path: &Path,
    vars: &Vars,
    (key, layers): (&str, usize),
    probe: impl Fn(usize) -> String,
) -> Result<()> {
    let err = |msg: String| {
        Err(Error::Config {
            path: path.to_path_buf(),
            msg,
        })
    };
    let present = if vars.is_random() {
        0
    } else {
        (0..=limits::LAYERS)
            .take_while(|&l| vars.contains(&probe(l)))
            .count()
    };
    if layers < present {
        return err(format!(
            "{key} is {layers}, but the checkpoint has {present} layers ({} … {})",
            probe(0),
            probe(present - 1)
        ));
    }
    if layers == 0 {
        return err(format!("{key} is 0; a model needs at least 1 layer"));
    }
    Ok(())
}

/// The model types the registry knows, for messages.
pub fn supported() -> String {
    REGISTRY
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
