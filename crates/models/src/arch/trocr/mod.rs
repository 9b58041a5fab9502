//! TrOCR's decoder as the decoder of a `VisionEncoderDecoderModel` (weights under
//! `decoder.`), after `transformers/models/trocr/modeling_trocr.py`: the microsoft/trocr
//! layout.
//!
//! BART's decoder layer, post-norm (`self_attn`, `self_attn_layer_norm`, `encoder_attn`,
//! `encoder_attn_layer_norm`, `fc1`, `fc2`, `final_layer_norm`), no final norm. Token
//! embeddings scaled by sqrt(d_model) with `scale_embedding`; positions learned
//! (`embed_positions`, offset 2, trocr-base) or sinusoidal (M2M100's table, numbered from
//! `pad_token_id + 1`, trocr-small); `layernorm_embedding` when set. `encoder_attn`'s K/V
//! read the encoder's width (`cross_attention_hidden_size`), so no `enc_to_dec_proj`.
//! `output_projection` is tied to `embed_tokens` unless `tie_word_embeddings` is false.

use std::path::Path;

use seqbridge_gpu::ops::matmul::Activation;
use serde::Deserialize;

use crate::arch::bart::m2m_100::M2M100SinusoidalPositionalEmbedding;
use crate::decoder::TransformerDecoder;
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::token_ids;
use crate::nn::{
    CrossAttention, CrossBlock, Embedding, FeedForward, Heads, Linear, Loader, Norm, PositionTable,
    SelfAttention, TextEmbedding, TransformerLayer,
};

/// The decoder sub-config (`TrOCRConfig`): the fields the decoder reads.
#[derive(Clone, Debug, Deserialize)]
pub struct TrocrConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub decoder_ffn_dim: usize,
    pub activation_function: Option<String>,
    pub max_position_embeddings: usize,
    pub scale_embedding: Option<bool>,
    pub use_learned_position_embeddings: Option<bool>,
    pub layernorm_embedding: Option<bool>,
    pub cross_attention_hidden_size: Option<usize>,
    pub tie_word_embeddings: Option<bool>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub decoder_start_token_id: Option<u32>,
}

const PROJ: [&str; 4] = ["q_proj", "k_proj", "v_proj", "out_proj"];
const LAYER_NORM_EPS: f32 = 1e-5;

impl TrocrConfig {
    /// Checks the sizes (keys named as `{prefix}.key`) and returns the activation.
    pub fn validate(&self, path: &Path, prefix: &str) -> Result<Activation> {
        use crate::arch::limits::*;
        let ranges = [
            ("vocab_size", self.vocab_size, 1, VOCAB),
            ("d_model", self.d_model, 1, WIDTH),
            ("decoder_layers", self.decoder_layers, 1, LAYERS),
            (
                "decoder_attention_heads",
                self.decoder_attention_heads,
                1,
                HEADS,
            ),
            ("decoder_ffn_dim", self.decoder_ffn_dim, 1, FFN),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1,
                POSITIONS,
            ),
            ("cross_attention_hidden_size", self.cross_width(), 1, WIDTH),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, &format!("{prefix}.{key}"), value, min, max)?;
        }
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        if !self.d_model.is_multiple_of(self.decoder_attention_heads) {
            return Err(err(format!(
                "{prefix}.d_model {} is not divisible by {prefix}.decoder_attention_heads {}",
                self.d_model, self.decoder_attention_heads
            )));
        }
        let ids = self
            .eos_token_id
            .iter()
            .flatten()
            .map(|&t| ("eos_token_id", t))
            .chain(self.bos_token_id.map(|t| ("bos_token_id", t)))
            .chain(self.pad_token_id.map(|t| ("pad_token_id", t)))
            .chain(
                self.decoder_start_token_id
                    .map(|t| ("decoder_start_token_id", t)),
            );
        crate::arch::check_tokens(path, self.vocab_size, ids)?;
        if !self.learned_positions() && self.pad_token_id.is_none() {
            return Err(err(format!(
                "{prefix}.pad_token_id is needed by the sinusoidal positions (use_learned_position_embeddings false)"
            )));
        }
        let act = self.activation_function.as_deref().unwrap_or("gelu");
        crate::arch::bart::parse_activation(act)
            .ok_or_else(|| err(format!("unsupported {prefix}.activation_function {act:?}")))
    }

    fn learned_positions(&self) -> bool {
        self.use_learned_position_embeddings.unwrap_or(true)
    }

    /// The width of the memory `encoder_attn` reads.
    pub fn cross_width(&self) -> usize {
        self.cross_attention_hidden_size.unwrap_or(self.d_model)
    }
}

