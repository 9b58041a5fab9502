//! `multi_source`: one decoder conditioned on several encoders (text, image), fused either
//! by concatenation (one cross-attention over every source's keys) or by separate
//! cross-attention blocks, one per source in each decoder layer. The format and its
//! numerics are those of `tools/multi_source/reference.py`:
//!
//! - config.json: `model_type: "multi_source"`, `fusion: "concat" | "separate"`,
//!   `encoders`: a list of sub-configs, each an existing encoder's (a BART-family config for
//!   a text encoder, ViT or DeiT for an image encoder), `decoder`: a BART-family config, and
//!   the special tokens.
//! - model.safetensors: source i's encoder under `encoders.{i}.` with its Hugging Face
//!   module's own names (`BartEncoder`; `ViTModel` without pooler), `enc_to_dec_proj.{i}`
//!   where its width differs from the decoder's, and `BartDecoder` under `decoder.`, whose
//!   `embed_tokens` is also the output projection. Separate fusion names a layer's blocks
//!   `encoder_attn.{i}` and `encoder_attn_layer_norm.{i}`; concat has BART's one
//!   `encoder_attn`.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::arch::Built;
use crate::arch::bart::{self, BartConfig, CrossNames};
use crate::arch::vision_encoder_decoder::sub_config;
use crate::arch::vit::{Variant, VitConfig, VitEncoder};
use crate::config::ModelConfig;
use crate::decoder::{ConcatDecoder, Decoder};
use crate::encoder::Encoder;
use crate::encoder::multi::{MultiEncoder, Projected};
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::token_ids;
use crate::nn::{Linear, Loader};

/// How the decoder reads its sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// One cross-attention per layer over every source's keys, side by side.
    Concat,
    /// One cross-attention block per source in every layer, in source order.
    Separate,
}

/// config.json of a multi-source model.
#[derive(Clone, Debug, Deserialize)]
pub struct MultiSourceConfig {
    pub fusion: Fusion,
    pub encoders: Vec<Value>,
    pub decoder: Value,
    pub decoder_start_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
}

const TEXT: &[&str] = &["bart", "marian", "mbart", "pegasus", "m2m_100"];
const IMAGE: &[&str] = &["vit", "deit"];

/// Source i's encoder, mapped to the decoder's width `d` by `enc_to_dec_proj.{i}` when its
/// own differs.
fn encoder(
    path: &Path,
    i: usize,
    value: &Value,
    d: usize,
    ld: &Loader,
    vars: &Vars,
) -> Result<Box<dyn Encoder>> {
    let key = format!("encoders.{i}");
    let ev = vars.pp(&key);
    let proj = |width: usize| -> Result<Option<Linear>> {
        (width != d)
            .then(|| Linear::load(ld, vars, &format!("enc_to_dec_proj.{i}"), d, width, true))
            .transpose()
    };
    let model_type = value.get("model_type").and_then(Value::as_str);
    if model_type.is_some_and(|m| IMAGE.contains(&m)) {
        let cfg: VitConfig = sub_config(path, &key, value, IMAGE)?;
        let act = cfg.validate(path, &key)?;
        let variant = match model_type {
            Some("deit") => Variant::Deit,
            _ => Variant::Vit,
        };
        let p = proj(cfg.hidden_size)?;
        return Ok(Box::new(VitEncoder::load(&cfg, variant, act, ld, &ev, p)?));
    }
    let known: Vec<&str> = TEXT.iter().chain(IMAGE).copied().collect();
    let cfg: BartConfig = sub_config(path, &key, value, &known)?;
    let width = cfg.d_model;
    let enc = bart::text_encoder(path, cfg, ld, &ev)?;
    Ok(match proj(width)? {
        Some(proj) => Box::new(Projected {
            inner: Box::new(enc),
            proj,
        }),
        None => Box::new(enc),
    })
}

/// Loads a multi-source checkpoint (config already parsed).
pub fn build(path: &Path, cfg: MultiSourceConfig, ld: &Loader, vars: &Vars) -> Result<Built> {
    let err = |msg: String| Error::Config {
        path: path.to_path_buf(),
        msg,
    };
    let n = cfg.encoders.len();
    if n == 0 {
        return Err(err("encoders is empty; a model needs at least one".into()));
    }
    let dec_cfg: BartConfig = sub_config(path, "decoder", &cfg.decoder, TEXT)?;
    let d = dec_cfg.d_model;
    let cross = match cfg.fusion {
        Fusion::Concat => CrossNames::One,
        Fusion::Separate => CrossNames::PerSource(n),
    };
    let (inner, dec_config) =
        bart::standalone_decoder(path, dec_cfg, ld, &vars.pp("decoder"), cross)?;
    let encoders = cfg
        .encoders
        .iter()
        .enumerate()
        .map(|(i, v)| encoder(path, i, v, d, ld, vars))
        .collect::<Result<Vec<_>>>()?;
    let decoder: Box<dyn Decoder> = match cfg.fusion {
        Fusion::Concat => Box::new(ConcatDecoder { inner }),
        Fusion::Separate => Box::new(inner),
    };
    let eos = cfg
        .eos_token_id
        .clone()
        .unwrap_or(dec_config.eos_token_id.clone());
    let vocab = dec_config.decoder_vocab_size;
    let tokens = (
        cfg.pad_token_id,
        cfg.bos_token_id,
        cfg.decoder_start_token_id,
    );
    crate::arch::check_special_tokens(path, vocab, &eos, tokens)?;
    let config = ModelConfig {
        model_type: "multi_source".into(),
        encoder_layers: 0,
        encoder_attention_heads: 0,
        max_source_positions: None,
        pad_token_id: cfg.pad_token_id.unwrap_or(dec_config.pad_token_id),
        bos_token_id: cfg.bos_token_id.or(dec_config.bos_token_id),
        eos_token_id: eos,
        decoder_start_token_id: cfg
            .decoder_start_token_id
            .or(dec_config.decoder_start_token_id),
        ..dec_config
    };
    Ok(Built {
        config,
        encoder: Box::new(MultiEncoder { encoders }),
        decoder,
    })
}
