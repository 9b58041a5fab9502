//! generation_config.json, as transformers reads it.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::io::json::{read_json, token_ids};

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

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(EarlyStopping::True),
            Raw::Bool(false) => Ok(EarlyStopping::False),
            Raw::Str(s) if s == "never" => Ok(EarlyStopping::Never),
            Raw::Str(s) => Err(serde::de::Error::custom(format!(
                "early_stopping must be true, false or \"never\", found {s:?}"
            ))),
        }
    }
}

/// Generation parameters, as in generation_config.json. `None` means "not set": the
/// transformers defaults apply (see [`crate::GenerateOptions`] for the resolution).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
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
    #[serde(deserialize_with = "token_ids")]
    pub forced_eos_token_id: Option<Vec<u32>>,
    #[serde(deserialize_with = "token_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
    pub do_sample: Option<bool>,
    /// Whisper: tokens banned at every step (`SuppressTokensLogitsProcessor`).
    pub suppress_tokens: Option<Vec<u32>>,
    /// Whisper: tokens banned at the first free step after the prompt
    /// (`SuppressTokensAtBeginLogitsProcessor`).
    pub begin_suppress_tokens: Option<Vec<u32>>,
    /// Whisper: `<|notimestamps|>`, which ends the prompt of a transcription without
    /// timestamps. Its presence marks a Whisper generation config.
    pub no_timestamps_token_id: Option<u32>,
    pub is_multilingual: Option<bool>,
    /// Whisper: `<|en|>` → its id.
    pub lang_to_id: Option<std::collections::BTreeMap<String, u32>>,
    /// Whisper: `transcribe` / `translate` → their ids.
    pub task_to_id: Option<std::collections::BTreeMap<String, u32>>,
    /// Whisper: the `[layer, head]` cross-attention heads that follow the audio, whose
    /// weights give token timestamps (`alignment_heads`).
    pub alignment_heads: Option<Vec<[usize; 2]>>,
    /// Whisper: the largest timestamp index allowed first (`max_initial_timestamp_index`).
    pub max_initial_timestamp_index: Option<u32>,
}

impl GenerationConfig {
    /// Reads generation_config.json (or the generation fields of an old config.json).
    pub fn from_file(path: &Path) -> Result<GenerationConfig> {
        read_json(path)
    }

    /// The generation config of a model directory: generation_config.json when present, else
    /// the generation fields of config.json (transformers' `GenerationConfig.from_model_config`).
    /// Special tokens missing from generation_config.json are taken from config.json.
    pub fn for_model(dir: &Path, model: &ModelConfig) -> Result<GenerationConfig> {
        let path = dir.join("generation_config.json");
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
    use crate::io::json::parse_json;

    #[test]
    fn generation_config_values() {
        let text = r#"{"early_stopping": "never", "eos_token_id": [2, 3], "bad_words_ids": [[5], [6, 7]],
                       "num_beams": 4, "length_penalty": 0.6, "forced_eos_token_id": 2, "pad_token_id": null,
                       "alignment_heads": [[1, 0], [2, 5]]}"#;
        let g: GenerationConfig = parse_json(Path::new("g.json"), text).unwrap();
        assert_eq!(g.early_stopping, Some(EarlyStopping::Never));
        assert_eq!(g.eos_token_id, Some(vec![2, 3]));
        assert_eq!(g.bad_words_ids, Some(vec![vec![5], vec![6, 7]]));
        assert_eq!(g.forced_eos_token_id, Some(vec![2]));
        assert_eq!(g.pad_token_id, None);
        assert_eq!(g.alignment_heads, Some(vec![[1, 0], [2, 5]]));
        let e = parse_json::<GenerationConfig>(
            Path::new("g.json"),
            r#"{"early_stopping": "sometimes"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sometimes") && e.contains("g.json"), "{e}");
        let e = parse_json::<GenerationConfig>(Path::new("g.json"), r#"{"num_beams": "four"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("g.json"), "{e}");
    }
}
