//! Whisper's log-mel features, value for value as transformers' `WhisperFeatureExtractor`
//! computes them: within 1.2e-7 (one f32 step) of its numpy implementation and within 6e-5 of
//! its torch one (`torch.stft` in f32), which `__call__` uses when torch is installed and which
//! tests/models/audio.rs checks to 1e-4 on the clips of tests/fixtures/audio.
//!
//! The steps of `WhisperFeatureExtractor.__call__` and `_np_extract_fbank_features`, each here:
//!
//! 1. pad the samples with zeros, or truncate them, to `n_samples` (30 s): `padding="max_length"`
//!    ([`MelExtractor::short_form`]); the long-form path skips this ([`MelExtractor::long_form`]);
//! 2. reflect-pad `n_fft / 2` samples on each side (`center=True`), cut frames of `n_fft` every
//!    `hop_length` samples, multiply by a periodic Hann window, real FFT, power `|X|^2`;
//! 3. project on the Slaney-scale, Slaney-normalised mel filter bank (0 to 8 kHz), clamp at 1e-10,
//!    `log10`;
//! 4. drop the last frame (so 480 000 samples give 3000 frames);
//! 5. `max(x, x.max() - 8)` over the whole spectrogram, then `(x + 4) / 4`.
//!
//! The FFT, power and mel projection run in f64 (numpy's path does, torch's runs in f32); the log
//! values are then kept in f32 and normalised in f32, as numpy's path does after `log10`.
//!
//! Long-form transcription in transformers (the ASR pipeline for audio over 30 s, then
//! `WhisperForConditionalGeneration.generate`) computes the features of the whole clip at once,
//! unpadded (`truncation=False, padding="longest"`), so the `max - 8` floor is taken over the
//! whole clip, then slices 3000-frame windows at a frame offset `seek` that the decoded
//! timestamps move, padding a short last window with 0.0 in feature space (not with the features
//! of silence): [`LogMel::segment`]. The pipeline's chunked mode (`chunk_length_s`) instead makes
//! each chunk a short-form call of its own: [`MelExtractor::at`].
//!
//! Cost, on the host, one core of the 2-core development machine (`time_one_window` below): one
//! 30 s window takes about 18 ms with 80 mels and 23 ms with 128 at opt-level 3, 25 ms and 35 ms
//! in the test profile (opt-level 1); building a [`MelExtractor`] takes 0.15 ms. A long clip
//! costs the same per 30 s.

use std::path::Path;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::io::audio::MAX_DURATION_S;
use crate::io::json::read_json;

/// The mel filters reach up to this frequency, whatever the sample rate (as transformers').
const MAX_FREQUENCY: f64 = 8000.0;
/// The floor of the mel power before `log10`.
const MEL_FLOOR: f64 = 1e-10;
/// Frames below `max - DYNAMIC_RANGE` (in log10 units, 80 dB) are raised to it.
const DYNAMIC_RANGE: f32 = 8.0;

/// The feature extractor's settings: `preprocessor_config.json`'s `feature_size`, `n_fft`,
/// `hop_length`, `sampling_rate` and `chunk_length * sampling_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MelConfig {
    /// Mel bins (`feature_size`): 80 for Whisper up to large-v2, 128 for large-v3.
    pub n_mels: usize,
    /// FFT and window length in samples.
    pub n_fft: usize,
    /// Samples between frames.
    pub hop_length: usize,
    /// Samples per second the features expect.
    pub sampling_rate: u32,
    /// Samples of one window (30 s); short-form input is padded or truncated to it.
    pub n_samples: usize,
}

impl Default for MelConfig {
    fn default() -> Self {
        Self::whisper(80)
    }
}

impl MelConfig {
    /// Whisper's settings with `n_mels` mel bins: n_fft 400, hop 160, 16 kHz, 30 s windows.
    pub fn whisper(n_mels: usize) -> Self {
        Self {
            n_mels,
            n_fft: 400,
            hop_length: 160,
            sampling_rate: 16_000,
            n_samples: 480_000,
        }
    }

