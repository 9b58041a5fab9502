//! Audio files to what Whisper's feature extractor takes: 16 kHz mono f32 samples in [-1, 1].
//!
//! Decoding is symphonia's (pure Rust): WAV (PCM), FLAC, MP3 and OGG/Vorbis. Channels are mixed
//! down to mono by their mean, then the clip is resampled to 16 kHz with rubato. Integer PCM is
//! scaled the way soundfile and librosa scale it (16-bit: `s / 32768`), so a 16 kHz mono WAV
//! yields exactly the samples that transformers users feed to `WhisperFeatureExtractor`.
//!
//! Resampled input cannot match those users bit for bit (they resample with ffmpeg, soxr or
//! librosa); what matters is that a 44.1 kHz stereo MP3 of a clip transcribes like its 16 kHz
//! WAV. The resampler is rubato's synchronous FFT resampler: the ratio of a file is fixed, and
//! it is rubato's recommendation for offline conversion, with the quality of its sinc
//! resampler at a fraction of the cost. Its anti-aliasing filter is as long as one FFT block of
//! input (10 blocks of `rate / gcd(rate, 16000)` frames, 4410 taps for 44.1 kHz), which puts
//! the cutoff at about 7.9 kHz for 44.1 kHz input, just under the 8 kHz that Whisper's mel
//! filters reach.

use std::fs::File;
use std::path::Path;

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{Error, Result};

/// The sample rate Whisper's feature extractor expects, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// The longest clip decoded, in seconds (4 hours): longer files are refused before their
/// samples are allocated (4 h of 48 kHz stereo is already 2.8 GB of f32).
pub const MAX_DURATION_S: u64 = 4 * 60 * 60;

/// The sample rates accepted from a file, in Hz.
const RATE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// FFT blocks of the resampler per chunk (see the module doc).
const RESAMPLER_BLOCKS: usize = 10;

/// A decoded clip mixed down to mono, at the file's own sample rate.
#[derive(Clone, Debug)]
pub struct Clip {
    /// Mono samples in [-1, 1]: the mean of the channels.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels the file had before the mixdown.
    pub channels: usize,
}

impl Clip {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Reads an audio file (WAV, FLAC, MP3, OGG/Vorbis) as 16 kHz mono f32 samples in [-1, 1]:
/// [`read_audio`], then [`resample`] to [`SAMPLE_RATE`].
pub fn load_audio(path: &Path) -> Result<Vec<f32>> {
    let clip = read_audio(path)?;
    to_whisper_rate(path, clip)
}

/// [`load_audio`] for a file already in memory; `name` is what errors call it (a file name, a
/// URL), `extension` an optional hint of the format ("mp3", "wav", ...).
pub fn load_audio_bytes(bytes: Vec<u8>, name: &str, extension: Option<&str>) -> Result<Vec<f32>> {
    let clip = decode_audio(bytes, name, extension)?;
    to_whisper_rate(Path::new(name), clip)
}

/// Decodes an audio file to mono at its own sample rate. A file that cannot be opened, is
/// empty, is not audio in a supported format, holds no samples or lasts longer than
/// [`MAX_DURATION_S`] is an error naming the file.
pub fn read_audio(path: &Path) -> Result<Clip> {
    let file = File::open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(audio_err(path, "the file is empty, no audio to decode"));
    }
    let extension = path.extension().and_then(|e| e.to_str());
    decode(path, Box::new(file), extension)
}

/// [`read_audio`] for a file already in memory; `name` is what errors call it.
pub fn decode_audio(bytes: Vec<u8>, name: &str, extension: Option<&str>) -> Result<Clip> {
    let path = Path::new(name);
    if bytes.is_empty() {
        return Err(audio_err(path, "the audio data is empty, no audio to decode"));
    }
    decode(path, Box::new(std::io::Cursor::new(bytes)), extension)
}

