//! Per-call generation options and their resolution against generation_config.json, with
//! transformers' precedence: call options > generation_config.json > global defaults.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::generation::config::{EarlyStopping, GenerationConfig};
use crate::generation::timestamps::TimestampRules;

/// Per-call overrides of generation_config.json. `None` keeps the model's value (or
/// transformers' default when the model has none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerateOptions {
    pub num_beams: Option<usize>,
    /// Takes precedence over `max_length` (max_length = 1 + max_new_tokens).
    pub max_new_tokens: Option<usize>,
    /// Total decoder length, decoder start token included.
    pub max_length: Option<usize>,
    /// Minimum decoder length (start token included) before EOS may be chosen.
    pub min_length: Option<usize>,
    pub min_new_tokens: Option<usize>,
    pub length_penalty: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub num_return_sequences: Option<usize>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f64>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    pub eos_token_id: Option<Vec<u32>>,
    pub decoder_start_token_id: Option<u32>,
    /// Tokens forced after the decoder start token, before free decoding (a decoder prompt).
    /// For Whisper it is built from `language` and `task` unless given here.
    pub decoder_prompt: Option<Vec<u32>>,
    /// Whisper: the spoken language, `en` or `<|en|>`; `None` or `auto` on a multilingual
    /// model detects it per source from the first step's logits (as transformers does).
    pub language: Option<String>,
    /// Whisper: `transcribe` (the default) or `translate`.
    pub task: Option<String>,
    /// Whisper: generate timestamp tokens (`return_timestamps`), under the timestamp rules.
    pub timestamps: Option<bool>,
    /// A regular expression the decoded output must match (see [`Constrain`]); `None` keeps
    /// the model directory's `constraint.regex`, if it has one.
    pub constrain: Option<Constrain>,
}

/// The constraint of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constrain {
    /// The decoded text of every hypothesis (special tokens skipped) is a full match of this
    /// regular expression (the `regex` crate's syntax): tokens that would leave it are
    /// masked at every step, EOS is allowed only after a full match.
    Regex(String),
    /// No constraint, not even the model directory's.
    Off,
}

/// The longest decoder sequence a call may ask for, start token included, whatever the
/// model's position limit (T5 has none): past this the per-row caches cannot be allocated,
/// and the size arithmetic must stay far from overflow.
pub const MAX_LENGTH: usize = crate::arch::limits::POSITIONS;

/// Fully resolved search parameters of one call.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    pub num_beams: usize,
    pub max_length: usize,
    pub min_length: usize,
    pub min_new_tokens: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub num_return_sequences: usize,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f64,
    /// Bad word sequences, without the single-token `[eos]` entries (transformers drops them).
    pub bad_words_ids: Vec<Vec<u32>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    pub eos_token_id: Vec<u32>,
    pub pad_token_id: u32,
    pub decoder_start_token_id: u32,
    /// Tokens forced after the start token, one per step (Whisper's language, task and
    /// `<|notimestamps|>`), applied like forced BOS.
    pub decoder_prompt: Vec<u32>,
    /// Banned at every free step.
    pub suppress_tokens: Vec<u32>,
    /// Banned at the first free step (length 1 + decoder_prompt).
    pub begin_suppress_tokens: Vec<u32>,
    /// Whisper's timestamp rules, when timestamps are generated.
    pub timestamps: Option<TimestampRules>,
    /// Whisper language detection: the language ids `lo..hi`; `decoder_prompt[0]` is then a
    /// placeholder that each source replaces by the language its first step scores highest.
    pub detect_language: Option<(u32, u32)>,
    /// Whisper's `<|nospeech|>` (no_timestamps_token_id − 1): its probability after the
    /// start token is reported per source (transformers' `no_speech_prob`).
    pub no_speech_token: Option<u32>,
    /// The compiled constraint of the call (set by the model, which has the tokenizer).
    pub constraint: Option<std::sync::Arc<crate::generation::constraint::Constraint>>,
}

/// Whisper's prompt and the rules that go with it.
struct WhisperPrompt {
    prompt: Vec<u32>,
    timestamps: Option<TimestampRules>,
    detect_language: Option<(u32, u32)>,
}

