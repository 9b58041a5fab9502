//! T5, T5 v1.1 / flan-t5, mT5 and umT5, after `transformers/models/t5/modeling_t5.py` (and
//! `mt5`, `umt5`): pre-norm blocks with RMSNorm (`T5LayerNorm`), no biases anywhere,
//! unscaled attention scores, no position embeddings but a relative position bias added to
//! the self-attention scores (bidirectional buckets in the encoder, causal in the decoder),
//! learned by the first layer of each stack and shared by the others (umT5: one per layer).
//! The feed-forward is `wi → act → wo` (v1.0, relu) or gated `act(wi_0) ⊙ wi_1 → wo`
//! (v1.1, mT5: gelu_new). The lm_head is `lm_head.weight` when the checkpoint has it, else
//! the shared embedding. T5 and umT5 scale the decoder output by d_model^-0.5 unless
//! config.json says `scale_decoder_outputs: false` or, in older configs,
//! `tie_word_embeddings: false` (mT5 never does); the scale is folded here into the final
//! norm's weight.

use seqbridge_gpu::ops::matmul::Activation;
use serde::Deserialize;

use crate::arch::Built;
use crate::config::ModelConfig;
use crate::decoder::TransformerDecoder;
use crate::encoder::TransformerEncoder;
use crate::error::{Error, Result};
use crate::io::Vars;
use crate::io::json::token_ids;
use crate::nn::{
    CrossAttention, CrossBlock, Embedding, FeedForward, Heads, Linear, Loader, Norm,
    RelativePositionBias, SelfAttention, TextEmbedding, TransformerLayer,
};

/// config.json of `T5Config`, `MT5Config` and `UMT5Config`: the fields the architecture reads.
#[derive(Clone, Debug, Deserialize)]
pub struct T5Config {
    pub model_type: String,
    pub vocab_size: usize,
    pub d_model: usize,
    /// Head size (inner width = num_heads · d_kv, not necessarily d_model).
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    /// Defaults to num_layers.
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    pub relative_attention_num_buckets: Option<usize>,
    pub relative_attention_max_distance: Option<usize>,
    pub layer_norm_epsilon: Option<f32>,
    /// `relu`, `gelu`, `gated-gelu` (gelu_new), `gated-silu`, ...
    pub feed_forward_proj: Option<String>,
    pub tie_word_embeddings: Option<bool>,
    /// Written by transformers 5 beside `tie_word_embeddings` (which it then forces to true);
    /// older configs only have the latter.
    pub scale_decoder_outputs: Option<bool>,
    pub pad_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub decoder_start_token_id: Option<u32>,
}

/// `T5Config.feed_forward_proj` → (gated, activation), as transformers parses it.
fn feed_forward_proj(name: &str) -> Option<(bool, Activation)> {
    let (gated, act) = match name.split_once('-') {
        Some(("gated", act)) => (true, act),
        Some(_) => return None,
        None => (false, name),
    };
    // "gated-gelu" means gelu_new for backwards compatibility.
    let act = if name == "gated-gelu" {
        "gelu_new"
    } else {
        act
    };
    Some((gated, crate::arch::bart::parse_activation(act)?))
}

/// The [`ModelConfig`] and the switches of a T5 config, validated.
struct Spec {
    cfg: T5Config,
    decoder_layers: usize,
    gated: bool,
    act: Activation,
    /// transformers' `scale_decoder_outputs`.
    scale_output: bool,
    buckets: usize,
    max_distance: usize,
    eps: f32,
}

