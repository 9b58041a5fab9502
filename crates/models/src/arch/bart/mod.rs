//! The BART family, after `transformers/models/bart/modeling_bart.py`.
//!
//! Marian, mBART, Pegasus and M2M100 are BART with switches (their modeling files are
//! largely "Copied from transformers.models.bart"): pre- or post-layer-norm blocks,
//! `layernorm_embedding`, final encoder/decoder layer norms, learned or sinusoidal positions,
//! `embed_scale`, `final_logits_bias`. One loader here, configured by [`BartConfig`] and the
//! [`Family`] of its `model_type`; the position tables that differ live in `marian.rs` and
//! `m2m_100.rs`.
//!
//! Load-time fusions (the only departures from HF's module layout):
//! - every self-attention's `q_proj`, `k_proj`, `v_proj` → one `[3D, D]` linear;
//! - every decoder layer's `encoder_attn.k_proj` / `v_proj` → one `[L·2D, D]` linear, so the
//!   encoder output is projected once, in one matmul, for all layers.

pub mod m2m_100;
pub mod marian;
pub mod mbart;
pub mod pegasus;

use serde::Deserialize;

use crate::arch::Built;
use crate::config::ModelConfig;
use crate::decoder::TransformerDecoder;
use crate::encoder::TransformerEncoder;
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::token_ids;
use crate::nn::{
    CrossAttention, CrossBlock, Embedding, FeedForward, Heads, Linear, Loader, Norm, PositionTable,
    SelfAttention, TextEmbedding, TransformerLayer,
};
use seqbridge_gpu::ops::matmul::Activation;

/// config.json of the BART family (`BartConfig`, `MarianConfig`, `MBartConfig`,
/// `PegasusConfig`, `M2M100Config`): the fields the architecture reads.
#[derive(Clone, Debug, Deserialize)]
pub struct BartConfig {
    pub model_type: String,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub vocab_size: usize,
    /// Marian with separate vocabularies.
    pub decoder_vocab_size: Option<usize>,
    pub max_position_embeddings: usize,
    pub activation_function: Option<String>,
    pub scale_embedding: Option<bool>,
    /// Marian only (the others always share).
    pub share_encoder_decoder_embeddings: Option<bool>,
    pub tie_word_embeddings: Option<bool>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub decoder_start_token_id: Option<u32>,
    pub forced_bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub forced_eos_token_id: Option<Vec<u32>>,
}

/// How positions are embedded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// `BartLearnedPositionalEmbedding`: a learned `[max_positions + 2, D]` table, position t
    /// reads row t + 2.
    Learned,
    /// `MarianSinusoidalPositionalEmbedding` (also Pegasus): `[max_positions, D]`, sin in the
    /// first half, cos in the second; taken from the checkpoint when stored there.
    Sinusoidal,
    /// `M2M100SinusoidalPositionalEmbedding`: tensor2tensor's formula, `[max_positions + 2, D]`,
    /// row `padding_idx` zero, token t at row `padding_idx + 1 + t`.
    M2M100Sinusoidal,
}

/// What a `model_type` switches on, exactly as its Hugging Face class does (`BartConfig`
/// carries `normalize_before` and friends, but `BartForConditionalGeneration` ignores them,
/// and so do we).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Pre-layer-norm blocks (mBART, Pegasus, M2M100) instead of post (BART, Marian).
    pub normalize_before: bool,
    /// `layernorm_embedding` after embeddings (BART, mBART).
    pub layernorm_embedding: bool,
    /// `encoder.layer_norm` / `decoder.layer_norm` after the last layer.
    pub final_layer_norm: bool,
    pub positions: Positions,
    /// The model has a `final_logits_bias` buffer (all but M2M100).
    pub final_logits_bias: bool,
}

impl Family {
    pub fn of(model_type: &str) -> Option<Family> {
        let f = |normalize_before, layernorm_embedding, final_layer_norm, positions, flb| Family {
            normalize_before,
            layernorm_embedding,
            final_layer_norm,
            positions,
            final_logits_bias: flb,
        };
        Some(match model_type {
            "bart" => f(false, true, false, Positions::Learned, true),
            "mbart" => f(true, true, true, Positions::Learned, true),
            "marian" => f(false, false, false, Positions::Sinusoidal, true),
            "pegasus" => f(true, false, true, Positions::Sinusoidal, true),
            "m2m_100" => f(true, false, true, Positions::M2M100Sinusoidal, false),
            _ => return None,
        })
    }
}

