//! Segments of one decoded 30 s window and where the next window starts, as transformers'
//! Whisper `generate` cuts them (`_retrieve_segment`): a pair of consecutive timestamp tokens
//! ends a segment; a window that ends on a lone timestamp was heard to its end, while one that
//! ends inside a segment is decoded again from its last closed timestamp.

/// Seconds per timestamp token (`<|0.02|>` − `<|0.00|>`).
pub const TIME_PRECISION: f64 = 0.02;
/// Seconds per log-mel frame.
pub const FRAME_SECONDS: f64 = 0.01;
/// Log-mel frames per encoder position (the two convolutions' strides).
pub const INPUT_STRIDE: usize = 2;

/// A span of the transcript: its timestamp-bounded tokens and times in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    /// The segment's tokens, timestamp tokens included.
    pub tokens: Vec<u32>,
}

/// The window's seconds from the start of the audio (`time_offset` of a window at `seek`).
pub fn time_offset(seek: usize) -> f64 {
    seek as f64 * TIME_PRECISION / INPUT_STRIDE as f64
}

/// The segments of a window decoded at frame `seek` over `window_frames` frames of audio, from
/// its generated tokens (after the prompt, without `<|endoftext|>`), and the frames the next
/// window moves forward by.
pub fn retrieve_segments(
    generated: &[u32],
    timestamp_begin: u32,
    seek: usize,
    window_frames: usize,
) -> (Vec<Segment>, usize) {
    let offset = time_offset(seek);
    let at = |t: u32| offset + f64::from(t - timestamp_begin) * TIME_PRECISION;
    let is_ts: Vec<bool> = generated.iter().map(|&t| t >= timestamp_begin).collect();
    let single_ending = is_ts.len() >= 2 && is_ts[is_ts.len() - 2..] == [false, true];
    let mut slices: Vec<usize> = (0..is_ts.len().saturating_sub(1))
        .filter(|&i| is_ts[i] && is_ts[i + 1])
        .map(|i| i + 1)
        .collect();
    if slices.is_empty() {
        // No closed segment: the whole window is one, ending at its last timestamp (unless
        // that is <|0.00|>) or at the end of the window's audio.
        // transformers computes this one in float32 (a long tensor times Python floats).
        let frames_pos = (window_frames as f32 * FRAME_SECONDS as f32) / TIME_PRECISION as f32;
        let mut end_pos = f64::from(frames_pos.trunc());
        if let Some(&last) = generated.iter().rev().find(|&&t| t >= timestamp_begin)
            && last != timestamp_begin
        {
            end_pos = f64::from(last - timestamp_begin);
        }
        let seg = Segment {
            start: offset,
            end: offset + end_pos * TIME_PRECISION,
            tokens: generated.to_vec(),
        };
        return (vec![seg], window_frames);
    }
    if single_ending {
        slices.push(generated.len());
    } else if let Some(end) = slices.last_mut() {
        // Keep the last closing timestamp in the last segment (never empty here: the empty
        // case returned above).
        *end += 1;
    }
    let mut segments = Vec::with_capacity(slices.len());
    let mut last = 0;
    for (i, &cur) in slices.iter().enumerate() {
        let toks = &generated[last..cur];
        let end_idx = if i + 1 < slices.len() || single_ending {
            toks.len() - 1
        } else {
            toks.len() - 2
        };
        segments.push(Segment {
            start: at(toks[0]),
            end: at(toks[end_idx]),
            tokens: toks.to_vec(),
        });
        last = cur;
    }
    let advance = if single_ending {
        window_frames
    } else {
        (generated[last - 2] - timestamp_begin) as usize * INPUT_STRIDE
    };
    (segments, advance)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TB: u32 = 100;

    #[test]
    fn single_timestamp_ending_consumes_the_window() {
        // <|0.00|> a b <|1.00|><|1.00|> c <|2.40|>
        let g = [TB, 1, 2, TB + 50, TB + 50, 3, TB + 120];
        let (s, adv) = retrieve_segments(&g, TB, 3000, 2000);
        assert_eq!(adv, 2000);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].start, s[0].end), (30.0, 31.0));
        assert_eq!(s[0].tokens, vec![TB, 1, 2, TB + 50]);
        assert_eq!((s[1].start, s[1].end), (31.0, 32.4));
        assert_eq!(s[1].tokens, vec![TB + 50, 3, TB + 120]);
    }

    #[test]
    fn unfinished_segment_is_dropped_and_decoded_again() {
        // <|0.00|> a <|1.00|><|1.00|> b c (cut at the window's end)
        let g = [TB, 1, TB + 50, TB + 50, 2, 3];
        let (s, adv) = retrieve_segments(&g, TB, 0, 3000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].tokens, vec![TB, 1, TB + 50, TB + 50]);
        assert_eq!((s[0].start, s[0].end), (0.0, 1.0));
        assert_eq!(adv, 100, "seek to <|1.00|>: 50 timestamps of 2 frames");
    }

    #[test]
    fn no_pair_is_one_segment() {
        let (s, adv) = retrieve_segments(&[1, 2, TB + 30], TB, 0, 441);
        assert_eq!((s[0].start, s[0].end, adv), (0.0, 0.6, 441));
        let (s, _) = retrieve_segments(&[1, 2], TB, 0, 441);
        assert!((s[0].end - 4.4).abs() < 1e-12, "{}", s[0].end);
        // float32 rounding: 30 frames give 14 timestamp steps, not 15.
        let (s, _) = retrieve_segments(&[1], TB, 0, 30);
        assert!((s[0].end - 0.28).abs() < 1e-12, "{}", s[0].end);
        let (s, adv) = retrieve_segments(&[], TB, 0, 441);
        assert_eq!((s.len(), adv), (1, 441));
    }
}
