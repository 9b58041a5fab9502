//! Whisper token and word timestamps on the facade: the alignment heads' cross-attention of
//! one teacher-forced pass ([`Model::alignment_weights`]), the token timestamps that
//! transformers' `generate(..., return_token_timestamps=True)` gives
//! ([`Model::token_timestamps`]), and the words its ASR pipeline gives with
//! `return_timestamps="word"` ([`Model::words`]).

use super::Model;
use crate::arch::whisper::alignment::{self, AlignmentWeights};
use crate::arch::whisper::words::{self, SpecialTokens, Word};
use crate::encoder::{EncoderInput, check_sequences};
use crate::error::{Error, Result};
use crate::generation::Stats;
use crate::generation::attention_tap::teacher_forced;
use crate::generation::profile::Probe;

impl Model {
    /// The `[layer, head]` alignment heads of the generation config (Whisper), checked
    /// against the decoder.
    pub fn alignment_heads(&self) -> Result<&[[usize; 2]]> {
        let heads = self
            .generation_config
            .alignment_heads
            .as_deref()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::Input(format!(
                    "{}: the generation config has no alignment_heads (token timestamps need them)",
                    self.dir.display()
                ))
            })?;
        let (layers, n) = (
            self.config.decoder_layers,
            self.config.decoder_attention_heads,
        );
        if let Some([l, h]) = heads.iter().find(|[l, h]| *l >= layers || *h >= n) {
            return Err(Error::Input(format!(
                "{}: alignment head [{l}, {h}] is outside the decoder's {layers} layers × {n} heads",
                self.dir.display()
            )));
        }
        Ok(heads)
    }

    /// One window of log-mel features `[n_mels, frames]` as an encoder input.
    fn window<'a>(&self, features: &'a [f32]) -> Result<EncoderInput<'a>> {
        let cfg = &self.config;
        match (cfg.num_mel_bins, cfg.max_source_positions) {
            (Some(n_mels), Some(src)) => Ok(EncoderInput::Features {
                data: features,
                batch: 1,
                n_mels,
                frames: 2 * src,
            }),
            _ => Err(Error::Input(format!(
                "{}: a {} model reads no audio features",
                self.dir.display(),
                cfg.model_type
            ))),
        }
    }

    /// The alignment heads' cross-attention probabilities of one teacher-forced pass over
    /// `decoder_input_ids` (as given, decoder start included) on one window of log-mel
    /// `features` `[n_mels, frames]`: `[heads, T, S]`.
    pub fn alignment_weights(
        &self,
        features: &[f32],
        decoder_input_ids: &[u32],
    ) -> Result<AlignmentWeights> {
        let heads = self.alignment_heads()?;
        let input = self.window(features)?;
        self.encoder.check(&input)?;
        let cfg = &self.config;
        check_sequences(
            "decoder input",
            &[decoder_input_ids.to_vec()],
            cfg.decoder_vocab_size,
            cfg.max_target_positions,
            cfg.positions_key,
        )?;
        let run = self.runner();
        let cross = run.encode(&input, &mut Stats::default(), &mut Probe::off())?;
        let source = cross.sources.first().map_or(0, |s| s.len);
        let data = teacher_forced(&run, &cross, decoder_input_ids, heads)?;
        self.gpu.check_errors()?;
        Ok(AlignmentWeights {
            heads: heads.len(),
            rows: decoder_input_ids.len(),
            source,
            data,
        })
    }

    /// Token timestamps in seconds of a Whisper `sequence` (prompt, generated tokens,
    /// usually `<|endoftext|>`, as [`Model::generate_input`] returns it) transcribed from one
    /// window of log-mel `features` `[n_mels, frames]` holding `num_frames` frames of real
    /// audio ([`alignment::num_frames`]): one value per token, 0.0 for the prompt, as
    /// transformers' `return_token_timestamps=True` computes them (see
    /// [`crate::arch::whisper::alignment`]).
    pub fn token_timestamps(
        &self,
        features: &[f32],
        sequence: &[u32],
        num_frames: usize,
    ) -> Result<Vec<f32>> {
        let prompt = self.prompt_len(sequence)?;
        if sequence.len() < 2 {
            return Ok(vec![0.0; sequence.len()]);
        }
        let w = self.alignment_weights(features, &sequence[..sequence.len() - 1])?;
        alignment::token_timestamps(&w, prompt, num_frames)
    }

    /// transformers' `num_input_ids`: the decoder prompt, which runs to
    /// `<|startoftranscript|>` (after any `<|startofprev|>` text) and the language, task and
    /// `<|notimestamps|>` tokens right after it.
    pub(super) fn prompt_len(&self, sequence: &[u32]) -> Result<usize> {
        let g = &self.generation_config;
        let sot = self.decoder_start()?;
        let start = sequence.iter().position(|&t| t == sot).ok_or_else(|| {
            Error::Input(format!(
                "the sequence has no decoder start token {sot}: {sequence:?}"
            ))
        })?;
        let in_map = |m: &Option<std::collections::BTreeMap<String, u32>>, t: u32| {
            m.as_ref().is_some_and(|m| m.values().any(|&v| v == t))
        };
        let is_prompt = |t: u32| {
            in_map(&g.lang_to_id, t)
                || in_map(&g.task_to_id, t)
                || Some(t) == g.no_timestamps_token_id
        };
        let rest = sequence[start + 1..]
            .iter()
            .take_while(|&&t| is_prompt(t))
            .count();
        Ok(start + 1 + rest)
    }

    /// The words of a Whisper `sequence` with one timestamp per token (from
    /// [`Model::token_timestamps`]), as transformers' ASR pipeline assembles them with
    /// `return_timestamps="word"` (see [`crate::arch::whisper::words`]).
    pub fn words(&self, sequence: &[u32], token_timestamps: &[f32]) -> Result<Vec<Word>> {
        let tok = self.require_tokenizer()?;
        let g = &self.generation_config;
        let missing = |what: &str| {
            Error::Input(format!(
                "{}: the generation config has no {what} (words need it)",
                self.dir.display()
            ))
        };
        let special = SpecialTokens {
            eot: g
                .eos_token_id
                .as_ref()
                .and_then(|e| e.first().copied())
                .ok_or_else(|| missing("eos_token_id"))?,
            timestamp_begin: g
                .no_timestamps_token_id
                .ok_or_else(|| missing("no_timestamps_token_id"))?
                + 1,
            sot: self.decoder_start()?,
            prev: tok.token_id("<|startofprev|>"),
        };
        words::words(tok, sequence, token_timestamps, special, None)
    }
}
