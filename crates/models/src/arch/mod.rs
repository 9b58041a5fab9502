//! One folder per architecture family, each a serde config plus a loader that builds the
//! shared encoder and decoder from its checkpoint, and the `model_type` registry that picks
//! one. Adding a family: a folder here with its config struct and `build`, and one line in
//! [`REGISTRY`].

pub mod bart;
pub mod t5;

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
];

fn bart_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    bart::build(path, parse_json(path, text)?, ld, vars)
}

fn t5_family(path: &Path, text: &str, ld: &Loader, vars: &Vars) -> Result<Built> {
    t5::build(path, parse_json(path, text)?, ld, vars)
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

/// The model types the registry knows, for messages.
pub fn supported() -> String {
    REGISTRY
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
