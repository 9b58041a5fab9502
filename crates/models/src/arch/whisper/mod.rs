//! Whisper, after `transformers/models/whisper/modeling_whisper.py`.
//!
//! The encoder reads log-mel features `[B, n_mels, 2·max_source_positions]`: `conv1`
//! (kernel 3, stride 1, pad 1) and `conv2` (kernel 3, stride 2, pad 1), each followed by
//! GELU, run as im2col + one matmul with bias and GELU fused; then the stored sinusoidal
//! `embed_positions.weight` `[max_source_positions, d]` is added, then pre-LN layers and
//! `layer_norm`. Every frame is valid (no key masking). The decoder is the shared
//! [`TransformerDecoder`]: token embeddings plus learned positions (offset 0, scale 1),
//! pre-LN layers with one cross-attention block, `layer_norm`, and `proj_out` tied to
//! `embed_tokens`. Attention scores are scaled by 1/sqrt(head_dim); `k_proj` has no bias
//! (q, v and out do), so the fused Q/K/V and cross K/V biases carry zeros in K's rows.
//!
//! A CTranslate2 Whisper directory (config.json without `model_type`, a `model.bin` whose
//! spec is `WhisperSpec`) loads too: [`ct2_configs`] derives the config from the tensor
//! shapes and attributes, and the generation settings from CTranslate2's config.json and
//! vocabulary, as `tools/whisper/ct2_to_hf.py` does.

pub mod alignment;
pub mod segments;
pub mod words;

use std::collections::BTreeMap;
use std::path::Path;

use seqbridge_gpu::ops::conv::{Conv1d, ConvLayout, im2col_1d};
use seqbridge_gpu::ops::elementwise::add;
use seqbridge_gpu::ops::matmul::Activation;
use seqbridge_gpu::{DType, Recorder, Tensor};
use serde::Deserialize;

use crate::arch::Built;
use crate::config::ModelConfig;
use crate::decoder::TransformerDecoder;
use crate::encoder::{Encoder, EncoderInput, Memory, unpadded_stack};
use crate::error::{Error, Result};
use crate::generation::GenerationConfig;
use crate::io::Vars;
use crate::io::ctranslate2::ModelBin;
use crate::io::json::token_ids;
use crate::nn::{
    CrossAttention, CrossBlock, Embedding, FeedForward, Heads, Linear, Loader, Norm, PositionTable,
    Scratch, SelfAttention, TextEmbedding, TransformerLayer,
};

/// config.json of `WhisperConfig`: the fields the architecture reads.
#[derive(Clone, Debug, Deserialize)]
pub struct WhisperConfig {
    pub vocab_size: usize,
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub decoder_ffn_dim: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
    pub activation_function: Option<String>,
    pub scale_embedding: Option<bool>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub decoder_start_token_id: Option<u32>,
}

const LAYER_NORM_EPS: f32 = 1e-5;
/// Conv kernel width of both front-end convolutions.
const KERNEL: usize = 3;

/// `WhisperAttention` weight names.
const PROJ: [&str; 4] = ["q_proj", "k_proj", "v_proj", "out_proj"];