impl Spec {
    fn new(path: &std::path::Path, cfg: T5Config) -> Result<Spec> {
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        let proj = cfg
            .feed_forward_proj
            .as_deref()
            .unwrap_or(match cfg.model_type.as_str() {
                "t5" => "relu",
                _ => "gated-gelu",
            });
        let (gated, act) = feed_forward_proj(proj)
            .ok_or_else(|| err(format!("unsupported feed_forward_proj {proj:?}")))?;
        use crate::arch::limits::*;
        let decoder_layers = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
        let buckets = cfg.relative_attention_num_buckets.unwrap_or(32);
        let max_distance = cfg.relative_attention_max_distance.unwrap_or(128);
        // Layer counts may be 0 here: `check_layer_count` refuses 0 in `build`, naming the
        // layers the checkpoint holds.
        let ranges = [
            ("d_model", cfg.d_model, 1, WIDTH),
            ("d_kv", cfg.d_kv, 1, WIDTH),
            ("num_heads", cfg.num_heads, 1, HEADS),
            ("d_ff", cfg.d_ff, 1, FFN),
            ("num_layers", cfg.num_layers, 0, LAYERS),
            ("num_decoder_layers", decoder_layers, 0, LAYERS),
            ("vocab_size", cfg.vocab_size, 1, VOCAB),
            ("relative_attention_num_buckets", buckets, 4, 1 << 16),
            (
                "relative_attention_max_distance",
                max_distance,
                1,
                POSITIONS,
            ),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, key, value, min, max)?;
        }
        let inner = cfg.num_heads * cfg.d_kv;
        crate::arch::check_range(path, "num_heads × d_kv", inner, 1, WIDTH)?;
        let pad = cfg.pad_token_id.unwrap_or(0);
        let ids = cfg
            .eos_token_id
            .iter()
            .flatten()
            .map(|&t| ("eos_token_id", t));
        let ids = ids.chain([("pad_token_id", pad)]).chain(
            cfg.decoder_start_token_id
                .map(|t| ("decoder_start_token_id", t)),
        );
        crate::arch::check_tokens(path, cfg.vocab_size, ids)?;
        Ok(Spec {
            decoder_layers,
            gated,
            act,
            scale_output: cfg.model_type != "mt5"
                && cfg
                    .scale_decoder_outputs
                    .unwrap_or(cfg.tie_word_embeddings != Some(false)),
            buckets,
            max_distance,
            eps: cfg.layer_norm_epsilon.unwrap_or(1e-6),
            cfg,
        })
    }

    fn model_config(&self) -> ModelConfig {
        let c = &self.cfg;
        let pad = c.pad_token_id.unwrap_or(0);
        ModelConfig {
            model_type: c.model_type.clone(),
            d_model: c.d_model,
            encoder_layers: c.num_layers,
            decoder_layers: self.decoder_layers,
            encoder_attention_heads: c.num_heads,
            decoder_attention_heads: c.num_heads,
            vocab_size: c.vocab_size,
            decoder_vocab_size: c.vocab_size,
            max_source_positions: None,
            max_target_positions: None,
            positions_key: "positions",
            pad_token_id: pad,
            bos_token_id: None,
            eos_token_id: c.eos_token_id.clone().unwrap_or(vec![1]),
            decoder_start_token_id: Some(c.decoder_start_token_id.unwrap_or(pad)),
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            num_mel_bins: None,
        }
    }

    fn heads(&self) -> Heads {
        Heads {
            num_heads: self.cfg.num_heads,
            head_dim: self.cfg.d_kv,
            scale: 1.0,
        }
    }

    /// `DenseReluDense` (`wi`, `wo`) or `T5DenseGatedActDense` (`wi_0`, `wi_1`, `wo`).
    fn feed_forward(&self, ld: &Loader, v: &Vars) -> Result<FeedForward> {
        let (d, f, act) = (self.cfg.d_model, self.cfg.d_ff, self.act);
        let v = v.pp("DenseReluDense");
        let wo = Linear::load(ld, &v, "wo", d, f, false)?;
        Ok(if self.gated {
            let wi = Linear::load_fused(ld, &[(&v, "wi_0"), (&v, "wi_1")], f, d, false)?;
            FeedForward::Gated { wi, wo, act }
        } else {
            let fc1 = Linear::load(ld, &v, "wi", f, d, false)?;
            FeedForward::Plain { fc1, fc2: wo, act }
        })
    }

    fn norm(&self, ld: &Loader, v: &Vars, name: &str, scale: f32) -> Result<Norm> {
        Norm::rms(ld, v, name, self.cfg.d_model, self.eps, scale)
    }

    /// The relative position bias of a stack: layer 0's, or every layer's (umT5).
    fn position_bias(
        &self,
        ld: &Loader,
        stack: &Vars,
        layers: usize,
        attn: &str,
        bidirectional: bool,
    ) -> Result<Vec<RelativePositionBias>> {
        let per_layer = self.cfg.model_type == "umt5";
        (0..if per_layer { layers } else { layers.min(1) })
            .map(|l| {
                let v = stack.pp(&format!("block.{l}.layer.0.{attn}"));
                let dims = (self.buckets, self.cfg.num_heads, self.max_distance);
                RelativePositionBias::load(ld, &v, "relative_attention_bias", dims, bidirectional)
            })
            .collect()
    }
}

/// `T5Attention` weight names.
const PROJ: [&str; 4] = ["q", "k", "v", "o"];

