//! config.json of every supported `model_type`, normalised into one [`ModelConfig`], and
//! generation_config.json into one [`GenerationConfig`].
//!
//! The architecture flags (pre/post layer norm, embedding layer norm, final layer norms,
//! kind of positions) follow the Hugging Face class of each model_type, exactly as
//! transformers does: `BartConfig` carries `normalize_before` and friends, but
//! `BartForConditionalGeneration` ignores them, and so do we.

use std::path::{Path, PathBuf};

use seqbridge_gpu::ops::matmul::Activation;
use serde_json::Value;

use crate::error::{Error, Result};

/// The Hugging Face `model_type`s this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelType {
    Marian,
    Bart,
    MBart,
    Pegasus,
    M2M100,
}

impl ModelType {
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Marian => "marian",
            ModelType::Bart => "bart",
            ModelType::MBart => "mbart",
            ModelType::Pegasus => "pegasus",
            ModelType::M2M100 => "m2m_100",
        }
    }
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

/// One normalised architecture description (HF names in comments).
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub model_type: ModelType,
    /// `d_model`
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    /// Source vocabulary (`vocab_size`).
    pub vocab_size: usize,
    /// Target vocabulary: `decoder_vocab_size` (Marian with separate embeddings), else vocab_size.
    pub decoder_vocab_size: usize,
    pub max_position_embeddings: usize,
    /// `activation_function`
    pub activation: Activation,
    /// Token embeddings multiplied by sqrt(d_model) (`scale_embedding`).
    pub scale_embedding: bool,
    /// Pre-layer-norm blocks (mBART, Pegasus, M2M100) instead of post (BART, Marian).
    pub normalize_before: bool,
    /// `layernorm_embedding` after embeddings (BART, mBART).
    pub layernorm_embedding: bool,
    /// `encoder.layer_norm` / `decoder.layer_norm` after the last layer (mBART, Pegasus, M2M100).
    pub final_layer_norm: bool,
    pub positions: Positions,
    /// `share_encoder_decoder_embeddings` (Marian; always true for the others).
    pub share_embeddings: bool,
    /// lm_head tied to the decoder token embeddings (`tie_word_embeddings`).
    pub tie_word_embeddings: bool,
    /// The model has a `final_logits_bias` buffer (all but M2M100).
    pub has_final_logits_bias: bool,
    pub layer_norm_eps: f32,
    pub pad_token_id: u32,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Vec<u32>,
    pub decoder_start_token_id: Option<u32>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        msg: format!("invalid JSON: {e}"),
    })
}

/// Typed reads of a JSON object, with errors naming the file and key.
struct Fields<'a> {
    path: &'a Path,
    v: &'a Value,
}

impl Fields<'_> {
    fn err(&self, msg: String) -> Error {
        Error::Config {
            path: self.path.to_path_buf(),
            msg,
        }
    }
    fn get(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }
    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.err(format!("{key} must be a non-negative integer, found {v}"))
            }),
        }
    }
    fn usize(&self, key: &str) -> Result<usize> {
        self.usize_opt(key)?
            .ok_or_else(|| self.err(format!("missing {key}")))
    }
    fn u32_opt(&self, key: &str) -> Result<Option<u32>> {
        Ok(self.usize_opt(key)?.map(|n| n as u32))
    }
    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a number, found {v}"))),
        }
    }
    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be true or false, found {v}"))),
        }
    }
    /// An id or a list of ids (`eos_token_id: 2` or `[2, 3]`).
    fn ids_opt(&self, key: &str) -> Result<Option<Vec<u32>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().map(|n| n as u32))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a list of token ids"))),
            Some(v) => v.as_u64().map(|n| Some(vec![n as u32])).ok_or_else(|| {
                self.err(format!(
                    "{key} must be a token id or a list of ids, found {v}"
                ))
            }),
        }
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

