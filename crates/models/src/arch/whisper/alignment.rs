//! Token timestamps from the cross-attention of Whisper's alignment heads, after
//! transformers' `WhisperGenerationMixin._extract_token_timestamps`
//! (models/whisper/generation_whisper.py), step for step:
//!
//! 1. the weights `[heads, rows, source]` of the alignment heads, one row per decoder
//!    position that has one (every token but the last), cropped to the real audio
//!    (`num_frames // 2` encoder frames);
//! 2. the prompt's rows dropped (they get 0.0);
//! 3. each head normalised over the token axis (mean and population std per frame), then
//!    median-filtered along the frames ([`median_filter`], width 7, reflected edges);
//! 4. the mean over heads;
//! 5. dynamic time warping on the negated matrix ([`dynamic_time_warping`], with
//!    transformers' tie-breaking and its float32 cost table);
//! 6. each text row's first frame on the path × 0.02 s; the last token (`<|endoftext|>`,
//!    which has no row) repeats the time before it.
//!
//! transformers takes the rows from the cross-attentions `generate` collected step by step;
//! seqbridge runs one teacher-forced pass over the final sequence instead. Decoding is
//! causal, so the row of position t depends only on the tokens up to t: the same values,
//! for beam search too (whose `beam_indices` pick the rows of the returned hypothesis's
//! own prefix). tools/whisper/make_token_timestamps.py checks this on real weights.

use crate::error::{Error, Result};
use crate::io::mel::MelConfig;

/// Seconds per encoder frame (two mel frames of 10 ms).
pub const TIME_PRECISION: f64 = 0.02;
/// `median_filter_width` of every released Whisper config.
pub const MEDIAN_FILTER_WIDTH: usize = 7;

/// transformers' `num_frames` for `samples` samples of audio: the frames of the feature
/// extractor's attention mask, capped at one window (`ceil(min(samples, n_samples) / hop)`).
pub fn num_frames(samples: usize, mel: &MelConfig) -> usize {
    samples.min(mel.n_samples).div_ceil(mel.hop_length.max(1))
}

/// Cross-attention probabilities of the alignment heads over one decoder sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignmentWeights {
    /// Alignment heads, in generation_config order.
    pub heads: usize,
    /// Decoder positions (queries).
    pub rows: usize,
    /// Encoder frames (keys).
    pub source: usize,
    /// f32 `[heads, rows, source]` row-major.
    pub data: Vec<f32>,
}

impl AlignmentWeights {
    /// The weights of one source from the rows that [`crate::Model::generate_streaming`]
    /// reported for it, in step order (each `[heads, source]`): a greedy transcription's
    /// token timestamps without a second encoder pass.
    pub fn from_rows(heads: usize, source: usize, rows: &[&[f32]]) -> Result<AlignmentWeights> {
        if let Some((t, r)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != heads * source)
        {
            return Err(Error::Input(format!(
                "streamed row {t} has {} values, not {heads} heads × {source} frames",
                r.len()
            )));
        }
        let n = rows.len();
        let mut data = vec![0.0; heads * n * source];
        for (t, row) in rows.iter().enumerate() {
            for k in 0..heads {
                data[(k * n + t) * source..][..source]
                    .copy_from_slice(&row[k * source..(k + 1) * source]);
            }
        }
        Ok(AlignmentWeights {
            heads,
            rows: n,
            source,
            data,
        })
    }
}

