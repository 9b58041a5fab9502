//! `--source KIND:VALUE` of `seqbridge generate`: the sources of one example of a
//! multi-source model, in the order of its encoders: `text:…` (the model's tokenizer),
//! `ids:1,2,3` (token ids) or `image:FILE` (PNG / JPEG, through preprocessor_config.json).

use std::path::PathBuf;

use anyhow::{Result, bail};
use seqbridge_models::encoder::EncoderInput;
use seqbridge_models::{Model, Pixels};

use crate::args::parse_ids;

/// One parsed `--source`.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Text(String),
    Ids(Vec<u32>),
    Image(PathBuf),
}

/// Parses `text:…`, `ids:…` or `image:FILE`.
pub fn parse_source(s: &str) -> Result<Source, String> {
    match s.split_once(':') {
        Some(("text", t)) => Ok(Source::Text(t.to_string())),
        Some(("ids", ids)) => parse_ids(ids).map(Source::Ids),
        Some(("image", f)) if !f.is_empty() => Ok(Source::Image(PathBuf::from(f))),
        _ => Err(format!("{s:?} is not text:TEXT, ids:IDS or image:FILE")),
    }
}

/// The sources' data, owned: token ids or pixel values.
pub enum Loaded {
    Tokens(Vec<Vec<u32>>),
    Pixels(Pixels),
}

impl Loaded {
    pub fn input(&self) -> EncoderInput<'_> {
        match self {
            Loaded::Tokens(ids) => EncoderInput::Tokens(ids),
            Loaded::Pixels(p) => p.input(),
        }
    }
}

/// Tokenizes the texts and reads the images of `sources`.
pub fn load(model: &Model, sources: &[Source]) -> Result<Vec<Loaded>> {
    if sources.is_empty() {
        bail!("give the sources with --source text:TEXT, ids:IDS or image:FILE");
    }
    sources
        .iter()
        .map(|s| {
            Ok(match s {
                Source::Text(t) => Loaded::Tokens(vec![model.require_tokenizer()?.encode(t)?]),
                Source::Ids(ids) => Loaded::Tokens(vec![ids.clone()]),
                Source::Image(f) => Loaded::Pixels(model.load_images(&[f])?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse() {
        assert_eq!(parse_source("text:a: b"), Ok(Source::Text("a: b".into())));
        assert_eq!(parse_source("ids:4,5"), Ok(Source::Ids(vec![4, 5])));
        assert_eq!(
            parse_source("image:x.png"),
            Ok(Source::Image(PathBuf::from("x.png")))
        );
        for bad in ["audio:x.wav", "x.png", "image:", "ids:a"] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
    }
}