/// Parses an HF `activation_function`.
pub fn parse_activation(name: &str) -> Option<Activation> {
    Some(match name {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        _ => return None,
    })
}

const LAYER_NORM_EPS: f32 = 1e-5;

/// The loader's view of a [`BartConfig`]: validated sizes and switches.
struct Spec {
    cfg: BartConfig,
    family: Family,
    act: Activation,
    share_embeddings: bool,
    decoder_vocab_size: usize,
    pad: u32,
}

impl Spec {
    fn new(path: &std::path::Path, cfg: BartConfig) -> Result<Spec> {
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        let family = Family::of(&cfg.model_type).ok_or_else(|| Error::UnknownModelType {
            path: path.to_path_buf(),
            model_type: cfg.model_type.clone(),
        })?;
        let act_name = cfg.activation_function.as_deref().unwrap_or("gelu");
        let act = parse_activation(act_name)
            .ok_or_else(|| err(format!("unsupported activation_function {act_name:?}")))?;
        let share_embeddings =
            cfg.model_type != "marian" || cfg.share_encoder_decoder_embeddings.unwrap_or(true);
        let decoder_vocab_size = if share_embeddings {
            cfg.vocab_size
        } else {
            cfg.decoder_vocab_size.unwrap_or(cfg.vocab_size)
        };
        use crate::arch::limits::*;
        let d = cfg.d_model;
        // Layer counts may be 0 here: `check_layer_count` refuses 0 in `build`, naming the
        // layers the checkpoint holds.
        let ranges = [
            ("d_model", d, 1, WIDTH),
            ("encoder_layers", cfg.encoder_layers, 0, LAYERS),
            ("decoder_layers", cfg.decoder_layers, 0, LAYERS),
            (
                "encoder_attention_heads",
                cfg.encoder_attention_heads,
                1,
                HEADS,
            ),
            (
                "decoder_attention_heads",
                cfg.decoder_attention_heads,
                1,
                HEADS,
            ),
            ("encoder_ffn_dim", cfg.encoder_ffn_dim, 1, FFN),
            ("decoder_ffn_dim", cfg.decoder_ffn_dim, 1, FFN),
            ("vocab_size", cfg.vocab_size, 1, VOCAB),
            ("decoder_vocab_size", decoder_vocab_size, 1, VOCAB),
            (
                "max_position_embeddings",
                cfg.max_position_embeddings,
                1,
                POSITIONS,
            ),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, key, value, min, max)?;
        }
        for (name, heads) in [
            ("encoder_attention_heads", cfg.encoder_attention_heads),
            ("decoder_attention_heads", cfg.decoder_attention_heads),
        ] {
            if !d.is_multiple_of(heads) {
                return Err(err(format!(
                    "d_model {d} is not divisible by {name} {heads}"
                )));
            }
        }
        let pad = cfg.pad_token_id.unwrap_or(1);
        let (src_vocab, tgt_vocab) = (cfg.vocab_size, decoder_vocab_size);
        crate::arch::check_tokens(path, src_vocab.min(tgt_vocab), [("pad_token_id", pad)])?;
        let eos = cfg
            .eos_token_id
            .iter()
            .flatten()
            .map(|&t| ("eos_token_id", t));
        let forced_eos = cfg.forced_eos_token_id.iter().flatten();
        let target_ids = eos
            .chain(forced_eos.map(|&t| ("forced_eos_token_id", t)))
            .chain(cfg.bos_token_id.map(|t| ("bos_token_id", t)))
            .chain(cfg.forced_bos_token_id.map(|t| ("forced_bos_token_id", t)))
            .chain(
                cfg.decoder_start_token_id
                    .map(|t| ("decoder_start_token_id", t)),
            );
        crate::arch::check_tokens(path, tgt_vocab, target_ids)?;
        Ok(Spec {
            family,
            act,
            share_embeddings,
            decoder_vocab_size,
            pad,
            cfg,
        })
    }

    fn model_config(&self) -> ModelConfig {
        let c = &self.cfg;
        ModelConfig {
            model_type: c.model_type.clone(),
            d_model: c.d_model,
            encoder_layers: c.encoder_layers,
            decoder_layers: c.decoder_layers,
            encoder_attention_heads: c.encoder_attention_heads,
            decoder_attention_heads: c.decoder_attention_heads,
            vocab_size: c.vocab_size,
            decoder_vocab_size: self.decoder_vocab_size,
            max_source_positions: Some(c.max_position_embeddings),
            max_target_positions: Some(c.max_position_embeddings),
            positions_key: "max_position_embeddings",
            pad_token_id: self.pad,
            bos_token_id: c.bos_token_id,
            eos_token_id: c.eos_token_id.clone().unwrap_or_default(),
            decoder_start_token_id: c.decoder_start_token_id,
            forced_bos_token_id: c.forced_bos_token_id,
            forced_eos_token_id: c.forced_eos_token_id.clone(),
            num_mel_bins: None,
        }
    }

    fn heads(&self, n: usize) -> Heads {
        let head_dim = self.cfg.d_model / n;
        Heads {
            num_heads: n,
            head_dim,
            scale: (head_dim as f32).powf(-0.5),
        }
    }
}

