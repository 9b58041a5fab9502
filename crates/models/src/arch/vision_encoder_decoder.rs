//! `VisionEncoderDecoderModel`: an image encoder and a text decoder with cross-attention,
//! each described by its own sub-config (`encoder`, `decoder` in config.json) and loaded by
//! its own family under the `encoder.` and `decoder.` weight prefixes. Encoders: ViT, DeiT.
//! Decoders: GPT-2, TrOCR. When the widths differ (and the decoder sets no
//! `cross_attention_hidden_size`), `enc_to_dec_proj` maps the encoder's states to the
//! decoder's width, as transformers does.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::arch::Built;
use crate::arch::gpt2::{self, Gpt2Config};
use crate::arch::trocr::{self, TrocrConfig};
use crate::arch::vit::{Variant, VitConfig, VitEncoder};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::{parse_json, token_ids};
use crate::nn::{Linear, Loader};

/// config.json of a `VisionEncoderDecoderModel`.
#[derive(Clone, Debug, Deserialize)]
pub struct VisionEncoderDecoderConfig {
    pub encoder: Value,
    pub decoder: Value,
    pub decoder_start_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
}

/// The encoders and decoders this loader knows, for messages.
const ENCODERS: &[&str] = &["vit", "deit"];
const DECODERS: &[&str] = &["gpt2", "trocr"];

/// Parses sub-config `key` (`encoder`, `decoder`) as `T`, after checking its `model_type`
/// is one of `known`; errors name the key.
pub(crate) fn sub_config<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: &str,
    value: &Value,
    known: &[&str],
) -> Result<T> {
    let model_type = value.get("model_type").and_then(Value::as_str);
    if !model_type.is_some_and(|m| known.contains(&m)) {
        return Err(Error::Config {
            path: path.to_path_buf(),
            msg: format!(
                "{key}.model_type {} is not supported here (supported: {})",
                model_type.map_or("(absent)".into(), |m| format!("{m:?}")),
                known.join(", ")
            ),
        });
    }
    parse_json(path, &value.to_string()).map_err(|e| match e {
        Error::Config { path, msg } => Error::Config {
            path,
            msg: format!("{key}: {msg}"),
        },
        e => e,
    })
}

/// The decoder of a VisionEncoderDecoderModel, by its sub-config's `model_type`.
enum DecoderConfig {
    Gpt2(Gpt2Config),
    Trocr(TrocrConfig),
}

/// What the loader needs of either decoder.
struct DecoderShape {
    width: usize,
    /// Width of the memory its cross-attention reads.
    cross_width: usize,
    vocab: usize,
    layers: usize,
    heads: usize,
    positions: (usize, &'static str),
    /// An extra layer's key, to find checkpoints with more layers than the config says.
    probe: (&'static str, &'static str),
    eos: Option<Vec<u32>>,
    bos: Option<u32>,
    pad: Option<u32>,
    start: Option<u32>,
}

impl DecoderConfig {
    fn parse(path: &Path, value: &Value) -> Result<DecoderConfig> {
        match value.get("model_type").and_then(Value::as_str) {
            Some("trocr") => sub_config(path, "decoder", value, DECODERS).map(DecoderConfig::Trocr),
            _ => sub_config(path, "decoder", value, DECODERS).map(DecoderConfig::Gpt2),
        }
    }