    /// Reads `preprocessor_config.json`; absent fields take `WhisperFeatureExtractor`'s
    /// defaults. Settings this crate does not reproduce (dither, a non-zero padding value,
    /// another extractor type) are an error naming the file.
    pub fn from_preprocessor_config(path: &Path) -> Result<Self> {
        let raw: PreprocessorConfig = read_json(path)?;
        let bad = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        if let Some(kind) = &raw.feature_extractor_type
            && kind != "WhisperFeatureExtractor"
        {
            return Err(bad(format!(
                "feature_extractor_type {kind:?} is not WhisperFeatureExtractor"
            )));
        }
        if raw.dither.is_some_and(|d| d != 0.0) {
            return Err(bad("dither is not supported (only 0.0)".into()));
        }
        if raw.padding_value.is_some_and(|p| p != 0.0) {
            return Err(bad("padding_value is not supported (only 0.0)".into()));
        }
        let d = Self::whisper(raw.feature_size.unwrap_or(80));
        let sampling_rate = raw.sampling_rate.unwrap_or(d.sampling_rate);
        let chunk_length = raw.chunk_length.unwrap_or(30);
        let cfg = Self {
            n_mels: d.n_mels,
            n_fft: raw.n_fft.unwrap_or(d.n_fft),
            hop_length: raw.hop_length.unwrap_or(d.hop_length),
            sampling_rate,
            n_samples: chunk_length.saturating_mul(sampling_rate as usize),
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Frames of one window: `n_samples / hop_length` (3000).
    pub fn n_frames(&self) -> usize {
        frames_for(self.n_samples, self.n_fft, self.hop_length)
    }

    /// Checks the settings, saying which one is out of range.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let Self {
            n_mels,
            n_fft,
            hop_length,
            sampling_rate,
            n_samples,
        } = *self;
        if !(1..=1024).contains(&n_mels) {
            return Err(format!(
                "feature_size (mel bins) {n_mels} is outside 1..=1024"
            ));
        }
        if !(2..=65_536).contains(&n_fft) {
            return Err(format!("n_fft {n_fft} is outside 2..=65536"));
        }
        if hop_length == 0 || hop_length > n_fft {
            return Err(format!(
                "hop_length {hop_length} is outside 1..=n_fft ({n_fft})"
            ));
        }
        if !(1_000..=768_000).contains(&sampling_rate) {
            return Err(format!(
                "sampling_rate {sampling_rate} is outside 1000..=768000"
            ));
        }
        let max = MAX_DURATION_S as usize * sampling_rate as usize;
        if n_samples <= n_fft / 2 || n_samples < hop_length || n_samples > max {
            return Err(format!(
                "a window of {n_samples} samples (chunk_length x sampling_rate) must hold more \
                 than n_fft / 2 = {} samples, at least hop_length = {hop_length}, and at most \
                 {} hours",
                n_fft / 2,
                MAX_DURATION_S / 3600
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct PreprocessorConfig {
    feature_extractor_type: Option<String>,
    feature_size: Option<usize>,
    sampling_rate: Option<u32>,
    hop_length: Option<usize>,
    n_fft: Option<usize>,
    chunk_length: Option<usize>,
    padding_value: Option<f64>,
    dither: Option<f64>,
}

/// Frames after centring and dropping the last one, as transformers counts them.
fn frames_for(len: usize, n_fft: usize, hop: usize) -> usize {
    let padded = len + 2 * (n_fft / 2);
    if padded < n_fft {
        return 0;
    }
    (padded - n_fft) / hop // 1 + (padded - n_fft) / hop, less the dropped last frame
}

/// Log-mel features `[n_mels, n_frames]`, row-major (one row per mel bin).
#[derive(Clone, Debug, PartialEq)]
pub struct LogMel {
    pub n_mels: usize,
    pub n_frames: usize,
    /// `data[m * n_frames + t]` is mel bin `m` of frame `t`.
    pub data: Vec<f32>,
}

impl LogMel {
    /// Mel bin `mel` of frame `frame`; `None` outside `[n_mels, n_frames]`.
    pub fn get(&self, mel: usize, frame: usize) -> Option<f32> {
        if frame >= self.n_frames {
            return None;
        }
        let at = mel.checked_mul(self.n_frames)?.checked_add(frame)?;
        self.data.get(at).copied()
    }

    /// The window of `n_frames` frames starting at frame `seek`, as transformers' long-form
    /// `generate` cuts it (`_get_input_segment`): frames past the end are 0.0. A `seek` at or
    /// past the end gives a window of zeros.
    pub fn segment(&self, seek: usize, n_frames: usize) -> LogMel {
        let mut data = vec![0.0f32; self.n_mels * n_frames];
        let real = self.n_frames.saturating_sub(seek).min(n_frames);
        if real > 0 {
            // `real > 0` makes both widths non-zero; `seek + real <= self.n_frames`.
            let rows = data
                .chunks_exact_mut(n_frames)
                .zip(self.data.chunks_exact(self.n_frames));
            for (dst, src) in rows {
                let dst = dst.iter_mut().take(real);
                for (d, s) in dst.zip(src.iter().skip(seek)) {
                    *d = *s;
                }
            }
        }
        LogMel {
            n_mels: self.n_mels,
            n_frames,
            data,
        }
    }
}

/// Short-form features of one 30 s window (`[n_mels, 3000]` for Whisper): `samples` padded with
/// zeros or truncated to `cfg.n_samples`. Builds a [`MelExtractor`]; keep one to reuse.
pub fn log_mel(samples: &[f32], cfg: &MelConfig) -> Result<Vec<f32>> {
    Ok(MelExtractor::new(cfg)?.short_form(samples)?.data)
}

/// Short-form features of the 30 s starting at sample `offset` of a longer clip (the chunked
/// pipeline's view of one chunk): [`log_mel`] of `samples[offset..]`.
pub fn log_mel_at(samples: &[f32], offset: usize, cfg: &MelConfig) -> Result<Vec<f32>> {
    Ok(MelExtractor::new(cfg)?.at(samples, offset)?.data)
}

/// Long-form features of a whole clip, `[n_mels, len / hop_length]`: what transformers computes
/// for audio over 30 s; cut windows with [`LogMel::segment`].
pub fn log_mel_long_form(samples: &[f32], cfg: &MelConfig) -> Result<LogMel> {
    MelExtractor::new(cfg)?.long_form(samples)
}

/// One mel filter: its non-zero weights over FFT bins `start..start + weights.len()`.
#[derive(Clone, Debug)]
struct MelFilter {
    start: usize,
    weights: Vec<f64>,
}

/// The window, the filter bank and the FFT plan for one [`MelConfig`], built once.
pub struct MelExtractor {
    cfg: MelConfig,
    window: Vec<f64>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for MelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelExtractor")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl MelExtractor {
    pub fn new(cfg: &MelConfig) -> Result<Self> {
        cfg.validate()
            .map_err(|e| Error::Input(format!("mel features: {e}")))?;
        let n = cfg.n_fft;
        // periodic Hann: numpy's hanning(n + 1)[:-1], torch.hann_window(n)
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let bank = mel_filter_bank(n / 2 + 1, cfg.n_mels, 0.0, MAX_FREQUENCY, cfg.sampling_rate);
        let filters = (0..cfg.n_mels)
            .map(|m| {
                // Column m of the `[n_freqs, n_mels]` bank (`validate` made n_mels at least 1).
                let column = bank.iter().skip(m).step_by(cfg.n_mels.max(1));
                let start = column.clone().position(|&w| w != 0.0).unwrap_or(0);
                let end = column
                    .clone()
                    .rposition(|&w| w != 0.0)
                    .map_or(start, |e| e + 1);
                MelFilter {
                    start,
                    weights: column.skip(start).take(end - start).copied().collect(),
                }
            })
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        Ok(Self {
            cfg: *cfg,
            window,
            filters,
            fft,
        })
    }

    pub fn config(&self) -> &MelConfig {
        &self.cfg
    }

    /// One 30 s window (`[n_mels, n_frames()]`): `samples` padded with zeros or truncated to
    /// `n_samples`, as `WhisperFeatureExtractor.__call__(audio)` with its defaults.
    pub fn short_form(&self, samples: &[f32]) -> Result<LogMel> {
        let used = samples.get(..self.cfg.n_samples).unwrap_or(samples);
        check_finite(used)?;
        self.features(used, self.cfg.n_samples)
    }

    /// The short-form window of the 30 s starting at sample `offset` (zeros past the end).
    pub fn at(&self, samples: &[f32], offset: usize) -> Result<LogMel> {
        self.short_form(samples.get(offset..).unwrap_or_default())
    }

    /// The whole clip unpadded, `[n_mels, len / hop_length]`, as
    /// `WhisperFeatureExtractor.__call__(audio, truncation=False, padding="longest")`: the
    /// long-form input of transformers' `generate`. Needs more than `n_fft / 2` samples (the
    /// reflect padding) and at most [`MAX_DURATION_S`].
    pub fn long_form(&self, samples: &[f32]) -> Result<LogMel> {
        let len = samples.len();
        let min = (self.cfg.n_fft / 2 + 1).max(self.cfg.hop_length);
        if len < min {
            return Err(Error::Input(format!(
                "long-form mel features need at least {min} samples, got {len}"
            )));
        }
        let max = MAX_DURATION_S as usize * self.cfg.sampling_rate as usize;
        if len > max {
            return Err(Error::Input(format!(
                "{len} samples ({:.1} hours) are more than the {} hours long-form features \
                 accept; split the audio",
                len as f64 / f64::from(self.cfg.sampling_rate) / 3600.0,
                MAX_DURATION_S / 3600
            )));
        }
        check_finite(samples)?;
        self.features(samples, len)
    }

    /// The features of `samples` followed by zeros up to `len` samples (`len >= samples.len()`,
    /// `len > n_fft / 2`), normalised over all their frames.
    fn features(&self, samples: &[f32], len: usize) -> Result<LogMel> {
        let MelConfig {
            n_mels,
            n_fft,
            hop_length,
            ..
        } = self.cfg;
        let n_frames = frames_for(len, n_fft, hop_length);
        let pad = (n_fft / 2) as isize;
        let last = len as isize - 1;
        let mut data = vec![0.0f32; n_mels * n_frames];
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; spectrum.len()];
        let mut max = f32::NEG_INFINITY;
        for t in 0..n_frames {
            let begin = (t * hop_length) as isize - pad;
            for (k, (x, w)) in frame.iter_mut().zip(&self.window).enumerate() {
                // reflect padding without repeating the edge (numpy "reflect", torch's stft)
                let i = begin + k as isize;
                let i = if i < 0 {
                    -i
                } else if i > last {
                    2 * last - i
                } else {
                    i
                } as usize;
                *x = samples.get(i).map_or(0.0, |&s| f64::from(s)) * w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                // Cannot fail: the buffers are the plan's own (`make_*_vec`).
                .map_err(|e| Error::Input(format!("log-mel spectrogram, frame {t}: {e}")))?;
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = Complex::norm_sqr(c);
            }
            for (m, filter) in self.filters.iter().enumerate() {
                // Filters lie inside the spectrum and `data` is `[n_mels, n_frames]`, so both
                // lookups find their place (each costs the bounds check an index would).
                let band = power.get(filter.start..).unwrap_or_default();
                let mel: f64 = filter.weights.iter().zip(band).map(|(w, p)| w * p).sum();
                let v = mel.max(MEL_FLOOR).log10() as f32;
                max = max.max(v);
                if let Some(out) = data.get_mut(m * n_frames + t) {
                    *out = v;
                }
            }
        }
        let floor = max - DYNAMIC_RANGE;
        for v in &mut data {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        Ok(LogMel {
            n_mels,
            n_frames,
            data,
        })
    }
}

fn check_finite(samples: &[f32]) -> Result<()> {
    // `position` is the fast scan; the lookup runs only on the error path.
    let bad = samples.iter().position(|s| !s.is_finite());
    match bad.and_then(|i| Some((i, samples.get(i)?))) {
        Some((i, s)) => Err(Error::Input(format!(
            "audio sample {i} is {s}, not a finite number"
        ))),
        None => Ok(()),
    }
}

/// Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
fn hertz_to_mel(hz: f64) -> f64 {
    let log_step = 27.0 / 6.4f64.ln();
    if hz >= 1000.0 {
        15.0 + (hz / 1000.0).ln() * log_step
    } else {
        3.0 * hz / 200.0
    }
}

fn mel_to_hertz(mel: f64) -> f64 {
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= 15.0 {
        1000.0 * (log_step * (mel - 15.0)).exp()
    } else {
        200.0 * mel / 3.0
    }
}

/// numpy's `linspace(start, stop, n)`: `start + i * step`, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n.max(2) - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    if let Some(l) = v.last_mut()
        && n > 1
    {
        *l = stop;
    }
    v
}

/// transformers' `mel_filter_bank(..., norm="slaney", mel_scale="slaney")`: triangular filters
/// centred on points evenly spaced in mel between `min_hz` and `max_hz`, each scaled by
/// `2 / (right - left)` (equal area). Returns `[n_freqs, n_mels]` row-major.
fn mel_filter_bank(
    n_freqs: usize,
    n_mels: usize,
    min_hz: f64,
    max_hz: f64,
    sampling_rate: u32,
) -> Vec<f64> {
    let mels = linspace(hertz_to_mel(min_hz), hertz_to_mel(max_hz), n_mels + 2);
    let centers: Vec<f64> = mels.into_iter().map(mel_to_hertz).collect();
    let fft_freqs = linspace(0.0, f64::from(sampling_rate / 2), n_freqs);
    // Filter m rises from centre m to m + 1 and falls to m + 2: one window of 3 per filter.
    let triangles: Vec<(f64, f64, f64)> = centers
        .windows(3)
        .filter_map(|w| match *w {
            [left, mid, right] => Some((left, mid, right)),
            _ => None,
        })
        .collect();
    fft_freqs
        .iter()
        .flat_map(|&hz| {
            triangles.iter().map(move |&(left, mid, right)| {
                let down = -(left - hz) / (mid - left);
                let up = (right - hz) / (right - mid);
                let enorm = 2.0 / (right - left);
                0.0f64.max(down.min(up)) * enorm
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_match_transformers() {
        let cfg = MelConfig::whisper(80);
        assert_eq!(cfg.n_frames(), 3000);
        // 1 + len // hop frames, less the dropped last one
        assert_eq!(frames_for(640_000, 400, 160), 4000);
        assert_eq!(frames_for(640_159, 400, 160), 4000);
        assert_eq!(frames_for(201, 400, 160), 1);
    }

    #[test]
    fn filter_bank_is_transformers() {
        // values of WhisperFeatureExtractor(feature_size=80).mel_filters ([201, 80])
        let bank = mel_filter_bank(201, 80, 0.0, 8000.0, 16_000);
        let at = |f: usize, m: usize| bank[f * 80 + m];
        assert!((at(1, 0) - 0.024862593984176087).abs() < 1e-15);
        assert!((at(2, 1) - 0.022871772096078023).abs() < 1e-15);
        assert!((bank.iter().sum::<f64>() - 1.9990241029178577).abs() < 1e-12);
        let extractor = MelExtractor::new(&MelConfig::whisper(80)).unwrap();
        let span = |m: usize| {
            let f = &extractor.filters[m];
            (f.start, f.start + f.weights.len() - 1)
        };
        assert_eq!(
            [span(0), span(40), span(79)],
            [(1, 1), (42, 44), (186, 199)]
        );
        for hz in [0.0, 500.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hertz(hertz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn silence_is_minus_one_and_a_half() {
        // all-zero audio: every mel is floored at 1e-10 -> -10 -> (-10 + 4) / 4
        let f = log_mel(&[], &MelConfig::whisper(80)).unwrap();
        assert_eq!(f.len(), 80 * 3000);
        assert!(f.iter().all(|&v| v == -1.5));
    }

    #[test]
    fn lookups_outside_the_features_are_none() {
        let feats = LogMel {
            n_mels: 2,
            n_frames: 3,
            data: (0..6).map(|v| v as f32).collect(),
        };
        assert_eq!(feats.get(1, 2), Some(5.0));
        // (0, 3) would be (1, 0) in a flat lookup.
        for (m, t) in [(0, 3), (2, 0), (usize::MAX, 1), (1, usize::MAX)] {
            assert_eq!(feats.get(m, t), None, "({m}, {t})");
        }
        // The fields are public: features shorter than their sizes say are cut, not a panic.
        let short = LogMel {
            data: vec![1.0, 2.0, 3.0, 4.0],
            ..feats
        };
        assert_eq!(short.segment(1, 3).data, vec![2.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn segment_pads_with_zeros() {
        let feats = LogMel {
            n_mels: 2,
            n_frames: 5,
            data: (0..10).map(|v| v as f32 + 1.0).collect(),
        };
        let s = feats.segment(3, 4);
        assert_eq!(s.data, vec![4.0, 5.0, 0.0, 0.0, 9.0, 10.0, 0.0, 0.0]);
        assert!(feats.segment(9, 2).data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn bad_input_is_an_error() {
        let cfg = MelConfig::whisper(80);
        let e = log_mel(&[0.0, f32::NAN], &cfg).unwrap_err().to_string();
        assert!(e.contains("sample 1") && e.contains("NaN"), "{e}");
        let e = log_mel_long_form(&[0.0; 100], &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 201 samples"), "{e}");
        let e = log_mel(&[0.0], &MelConfig::whisper(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("feature_size"), "{e}");
    }

    #[test]
    fn preprocessor_config_is_read() {
        let dir = std::env::temp_dir().join(format!("seqbridge-mel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("preprocessor_config.json");
        std::fs::write(
            &path,
            r#"{"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128,
                "hop_length": 160, "n_fft": 400, "sampling_rate": 16000, "chunk_length": 30,
                "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
                "padding_value": 0.0, "return_attention_mask": false}"#,
        )
        .unwrap();
        assert_eq!(
            MelConfig::from_preprocessor_config(&path).unwrap(),
            MelConfig::whisper(128)
        );
        std::fs::write(&path, r#"{"feature_size": 80, "dither": 0.5}"#).unwrap();
        let e = MelConfig::from_preprocessor_config(&path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("preprocessor_config.json") && e.contains("dither"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The time of one 30 s window, for the module doc:
    /// `cargo test -p seqbridge-models --lib time_one_window -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn time_one_window() {
        let samples: Vec<f32> = (0..480_000)
            .map(|i| (i as f32 * 0.013).sin() * 0.3 + (i as f32 * 0.0007).cos() * 0.2)
            .collect();
        for n_mels in [80, 128] {
            let ex = MelExtractor::new(&MelConfig::whisper(n_mels)).unwrap();
            ex.short_form(&samples).unwrap();
            let runs = 20;
            let start = std::time::Instant::now();
            for _ in 0..runs {
                std::hint::black_box(ex.short_form(&samples).unwrap());
            }
            let per = start.elapsed().as_secs_f64() / f64::from(runs) * 1e3;
            let new = std::time::Instant::now();
            std::hint::black_box(MelExtractor::new(&MelConfig::whisper(n_mels)).unwrap());
            eprintln!(
                "{n_mels} mels: {per:.1} ms per 30 s window, {:.2} ms to build the extractor",
                new.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