/// The language ids `lo..hi` of a multilingual model (Whisper's are consecutive).
fn language_range(gc: &GenerationConfig) -> Result<(u32, u32)> {
    let ids: Vec<u32> = gc
        .lang_to_id
        .iter()
        .flat_map(|m| m.values().copied())
        .collect();
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return Err(Error::Options(
            "language detection needs lang_to_id in the generation config".into(),
        ));
    };
    if (hi - lo + 1) as usize != ids.len() {
        return Err(Error::Options(format!(
            "language detection needs consecutive language ids; lang_to_id spans {lo}..={hi} with {} languages",
            ids.len()
        )));
    }
    Ok((lo, hi + 1))
}

/// The prompt after `<|startoftranscript|>` that transformers' Whisper `generate` builds
/// for short-form audio: `[language, task]` (multilingual models) then `<|notimestamps|>`
/// unless timestamps are generated. `None` for a generation config that is not Whisper's.
fn whisper_prompt(
    gc: &GenerationConfig,
    opts: &GenerateOptions,
    eos: Option<u32>,
) -> Result<Option<WhisperPrompt>> {
    let Some(no_timestamps) = gc.no_timestamps_token_id else {
        if opts.language.is_some() || opts.task.is_some() || opts.timestamps.is_some() {
            return Err(Error::Options(
                "language, task and timestamps are options of Whisper models only".into(),
            ));
        }
        return Ok(None);
    };
    let mut prompt = Vec::with_capacity(3);
    let mut detect_language = None;
    if gc.is_multilingual == Some(true) {
        match opts.language.as_deref() {
            None | Some("auto") => {
                let range = language_range(gc)?;
                detect_language = Some(range);
                prompt.push(range.0);
            }
            Some(lang) => {
                let key = if lang.starts_with("<|") {
                    lang.to_string()
                } else {
                    format!("<|{}|>", lang.to_lowercase())
                };
                let langs = gc.lang_to_id.clone().unwrap_or_default();
                let id = langs.get(&key).ok_or_else(|| {
                    Error::Options(format!(
                        "language {lang:?} is not one of the model's languages"
                    ))
                })?;
                prompt.push(*id);
            }
        }
        let task = opts.task.as_deref().unwrap_or("transcribe");
        let tasks = gc.task_to_id.clone().unwrap_or_default();
        let t = tasks.get(task).ok_or_else(|| {
            Error::Options(format!(
                "task {task:?} is not one of the model's tasks (transcribe, translate)"
            ))
        })?;
        prompt.push(*t);
    } else if let Some(lang) = &opts.language
        && !matches!(lang.as_str(), "en" | "<|en|>" | "english" | "auto")
    {
        return Err(Error::Options(format!(
            "this Whisper model is English-only; language {lang:?} cannot be transcribed"
        )));
    } else if opts.task.as_deref().is_some_and(|t| t != "transcribe") {
        return Err(Error::Options(
            "this Whisper model is English-only and only transcribes".into(),
        ));
    }
    let timestamps = if opts.timestamps == Some(true) {
        let eos = eos.ok_or_else(|| Error::Options("timestamps need an eos_token_id".into()))?;
        Some(TimestampRules {
            timestamp_begin: no_timestamps + 1,
            no_timestamps,
            eos,
            begin_index: 1 + prompt.len(),
            max_initial_timestamp_index: gc.max_initial_timestamp_index,
        })
    } else {
        prompt.push(no_timestamps);
        None
    };
    Ok(Some(WhisperPrompt {
        prompt,
        timestamps,
        detect_language,
    }))
}

