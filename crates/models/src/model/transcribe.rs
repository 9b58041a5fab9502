//! Whisper transcription of one clip, as transformers' Whisper `generate` does it: one 30 s
//! window for short audio; over 30 s, the features of the whole clip cut into windows that
//! the decoded timestamps move forward. The language is detected once, on the first window,
//! when it is not given.

use super::Model;
use crate::arch::whisper::alignment;
use crate::arch::whisper::segments::{FRAME_SECONDS, Segment, retrieve_segments, time_offset};
use crate::arch::whisper::words::Word;
use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::generation::GenerateOptions;
use crate::io::mel::{LogMel, MelExtractor};

/// Options of [`Model::transcribe`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TranscribeOptions {
    /// Search, language (`None` or `auto`: detected), task and timestamps. Audio over 30 s
    /// always decodes with timestamps (they move the window).
    pub generate: GenerateOptions,
    /// Word timestamps from the alignment heads' cross-attention.
    pub word_timestamps: bool,
}

/// A transcribed segment: times in seconds from the start of the clip.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptSegment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
}

/// The transcript of one clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The language code spoken (given, detected, or `en` for English-only models).
    pub language: String,
    pub text: String,
    /// One window: its whole sequence, start token through `<|endoftext|>`, as `generate`
    /// returns it for short-form audio. Several windows: their segments' tokens, in order.
    pub tokens: Vec<u32>,
    pub segments: Vec<TranscriptSegment>,
    /// With [`TranscribeOptions::word_timestamps`].
    pub words: Option<Vec<Word>>,
    /// The 30 s windows decoded (one encoder run each), in order.
    pub windows: Vec<TranscriptWindow>,
}

/// One decoded window: where it starts, how many frames of audio it holds, and its whole
/// sequence (start token, prompt, generated tokens, `<|endoftext|>`).
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptWindow {
    pub seek: usize,
    pub frames: usize,
    pub tokens: Vec<u32>,
}

/// One decoded window.
struct Window {
    seek: usize,
    frames: usize,
    features: LogMel,
    sequence: Vec<u32>,
    prompt_len: usize,
    segments: Vec<Segment>,
}

impl Model {
    /// Transcribes one clip of 16 kHz mono `samples` with the features of `mel`.
    pub fn transcribe(
        &self,
        samples: &[f32],
        mel: &MelExtractor,
        opts: &TranscribeOptions,
    ) -> Result<Transcript> {
        let g = &self.generation_config;
        let no_ts = g.no_timestamps_token_id.ok_or_else(|| {
            Error::Options(format!(
                "{} is not a Whisper model (no no_timestamps_token_id)",
                self.dir.display()
            ))
        })?;
        let timestamp_begin = no_ts + 1;
        let eos = g
            .eos_token_id
            .as_ref()
            .and_then(|e| e.first().copied())
            .ok_or_else(|| Error::Options("the generation config has no eos_token_id".into()))?;
        let cfg = mel.config();
        let window = cfg.n_frames();
        let long = samples.len() > cfg.n_samples;
        let (features, max_frames) = if long {
            let f = mel.long_form(samples)?;
            let n = f.n_frames;
            (f, n)
        } else {
            (mel.short_form(samples)?, window)
        };
        let mut gen_opts = opts.generate.clone();
        if long {
            gen_opts.timestamps = Some(true);
        }
        let timestamps = gen_opts.timestamps == Some(true);
        let audio_frames = samples.len().div_ceil(cfg.hop_length.max(1));
        let mut windows: Vec<Window> = Vec::new();
        let mut seek = 0;
        while seek < max_frames {
            let frames = (max_frames - seek).min(window);
            let features = features.segment(seek, window);
            let input = EncoderInput::Features {
                data: &features.data,
                batch: 1,
                n_mels: features.n_mels,
                frames: window,
            };
            let out = self.generate_input(&input, &gen_opts, &mut |_, _| {})?;
            let sequence = out.sequences[0][0].clone();
            let prompt_len = self.prompt_len(&sequence)?;
            let detect = matches!(gen_opts.language.as_deref(), None | Some("auto"));
            if detect && g.is_multilingual == Some(true) {
                // Detected once, on the first window, as transformers does.
                gen_opts.language = Some(self.language_of(&sequence)?);
            }
            let mut generated = &sequence[prompt_len..];
            if generated.last() == Some(&eos) {
                generated = &generated[..generated.len() - 1];
            }
            let (segments, advance) = if timestamps {
                retrieve_segments(generated, timestamp_begin, seek, frames)
            } else {
                (
                    vec![Segment {
                        start: time_offset(seek),
                        end: time_offset(seek)
                            + frames.min(audio_frames.saturating_sub(seek)) as f64 * FRAME_SECONDS,
                        tokens: generated.to_vec(),
                    }],
                    frames,
                )
            };
            windows.push(Window {
                seek,
                frames,
                features,
                sequence,
                prompt_len,
                segments,
            });
            // A window that moves nowhere would repeat forever; transformers has the same
            // guard implicitly (a closed pair is never <|0.00|><|0.00|> twice).
            seek += advance.max(1);
        }
        self.assemble(windows, samples.len(), mel, opts, timestamp_begin)
    }