/// Loads a T5-family checkpoint (config already parsed) and uploads every weight once.
pub fn build(path: &std::path::Path, cfg: T5Config, ld: &Loader, vars: &Vars) -> Result<Built> {
    let spec = Spec::new(path, cfg)?;
    let config = spec.model_config();
    let (c, heads) = (&spec.cfg, spec.heads());
    let (d, v) = (c.d_model, c.vocab_size);
    let shared_key = ["shared", "encoder.embed_tokens"]
        .into_iter()
        .find(|k| vars.contains(&format!("{k}.weight")))
        .unwrap_or("shared");
    let shared = Embedding::from_host(ld, &vars.pp(shared_key).matrix("weight", &[v, d])?, v, d)?;
    let (enc_v, dec_v) = (vars.pp("encoder"), vars.pp("decoder"));
    for (key, n, side) in [
        ("num_layers", c.num_layers, "encoder"),
        ("num_decoder_layers", spec.decoder_layers, "decoder"),
    ] {
        let probe = |l| format!("{side}.block.{l}.layer.0.layer_norm.weight");
        crate::arch::check_layer_count(path, vars, (key, n), probe)?;
    }
    let embed = |tokens: Embedding| TextEmbedding {
        tokens,
        positions: None,
        scale: 1.0,
        norm: None,
    };

    let enc_layers = (0..c.num_layers)
        .map(|i| {
            let b = enc_v.pp(&format!("block.{i}.layer"));
            let (sa, ff) = (b.pp("0"), b.pp("1"));
            Ok(TransformerLayer {
                self_attn: SelfAttention::load(ld, &sa.pp("SelfAttention"), PROJ, heads, d, false)?,
                self_attn_norm: spec.norm(ld, &sa, "layer_norm", 1.0)?,
                cross: Vec::new(),
                ffn: spec.feed_forward(ld, &ff)?,
                ffn_norm: spec.norm(ld, &ff, "layer_norm", 1.0)?,
                norm_first: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let encoder = TransformerEncoder {
        embed: embed(shared.clone()),
        position_bias: spec.position_bias(ld, &enc_v, c.num_layers, "SelfAttention", true)?,
        layers: enc_layers,
        final_norm: Some(spec.norm(ld, &enc_v, "final_layer_norm", 1.0)?),
        d_model: d,
        pad_token_id: config.pad_token_id,
        max_positions: None,
        positions_key: "positions",
    };

    let block_vars: Vec<Vars> = (0..spec.decoder_layers)
        .map(|i| dec_v.pp(&format!("block.{i}.layer")))
        .collect();
    let dec_layers = block_vars
        .iter()
        .enumerate()
        .map(|(l, b)| {
            let (sa, ca, ff) = (b.pp("0"), b.pp("1"), b.pp("2"));
            let cross = CrossAttention::load(
                ld,
                &ca.pp("EncDecAttention"),
                ("q", "o"),
                heads,
                d,
                false,
                (0, l),
            )?;
            Ok(TransformerLayer {
                self_attn: SelfAttention::load(ld, &sa.pp("SelfAttention"), PROJ, heads, d, false)?,
                self_attn_norm: spec.norm(ld, &sa, "layer_norm", 1.0)?,
                cross: vec![CrossBlock {
                    attn: cross,
                    norm: spec.norm(ld, &ca, "layer_norm", 1.0)?,
                }],
                ffn: spec.feed_forward(ld, &ff)?,
                ffn_norm: spec.norm(ld, &ff, "layer_norm", 1.0)?,
                norm_first: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cross_vars: Vec<Vars> = block_vars
        .iter()
        .map(|b| b.pp("1.EncDecAttention"))
        .collect();
    let kv_parts: Vec<(&Vars, &str)> = cross_vars
        .iter()
        .flat_map(|v| [(v, "k"), (v, "v")])
        .collect();
    let cross_kv_proj = Linear::load_fused(ld, &kv_parts, heads.inner(), d, false)?;
    let lm_head = if vars.contains("lm_head.weight") {
        let w = vars.pp("lm_head").matrix("weight", &[v, d])?;
        Linear::from_host(ld, &w, None, v, d)?
    } else {
        shared.as_linear(None, ld)?
    };
    let out_scale = if spec.scale_output {
        (d as f32).powf(-0.5)
    } else {
        1.0
    };
    let decoder = TransformerDecoder {
        embed: embed(shared),
        position_bias: spec.position_bias(
            ld,
            &dec_v,
            spec.decoder_layers,
            "SelfAttention",
            false,
        )?,
        layers: dec_layers,
        final_norm: Some(spec.norm(ld, &dec_v, "final_layer_norm", out_scale)?),
        lm_head,
        cross_kv_proj: vec![cross_kv_proj],
        d_model: d,
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

    #[test]
    fn feed_forward_proj_as_transformers_parses_it() {
        assert_eq!(feed_forward_proj("relu"), Some((false, Activation::Relu)));
        assert_eq!(
            feed_forward_proj("gated-gelu"),
            Some((true, Activation::GeluTanh))
        );
        assert_eq!(feed_forward_proj("gelu"), Some((false, Activation::Gelu)));
        assert_eq!(
            feed_forward_proj("gated-silu"),
            Some((true, Activation::Silu))
        );
        assert_eq!(
            feed_forward_proj("gated-gelu_new"),
            Some((true, Activation::GeluTanh))
        );
        assert_eq!(feed_forward_proj("double-relu"), None);
        assert_eq!(feed_forward_proj("mish"), None);
    }
}