impl SearchConfig {
    /// Resolves `opts` over the model's generation config, as `GenerationMixin.generate` does
    /// (`_prepare_generation_config`, `_prepare_special_tokens`, `_prepare_generated_length`).
    pub fn resolve(
        model: &ModelConfig,
        gc: &GenerationConfig,
        opts: &GenerateOptions,
    ) -> Result<SearchConfig> {
        let eos_token_id = opts
            .eos_token_id
            .clone()
            .or_else(|| gc.eos_token_id.clone())
            .unwrap_or_default();
        let pad_token_id = gc
            .pad_token_id
            .or_else(|| eos_token_id.first().copied())
            .unwrap_or(model.pad_token_id);
        let decoder_start_token_id = opts
            .decoder_start_token_id
            .or(gc.decoder_start_token_id)
            .or(gc.bos_token_id)
            .ok_or_else(|| {
                Error::Options("decoder_start_token_id or bos_token_id has to be defined".into())
            })?;
        // max_length: max_new_tokens wins; an explicit max_length stays; otherwise 20 new
        // tokens, capped by max_position_embeddings.
        let explicit_max = opts.max_length.or(gc.max_length);
        let max_new = opts.max_new_tokens.or(gc.max_new_tokens);
        let max_length = match (max_new, explicit_max) {
            (Some(n), _) => n.checked_add(1).ok_or_else(|| {
                Error::Options(format!(
                    "max_new_tokens {n} is above the ceiling of {MAX_LENGTH} tokens"
                ))
            })?,
            (None, Some(m)) => m,
            (None, None) => (20 + 1).min(model.max_target_positions.unwrap_or(usize::MAX)),
        };
        let min_new_tokens = opts.min_new_tokens.or(gc.min_new_tokens).unwrap_or(0);
        let whisper = whisper_prompt(gc, opts, eos_token_id.first().copied())?;
        let (decoder_prompt, timestamps, detect_language) = match (&opts.decoder_prompt, whisper) {
            (Some(p), w) => {
                let ts = w.and_then(|w| w.timestamps).map(|mut t| {
                    t.begin_index = 1 + p.len();
                    t
                });
                (p.clone(), ts, None)
            }
            (None, Some(w)) => (w.prompt, w.timestamps, w.detect_language),
            (None, None) => (Vec::new(), None, None),
        };
        let cfg = SearchConfig {
            num_beams: opts.num_beams.or(gc.num_beams).unwrap_or(1),
            max_length,
            min_length: opts.min_length.or(gc.min_length).unwrap_or(0),
            min_new_tokens,
            length_penalty: opts.length_penalty.or(gc.length_penalty).unwrap_or(1.0),
            early_stopping: opts
                .early_stopping
                .or(gc.early_stopping)
                .unwrap_or_default(),
            num_return_sequences: opts
                .num_return_sequences
                .or(gc.num_return_sequences)
                .unwrap_or(1),
            no_repeat_ngram_size: opts
                .no_repeat_ngram_size
                .or(gc.no_repeat_ngram_size)
                .unwrap_or(0),
            repetition_penalty: opts
                .repetition_penalty
                .or(gc.repetition_penalty)
                .unwrap_or(1.0),
            bad_words_ids: opts
                .bad_words_ids
                .clone()
                .or_else(|| gc.bad_words_ids.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|w| !(w.len() == 1 && eos_token_id.contains(&w[0])))
                .collect(),
            forced_bos_token_id: opts.forced_bos_token_id.or(gc.forced_bos_token_id),
            forced_eos_token_id: opts
                .forced_eos_token_id
                .clone()
                .or_else(|| gc.forced_eos_token_id.clone()),
            eos_token_id,
            pad_token_id,
            decoder_start_token_id,
            decoder_prompt,
            suppress_tokens: gc.suppress_tokens.clone().unwrap_or_default(),
            begin_suppress_tokens: gc.begin_suppress_tokens.clone().unwrap_or_default(),
            timestamps,
            detect_language,
            no_speech_token: gc
                .no_timestamps_token_id
                .and_then(|t| t.checked_sub(1))
                .filter(|&t| (t as usize) < model.decoder_vocab_size),
            constraint: None,
        };
        cfg.validate(model)?;
        Ok(cfg)
    }