    /// The transcript of the decoded windows.
    fn assemble(
        &self,
        windows: Vec<Window>,
        n_samples: usize,
        mel: &MelExtractor,
        opts: &TranscribeOptions,
        timestamp_begin: u32,
    ) -> Result<Transcript> {
        let tok = self.require_tokenizer()?;
        let text_of = |ids: &[u32]| -> Result<String> {
            let text: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|&t| t < timestamp_begin)
                .collect();
            tok.decode(&text)
        };
        let language = match windows.first() {
            Some(w) if self.generation_config.is_multilingual == Some(true) => {
                self.language_of(&w.sequence)?
            }
            _ => "en".to_string(),
        };
        let mut segments = Vec::new();
        let mut all_tokens = Vec::new();
        for w in &windows {
            for s in &w.segments {
                all_tokens.extend_from_slice(&s.tokens);
                segments.push(TranscriptSegment {
                    start: s.start,
                    end: s.end,
                    text: text_of(&s.tokens)?.trim().to_string(),
                    tokens: s.tokens.clone(),
                });
            }
        }
        let text = text_of(&all_tokens)?.trim().to_string();
        let tokens = match windows.as_slice() {
            [one] => one.sequence.clone(),
            _ => all_tokens,
        };
        let words = if opts.word_timestamps {
            let mut words = Vec::new();
            for w in &windows {
                words.extend(self.window_words(w, n_samples, mel)?);
            }
            Some(words)
        } else {
            None
        };
        Ok(Transcript {
            language,
            text,
            tokens,
            segments,
            words,
            windows: windows
                .into_iter()
                .map(|w| TranscriptWindow {
                    seek: w.seek,
                    frames: w.frames,
                    tokens: w.sequence,
                })
                .collect(),
        })
    }

    /// The words of a window's kept segments, in seconds from the start of the clip.
    fn window_words(&self, w: &Window, n_samples: usize, mel: &MelExtractor) -> Result<Vec<Word>> {
        let frames = if w.seek == 0 && n_samples <= mel.config().n_samples {
            alignment::num_frames(n_samples, mel.config())
        } else {
            w.frames
        };
        let times = self.token_timestamps(&w.features.data, &w.sequence, frames)?;
        // Tokens after the last kept segment are decoded again by the next window.
        let kept: usize = w.segments.iter().map(|s| s.tokens.len()).sum();
        let end = (w.prompt_len + kept).min(w.sequence.len());
        let offset = time_offset(w.seek) as f32;
        let times: Vec<f32> = times[..end].iter().map(|t| t + offset).collect();
        self.words(&w.sequence[..end], &times)
    }

    /// The language code of a multilingual sequence (`<|startoftranscript|><|fr|>…` → `fr`).
    fn language_of(&self, sequence: &[u32]) -> Result<String> {
        let langs = self.generation_config.lang_to_id.as_ref();
        sequence
            .get(1)
            .and_then(|&id| langs?.iter().find(|(_, v)| **v == id))
            .map(|(k, _)| {
                k.trim_start_matches("<|")
                    .trim_end_matches("|>")
                    .to_string()
            })
            .ok_or_else(|| {
                Error::Input(format!(
                    "the sequence has no language token after its start token: {:?}",
                    &sequence[..sequence.len().min(4)]
                ))
            })
    }
}
