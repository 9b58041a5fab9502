//! Whisper transcription, as transformers' Whisper `generate` does it: one 30 s window for
//! short audio (several short clips in one batch); over 30 s, the features of the whole clip
//! cut into windows that the decoded timestamps move forward. The language is detected once,
//! on the first window, when it is not given.

use super::Model;
use crate::arch::whisper::alignment;
use crate::arch::whisper::segments::{FRAME_SECONDS, Segment, retrieve_segments, time_offset};
use crate::arch::whisper::words::Word;
use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::generation::GenerateOptions;
use crate::io::mel::{LogMel, MelConfig, MelExtractor};

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
    /// Its window's [`TranscriptWindow::no_speech_prob`].
    pub no_speech_prob: Option<f32>,
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
    /// The probability of `<|nospeech|>` right after the start token (transformers'
    /// `no_speech_prob`; Whisper checkpoints all have the token).
    pub no_speech_prob: Option<f32>,
}

/// One decoded window.
struct Window {
    seek: usize,
    frames: usize,
    features: LogMel,
    sequence: Vec<u32>,
    prompt_len: usize,
    segments: Vec<Segment>,
    no_speech_prob: Option<f32>,
}

/// What the sequential windows of one clip read.
struct Windows<'a> {
    /// The clip's features (long-form: all of them; short-form: its 30 s, padded).
    features: &'a LogMel,
    /// Frames per window.
    window: usize,
    /// Frames holding audio.
    audio_frames: usize,
    sp: Specials,
}

/// The token ids a transcription needs from the generation config.
#[derive(Clone, Copy)]
struct Specials {
    timestamp_begin: u32,
    eos: u32,
}

impl Model {
    /// Transcribes one clip of 16 kHz mono `samples` with the features of `mel`.
    pub fn transcribe(
        &self,
        samples: &[f32],
        mel: &MelExtractor,
        opts: &TranscribeOptions,
    ) -> Result<Transcript> {
        let mut all = self.transcribe_batch(&[samples], mel, opts)?;
        Ok(all.remove(0))
    }