impl WhisperConfig {
    fn validate(&self, path: &Path) -> Result<Activation> {
        use crate::arch::limits::*;
        let ranges = [
            ("d_model", self.d_model, 1, WIDTH),
            ("num_mel_bins", self.num_mel_bins, 1, WIDTH),
            ("encoder_layers", self.encoder_layers, 1, LAYERS),
            ("decoder_layers", self.decoder_layers, 1, LAYERS),
            (
                "encoder_attention_heads",
                self.encoder_attention_heads,
                1,
                HEADS,
            ),
            (
                "decoder_attention_heads",
                self.decoder_attention_heads,
                1,
                HEADS,
            ),
            ("encoder_ffn_dim", self.encoder_ffn_dim, 1, FFN),
            ("decoder_ffn_dim", self.decoder_ffn_dim, 1, FFN),
            ("vocab_size", self.vocab_size, 1, VOCAB),
            (
                "max_source_positions",
                self.max_source_positions,
                1,
                POSITIONS,
            ),
            (
                "max_target_positions",
                self.max_target_positions,
                1,
                POSITIONS,
            ),
        ];
        for (key, value, min, max) in ranges {
            crate::arch::check_range(path, key, value, min, max)?;
        }
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        for (name, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if !self.d_model.is_multiple_of(heads) {
                return Err(err(format!(
                    "d_model {} is not divisible by {name} {heads}",
                    self.d_model
                )));
            }
        }
        if self.scale_embedding == Some(true) {
            return Err(err(
                "scale_embedding true is not supported for Whisper".into()
            ));
        }
        let ids = self
            .eos_token_id
            .iter()
            .flatten()
            .map(|&t| ("eos_token_id", t))
            .chain(self.pad_token_id.map(|t| ("pad_token_id", t)))
            .chain(self.bos_token_id.map(|t| ("bos_token_id", t)))
            .chain(
                self.decoder_start_token_id
                    .map(|t| ("decoder_start_token_id", t)),
            );
        crate::arch::check_tokens(path, self.vocab_size, ids)?;
        let act = self.activation_function.as_deref().unwrap_or("gelu");
        crate::arch::bart::parse_activation(act)
            .ok_or_else(|| err(format!("unsupported activation_function {act:?}")))
    }

    fn model_config(&self) -> ModelConfig {
        let eos = self.eos_token_id.clone().unwrap_or_default();
        ModelConfig {
            model_type: "whisper".into(),
            d_model: self.d_model,
            encoder_layers: self.encoder_layers,
            decoder_layers: self.decoder_layers,
            encoder_attention_heads: self.encoder_attention_heads,
            decoder_attention_heads: self.decoder_attention_heads,
            vocab_size: self.vocab_size,
            decoder_vocab_size: self.vocab_size,
            max_source_positions: Some(self.max_source_positions),
            max_target_positions: Some(self.max_target_positions),
            positions_key: "max_target_positions",
            pad_token_id: self
                .pad_token_id
                .or_else(|| eos.first().copied())
                .unwrap_or(0),
            bos_token_id: self.bos_token_id,
            eos_token_id: eos,
            decoder_start_token_id: self.decoder_start_token_id,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            num_mel_bins: Some(self.num_mel_bins),
        }
    }

    fn heads(&self, n: usize) -> Heads {
        let head_dim = self.d_model / n;
        Heads {
            num_heads: n,
            head_dim,
            scale: (head_dim as f32).powf(-0.5),
        }
    }
}

/// Whisper's audio encoder.
pub struct WhisperEncoder {
    /// `conv1` as a linear over im2col rows: `[d, n_mels·3]`, bias `[d]`.
    pub conv1: Linear,
    /// `conv2`: `[d, d·3]`, bias `[d]`.
    pub conv2: Linear,
    /// f32 `[max_source_positions, d]`: `embed_positions.weight`.
    pub embed_positions: Tensor,
    pub layers: Vec<TransformerLayer>,
    pub layer_norm: Norm,
    pub act: Activation,
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub max_source_positions: usize,
}

impl WhisperEncoder {
    /// (batch, frames) of a features input, checked.
    fn features<'a>(&self, input: &EncoderInput<'a>) -> Result<(&'a [f32], usize, usize)> {
        let EncoderInput::Features {
            data,
            batch,
            n_mels,
            frames,
        } = *input
        else {
            return Err(Error::Input(
                "Whisper's encoder reads log-mel features, not token ids".into(),
            ));
        };
        let want_frames = 2 * self.max_source_positions;
        if batch == 0 {
            return Err(Error::Input("no feature sequences given".into()));
        }
        if n_mels != self.num_mel_bins || frames != want_frames {
            return Err(Error::Input(format!(
                "features of {n_mels} mel bins × {frames} frames; the model reads {} × {want_frames} (pad or trim the audio to 30 s)",
                self.num_mel_bins
            )));
        }
        if data.len() != batch * n_mels * frames {
            return Err(Error::Input(format!(
                "{} feature values for [{batch}, {n_mels}, {frames}]",
                data.len()
            )));
        }
        Ok((data, batch, frames))
    }
}