/// `BartAttention` weight names.
const PROJ: [&str; 4] = ["q_proj", "k_proj", "v_proj", "out_proj"];

/// Loads a BART-family checkpoint (config already parsed) and uploads every weight once.
pub fn build(path: &std::path::Path, cfg: BartConfig, ld: &Loader, vars: &Vars) -> Result<Built> {
    let spec = Spec::new(path, cfg)?;
    let config = spec.model_config();
    let c = &spec.cfg;
    let model = vars.pp("model");
    let (enc_v, dec_v) = (model.pp("encoder"), model.pp("decoder"));
    for (key, n, side) in [
        ("encoder_layers", c.encoder_layers, "encoder"),
        ("decoder_layers", c.decoder_layers, "decoder"),
    ] {
        let probe = |l| model.key(&format!("{side}.layers.{l}.fc1.weight"));
        crate::arch::check_layer_count(path, &model, (key, n), probe)?;
    }
    let (enc_tokens, dec_tokens) = load_token_embeddings(ld, &model, &spec)?;
    let parts = Parts { spec: &spec, ld };
    let encoder = parts.encoder(&enc_v, enc_tokens)?;

    // lm_head: tied to the decoder embeddings unless the config unties it and the checkpoint
    // has its own (a missing lm_head falls back to tied, as transformers does).
    let vocab = spec.decoder_vocab_size;
    let final_logits_bias = if spec.family.final_logits_bias && vars.contains("final_logits_bias") {
        Some(vars.f32("final_logits_bias", &[1, vocab])?)
    } else {
        None
    };
    let lm_head = if !c.tie_word_embeddings.unwrap_or(true) && vars.contains("lm_head.weight") {
        let w = vars.pp("lm_head").matrix("weight", &[vocab, c.d_model])?;
        Linear::from_host(ld, &w, final_logits_bias.as_deref(), vocab, c.d_model)?
    } else {
        dec_tokens.as_linear(final_logits_bias.as_deref(), ld)?
    };
    let decoder = parts.decoder(&dec_v, dec_tokens, lm_head, CrossNames::One)?;
    Ok(Built {
        config,
        encoder: Box::new(encoder),
        decoder: Box::new(decoder),
    })
}

/// How a decoder layer's cross-attention blocks are named: BART's one `encoder_attn` (and
/// `encoder_attn_layer_norm`), or one block per source, `encoder_attn.{i}` (a multi-source
/// checkpoint with separate cross-attention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossNames {
    One,
    PerSource(usize),
}