/// Resamples mono `samples` from `from` Hz to `to` Hz (a copy when they are equal). The output
/// has `ceil(len * to / from)` samples, aligned with the input: the resampler's delay is
/// trimmed.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    for rate in [from, to] {
        if !RATE_RANGE.contains(&rate) {
            return Err(Error::Input(format!(
                "cannot resample from {from} Hz to {to} Hz: sample rates must lie in {}..={} Hz",
                RATE_RANGE.start(),
                RATE_RANGE.end()
            )));
        }
    }
    let (from, to) = (from as usize, to as usize);
    let block_in = from / gcd(from, to);
    let fail = |e: &dyn std::fmt::Display| {
        Error::Input(format!("resampling from {from} Hz to {to} Hz failed: {e}"))
    };
    let mut resampler = Fft::<f32>::new_custom(
        from,
        to,
        RESAMPLER_BLOCKS * block_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| fail(&e))?;
    let input = SequentialSlice::new(samples, 1, samples.len()).map_err(|e| fail(&e))?;
    let out = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| fail(&e))?;
    Ok(out.take_data())
}

fn to_whisper_rate(path: &Path, clip: Clip) -> Result<Vec<f32>> {
    resample(&clip.samples, clip.sample_rate, SAMPLE_RATE).map_err(|e| audio_err(path, e))
}

fn audio_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Audio {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Probes, demuxes and decodes the default audio track, mixing each packet down to mono as it
/// comes so that only the mono clip is ever held.
fn decode(path: &Path, source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Clip> {
    const FORMATS: &str = "supported: WAV, FLAC, MP3, OGG/Vorbis";
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| audio_err(path, format!("not an audio file ({FORMATS}): {e}")))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| audio_err(path, "no audio track"))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| audio_err(path, "the audio track has no codec parameters"))?;
    let track_id = track.id;
    if let (Some(frames), Some(rate)) = (track.num_frames, params.sample_rate) {
        check_length(path, frames, rate)?;
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| audio_err(path, format!("cannot decode its codec ({FORMATS}): {e}")))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut spec: Option<(u32, usize)> = None;
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A chained OGG stream starting a new logical stream: the clip ends here.
            Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(audio_err(path, format!("cannot read the stream: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            // A corrupt packet is skipped, as players do; the count is logged below.
            Err(SymphoniaError::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(e) => return Err(audio_err(path, format!("cannot decode: {e}"))),
        };
        let rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        match spec {
            None => {
                if !RATE_RANGE.contains(&rate) {
                    return Err(audio_err(
                        path,
                        format!(
                            "sample rate {rate} Hz is outside {}..={} Hz",
                            RATE_RANGE.start(),
                            RATE_RANGE.end()
                        ),
                    ));
                }
                if channels == 0 {
                    return Err(audio_err(path, "the audio has no channels"));
                }
                spec = Some((rate, channels));
            }
            Some(first) if first != (rate, channels) => {
                return Err(audio_err(
                    path,
                    format!(
                        "the stream changes from {} Hz x {} channels to {rate} Hz x {channels} \
                         channels mid-way",
                        first.0, first.1
                    ),
                ));
            }
            Some(_) => {}
        }
        let frames = buf.frames();
        if frames == 0 {
            continue;
        }
        check_length(path, (samples.len() + frames) as u64, rate)?;
        buf.copy_to_vec_interleaved(&mut interleaved);
        if channels == 1 {
            samples.extend_from_slice(&interleaved);
        } else {
            let scale = 1.0 / channels as f32;
            samples.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }
    }
    if bad_packets > 0 {
        log::warn!(
            "{}: skipped {bad_packets} corrupt packet(s) while decoding",
            path.display()
        );
    }
    let Some((sample_rate, channels)) = spec.filter(|_| !samples.is_empty()) else {
        let why = if bad_packets > 0 {
            format!("no audio samples could be decoded ({bad_packets} corrupt packet(s))")
        } else {
            "the audio track holds no samples".to_string()
        };
        return Err(audio_err(path, why));
    };
    Ok(Clip {
        samples,
        sample_rate,
        channels,
    })
}

fn check_length(path: &Path, frames: u64, rate: u32) -> Result<()> {
    if rate > 0 && frames > MAX_DURATION_S * u64::from(rate) {
        return Err(audio_err(
            path,
            format!(
                "the audio lasts more than {} hours ({frames} frames at {rate} Hz, {:.1} hours \
                 or more); split it first",
                MAX_DURATION_S / 3600,
                frames as f64 / f64::from(rate) / 3600.0
            ),
        ));
    }
    Ok(())
}