    fn validate(&self, model: &ModelConfig) -> Result<()> {
        let err = |m: String| Err(Error::Options(m));
        let vocab = model.decoder_vocab_size;
        if self.num_beams == 0 {
            return err("num_beams must be at least 1".into());
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
            return err(format!(
                "num_return_sequences ({}) must be between 1 and num_beams ({})",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.max_length < 2 {
            return err(format!(
                "max_length is {}, but the decoder input already has 1 token (set max_new_tokens ≥ 1)",
                self.max_length
            ));
        }
        if self.max_length > MAX_LENGTH {
            return err(format!(
                "max_length {} is above the ceiling of {MAX_LENGTH} tokens (its caches could not be allocated)",
                self.max_length
            ));
        }
        if let Some(max) = model.max_target_positions
            && self.max_length - 1 > max
        {
            return err(format!(
                "max_length {} needs {} decoder positions, but {} is {max}",
                self.max_length,
                self.max_length - 1,
                model.positions_key,
            ));
        }
        if self.decoder_prompt.len() + 1 >= self.max_length {
            return err(format!(
                "max_length is {}, but the decoder prompt already has {} tokens",
                self.max_length,
                self.decoder_prompt.len() + 1
            ));
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            return err(format!(
                "repetition_penalty must be finite and > 0, got {}",
                self.repetition_penalty
            ));
        }
        if !self.length_penalty.is_finite() {
            return err(format!(
                "length_penalty must be finite, got {}",
                self.length_penalty
            ));
        }
        // transformers' ForcedEOSTokenLogitsProcessor refuses an empty list too (`torch.tensor([])`
        // is a float tensor: "`eos_token_id` has to be a list of positive integers").
        if self.forced_eos_token_id.as_ref().is_some_and(Vec::is_empty) {
            return err(
                "forced_eos_token_id is an empty list; give at least one id or leave it out".into(),
            );
        }
        if self.bad_words_ids.iter().any(Vec::is_empty) {
            return err("bad_words_ids holds an empty sequence".into());
        }
        let ids = self
            .bad_words_ids
            .iter()
            .flatten()
            .map(|&t| ("bad_words_ids", t))
            .chain(self.eos_token_id.iter().map(|&t| ("eos_token_id", t)))
            .chain(self.forced_bos_token_id.map(|t| ("forced_bos_token_id", t)))
            .chain(
                self.forced_eos_token_id
                    .iter()
                    .flatten()
                    .map(|&t| ("forced_eos_token_id", t)),
            )
            .chain(std::iter::once((
                "decoder_start_token_id",
                self.decoder_start_token_id,
            )))
            .chain(self.decoder_prompt.iter().map(|&t| ("decoder_prompt", t)))
            .chain(self.suppress_tokens.iter().map(|&t| ("suppress_tokens", t)))
            .chain(
                self.begin_suppress_tokens
                    .iter()
                    .map(|&t| ("begin_suppress_tokens", t)),
            )
            .chain(self.timestamps.iter().flat_map(|t| {
                [
                    ("no_timestamps_token_id", t.no_timestamps),
                    ("eos_token_id", t.eos),
                ]
            }))
            .chain(
                self.detect_language
                    .iter()
                    .map(|&(_, hi)| ("lang_to_id", hi - 1)),
            );
        for (what, t) in ids {
            if t as usize >= vocab {
                return err(format!(
                    "{what} holds token {t}, outside the target vocabulary of {vocab}"
                ));
            }
        }
        Ok(())
    }

    /// Candidates kept per source at each beam step: `max(2, 1 + #eos) * num_beams`.
    pub fn beams_to_keep(&self) -> usize {
        2usize.max(1 + self.eos_token_id.len()) * self.num_beams
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small search configuration for the unit tests of the generation modules.
    pub(crate) fn search_config() -> SearchConfig {
        SearchConfig {
            num_beams: 2,
            max_length: 6,
            min_length: 0,
            min_new_tokens: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            num_return_sequences: 1,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            bad_words_ids: vec![],
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            eos_token_id: vec![0],
            pad_token_id: 9,
            decoder_start_token_id: 9,
            decoder_prompt: vec![],
            suppress_tokens: vec![],
            begin_suppress_tokens: vec![],
            timestamps: None,
            detect_language: None,
            no_speech_token: None,
            constraint: None,
        }
    }

    fn model() -> ModelConfig {
        ModelConfig {
            model_type: "marian".into(),
            d_model: 16,
            encoder_layers: 1,
            decoder_layers: 1,
            encoder_attention_heads: 2,
            decoder_attention_heads: 2,
            vocab_size: 100,
            decoder_vocab_size: 100,
            max_source_positions: Some(64),
            max_target_positions: Some(64),
            positions_key: "max_position_embeddings",
            pad_token_id: 99,
            bos_token_id: None,
            eos_token_id: vec![0],
            decoder_start_token_id: Some(99),
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            num_mel_bins: None,
        }
    }

    #[test]
    fn lengths_follow_transformers() {
        let m = model();
        let g = GenerationConfig {
            eos_token_id: Some(vec![0]),
            decoder_start_token_id: Some(99),
            ..Default::default()
        };
        let c = SearchConfig::resolve(&m, &g, &GenerateOptions::default()).unwrap();
        assert_eq!(c.max_length, 21);
        let c = SearchConfig::resolve(
            &m,
            &g,
            &GenerateOptions {
                max_new_tokens: Some(5),
                max_length: Some(50),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.max_length, 6);
        let g2 = GenerationConfig {
            max_length: Some(40),
            ..g.clone()
        };
        assert_eq!(
            SearchConfig::resolve(&m, &g2, &GenerateOptions::default())
                .unwrap()
                .max_length,
            40
        );
        let e = SearchConfig::resolve(
            &m,
            &g,
            &GenerateOptions {
                max_new_tokens: Some(100),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("max_position_embeddings is 64"),
            "{e}"
        );
    }

    /// Options that would wrap, turn every score into NaN or index an empty list are refused
    /// with a message naming the option.
    #[test]
    fn non_finite_overflowing_and_empty_options_are_refused() {
        let m = model();
        let g = GenerationConfig {
            eos_token_id: Some(vec![0]),
            decoder_start_token_id: Some(99),
            ..Default::default()
        };
        let resolve = |opts: GenerateOptions| {
            SearchConfig::resolve(&m, &g, &opts)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let cases = [
            (
                GenerateOptions {
                    length_penalty: Some(f64::NAN),
                    ..Default::default()
                },
                "length_penalty must be finite",
            ),
            (
                GenerateOptions {
                    repetition_penalty: Some(f64::INFINITY),
                    ..Default::default()
                },
                "repetition_penalty must be finite",
            ),
            (
                GenerateOptions {
                    max_new_tokens: Some(usize::MAX),
                    ..Default::default()
                },
                "max_new_tokens 18446744073709551615 is above the ceiling",
            ),
            (
                GenerateOptions {
                    max_length: Some(MAX_LENGTH + 1),
                    ..Default::default()
                },
                "is above the ceiling",
            ),
            (
                GenerateOptions {
                    forced_eos_token_id: Some(vec![]),
                    ..Default::default()
                },
                "forced_eos_token_id is an empty list",
            ),
        ];
        for (opts, want) in cases {
            let e = resolve(opts.clone());
            assert!(e.contains(want), "{opts:?}: {e:?}");
        }
        // The same empty list from generation_config.json.
        let g2 = GenerationConfig {
            forced_eos_token_id: Some(vec![]),
            ..g.clone()
        };
        let e = SearchConfig::resolve(&m, &g2, &GenerateOptions::default()).unwrap_err();
        assert!(e.to_string().contains("forced_eos_token_id"), "{e}");
    }

    #[test]
    fn eos_bad_word_is_dropped_and_ids_checked() {
        let m = model();
        let g = GenerationConfig {
            eos_token_id: Some(vec![0]),
            decoder_start_token_id: Some(99),
            bad_words_ids: Some(vec![vec![0], vec![99], vec![0, 5]]),
            ..Default::default()
        };
        let c = SearchConfig::resolve(&m, &g, &GenerateOptions::default()).unwrap();
        assert_eq!(c.bad_words_ids, vec![vec![99], vec![0, 5]]);
        assert_eq!(c.pad_token_id, 0);
        let e = SearchConfig::resolve(
            &m,
            &g,
            &GenerateOptions {
                bad_words_ids: Some(vec![vec![100]]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("token 100"), "{e}");
        let e = SearchConfig::resolve(
            &m,
            &g,
            &GenerateOptions {
                num_return_sequences: Some(2),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("num_return_sequences"), "{e}");
    }
}