impl Encoder for WhisperEncoder {
    fn check(&self, input: &EncoderInput) -> Result<()> {
        self.features(input).map(|_| ())
    }

    fn encode(&self, rec: &mut Recorder, input: &EncoderInput) -> Result<Memory> {
        let (data, b, frames) = self.features(input)?;
        let gpu = rec.gpu().clone();
        let (d, m) = (self.d_model, self.num_mel_bins);
        let x = gpu.upload(data, &[b, m, frames])?;
        let conv1 = Conv1d {
            batch: b,
            channels: m,
            t_in: frames,
            kernel: KERNEL,
            stride: 1,
            pad: 1,
            layout: ConvLayout::ChannelsFirst,
        };
        let cols1 = gpu.empty(&conv1.out_shape(), DType::F32)?;
        im2col_1d(rec, &x, &cols1, &conv1)?;
        let h1 = gpu.empty(&[b * frames, d], DType::F32)?;
        let flat = |t: &Tensor, rows: usize, cols: usize| t.reshape(&[rows, cols]);
        self.conv1.forward(
            rec,
            &flat(&cols1, b * frames, conv1.cols())?,
            &h1,
            self.act,
            None,
            0,
        )?;
        rec.split_point()?;
        let conv2 = Conv1d {
            channels: d,
            stride: 2,
            layout: ConvLayout::ChannelsLast,
            ..conv1
        };
        let s = conv2.t_out();
        let cols2 = gpu.empty(&conv2.out_shape(), DType::F32)?;
        im2col_1d(rec, &h1, &cols2, &conv2)?;
        let h2 = gpu.empty(&[b * s, d], DType::F32)?;
        self.conv2.forward(
            rec,
            &flat(&cols2, b * s, conv2.cols())?,
            &h2,
            self.act,
            None,
            0,
        )?;
        rec.split_point()?;
        let mut scratch = Scratch::new(&gpu, &self.layers, b * s, d)?;
        scratch.res.reset();
        let positions = self.embed_positions.view(0, &[s, d])?;
        add(rec, &h2, &positions, scratch.res.cur())?;
        let lengths = unpadded_stack(rec, &self.layers, &mut scratch, (b, s, d), &self.layer_norm)?;
        Ok(Memory {
            row_lengths: vec![s; b],
            states: scratch.res.cur().reshape(&[b, s, d])?,
            lengths,
            batch: b,
            len: s,
            dim: d,
        })
    }
}

/// Self-attention with Whisper's biases: q, v and out, none on k.
fn self_attention(ld: &Loader, v: &Vars, heads: Heads, d: usize) -> Result<SelfAttention> {
    let parts = [(v, PROJ[0], true), (v, PROJ[1], false), (v, PROJ[2], true)];
    Ok(SelfAttention {
        qkv_proj: Linear::load_fused_biases(ld, &parts, heads.inner(), d)?,
        out_proj: Linear::load(ld, v, PROJ[3], d, heads.inner(), true)?,
        heads,
    })
}

/// A `Conv1d` weight `[out, in, 3]` and bias as a linear over im2col rows `[out, in·3]`.
fn conv(ld: &Loader, v: &Vars, name: &str, out: usize, inp: usize) -> Result<Linear> {
    let v = v.pp(name);
    let w = v.matrix("weight", &[out, inp, KERNEL])?;
    let b = v.f32("bias", &[out])?;
    Linear::from_host(ld, &w, Some(&b), out, inp * KERNEL)
}

