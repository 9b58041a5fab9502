//! `--source KIND:VALUE` of `seqbridge generate`: the sources of one example of a
//! multi-source model, in the order of its encoders: `text:…` (the model's tokenizer),
//! `ids:1,2,3` (token ids) or `image:FILE` (PNG / JPEG, through preprocessor_config.json).

use std::path::PathBuf;

use anyhow::{Result, bail};
use seqbridge_models::Model;
use seqbridge_models::encoder::{EncoderInput, SourceData};

use crate::align::{Alignment, head_mean};
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

/// Tokenizes the texts and reads the images of `sources`.
pub fn load(model: &Model, sources: &[Source]) -> Result<Vec<SourceData>> {
    if sources.is_empty() {
        bail!("give the sources with --source text:TEXT, ids:IDS or image:FILE");
    }
    sources
        .iter()
        .map(|s| {
            Ok(match s {
                Source::Text(t) => SourceData::Tokens(vec![model.require_tokenizer()?.encode(t)?]),
                Source::Ids(ids) => SourceData::Tokens(vec![ids.clone()]),
                Source::Image(f) => SourceData::Pixels(model.load_images(&[f])?),
            })
        })
        .collect()
}

/// How one example's generated tokens attend to its sources: the last decoder layer's
/// cross-attention (mean over heads) of a teacher-forced pass over `sequence`. Each source
/// gives a share row (`#i`: the sum of its positions) then one row per position (its token,
/// or `p0`, `p1`, … for an image's positions, leading tokens first). A row of the matrix is
/// normalised over all sources together: with concatenated sources that is the one
/// attention's own split; separate blocks each sum to 1, so each source shows 1/N.
pub fn alignment(model: &Model, loaded: &[SourceData], sequence: &[u32]) -> Result<Alignment> {
    if sequence.len() < 2 {
        bail!("nothing was generated to align");
    }
    let inputs: Vec<_> = loaded.iter().map(SourceData::input).collect();
    let ids = &sequence[..sequence.len() - 1];
    let maps = model.cross_attentions_sources(&EncoderInput::Sources(&inputs), ids)?;
    let (heads, t) = (model.config().decoder_attention_heads, ids.len());
    let tok = model.tokenizer();
    let label = |id: u32, target: bool| match tok {
        Some(tok) if target => tok.target_token(id),
        Some(tok) => tok.token(id),
        None => id.to_string(),
    };
    let mut labels = Vec::new();
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); t];
    for (i, (layers, src)) in maps.iter().zip(loaded).enumerate() {
        let Some(last) = layers.last() else {
            bail!("the model has no decoder layer to align");
        };
        let s = last.len() / (heads * t).max(1);
        labels.push(format!("#{i}"));
        labels.extend((0..s).map(|k| match src {
            SourceData::Tokens(ids) => label(ids[0][k], false),
            SourceData::Pixels(_) => format!("p{k}"),
        }));
        for (row, mean) in rows.iter_mut().zip(head_mean(last, heads, t, s)) {
            row.push(mean.iter().sum());
            row.extend(mean);
        }
    }
    for row in &mut rows {
        // Share rows and positions both count each source once: half the row's sum.
        let total: f32 = row.iter().sum::<f32>() / 2.0;
        row.iter_mut()
            .for_each(|p| *p /= total.max(f32::MIN_POSITIVE));
    }
    Ok(Alignment {
        source: labels,
        target: sequence[1..].iter().map(|&id| label(id, true)).collect(),
        probs: rows,
        layer: model.config().decoder_layers.saturating_sub(1),
    })
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
