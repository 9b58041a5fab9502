//! `VisionEncoderDecoderModel`: an image encoder and a text decoder with cross-attention,
//! each described by its own sub-config (`encoder`, `decoder` in config.json) and loaded by
//! its own family under the `encoder.` and `decoder.` weight prefixes. Encoders: ViT, DeiT.
//! Decoders: GPT-2. When the widths differ (and the decoder sets no
//! `cross_attention_hidden_size`), `enc_to_dec_proj` maps the encoder's states to the
//! decoder's width, as transformers does.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::arch::Built;
use crate::arch::gpt2::{self, Gpt2Config};
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
const DECODERS: &[&str] = &["gpt2"];

/// Parses sub-config `key` (`encoder`, `decoder`) as `T`, after checking its `model_type`
/// is one of `known`; errors name the key.
fn sub_config<T: serde::de::DeserializeOwned>(
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

/// Loads a VisionEncoderDecoderModel checkpoint (config already parsed).
pub fn build(
    path: &Path,
    cfg: VisionEncoderDecoderConfig,
    ld: &Loader,
    vars: &Vars,
) -> Result<Built> {
    let enc: VitConfig = sub_config(path, "encoder", &cfg.encoder, ENCODERS)?;
    let dec: Gpt2Config = sub_config(path, "decoder", &cfg.decoder, DECODERS)?;
    let enc_act = enc.validate(path, "encoder")?;
    let dec_act = dec.validate(path, "decoder")?;
    if cfg
        .decoder
        .get("cross_attention_hidden_size")
        .is_some_and(|v| !v.is_null())
    {
        return Err(Error::Config {
            path: path.to_path_buf(),
            msg: "decoder.cross_attention_hidden_size is not supported".into(),
        });
    }
    let eos = cfg
        .eos_token_id
        .clone()
        .or_else(|| dec.eos_token_id.clone())
        .unwrap_or_default();
    let ids = eos
        .iter()
        .map(|&t| ("eos_token_id", t))
        .chain(cfg.pad_token_id.map(|t| ("pad_token_id", t)))
        .chain(cfg.bos_token_id.map(|t| ("bos_token_id", t)))
        .chain(
            cfg.decoder_start_token_id
                .map(|t| ("decoder_start_token_id", t)),
        );
    crate::arch::check_tokens(path, dec.vocab_size, ids)?;
    for (key, n, (stack, leaf)) in [
        (
            "encoder.num_hidden_layers",
            enc.num_hidden_layers,
            ("encoder.encoder.layer", "layernorm_before.bias"),
        ),
        (
            "decoder.n_layer",
            dec.n_layer,
            ("decoder.transformer.h", "ln_1.bias"),
        ),
    ] {
        crate::arch::check_layer_count(path, vars, (key, n), |l| format!("{stack}.{l}.{leaf}"))?;
    }
    let proj = if enc.hidden_size != dec.n_embd {
        Some(Linear::load(
            ld,
            vars,
            "enc_to_dec_proj",
            dec.n_embd,
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
    let decoder = gpt2::build_decoder(&dec, dec_act, ld, &vars.pp("decoder"))?;
    let config = ModelConfig {
        model_type: "vision-encoder-decoder".into(),
        d_model: dec.n_embd,
        encoder_layers: enc.num_hidden_layers,
        decoder_layers: dec.n_layer,
        encoder_attention_heads: enc.num_attention_heads,
        decoder_attention_heads: dec.n_head,
        vocab_size: dec.vocab_size,
        decoder_vocab_size: dec.vocab_size,
        max_source_positions: Some(encoder.seq_len()),
        max_target_positions: Some(dec.n_positions),
        positions_key: "decoder.n_positions",
        pad_token_id: cfg
            .pad_token_id
            .or(dec.pad_token_id)
            .or_else(|| eos.first().copied())
            .unwrap_or(0),
        bos_token_id: cfg.bos_token_id.or(dec.bos_token_id),
        eos_token_id: eos,
        decoder_start_token_id: cfg.decoder_start_token_id,
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
