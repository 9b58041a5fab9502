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
//! resampler at a fraction of the cost. Its anti-aliasing filter (a Blackman-Harris-windowed
//! sinc) is as long as one FFT block of input, at least 4096 frames (4410 for 44.1 kHz, a
//! multiple of `rate / gcd(rate, 16000)`), which puts the cutoff at about 7.9 kHz, just under
//! the 8 kHz that Whisper's mel filters reach: tones below 7 kHz come through within 1e-5 of
//! the ideal signal, and a 9 kHz tone at 44.1 kHz (which would alias to 7 kHz) more than
//! 100 dB down (tested below).

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

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

/// Input frames per resampler FFT block, rounded up to a multiple of `rate / gcd(rate, 16000)`
/// (see the module doc).
const RESAMPLER_CHUNK: usize = 4096;

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
    if file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(audio_err(path, "the file is empty, no audio to decode"));
    }
    let extension = path.extension().and_then(|e| e.to_str());
    decode(path, Box::new(file), extension)
}

/// [`read_audio`] for a file already in memory; `name` is what errors call it.
pub fn decode_audio(bytes: Vec<u8>, name: &str, extension: Option<&str>) -> Result<Clip> {
    let path = Path::new(name);
    if bytes.is_empty() {
        return Err(audio_err(
            path,
            "the audio data is empty, no audio to decode",
        ));
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
    let fail = |e: &dyn std::fmt::Display| {
        Error::Input(format!("resampling from {from} Hz to {to} Hz failed: {e}"))
    };
    let mut resampler = Fft::<f32>::new_custom(
        from,
        to,
        RESAMPLER_CHUNK,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit PCM WAV in memory; `data_len` overrides the data chunk's declared size.
    fn wav(rate: u32, channels: u16, interleaved: &[i16], data_len: Option<u32>) -> Vec<u8> {
        let data = data_len.unwrap_or((interleaved.len() * 2) as u32);
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&data.saturating_add(36).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data.to_le_bytes());
        for s in interleaved {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    fn tone(rate: u32, hz: f64, n: usize, amp: f64) -> Vec<f64> {
        (0..n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    #[test]
    fn stereo_is_mixed_down_by_the_mean() {
        let left: Vec<i16> = (0..4000)
            .map(|i| ((i * 37) % 20000 - 10000) as i16)
            .collect();
        let right: Vec<i16> = (0..4000).map(|i| ((i * 11) % 9000 - 3000) as i16).collect();
        let interleaved: Vec<i16> = left
            .iter()
            .zip(&right)
            .flat_map(|(&l, &r)| [l, r])
            .collect();
        let clip =
            decode_audio(wav(8000, 2, &interleaved, None), "stereo.wav", Some("wav")).unwrap();
        assert_eq!(
            (clip.sample_rate, clip.channels, clip.samples.len()),
            (8000, 2, 4000)
        );
        for (i, s) in clip.samples.iter().enumerate() {
            let expected = (f32::from(left[i]) / 32768.0 + f32::from(right[i]) / 32768.0) * 0.5;
            assert_eq!(*s, expected, "frame {i}");
        }
    }

    /// Largest |error| against the ideal tone away from the clip's edges.
    fn tone_error(out: &[f32], rate: u32, hz: f64, amp: f64) -> f64 {
        let ideal = tone(rate, hz, out.len(), amp);
        let edge = out.len() / 10;
        out.iter()
            .zip(&ideal)
            .skip(edge)
            .take(out.len() - 2 * edge)
            .map(|(&o, &i)| (f64::from(o) - i).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn resampling_keeps_speech_band_and_removes_aliases() {
        for (from, hz) in [
            (44_100, 1000.0),
            (44_100, 7000.0),
            (48_000, 3000.0),
            (8000, 440.0),
        ] {
            let n = from as usize; // 1 s
            let input: Vec<f32> = tone(from, hz, n, 0.5).iter().map(|&x| x as f32).collect();
            let out = resample(&input, from, SAMPLE_RATE).unwrap();
            assert_eq!(out.len(), 16_000, "{from} Hz");
            let err = tone_error(&out, SAMPLE_RATE, hz, 0.5);
            assert!(err < 1e-4, "{hz} Hz tone at {from} Hz: max error {err}");
        }
        // 9 kHz would alias to 7 kHz at 16 kHz: the anti-aliasing filter must remove it
        let input: Vec<f32> = tone(44_100, 9000.0, 44_100, 0.5)
            .iter()
            .map(|&x| x as f32)
            .collect();
        let out = resample(&input, 44_100, SAMPLE_RATE).unwrap();
        let peak = out[1600..14_400]
            .iter()
            .fold(0.0f32, |m, &x| m.max(x.abs()));
        assert!(peak < 1e-5, "9 kHz leaks through at {peak}");
    }

    #[test]
    fn bad_data_is_refused_with_its_name() {
        let e = decode_audio(Vec::new(), "nothing.wav", None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("nothing.wav:") && e.contains("empty"), "{e}");
        let e = decode_audio(b"{\"a\": 1}".to_vec(), "config.json", Some("json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.json:") && e.contains("not an audio file"),
            "{e}"
        );
        // a header announcing 75 hours of 8 kHz audio is refused before decoding
        let e = decode_audio(
            wav(8000, 1, &[0; 16], Some(0xFFFF_FFF0)),
            "huge.wav",
            Some("wav"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("huge.wav:") && e.contains("more than 4 hours"),
            "{e}"
        );
        // a valid header with no samples
        let e = decode_audio(wav(16_000, 1, &[], None), "blank.wav", Some("wav"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("blank.wav:") && e.contains("no samples"),
            "{e}"
        );
        let e = resample(&[0.0; 10], 0, 16_000).unwrap_err().to_string();
        assert!(e.contains("0 Hz"), "{e}");
    }
}