impl ModelConfig {
    /// Reads `config.json`.
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let v = read_json(path)?;
        ModelConfig::from_json(path, &v)
    }

    pub(crate) fn from_json(path: &Path, v: &Value) -> Result<ModelConfig> {
        let f = Fields { path, v };
        let model_type = match f.get("model_type").and_then(Value::as_str) {
            Some("marian") => ModelType::Marian,
            Some("bart") => ModelType::Bart,
            Some("mbart") => ModelType::MBart,
            Some("pegasus") => ModelType::Pegasus,
            Some("m2m_100") => ModelType::M2M100,
            other => {
                return Err(Error::UnknownModelType {
                    path: path.to_path_buf(),
                    model_type: other.map_or_else(|| "(absent)".to_string(), str::to_string),
                });
            }
        };
        let (
            normalize_before,
            layernorm_embedding,
            final_layer_norm,
            positions,
            has_final_logits_bias,
        ) = match model_type {
            ModelType::Bart => (false, true, false, Positions::Learned, true),
            ModelType::MBart => (true, true, true, Positions::Learned, true),
            ModelType::Marian => (false, false, false, Positions::Sinusoidal, true),
            ModelType::Pegasus => (true, false, true, Positions::Sinusoidal, true),
            ModelType::M2M100 => (true, false, true, Positions::M2M100Sinusoidal, false),
        };
        let act_name = f
            .get("activation_function")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        let activation = parse_activation(act_name)
            .ok_or_else(|| f.err(format!("unsupported activation_function {act_name:?}")))?;
        let d_model = f.usize("d_model")?;
        let vocab_size = f.usize("vocab_size")?;
        let share_embeddings = model_type != ModelType::Marian
            || f.bool_opt("share_encoder_decoder_embeddings")?
                .unwrap_or(true);
        let decoder_vocab_size = if share_embeddings {
            vocab_size
        } else {
            f.usize_opt("decoder_vocab_size")?.unwrap_or(vocab_size)
        };
        let cfg = ModelConfig {
            model_type,
            d_model,
            encoder_layers: f.usize("encoder_layers")?,
            decoder_layers: f.usize("decoder_layers")?,
            encoder_attention_heads: f.usize("encoder_attention_heads")?,
            decoder_attention_heads: f.usize("decoder_attention_heads")?,
            encoder_ffn_dim: f.usize("encoder_ffn_dim")?,
            decoder_ffn_dim: f.usize("decoder_ffn_dim")?,
            vocab_size,
            decoder_vocab_size,
            max_position_embeddings: f.usize("max_position_embeddings")?,
            activation,
            scale_embedding: f.bool_opt("scale_embedding")?.unwrap_or(false),
            normalize_before,
            layernorm_embedding,
            final_layer_norm,
            positions,
            share_embeddings,
            tie_word_embeddings: f.bool_opt("tie_word_embeddings")?.unwrap_or(true),
            has_final_logits_bias,
            layer_norm_eps: 1e-5,
            pad_token_id: f.u32_opt("pad_token_id")?.unwrap_or(1),
            bos_token_id: f.u32_opt("bos_token_id")?,
            eos_token_id: f.ids_opt("eos_token_id")?.unwrap_or_default(),
            decoder_start_token_id: f.u32_opt("decoder_start_token_id")?,
            forced_bos_token_id: f.u32_opt("forced_bos_token_id")?,
            forced_eos_token_id: f.ids_opt("forced_eos_token_id")?,
        };
        for (name, heads) in [
            ("encoder_attention_heads", cfg.encoder_attention_heads),
            ("decoder_attention_heads", cfg.decoder_attention_heads),
        ] {
            if heads == 0 || d_model % heads != 0 {
                return Err(f.err(format!(
                    "d_model {d_model} is not divisible by {name} {heads}"
                )));
            }
        }
        if d_model == 0 || cfg.vocab_size == 0 || cfg.decoder_vocab_size == 0 {
            return Err(f.err("d_model and vocab_size must be positive".into()));
        }
        Ok(cfg)
    }

    /// Decoder head size.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.decoder_attention_heads
    }
}

/// `early_stopping` of beam search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop a source as soon as `num_beams` hypotheses are finished (`True`).
    True,
    /// Stop when the heuristic says no running beam can beat the finished ones (`False`).
    #[default]
    False,
    /// Canonical beam search: stop only when no running beam can improve (`"never"`).
    Never,
}