/// A `BartEncoder` stored on its own under `vars` (`embed_tokens`, `embed_positions`,
/// `layers.N`, ...): a multi-source checkpoint's text encoder.
pub fn text_encoder(
    path: &std::path::Path,
    cfg: BartConfig,
    ld: &Loader,
    vars: &Vars,
) -> Result<TransformerEncoder> {
    let spec = Spec::new(path, cfg)?;
    let probe = |l| vars.key(&format!("layers.{l}.fc1.weight"));
    let key = vars.key("encoder_layers");
    crate::arch::check_layer_count(path, vars, (&key, spec.cfg.encoder_layers), probe)?;
    let tokens = standalone_tokens(ld, vars, &spec, spec.cfg.vocab_size)?;
    Parts { spec: &spec, ld }.encoder(vars, tokens)
}

/// A `BartDecoder` stored on its own under `vars`, its output projection tied to its
/// `embed_tokens`, with the cross-attention blocks `cross` names. Returns it and its
/// config's description.
pub fn standalone_decoder(
    path: &std::path::Path,
    cfg: BartConfig,
    ld: &Loader,
    vars: &Vars,
    cross: CrossNames,
) -> Result<(TransformerDecoder, ModelConfig)> {
    let spec = Spec::new(path, cfg)?;
    let probe = |l| vars.key(&format!("layers.{l}.fc1.weight"));
    let key = vars.key("decoder_layers");
    crate::arch::check_layer_count(path, vars, (&key, spec.cfg.decoder_layers), probe)?;
    let tokens = standalone_tokens(ld, vars, &spec, spec.decoder_vocab_size)?;
    let lm_head = tokens.as_linear(None, ld)?;
    let parts = Parts { spec: &spec, ld };
    Ok((
        parts.decoder(vars, tokens, lm_head, cross)?,
        spec.model_config(),
    ))
}

fn standalone_tokens(ld: &Loader, vars: &Vars, spec: &Spec, rows: usize) -> Result<Embedding> {
    let w = vars
        .pp("embed_tokens")
        .matrix("weight", &[rows, spec.cfg.d_model])?;
    Embedding::from_host(ld, &w, rows, spec.cfg.d_model)
}

/// The loader of a [`Spec`]'s encoder and decoder stacks.
struct Parts<'a, 'l> {
    spec: &'a Spec,
    ld: &'a Loader<'l>,
}

impl Parts<'_, '_> {
    fn ln(&self, v: &Vars, name: &str) -> Result<Norm> {
        Norm::layer(self.ld, v, name, self.spec.cfg.d_model, LAYER_NORM_EPS)
    }

    fn ln_opt(&self, v: &Vars, name: &str, on: bool) -> Result<Option<Norm>> {
        on.then(|| self.ln(v, name)).transpose()
    }

    fn embed_scale(&self) -> f32 {
        if self.spec.cfg.scale_embedding.unwrap_or(false) {
            (self.spec.cfg.d_model as f32).sqrt()
        } else {
            1.0
        }
    }

    fn positions(&self, v: &Vars) -> Result<PositionTable> {
        let (c, ld, d) = (&self.spec.cfg, self.ld, self.spec.cfg.d_model);
        match self.spec.family.positions {
            Positions::Learned => {
                let rows = c.max_position_embeddings + 2;
                let w = v.pp("embed_positions").f32("weight", &[rows, d])?;
                Ok(PositionTable {
                    table: ld.upload_f32(&w, &[rows, d])?,
                    offset: 2,
                    max_positions: c.max_position_embeddings,
                })
            }
            Positions::Sinusoidal => marian::MarianSinusoidalPositionalEmbedding::load(
                ld,
                v,
                c.max_position_embeddings,
                d,
            ),
            Positions::M2M100Sinusoidal => m2m_100::M2M100SinusoidalPositionalEmbedding::load(
                ld,
                self.spec.pad,
                c.max_position_embeddings,
                d,
            ),
        }
    }

    fn feed_forward(&self, v: &Vars, ffn: usize) -> Result<FeedForward> {
        let d = self.spec.cfg.d_model;
        Ok(FeedForward::Plain {
            fc1: Linear::load(self.ld, v, "fc1", ffn, d, true)?,
            fc2: Linear::load(self.ld, v, "fc2", d, ffn, true)?,
            act: self.spec.act,
        })
    }