    /// Transcribes several clips, in order: those up to 30 s decode together in batches (one
    /// encoder pass and one search per batch, each clip detecting its own language; as many
    /// clips per batch as the adapter's binding size allows), longer ones one after the
    /// other, window by window. Each transcript equals what [`Model::transcribe`] gives for
    /// its clip alone.
    pub fn transcribe_batch(
        &self,
        clips: &[&[f32]],
        mel: &MelExtractor,
        opts: &TranscribeOptions,
    ) -> Result<Vec<Transcript>> {
        let sp = self.specials()?;
        let n_samples = mel.config().n_samples;
        let short: Vec<usize> = (0..clips.len())
            .filter(|&i| clips[i].len() <= n_samples)
            .collect();
        let mut out: Vec<Option<Transcript>> = vec![None; clips.len()];
        if !short.is_empty() {
            let features = short
                .iter()
                .map(|&i| {
                    mel.short_form(clips[i])
                        .map_err(|e| Error::Input(format!("clip {i}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let hop = mel.config().hop_length.max(1);
            let audio_frames: Vec<usize> = short
                .iter()
                .map(|&i| clips[i].len().div_ceil(hop))
                .collect();
            let mut features = features.into_iter();
            let per_call = self.clips_per_binding();
            for (which, frames) in short.chunks(per_call).zip(audio_frames.chunks(per_call)) {
                let part: Vec<LogMel> = features.by_ref().take(which.len()).collect();
                let decoded = self.decode_short(part, frames, &opts.generate, sp)?;
                for ((&i, (w, advance)), &audio) in which.iter().zip(decoded).zip(frames) {
                    let windows = self.short_windows(w, advance, audio, mel, opts, sp)?;
                    out[i] = Some(self.assemble(windows, clips[i].len(), mel, opts, sp)?);
                }
            }
        }
        for (i, clip) in clips.iter().enumerate() {
            if out[i].is_none() {
                out[i] = Some(self.transcribe_long(clip, mel, opts, sp)?);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The feature extractor of this Whisper model: its directory's
    /// preprocessor_config.json when there is one (Hugging Face), else Whisper's defaults for
    /// its mel bins (CTranslate2 directories have none).
    pub fn mel_extractor(&self) -> Result<MelExtractor> {
        let n_mels = self.config.num_mel_bins.ok_or_else(|| {
            Error::Options(format!(
                "{} is not a Whisper model (no num_mel_bins)",
                self.dir.display()
            ))
        })?;
        let preprocessor = self.dir.join("preprocessor_config.json");
        let mels = if preprocessor.exists() {
            MelConfig::from_preprocessor_config(&preprocessor)?
        } else {
            MelConfig::whisper(n_mels)
        };
        MelExtractor::new(&mels)
    }

    /// Clips one call can take: each tensor of a batch must fit one binding, and the widest
    /// per clip are the encoder's feed-forward activations (4·d_model per frame) and the
    /// decoder's cross K/V of every layer, projected together (2·layers·d_model per frame).
    fn clips_per_binding(&self) -> usize {
        let c = &self.config;
        let frames = c.max_source_positions.unwrap_or(1500).max(1);
        let width = (4 * c.d_model).max(2 * c.decoder_layers * c.d_model).max(1);
        let per_clip = (frames * width * 4) as u64;
        usize::try_from(self.gpu.max_binding() / per_clip)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    fn specials(&self) -> Result<Specials> {
        let g = &self.generation_config;
        let no_ts = g.no_timestamps_token_id.ok_or_else(|| {
            Error::Options(format!(
                "{} is not a Whisper model (no no_timestamps_token_id)",
                self.dir.display()
            ))
        })?;
        let eos = g
            .eos_token_id
            .as_ref()
            .and_then(|e| e.first().copied())
            .ok_or_else(|| Error::Options("the generation config has no eos_token_id".into()))?;
        Ok(Specials {
            timestamp_begin: no_ts + 1,
            eos,
        })
    }

    /// One search over the 30 s windows of short clips holding `audio_frames` frames of
    /// audio each.
    fn decode_short(
        &self,
        features: Vec<LogMel>,
        audio_frames: &[usize],
        opts: &GenerateOptions,
        sp: Specials,
    ) -> Result<Vec<(Window, usize)>> {
        let (n_mels, frames) = (features[0].n_mels, features[0].n_frames);
        let mut data = Vec::with_capacity(features.len() * n_mels * frames);
        for f in &features {
            data.extend_from_slice(&f.data);
        }
        let input = EncoderInput::Features {
            data: &data,
            batch: features.len(),
            n_mels,
            frames,
        };
        let out = self.generate_input(&input, opts, &mut |_, _| {})?;
        features
            .into_iter()
            .enumerate()
            .map(|(j, f)| {
                let no_speech = out.no_speech_probs.as_ref().map(|p| p[j]);
                let sequence = out.sequences[j][0].clone();
                let ts = opts.timestamps == Some(true);
                self.decoded_window(0, frames, f, sequence, no_speech, (sp, ts, audio_frames[j]))
            })
            .collect()
    }

    /// The windows of a short clip: its first, decoded in a batch, then, as transformers'
    /// loop does, more over the rest of its 30 s of features whenever timestamps end the
    /// first on a closed segment before the window's end (runaway repetitions on silence).
    fn short_windows(
        &self,
        first: Window,
        advance: usize,
        audio_frames: usize,
        mel: &MelExtractor,
        opts: &TranscribeOptions,
        sp: Specials,
    ) -> Result<Vec<Window>> {
        let frames = first.frames;
        if opts.generate.timestamps != Some(true) || advance >= frames {
            return Ok(vec![first]);
        }
        let mut gen_opts = opts.generate.clone();
        if self.generation_config.is_multilingual == Some(true) {
            gen_opts.language = Some(self.language_of(&first.sequence)?);
        }
        let features = first.features.clone();
        let window = mel.config().n_frames();
        let run = Windows {
            features: &features,
            window,
            audio_frames,
            sp,
        };
        self.windows_from(&run, advance, vec![first], gen_opts)
    }

    /// Transcribes a clip over 30 s: the features of the whole clip, cut into windows that
    /// the decoded timestamps move forward. The language is detected once, on the first
    /// window, when it is not given.
    fn transcribe_long(
        &self,
        samples: &[f32],
        mel: &MelExtractor,
        opts: &TranscribeOptions,
        sp: Specials,
    ) -> Result<Transcript> {
        let cfg = mel.config();
        let features = mel.long_form(samples)?;
        let mut gen_opts = opts.generate.clone();
        gen_opts.timestamps = Some(true);
        let run = Windows {
            features: &features,
            window: cfg.n_frames(),
            audio_frames: samples.len().div_ceil(cfg.hop_length.max(1)),
            sp,
        };
        let windows = self.windows_from(&run, 0, Vec::new(), gen_opts)?;
        self.assemble(windows, samples.len(), mel, opts, sp)
    }

    /// Decodes windows one after the other from frame `seek` to the end of `run.features`,
    /// after `windows`, each moved forward by the previous one's timestamps; detects the
    /// language on the first it decodes when `gen_opts` has none.
    fn windows_from(
        &self,
        run: &Windows,
        mut seek: usize,
        mut windows: Vec<Window>,
        mut gen_opts: GenerateOptions,
    ) -> Result<Vec<Window>> {
        let g = &self.generation_config;
        let (features, window) = (run.features, run.window);
        let max_frames = features.n_frames;
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
            let no_speech = out.no_speech_probs.as_ref().map(|p| p[0]);
            let detect = matches!(gen_opts.language.as_deref(), None | Some("auto"));
            if detect && g.is_multilingual == Some(true) {
                // Detected once, on the first window, as transformers does.
                gen_opts.language = Some(self.language_of(&sequence)?);
            }
            let (w, advance) = self.decoded_window(
                seek,
                frames,
                features,
                sequence,
                no_speech,
                (run.sp, true, run.audio_frames),
            )?;
            windows.push(w);
            // A window that moves nowhere would repeat forever; transformers has the same
            // guard implicitly (a closed pair is never <|0.00|><|0.00|> twice).
            seek += advance.max(1);
        }
        Ok(windows)
    }

    /// A decoded window and the frames it moves the next one forward: its segments by the
    /// timestamps (with `timestamps`), else one segment over the audio it holds.
    fn decoded_window(
        &self,
        seek: usize,
        frames: usize,
        features: LogMel,
        sequence: Vec<u32>,
        no_speech_prob: Option<f32>,
        (sp, timestamps, audio_frames): (Specials, bool, usize),
    ) -> Result<(Window, usize)> {
        let prompt_len = self.prompt_len(&sequence)?;
        let mut generated = &sequence[prompt_len..];
        if generated.last() == Some(&sp.eos) {
            generated = &generated[..generated.len() - 1];
        }
        let (segments, advance) = if timestamps {
            retrieve_segments(generated, sp.timestamp_begin, seek, frames)
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
        let w = Window {
            seek,
            frames,
            features,
            sequence,
            prompt_len,
            segments,
            no_speech_prob,
        };
        Ok((w, advance))
    }

    /// The transcript of the decoded windows.
    fn assemble(
        &self,
        windows: Vec<Window>,
        n_samples: usize,
        mel: &MelExtractor,
        opts: &TranscribeOptions,
        sp: Specials,
    ) -> Result<Transcript> {
        let timestamp_begin = sp.timestamp_begin;
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
                    no_speech_prob: w.no_speech_prob,
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
                    no_speech_prob: w.no_speech_prob,
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