/// Loads the decoder under `vars` (`decoder.` of a VisionEncoderDecoderModel).
pub fn build_decoder(
    cfg: &TrocrConfig,
    act: Activation,
    ld: &Loader,
    vars: &Vars,
) -> Result<TransformerDecoder> {
    let d = cfg.d_model;
    let kd = cfg.cross_width();
    let dec = vars.pp("model").pp("decoder");
    let head_dim = d / cfg.decoder_attention_heads;
    let heads = Heads {
        num_heads: cfg.decoder_attention_heads,
        head_dim,
        scale: (head_dim as f32).powf(-0.5),
    };
    let ln = |v: &Vars, name: &str| Norm::layer(ld, v, name, d, LAYER_NORM_EPS);
    let layer_vars: Vec<Vars> = (0..cfg.decoder_layers)
        .map(|i| dec.pp(&format!("layers.{i}")))
        .collect();
    let layers = layer_vars
        .iter()
        .enumerate()
        .map(|(l, v)| {
            let cross = CrossAttention::load(
                ld,
                &v.pp("encoder_attn"),
                (PROJ[0], PROJ[3]),
                heads,
                d,
                true,
                (0, l),
            )?;
            Ok(TransformerLayer {
                self_attn: SelfAttention::load(ld, &v.pp("self_attn"), PROJ, heads, d, true)?,
                self_attn_norm: ln(v, "self_attn_layer_norm")?,
                cross: vec![CrossBlock {
                    attn: cross,
                    norm: ln(v, "encoder_attn_layer_norm")?,
                }],
                ffn: FeedForward::Plain {
                    fc1: Linear::load(ld, v, "fc1", cfg.decoder_ffn_dim, d, true)?,
                    fc2: Linear::load(ld, v, "fc2", d, cfg.decoder_ffn_dim, true)?,
                    act,
                },
                ffn_norm: ln(v, "final_layer_norm")?,
                norm_first: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cross_vars: Vec<Vars> = layer_vars.iter().map(|v| v.pp("encoder_attn")).collect();
    let kv_parts: Vec<(&Vars, &str)> = cross_vars
        .iter()
        .flat_map(|v| [(v, PROJ[1]), (v, PROJ[2])])
        .collect();
    let cross_kv_proj = Linear::load_fused(ld, &kv_parts, d, kd, true)?;

    let vocab = cfg.vocab_size;
    let tokens_w = dec.pp("embed_tokens").matrix("weight", &[vocab, d])?;
    let tokens = Embedding::from_host(ld, &tokens_w, vocab, d)?;
    let lm_head = if cfg.tie_word_embeddings.unwrap_or(true) {
        tokens.as_linear(None, ld)?
    } else {
        Linear::load(ld, vars, "output_projection", vocab, d, false)?
    };
    let n_pos = cfg.max_position_embeddings;
    let positions = if cfg.learned_positions() {
        // TrOCRLearnedPositionalEmbedding: `[max_position_embeddings + 2, D]`, offset 2.
        let rows = n_pos + 2;
        ld.check_table("decoder.model.decoder.embed_positions", rows, d)?;
        let table = dec.pp("embed_positions").f32("weight", &[rows, d])?;
        PositionTable {
            table: ld.upload_f32(&table, &[rows, d])?,
            offset: 2,
            max_positions: n_pos,
        }
    } else {
        // Same tensor2tensor table and numbering from the pad id as M2M100's.
        M2M100SinusoidalPositionalEmbedding::load(ld, cfg.pad_token_id.unwrap_or(1), n_pos, d)?
    };
    let norm = if cfg.layernorm_embedding.unwrap_or(true) {
        Some(ln(&dec, "layernorm_embedding")?)
    } else {
        None
    };
    Ok(TransformerDecoder {
        embed: TextEmbedding {
            tokens,
            positions: Some(positions),
            scale: if cfg.scale_embedding == Some(true) {
                (d as f32).sqrt()
            } else {
                1.0
            },
            norm,
        },
        layers,
        final_norm: None,
        lm_head,
        cross_kv_proj: vec![cross_kv_proj],
        position_bias: Vec::new(),
        d_model: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::json::parse_json;
    use serde_json::json;

    #[test]
    fn config_is_checked() {
        let base = json!({"vocab_size": 50, "d_model": 12, "decoder_layers": 2,
                          "decoder_attention_heads": 3, "decoder_ffn_dim": 20,
                          "max_position_embeddings": 16, "cross_attention_hidden_size": 8,
                          "eos_token_id": 2, "pad_token_id": 1});
        let parse = |v: serde_json::Value| -> TrocrConfig {
            parse_json(Path::new("c.json"), &v.to_string()).unwrap()
        };
        let path = Path::new("c.json");
        let c = parse(base.clone());
        assert_eq!(c.validate(path, "decoder").unwrap(), Activation::Gelu);
        assert_eq!(c.cross_width(), 8);
        let mut v = base.clone();
        v["decoder_attention_heads"] = json!(5);
        let e = parse(v).validate(path, "decoder").unwrap_err().to_string();
        assert!(e.contains("decoder.d_model 12"), "{e}");
        let mut v = base;
        v["use_learned_position_embeddings"] = json!(false);
        v["pad_token_id"] = serde_json::Value::Null;
        let e = parse(v).validate(path, "decoder").unwrap_err().to_string();
        assert!(e.contains("decoder.pad_token_id"), "{e}");
    }
}
