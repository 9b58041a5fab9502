//! SRT and WebVTT subtitles: one cue per segment, or per word with word timestamps.

use std::fmt::Write;

/// A subtitle cue: seconds and text.
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// `HH:MM:SS{sep}mmm`, rounded to the millisecond; negative times clamp to zero.
fn timestamp(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// Cue text on one line: subtitle formats end a cue at a blank line, and VTT forbids `-->`.
fn cue_text(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.replace("-->", "->")
}

/// SubRip: numbered cues, `00:00:01,500 --> 00:00:02,000`.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, c) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(c.start, ','),
            timestamp(c.end, ','),
            cue_text(&c.text)
        );
    }
    out
}

/// WebVTT: a `WEBVTT` header, then cues with `.` before the milliseconds.
pub fn vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues {
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(c.start, '.'),
            timestamp(c.end, '.'),
            cue_text(&c.text)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues() -> Vec<Cue> {
        vec![
            Cue {
                start: 0.0,
                end: 1.5,
                text: " Hello\nworld.".into(),
            },
            Cue {
                start: 3725.004,
                end: 3725.9996,
                text: "a --> b".into(),
            },
        ]
    }

    #[test]
    fn srt_numbers_cues_with_commas() {
        assert_eq!(
            srt(&cues()),
            "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n\n\
             2\n01:02:05,004 --> 01:02:06,000\na -> b\n\n"
        );
    }

    #[test]
    fn vtt_has_a_header_and_dots() {
        assert_eq!(
            vtt(&cues()),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello world.\n\n\
             01:02:05.004 --> 01:02:06.000\na -> b\n\n"
        );
    }
}