/// Loads a Whisper checkpoint (config already parsed) and uploads every weight once.
pub fn build(path: &Path, cfg: WhisperConfig, ld: &Loader, vars: &Vars) -> Result<Built> {
    let act = cfg.validate(path)?;
    let config = cfg.model_config();
    let d = cfg.d_model;
    let model = vars.pp("model");
    let (enc_v, dec_v) = (model.pp("encoder"), model.pp("decoder"));
    for (key, n, side) in [
        ("encoder_layers", cfg.encoder_layers, "encoder"),
        ("decoder_layers", cfg.decoder_layers, "decoder"),
    ] {
        let probe = |l| model.key(&format!("{side}.layers.{l}.fc1.weight"));
        crate::arch::check_layer_count(path, &model, (key, n), probe)?;
    }
    let ln = |v: &Vars, name: &str| Norm::layer(ld, v, name, d, LAYER_NORM_EPS);
    let feed_forward = |v: &Vars, ffn: usize| -> Result<FeedForward> {
        Ok(FeedForward::Plain {
            fc1: Linear::load(ld, v, "fc1", ffn, d, true)?,
            fc2: Linear::load(ld, v, "fc2", d, ffn, true)?,
            act,
        })
    };

    let enc_heads = cfg.heads(cfg.encoder_attention_heads);
    let enc_layers = (0..cfg.encoder_layers)
        .map(|i| {
            let v = enc_v.pp(&format!("layers.{i}"));
            Ok(TransformerLayer {
                self_attn: self_attention(ld, &v.pp("self_attn"), enc_heads, d)?,
                self_attn_norm: ln(&v, "self_attn_layer_norm")?,
                cross: Vec::new(),
                ffn: feed_forward(&v, cfg.encoder_ffn_dim)?,
                ffn_norm: ln(&v, "final_layer_norm")?,
                norm_first: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let src = cfg.max_source_positions;
    ld.check_table("model.encoder.embed_positions", src, d)?;
    let enc_pos = enc_v.pp("embed_positions").f32("weight", &[src, d])?;
    let encoder = WhisperEncoder {
        conv1: conv(ld, &enc_v, "conv1", d, cfg.num_mel_bins)?,
        conv2: conv(ld, &enc_v, "conv2", d, d)?,
        embed_positions: ld.upload_f32(&enc_pos, &[src, d])?,
        layers: enc_layers,
        layer_norm: ln(&enc_v, "layer_norm")?,
        act,
        num_mel_bins: cfg.num_mel_bins,
        d_model: d,
        max_source_positions: src,
    };

    let dec_heads = cfg.heads(cfg.decoder_attention_heads);
    let layer_vars: Vec<Vars> = (0..cfg.decoder_layers)
        .map(|i| dec_v.pp(&format!("layers.{i}")))
        .collect();
    let dec_layers = layer_vars
        .iter()
        .enumerate()
        .map(|(l, v)| {
            let cross = CrossAttention::load(
                ld,
                &v.pp("encoder_attn"),
                ("q_proj", "out_proj"),
                dec_heads,
                d,
                true,
                (0, l),
            )?;
            Ok(TransformerLayer {
                self_attn: self_attention(ld, &v.pp("self_attn"), dec_heads, d)?,
                self_attn_norm: ln(v, "self_attn_layer_norm")?,
                cross: vec![CrossBlock {
                    attn: cross,
                    norm: ln(v, "encoder_attn_layer_norm")?,
                }],
                ffn: feed_forward(v, cfg.decoder_ffn_dim)?,
                ffn_norm: ln(v, "final_layer_norm")?,
                norm_first: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cross_vars: Vec<Vars> = layer_vars.iter().map(|v| v.pp("encoder_attn")).collect();
    let kv_parts: Vec<(&Vars, &str, bool)> = cross_vars
        .iter()
        .flat_map(|v| [(v, "k_proj", false), (v, "v_proj", true)])
        .collect();
    let cross_kv_proj = Linear::load_fused_biases(ld, &kv_parts, d, d)?;

    let vocab = cfg.vocab_size;
    let tokens_w = dec_v.pp("embed_tokens").matrix("weight", &[vocab, d])?;
    let tokens = Embedding::from_host(ld, &tokens_w, vocab, d)?;
    // proj_out is tied to embed_tokens (WhisperForConditionalGeneration's only layout).
    let lm_head = tokens.as_linear(None, ld)?;
    let tgt = cfg.max_target_positions;
    ld.check_table("model.decoder.embed_positions", tgt, d)?;
    let dec_pos = dec_v.pp("embed_positions").f32("weight", &[tgt, d])?;
    let decoder = TransformerDecoder {
        embed: TextEmbedding {
            tokens,
            positions: Some(PositionTable {
                table: ld.upload_f32(&dec_pos, &[tgt, d])?,
                offset: 0,
                max_positions: tgt,
            }),
            scale: 1.0,
            norm: None,
        },
        layers: dec_layers,
        final_norm: Some(ln(&dec_v, "layer_norm")?),
        lm_head,
        cross_kv_proj: vec![cross_kv_proj],
        position_bias: Vec::new(),
        d_model: d,
    };
    Ok(Built {
        config,
        encoder: Box::new(encoder),
        decoder: Box::new(decoder),
    })
}

/// The spec name of CTranslate2's Whisper models.
pub const CT2_SPEC: &str = "WhisperSpec";

/// For a CTranslate2 Whisper directory: a Hugging Face style config.json text (from the
/// tensor shapes and attributes of `bin`) and the generation config (from CTranslate2's
/// config.json and the vocabulary), as `tools/whisper/ct2_to_hf.py` derives them.
pub fn ct2_configs(dir: &Path, bin: &ModelBin) -> Result<(String, GenerationConfig)> {
    let path = dir.join(crate::io::ctranslate2::MODEL_FILE);
    let err = |msg: String| Error::Config {
        path: path.clone(),
        msg,
    };
    let shape = |name: &str| {
        bin.shape(name)
            .ok_or_else(|| err(format!("a Whisper model.bin without {name}")))
    };
    let attr = |name: &str| {
        bin.attribute(name)
            .and_then(|a| a.as_int())
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| err(format!("a Whisper model.bin without the attribute {name}")))
    };
    let layers = |side: &str| {
        (0..)
            .take_while(|l| bin.contains(&format!("{side}/layer_{l}/ffn/linear_0/weight")))
            .count()
    };
    let conv1 = shape("encoder/conv1/weight")?;
    let emb = shape("decoder/embeddings/weight")?;
    let (d, n_mels, vocab) = (conv1[0], conv1[1], emb[0]);
    let vocab_tokens = crate::io::ctranslate2::vocabulary(dir)?
        .ok_or_else(|| err("no vocabulary.txt or vocabulary.json beside model.bin".into()))?;
    let id = |tok: &str| {
        vocab_tokens
            .iter()
            .position(|t| t == tok)
            .map(|i| i as u32)
            .ok_or_else(|| err(format!("the vocabulary has no {tok}")))
    };
    let (eot, sot) = (id("<|endoftext|>")?, id("<|startoftranscript|>")?);
    let (translate, transcribe) = (id("<|translate|>")?, id("<|transcribe|>")?);
    let no_timestamps = id("<|notimestamps|>")?;
    let lang_to_id: BTreeMap<String, u32> = vocab_tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            let i = *i as u32;
            sot < i && i < translate && is_language_token(t)
        })
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let cfg = serde_json::json!({
        "model_type": "whisper",
        "vocab_size": vocab,
        "num_mel_bins": n_mels,
        "d_model": d,
        "encoder_layers": layers("encoder"),
        "encoder_attention_heads": attr("encoder/num_heads")?,
        "encoder_ffn_dim": shape("encoder/layer_0/ffn/linear_0/weight")?[0],
        "decoder_layers": layers("decoder"),
        "decoder_attention_heads": attr("decoder/num_heads")?,
        "decoder_ffn_dim": shape("decoder/layer_0/ffn/linear_0/weight")?[0],
        "max_source_positions": shape("encoder/position_encodings/encodings")?[0],
        "max_target_positions": shape("decoder/position_encodings/encodings")?[0],
        "activation_function": "gelu",
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": sot,
    });
    let ct2 = crate::io::ctranslate2::config(dir)?.unwrap_or_default();
    fn field<T: serde::de::DeserializeOwned>(
        dir: &Path,
        ct2: &serde_json::Value,
        key: &str,
    ) -> Result<Option<T>> {
        ct2.get(key)
            .map(|v| {
                serde_json::from_value::<T>(v.clone()).map_err(|e| Error::Config {
                    path: dir.join("config.json"),
                    msg: format!("{key}: {e}"),
                })
            })
            .transpose()
    }
    let ids = |key: &str| field::<Vec<u32>>(dir, &ct2, key);
    let generation = GenerationConfig {
        max_length: Some(cfg["max_target_positions"].as_u64().unwrap_or(448) as usize),
        eos_token_id: Some(vec![eot]),
        pad_token_id: Some(eot),
        bos_token_id: Some(eot),
        decoder_start_token_id: Some(sot),
        suppress_tokens: ids("suppress_ids")?,
        begin_suppress_tokens: ids("suppress_ids_begin")?,
        no_timestamps_token_id: Some(no_timestamps),
        // As openai-whisper and transformers decide it.
        is_multilingual: Some(vocab >= 51865),
        lang_to_id: Some(lang_to_id),
        task_to_id: Some(BTreeMap::from([
            ("transcribe".to_string(), transcribe),
            ("translate".to_string(), translate),
        ])),
        alignment_heads: field(dir, &ct2, "alignment_heads")?,
        // openai-whisper's max_initial_timestamp of 1 s, as transformers' configs carry it.
        max_initial_timestamp_index: Some(50),
        ..Default::default()
    };
    Ok((cfg.to_string(), generation))
}

/// `<|xx|>` or `<|xxx|>` with lowercase ASCII letters.
fn is_language_token(t: &str) -> bool {
    language_code(t).is_some()
}

/// The code of a language token (`<|en|>` → `en`).
pub(crate) fn language_code(t: &str) -> Option<&str> {
    t.strip_prefix("<|")
        .and_then(|t| t.strip_suffix("|>"))
        .filter(|code| {
            (2..=3).contains(&code.len()) && code.bytes().all(|c| c.is_ascii_lowercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::json::parse_json;
    use serde_json::json;

    fn tiny() -> serde_json::Value {
        json!({"model_type": "whisper", "vocab_size": 100, "num_mel_bins": 8, "d_model": 16,
               "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 32,
               "decoder_layers": 2, "decoder_attention_heads": 4, "decoder_ffn_dim": 32,
               "max_source_positions": 10, "max_target_positions": 12,
               "eos_token_id": 50, "pad_token_id": 50, "decoder_start_token_id": 51})
    }

    fn validate(v: serde_json::Value) -> Result<Activation> {
        let path = Path::new("config.json");
        parse_json::<WhisperConfig>(path, &v.to_string())?.validate(path)
    }

    #[test]
    fn config_is_checked() {
        assert_eq!(validate(tiny()).unwrap(), Activation::Gelu);
        let mut v = tiny();
        v["decoder_attention_heads"] = json!(3);
        let e = validate(v).unwrap_err().to_string();
        assert!(e.contains("decoder_attention_heads 3"), "{e}");
        let mut v = tiny();
        v["decoder_start_token_id"] = json!(100);
        let e = validate(v).unwrap_err().to_string();
        assert!(e.contains("decoder_start_token_id 100"), "{e}");
    }

    #[test]
    fn language_tokens() {
        assert!(is_language_token("<|en|>") && is_language_token("<|haw|>"));
        assert!(!is_language_token("<|notimestamps|>") && !is_language_token("<|EN|>"));
    }
}