/// Generation parameters, as in generation_config.json. `None` means "not set": the
/// transformers defaults apply (see [`crate::GenerateOptions`] for the resolution).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationConfig {
    pub max_length: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub min_length: Option<usize>,
    pub min_new_tokens: Option<usize>,
    pub num_beams: Option<usize>,
    pub length_penalty: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub num_return_sequences: Option<usize>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f64>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    pub eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
    pub do_sample: Option<bool>,
}

impl GenerationConfig {
    /// Reads generation_config.json (or the generation fields of an old config.json).
    pub fn from_file(path: &Path) -> Result<GenerationConfig> {
        let v = read_json(path)?;
        GenerationConfig::from_json(path, &v)
    }

    pub(crate) fn from_json(path: &Path, v: &Value) -> Result<GenerationConfig> {
        let f = Fields { path, v };
        let early_stopping = match f.get("early_stopping") {
            None => None,
            Some(Value::Bool(true)) => Some(EarlyStopping::True),
            Some(Value::Bool(false)) => Some(EarlyStopping::False),
            Some(Value::String(s)) if s == "never" => Some(EarlyStopping::Never),
            Some(other) => {
                return Err(f.err(format!(
                    "early_stopping must be true, false or \"never\", found {other}"
                )));
            }
        };
        let bad_words_ids = match f.get("bad_words_ids") {
            None => None,
            Some(Value::Array(words)) => Some(
                words
                    .iter()
                    .map(|w| {
                        w.as_array().and_then(|a| {
                            a.iter()
                                .map(|x| x.as_u64().map(|n| n as u32))
                                .collect::<Option<Vec<_>>>()
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        f.err("bad_words_ids must be a list of lists of token ids".into())
                    })?,
            ),
            Some(other) => {
                return Err(f.err(format!(
                    "bad_words_ids must be a list of lists, found {other}"
                )));
            }
        };
        Ok(GenerationConfig {
            max_length: f.usize_opt("max_length")?,
            max_new_tokens: f.usize_opt("max_new_tokens")?,
            min_length: f.usize_opt("min_length")?,
            min_new_tokens: f.usize_opt("min_new_tokens")?,
            num_beams: f.usize_opt("num_beams")?,
            length_penalty: f.f64_opt("length_penalty")?,
            early_stopping,
            num_return_sequences: f.usize_opt("num_return_sequences")?,
            no_repeat_ngram_size: f.usize_opt("no_repeat_ngram_size")?,
            repetition_penalty: f.f64_opt("repetition_penalty")?,
            bad_words_ids,
            forced_bos_token_id: f.u32_opt("forced_bos_token_id")?,
            forced_eos_token_id: f.ids_opt("forced_eos_token_id")?,
            eos_token_id: f.ids_opt("eos_token_id")?,
            pad_token_id: f.u32_opt("pad_token_id")?,
            bos_token_id: f.u32_opt("bos_token_id")?,
            decoder_start_token_id: f.u32_opt("decoder_start_token_id")?,
            do_sample: f.bool_opt("do_sample")?,
        })
    }

    /// The generation config of a model directory: generation_config.json when present, else
    /// the generation fields of config.json (transformers' `GenerationConfig.from_model_config`).
    /// Special tokens missing from generation_config.json are taken from config.json.
    pub fn for_model(dir: &Path, model: &ModelConfig) -> Result<GenerationConfig> {
        let path: PathBuf = dir.join("generation_config.json");
        let own_file = path.exists();
        let g = if own_file {
            GenerationConfig::from_file(&path)?
        } else {
            GenerationConfig::from_file(&dir.join("config.json"))?
        };
        Ok(g.completed_from(model, own_file))
    }

    /// Special tokens missing here are taken from the model config; without a
    /// generation_config.json of its own, the forced tokens too.
    pub(crate) fn completed_from(
        mut self,
        model: &ModelConfig,
        own_file: bool,
    ) -> GenerationConfig {
        let g = &mut self;
        g.eos_token_id = g
            .eos_token_id
            .take()
            .or_else(|| (!model.eos_token_id.is_empty()).then(|| model.eos_token_id.clone()));
        g.pad_token_id = g.pad_token_id.or(Some(model.pad_token_id));
        g.bos_token_id = g.bos_token_id.or(model.bos_token_id);
        g.decoder_start_token_id = g.decoder_start_token_id.or(model.decoder_start_token_id);
        if !own_file {
            g.forced_bos_token_id = g.forced_bos_token_id.or(model.forced_bos_token_id);
            g.forced_eos_token_id = g
                .forced_eos_token_id
                .take()
                .or_else(|| model.forced_eos_token_id.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_json(Path::new("config.json"), &v)
    }

    fn base(model_type: &str) -> Value {
        json!({"model_type": model_type, "d_model": 16, "encoder_layers": 2, "decoder_layers": 2,
               "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 32,
               "decoder_ffn_dim": 32, "vocab_size": 99, "max_position_embeddings": 64,
               "activation_function": "swish", "eos_token_id": 0, "pad_token_id": 98,
               "decoder_start_token_id": 98})
    }

    #[test]
    fn each_model_type_maps_to_its_architecture() {
        let m = cfg(base("marian")).unwrap();
        assert!(!m.normalize_before && !m.layernorm_embedding && !m.final_layer_norm);
        assert_eq!(m.positions, Positions::Sinusoidal);
        assert_eq!(m.activation, Activation::Silu);
        let b = cfg(base("bart")).unwrap();
        assert!(!b.normalize_before && b.layernorm_embedding && b.positions == Positions::Learned);
        let mb = cfg(base("mbart")).unwrap();
        assert!(mb.normalize_before && mb.layernorm_embedding && mb.final_layer_norm);
        let p = cfg(base("pegasus")).unwrap();
        assert!(p.normalize_before && !p.layernorm_embedding && p.final_layer_norm);
        let m2m = cfg(base("m2m_100")).unwrap();
        assert_eq!(m2m.positions, Positions::M2M100Sinusoidal);
        assert!(!m2m.has_final_logits_bias);
    }

    #[test]
    fn unknown_model_type_is_named() {
        let mut v = base("bart");
        v["model_type"] = json!("t5");
        let e = cfg(v).unwrap_err().to_string();
        assert!(e.contains("\"t5\"") && e.contains("config.json"), "{e}");
    }

    #[test]
    fn bad_activation_and_heads_are_named() {
        let mut v = base("bart");
        v["activation_function"] = json!("mish");
        assert!(cfg(v).unwrap_err().to_string().contains("mish"));
        let mut v = base("bart");
        v["decoder_attention_heads"] = json!(3);
        assert!(
            cfg(v)
                .unwrap_err()
                .to_string()
                .contains("decoder_attention_heads 3")
        );
    }

    #[test]
    fn marian_separate_vocab() {
        let mut v = base("marian");
        v["share_encoder_decoder_embeddings"] = json!(false);
        v["decoder_vocab_size"] = json!(77);
        let m = cfg(v).unwrap();
        assert_eq!(
            (m.vocab_size, m.decoder_vocab_size, m.share_embeddings),
            (99, 77, false)
        );
    }

    #[test]
    fn generation_config_values() {
        let v = json!({"early_stopping": "never", "eos_token_id": [2, 3], "bad_words_ids": [[5], [6, 7]],
                        "num_beams": 4, "length_penalty": 0.6, "forced_eos_token_id": 2});
        let g = GenerationConfig::from_json(Path::new("g.json"), &v).unwrap();
        assert_eq!(g.early_stopping, Some(EarlyStopping::Never));
        assert_eq!(g.eos_token_id, Some(vec![2, 3]));
        assert_eq!(g.bad_words_ids, Some(vec![vec![5], vec![6, 7]]));
        assert_eq!(g.forced_eos_token_id, Some(vec![2]));
        let bad = json!({"early_stopping": "sometimes"});
        assert!(
            GenerationConfig::from_json(Path::new("g.json"), &bad)
                .unwrap_err()
                .to_string()
                .contains("sometimes")
        );
    }
}