    fn shape(&self, enc_width: usize) -> DecoderShape {
        match self {
            DecoderConfig::Gpt2(c) => DecoderShape {
                width: c.n_embd,
                // transformers projects the states to the decoder's width when they differ.
                cross_width: c.n_embd,
                vocab: c.vocab_size,
                layers: c.n_layer,
                heads: c.n_head,
                positions: (c.n_positions, "decoder.n_positions"),
                probe: ("decoder.transformer.h", "ln_1.bias"),
                eos: c.eos_token_id.clone(),
                bos: c.bos_token_id,
                pad: c.pad_token_id,
                start: None,
            },
            DecoderConfig::Trocr(c) => DecoderShape {
                width: c.d_model,
                cross_width: c.cross_attention_hidden_size.unwrap_or(enc_width),
                vocab: c.vocab_size,
                layers: c.decoder_layers,
                heads: c.decoder_attention_heads,
                positions: (c.max_position_embeddings, "decoder.max_position_embeddings"),
                probe: ("decoder.model.decoder.layers", "fc1.bias"),
                eos: c.eos_token_id.clone(),
                bos: c.bos_token_id,
                pad: c.pad_token_id,
                start: c.decoder_start_token_id,
            },
        }
    }
}

/// Loads a VisionEncoderDecoderModel checkpoint (config already parsed).
pub fn build(
    path: &Path,
    cfg: VisionEncoderDecoderConfig,
    ld: &Loader,
    vars: &Vars,
) -> Result<Built> {
    let enc: VitConfig = sub_config(path, "encoder", &cfg.encoder, ENCODERS)?;
    let dec = DecoderConfig::parse(path, &cfg.decoder)?;
    let enc_act = enc.validate(path, "encoder")?;
    let dec_act = match &dec {
        DecoderConfig::Gpt2(c) => c.validate(path, "decoder")?,
        DecoderConfig::Trocr(c) => c.validate(path, "decoder")?,
    };
    let shape = dec.shape(enc.hidden_size);
    let cross_hidden = cfg
        .decoder
        .get("cross_attention_hidden_size")
        .and_then(Value::as_u64);
    if let Some(w) = cross_hidden
        && w as usize != enc.hidden_size
    {
        return Err(Error::Config {
            path: path.to_path_buf(),
            msg: format!(
                "decoder.cross_attention_hidden_size {w} differs from encoder.hidden_size {}",
                enc.hidden_size
            ),
        });
    }
    if matches!(dec, DecoderConfig::Gpt2(_)) && cross_hidden.is_some() {
        return Err(Error::Config {
            path: path.to_path_buf(),
            msg: "decoder.cross_attention_hidden_size is not supported for GPT-2".into(),
        });
    }
    let eos = cfg
        .eos_token_id
        .clone()
        .or_else(|| shape.eos.clone())
        .unwrap_or_default();
    let tokens = (
        cfg.pad_token_id,
        cfg.bos_token_id,
        cfg.decoder_start_token_id,
    );
    crate::arch::check_special_tokens(path, shape.vocab, &eos, tokens)?;
    for (key, n, (stack, leaf)) in [
        (
            "encoder.num_hidden_layers",
            enc.num_hidden_layers,
            ("encoder.encoder.layer", "layernorm_before.bias"),
        ),
        ("decoder layers", shape.layers, shape.probe),
    ] {
        crate::arch::check_layer_count(path, vars, (key, n), |l| format!("{stack}.{l}.{leaf}"))?;
    }
    // As transformers: project the encoder's states when the widths differ and the decoder
    // does not read the encoder's width itself.
    let proj = if enc.hidden_size != shape.width && cross_hidden.is_none() {
        Some(Linear::load(
            ld,
            vars,
            "enc_to_dec_proj",
            shape.width,
            enc.hidden_size,
            true,
        )?)
    } else {
        None
    };
    let variant = match cfg.encoder.get("model_type").and_then(Value::as_str) {
        Some("deit") => Variant::Deit,
        _ => Variant::Vit,
    };
    let encoder = VitEncoder::load(&enc, variant, enc_act, ld, &vars.pp("encoder"), proj)?;
    if encoder.out_dim() != shape.cross_width {
        return Err(Error::Config {
            path: path.to_path_buf(),
            msg: format!(
                "the encoder gives states of width {}, the decoder's cross-attention reads {}",
                encoder.out_dim(),
                shape.cross_width
            ),
        });
    }
    let dec_vars = vars.pp("decoder");
    let decoder = match &dec {
        DecoderConfig::Gpt2(c) => gpt2::build_decoder(c, dec_act, ld, &dec_vars)?,
        DecoderConfig::Trocr(c) => trocr::build_decoder(c, dec_act, ld, &dec_vars)?,
    };
    let config = ModelConfig {
        model_type: "vision-encoder-decoder".into(),
        d_model: shape.width,
        encoder_layers: enc.num_hidden_layers,
        decoder_layers: shape.layers,
        encoder_attention_heads: enc.num_attention_heads,
        decoder_attention_heads: shape.heads,
        vocab_size: shape.vocab,
        decoder_vocab_size: shape.vocab,
        max_source_positions: Some(encoder.seq_len()),
        max_target_positions: Some(shape.positions.0),
        positions_key: shape.positions.1,
        pad_token_id: cfg
            .pad_token_id
            .or(shape.pad)
            .or_else(|| eos.first().copied())
            .unwrap_or(0),
        bos_token_id: cfg.bos_token_id.or(shape.bos),
        eos_token_id: eos,
        decoder_start_token_id: cfg.decoder_start_token_id.or(shape.start),
        forced_bos_token_id: None,
        forced_eos_token_id: None,
        num_mel_bins: None,
    };
    Ok(Built {
        config,
        encoder: Box::new(encoder),
        decoder: Box::new(decoder),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_sub_models_are_named() {
        let path = Path::new("config.json");
        let e = sub_config::<VitConfig>(path, "encoder", &json!({"model_type": "swin"}), ENCODERS)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("encoder.model_type \"swin\"") && e.contains("vit"),
            "{e}"
        );
        let e = sub_config::<Gpt2Config>(path, "decoder", &json!({"n_embd": 4}), DECODERS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("decoder.model_type (absent)"), "{e}");
        let e = sub_config::<Gpt2Config>(
            path,
            "decoder",
            &json!({"model_type": "gpt2", "n_embd": "four"}),
            DECODERS,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("decoder:") && e.contains("n_embd"), "{e}");
    }
}