/// transformers' `_median_filter` along the last axis of `input` (rows of `cols` values):
/// each value becomes the median of the `width` values centred on it, the row reflected at
/// its edges (`reflect`: the edge value itself is not repeated). Rows of `width / 2` values
/// or fewer are returned as they are. NaN sorts above every number, as in torch's sort.
pub fn median_filter(input: &[f32], cols: usize, width: usize) -> Result<Vec<f32>> {
    if width == 0 || width.is_multiple_of(2) {
        return Err(Error::Input(format!(
            "median filter width {width}: it must be odd"
        )));
    }
    if cols == 0 || !input.len().is_multiple_of(cols) {
        return Err(Error::Input(format!(
            "median filter over {} values in rows of {cols}",
            input.len()
        )));
    }
    let pad = width / 2;
    if cols <= pad {
        return Ok(input.to_vec());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut window = Vec::with_capacity(width);
    for row in input.chunks(cols) {
        // Reflected index: -1 → 1, cols → cols - 2.
        let at = |i: isize| {
            let n = cols as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            row[j as usize]
        };
        for c in 0..cols as isize {
            window.clear();
            window.extend((c - pad as isize..=c + pad as isize).map(at));
            window.sort_by(|a, b| {
                a.partial_cmp(b)
                    .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
            });
            out.push(window[pad]);
        }
    }
    Ok(out)
}

/// transformers' `_dynamic_time_warping` on `matrix` `[rows, cols]` (row-major): the
/// cheapest monotonic path from (0, 0) to (rows - 1, cols - 1), as (text indices, time
/// indices) along the path. Ties go as transformers breaks them: the diagonal only when
/// strictly cheaper than both others, then the step up only when strictly cheaper, else
/// the step left. The cost table is float32 (each sum rounded to it), as there. A time
/// index is -1 where the path runs down the table's first column, which only NaN costs
/// cause; transformers walks it the same way.
pub fn dynamic_time_warping(
    matrix: &[f64],
    rows: usize,
    cols: usize,
) -> Result<(Vec<i64>, Vec<i64>)> {
    if rows == 0 || cols == 0 || matrix.len() != rows * cols {
        return Err(Error::Input(format!(
            "dynamic time warping over {} values as a [{rows}, {cols}] matrix (both sides must be non-empty)",
            matrix.len()
        )));
    }
    let w = cols + 1;
    let mut cost = vec![f32::INFINITY; (rows + 1) * w];
    let mut trace = vec![0u8; (rows + 1) * w];
    cost[0] = 0.0;
    for j in 1..=cols {
        for i in 1..=rows {
            let c0 = cost[(i - 1) * w + j - 1];
            let c1 = cost[(i - 1) * w + j];
            let c2 = cost[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            cost[i * w + j] = (matrix[(i - 1) * cols + j - 1] + c as f64) as f32;
            trace[i * w + j] = t;
        }
    }
    // Backtrace; the first row of the table steps left and its first column up.
    let (mut i, mut j) = (rows, cols);
    let (mut text, mut time) = (Vec::new(), Vec::new());
    while i > 0 || j > 0 {
        text.push(i as i64 - 1);
        time.push(j as i64 - 1);
        let step = match (i, j) {
            (0, _) => 2,
            (_, 0) => 1,
            _ => trace[i * w + j],
        };
        match step {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    text.reverse();
    time.reverse();
    Ok((text, time))
}

/// Token timestamps in seconds of the sequence whose alignment weights are `w` (`w.rows`
/// = the sequence length - 1: the last token has no row), `num_input_ids` prompt tokens
/// first, `num_frames` mel frames of real audio: one value per token (`w.rows + 1`), 0.0 for
/// the prompt, the last token repeating the one before.
pub fn token_timestamps(
    w: &AlignmentWeights,
    num_input_ids: usize,
    num_frames: usize,
) -> Result<Vec<f32>> {
    let AlignmentWeights {
        heads,
        rows,
        source,
        ref data,
    } = *w;
    if heads == 0 || data.len() != heads * rows * source {
        return Err(Error::Input(format!(
            "{} alignment weights for [{heads} heads, {rows} rows, {source} frames]",
            data.len()
        )));
    }
    let mut timestamps = vec![0.0f32; rows + 1];
    let n = rows.saturating_sub(num_input_ids);
    if n == 0 {
        return Ok(timestamps);
    }
    let cols = (num_frames / 2).min(source);
    if cols == 0 {
        return Err(Error::Input(format!(
            "{num_frames} frames of audio: token timestamps need at least 2 (20 ms)"
        )));
    }
    // Normalise each head over the token axis, per frame (torch.std, unbiased=False).
    let mut x = vec![0.0f32; heads * n * cols];
    for h in 0..heads {
        let head = &data[h * rows * source..(h + 1) * rows * source];
        let at = |r: usize, c: usize| head[(num_input_ids + r) * source + c];
        for c in 0..cols {
            let mean = (0..n).map(|r| at(r, c)).sum::<f32>() / n as f32;
            let var = (0..n).map(|r| (at(r, c) - mean).powi(2)).sum::<f32>() / n as f32;
            let std = var.sqrt();
            for r in 0..n {
                x[(h * n + r) * cols + c] = (at(r, c) - mean) / std;
            }
        }
    }
    let x = median_filter(&x, cols, MEDIAN_FILTER_WIDTH)?;
    // Mean over heads, negated for the DTW (which minimises).
    let matrix: Vec<f64> = (0..n * cols)
        .map(|i| -((0..heads).map(|h| x[h * n * cols + i]).sum::<f32>() / heads as f32) as f64)
        .collect();
    let (text, time) = dynamic_time_warping(&matrix, n, cols)?;
    // A jump: the first step of the path on each text row.
    let jump_times: Vec<f32> = (0..text.len())
        .filter(|&k| k == 0 || text[k] != text[k - 1])
        .map(|k| (time[k] as f64 * TIME_PRECISION) as f32)
        .collect();
    // The path enters every text row (it never runs along the table's first row), so
    // there is one jump per row.
    if jump_times.len() != n {
        return Err(Error::Input(format!(
            "dynamic time warping gave {} jumps for {n} tokens",
            jump_times.len()
        )));
    }
    timestamps[num_input_ids..num_input_ids + n].copy_from_slice(&jump_times);
    timestamps[rows] = jump_times[n - 1];
    Ok(timestamps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_filter_by_hand() {
        // Reflected: [x2 x1 | x0 .. x4 | x3 x2] for width 5.
        let row = [5.0, 1.0, 4.0, 2.0, 3.0];
        let out = median_filter(&row, 5, 5).unwrap();
        // x0: {4, 1, 5, 1, 4} → 4; x1: {1, 5, 1, 4, 2} → 2; x2: {5, 1, 4, 2, 3} → 3;
        // x3: {1, 4, 2, 3, 2} → 2; x4: {4, 2, 3, 2, 4} → 3.
        assert_eq!(out, vec![4.0, 2.0, 3.0, 2.0, 3.0]);
        // Rows no longer than width / 2 are untouched.
        assert_eq!(median_filter(&[3.0, 1.0], 2, 5).unwrap(), vec![3.0, 1.0]);
        // NaN sorts last: {1, nan, 1} → 1, {nan, 1, 2} → 2, {1, 2, 0} → 1, {2, 0, 2} → 2.
        let out = median_filter(&[f32::NAN, 1.0, 2.0, 0.0], 4, 3).unwrap();
        assert_eq!(out, [1.0, 2.0, 1.0, 2.0]);
        assert!(median_filter(&row, 5, 4).is_err());
        assert!(median_filter(&row, 3, 3).is_err());
    }

    #[test]
    fn dtw_by_hand() {
        // The cheap cells: (0,0) (0,1) (1,2) (2,3).
        let m = [
            0.0, 0.0, 9.0, 9.0, //
            9.0, 9.0, 0.0, 9.0, //
            9.0, 9.0, 9.0, 0.0,
        ];
        let (text, time) = dynamic_time_warping(&m, 3, 4).unwrap();
        assert_eq!(text, vec![0, 0, 1, 2]);
        assert_eq!(time, vec![0, 1, 2, 3]);
        // All equal: every tie steps left, then the first column goes up.
        let (text, time) = dynamic_time_warping(&[0.0; 6], 3, 2).unwrap();
        assert_eq!((text, time), (vec![0, 1, 2, 2], vec![0, 0, 0, 1]));
        assert!(dynamic_time_warping(&[], 0, 3).is_err());
        assert!(dynamic_time_warping(&[0.0; 5], 2, 3).is_err());
    }

    #[test]
    fn rows_transpose_to_heads_first() {
        let (a, b) = (
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            [6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
        );
        let w = AlignmentWeights::from_rows(2, 3, &[&a, &b]).unwrap();
        assert_eq!((w.heads, w.rows, w.source), (2, 2, 3));
        let want = [0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0];
        assert_eq!(w.data, want);
        assert!(AlignmentWeights::from_rows(2, 3, &[&a[..5]]).is_err());
    }

    #[test]
    fn token_timestamps_edges() {
        let w = AlignmentWeights {
            heads: 1,
            rows: 3,
            source: 4,
            data: vec![0.25; 12],
        };
        // Every row is prompt: zeros.
        assert_eq!(token_timestamps(&w, 3, 8).unwrap(), vec![0.0; 4]);
        assert!(token_timestamps(&w, 1, 1).is_err());
        let bad = AlignmentWeights { rows: 4, ..w };
        assert!(token_timestamps(&bad, 1, 8).is_err());
    }
}