    fn encoder(&self, enc_v: &Vars, tokens: Embedding) -> Result<TransformerEncoder> {
        let (c, fam, ld, d) = (
            &self.spec.cfg,
            self.spec.family,
            self.ld,
            self.spec.cfg.d_model,
        );
        let heads = self.spec.heads(c.encoder_attention_heads);
        let layers = (0..c.encoder_layers)
            .map(|i| {
                let v = enc_v.pp(&format!("layers.{i}"));
                Ok(TransformerLayer {
                    self_attn: SelfAttention::load(ld, &v.pp("self_attn"), PROJ, heads, d, true)?,
                    self_attn_norm: self.ln(&v, "self_attn_layer_norm")?,
                    cross: Vec::new(),
                    ffn: self.feed_forward(&v, c.encoder_ffn_dim)?,
                    ffn_norm: self.ln(&v, "final_layer_norm")?,
                    norm_first: fam.normalize_before,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TransformerEncoder {
            embed: TextEmbedding {
                tokens,
                positions: Some(self.positions(enc_v)?),
                scale: self.embed_scale(),
                norm: self.ln_opt(enc_v, "layernorm_embedding", fam.layernorm_embedding)?,
            },
            layers,
            final_norm: self.ln_opt(enc_v, "layer_norm", fam.final_layer_norm)?,
            position_bias: Vec::new(),
            d_model: d,
            pad_token_id: self.spec.pad,
            max_positions: Some(c.max_position_embeddings),
            positions_key: "max_position_embeddings",
        })
    }

    fn decoder(
        &self,
        dec_v: &Vars,
        tokens: Embedding,
        lm_head: Linear,
        cross: CrossNames,
    ) -> Result<TransformerDecoder> {
        let (c, fam, ld, d) = (
            &self.spec.cfg,
            self.spec.family,
            self.ld,
            self.spec.cfg.d_model,
        );
        let heads = self.spec.heads(c.decoder_attention_heads);
        let layer_vars: Vec<Vars> = (0..c.decoder_layers)
            .map(|i| dec_v.pp(&format!("layers.{i}")))
            .collect();
        // Per source, the (attention, norm) names of its block in every layer.
        let names: Vec<(String, String)> = match cross {
            CrossNames::One => vec![("encoder_attn".into(), "encoder_attn_layer_norm".into())],
            CrossNames::PerSource(n) => (0..n)
                .map(|i| {
                    (
                        format!("encoder_attn.{i}"),
                        format!("encoder_attn_layer_norm.{i}"),
                    )
                })
                .collect(),
        };
        let layers = layer_vars
            .iter()
            .enumerate()
            .map(|(l, v)| {
                let blocks = names
                    .iter()
                    .enumerate()
                    .map(|(src, (attn, norm))| {
                        Ok(CrossBlock {
                            attn: CrossAttention::load(
                                ld,
                                &v.pp(attn),
                                ("q_proj", "out_proj"),
                                heads,
                                d,
                                true,
                                (src, l),
                            )?,
                            norm: self.ln(v, norm)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TransformerLayer {
                    self_attn: SelfAttention::load(ld, &v.pp("self_attn"), PROJ, heads, d, true)?,
                    self_attn_norm: self.ln(v, "self_attn_layer_norm")?,
                    cross: blocks,
                    ffn: self.feed_forward(v, c.decoder_ffn_dim)?,
                    ffn_norm: self.ln(v, "final_layer_norm")?,
                    norm_first: fam.normalize_before,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cross_kv_proj = names
            .iter()
            .map(|(attn, _)| {
                let cross_vars: Vec<Vars> = layer_vars.iter().map(|v| v.pp(attn)).collect();
                let kv_parts: Vec<(&Vars, &str)> = cross_vars
                    .iter()
                    .flat_map(|v| [(v, "k_proj"), (v, "v_proj")])
                    .collect();
                Linear::load_fused(ld, &kv_parts, d, d, true)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TransformerDecoder {
            embed: TextEmbedding {
                tokens,
                positions: Some(self.positions(dec_v)?),
                scale: self.embed_scale(),
                norm: self.ln_opt(dec_v, "layernorm_embedding", fam.layernorm_embedding)?,
            },
            layers,
            final_norm: self.ln_opt(dec_v, "layer_norm", fam.final_layer_norm)?,
            lm_head,
            cross_kv_proj,
            position_bias: Vec::new(),
            d_model: d,
        })
    }
}

/// `model.shared` (or the older `encoder.embed_tokens` / `decoder.embed_tokens` keys);
/// Marian with `share_encoder_decoder_embeddings: false` has one table per side.
fn load_token_embeddings(ld: &Loader, model: &Vars, spec: &Spec) -> Result<(Embedding, Embedding)> {
    let d = spec.cfg.d_model;
    let first = |candidates: &[&str], rows: usize| -> Result<Embedding> {
        let key = candidates
            .iter()
            .find(|k| model.contains(&format!("{k}.weight")))
            .unwrap_or(&candidates[0]);
        let w = model.pp(key).matrix("weight", &[rows, d])?;
        Embedding::from_host(ld, &w, rows, d)
    };
    if spec.share_embeddings {
        let e = first(
            &["shared", "encoder.embed_tokens", "decoder.embed_tokens"],
            spec.cfg.vocab_size,
        )?;
        Ok((e.clone(), e))
    } else {
        let enc = first(&["encoder.embed_tokens", "shared"], spec.cfg.vocab_size)?;
        let dec = first(&["decoder.embed_tokens"], spec.decoder_vocab_size)?;
        Ok((enc, dec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::json::parse_json;
    use serde_json::json;
    use std::path::Path;

    fn spec(v: serde_json::Value) -> Result<Spec> {
        let path = Path::new("config.json");
        Spec::new(path, parse_json(path, &v.to_string())?)
    }

    fn base(model_type: &str) -> serde_json::Value {
        json!({"model_type": model_type, "d_model": 16, "encoder_layers": 2, "decoder_layers": 2,
               "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 32,
               "decoder_ffn_dim": 32, "vocab_size": 99, "max_position_embeddings": 64,
               "activation_function": "swish", "eos_token_id": 0, "pad_token_id": 98,
               "decoder_start_token_id": 98})
    }

    #[test]
    fn each_model_type_maps_to_its_family() {
        let m = spec(base("marian")).unwrap();
        assert!(!m.family.normalize_before && !m.family.layernorm_embedding);
        assert!(!m.family.final_layer_norm && m.family.positions == Positions::Sinusoidal);
        assert_eq!(m.act, Activation::Silu);
        let b = spec(base("bart")).unwrap().family;
        assert!(!b.normalize_before && b.layernorm_embedding && b.positions == Positions::Learned);
        let mb = spec(base("mbart")).unwrap().family;
        assert!(mb.normalize_before && mb.layernorm_embedding && mb.final_layer_norm);
        let p = spec(base("pegasus")).unwrap().family;
        assert!(p.normalize_before && !p.layernorm_embedding && p.final_layer_norm);
        let m2m = spec(base("m2m_100")).unwrap().family;
        assert_eq!(m2m.positions, Positions::M2M100Sinusoidal);
        assert!(!m2m.final_logits_bias);
    }

    #[test]
    fn bad_activation_heads_and_fields_are_named() {
        let mut v = base("bart");
        v["activation_function"] = json!("mish");
        assert!(spec(v).err().unwrap().to_string().contains("mish"));
        let mut v = base("bart");
        v["decoder_attention_heads"] = json!(3);
        let e = spec(v).err().unwrap().to_string();
        assert!(e.contains("decoder_attention_heads 3"), "{e}");
        let mut v = base("bart");
        v.as_object_mut().unwrap().remove("d_model");
        let e = spec(v).err().unwrap().to_string();
        assert!(e.contains("d_model") && e.contains("config.json"), "{e}");
    }

    #[test]
    fn marian_separate_vocab() {
        let mut v = base("marian");
        v["share_encoder_decoder_embeddings"] = json!(false);
        v["decoder_vocab_size"] = json!(77);
        // Padding and the decoder start must exist in both vocabularies.
        let e = spec(v.clone()).err().unwrap().to_string();
        assert!(
            e.contains("pad_token_id 98 is outside the vocabulary of 77"),
            "{e}"
        );
        v["pad_token_id"] = json!(76);
        v["decoder_start_token_id"] = json!(76);
        let m = spec(v).unwrap();
        assert_eq!(
            (m.cfg.vocab_size, m.decoder_vocab_size, m.share_embeddings),
            (99, 77, false)
        );
    }
}
