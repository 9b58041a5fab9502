//! Words with their time spans from Whisper tokens and token timestamps, as transformers'
//! ASR pipeline builds them with `return_timestamps="word"` (`_decode_asr` in
//! models/whisper/tokenization_whisper.py, which groups tokens with
//! `_combine_tokens_into_words`):
//!
//! - a token's span runs from the previous token's timestamp to its own (rounded to
//!   0.01 s; the first token starts at 0.0); a word runs from its first token's start to its
//!   last token's end;
//! - timestamp tokens split the text into chunks, and words never cross a chunk;
//! - tokens are grouped into words at Unicode boundaries (tokens that decode to whole
//!   characters) for languages written without spaces (Chinese, Japanese, Thai, Lao,
//!   Burmese, Cantonese), else at spaces and punctuation tokens;
//! - opening punctuation (`"'“¡¿([{-` after a space) joins the next word, closing
//!   punctuation (`"'.。,，!！?？:：”)]}、`) the previous one.
//!
//! The language is the last language token of the sequence, else the caller's, else
//! English. One difference: transformers drops a `<|startofprev|>` prompt from the tokens
//! but not from the timestamps, so its words after such a prompt take the timestamps of
//! other tokens; here both are dropped together.

use crate::error::{Error, Result};
use crate::io::Tokenizer;
use crate::io::tokenizer::py_strip;

/// A word and its span in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    /// The decoded text, with its leading space where it has one.
    pub word: String,
    pub start: f32,
    pub end: f32,
}

/// The special token ids that the word assembly tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|endoftext|>`: ids from it on are special (not text).
    pub eot: u32,
    /// The first timestamp token `<|0.00|>` (`<|notimestamps|>` + 1).
    pub timestamp_begin: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|startofprev|>`: a sequence starting with it carries previous text up to `sot`.
    pub prev: Option<u32>,
}

/// `string.punctuation`: a subword that strips to a substring of it is a word of its own.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const PREPEND: &str = "\"'“¡¿([{-";
const APPEND: &str = "\"'.。,，!！?？:：”)]}、";
/// Languages written without spaces between words.
const NO_SPACES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];
/// Frames per segment: the time a segment adds when timestamps restart in long-form output.
const SEGMENT_FRAMES: f64 = 1500.0;
const TIME_PRECISION: f64 = super::alignment::TIME_PRECISION;

/// Python's `round(x, 2)` for the values here (never halfway between two hundredths).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Words of `tokens` (a whole sequence: prompt, text, timestamp tokens, `<|endoftext|>`;
/// or the text alone) with one timestamp per token. `language`: the language code used
/// when the tokens carry none (e.g. `ja`; English when `None`).
pub fn words(
    tok: &Tokenizer,
    tokens: &[u32],
    token_timestamps: &[f32],
    special: SpecialTokens,
    language: Option<&str>,
) -> Result<Vec<Word>> {
    if tokens.len() != token_timestamps.len() {
        return Err(Error::Input(format!(
            "{} tokens but {} token timestamps",
            tokens.len(),
            token_timestamps.len()
        )));
    }
    // A previous-text prompt ends at <|startoftranscript|> (everything, when it has none).
    let skip = match tokens.first() {
        Some(&t) if Some(t) == special.prev => tokens
            .iter()
            .position(|&t| t == special.sot)
            .unwrap_or(tokens.len()),
        _ => 0,
    };
    let (tokens, times) = (&tokens[skip..], &token_timestamps[skip..]);
    let tb = special.timestamp_begin;
    let mut language = language.map(str::to_string);
    let mut out = Vec::new();
    // The open chunk: its text tokens with their (start, end), and its start time.
    let mut chunk: Vec<(u32, (f32, f32))> = Vec::new();
    let mut chunk_start: Option<f64> = None;
    let (mut cur_max, mut penultimate, mut prev_segments) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &token) in tokens.iter().enumerate() {
        if token >= special.eot && token < tb {
            let name = tok.token(token);
            if let Some(code) = super::language_code(&name) {
                language = Some(code.to_string());
            }
        } else if token >= tb {
            let timestamp = (token - tb) as f64 * TIME_PRECISION;
            if timestamp < cur_max {
                // The next segment of a long-form output has started.
                let single_ending = i >= 2 && !(tokens[i - 1] >= tb && tokens[i - 2] >= tb);
                if single_ending {
                    prev_segments += TIME_PRECISION * SEGMENT_FRAMES;
                } else {
                    cur_max = penultimate;
                    prev_segments += penultimate;
                }
            }
            penultimate = cur_max;
            cur_max = timestamp;
            let time = round2(timestamp + prev_segments);
            match chunk_start {
                None => chunk_start = Some(time),
                // A repeated start is not an end.
                Some(start) if start == time => {}
                Some(_) => {
                    out.extend(collate(tok, &chunk, language.as_deref(), special.eot)?);
                    chunk.clear();
                    chunk_start = None;
                }
            }
        } else {
            let start = if i == 0 {
                0.0
            } else {
                round2(times[i - 1] as f64)
            };
            let end = round2(times[i] as f64);
            chunk.push((token, (start as f32, end as f32)));
        }
    }
    out.extend(collate(tok, &chunk, language.as_deref(), special.eot)?);
    Ok(out)
}

/// `_collate_word_timestamps`: the words of one chunk with their spans.
fn collate(
    tok: &Tokenizer,
    chunk: &[(u32, (f32, f32))],
    language: Option<&str>,
    eot: u32,
) -> Result<Vec<Word>> {
    if chunk.is_empty() {
        return Ok(Vec::new());
    }
    let tokens: Vec<u32> = chunk.iter().map(|c| c.0).collect();
    let (words, indices) = combine_tokens_into_words(tok, &tokens, language, eot)?;
    Ok(words
        .into_iter()
        .zip(indices)
        .map(|(word, idx)| Word {
            word,
            start: chunk[idx[0]].1.0,
            end: chunk[idx[idx.len() - 1]].1.1,
        })
        .collect())
}

/// `_combine_tokens_into_words`: the words of `tokens` and, per word, the indices of its
/// tokens. Like transformers, the empty words and the empty index lists are dropped
/// separately at the end (they always go together unless a token decodes to nothing).
pub fn combine_tokens_into_words(
    tok: &Tokenizer,
    tokens: &[u32],
    language: Option<&str>,
    eot: u32,
) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let (mut words, mut indices) = if NO_SPACES.contains(&language.unwrap_or("en")) {
        split_tokens_on_unicode(tok, tokens)?
    } else {
        split_tokens_on_spaces(tok, tokens, eot)?
    };
    merge_punctuations(&mut words, &mut indices);
    words.retain(|w| !w.is_empty());
    indices.retain(|i| !i.is_empty());
    Ok((words, indices))
}

/// `_split_tokens_on_unicode`: a word ends wherever the tokens so far decode to whole
/// characters (no U+FFFD, or one that the whole text has at the same place).
pub fn split_tokens_on_unicode(
    tok: &Tokenizer,
    tokens: &[u32],
) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    const REPLACEMENT: char = '\u{FFFD}';
    let full: Vec<char> = tok.decode(tokens)?.chars().collect();
    let (mut words, mut indices) = (Vec::new(), Vec::new());
    let mut current = Vec::new();
    let mut offset = 0;
    for i in 0..tokens.len() {
        current.push(i);
        let ids: Vec<u32> = current.iter().map(|&k| tokens[k]).collect();
        let decoded = tok.decode(&ids)?;
        let chars: Vec<char> = decoded.chars().collect();
        let whole = match chars.iter().position(|&c| c == REPLACEMENT) {
            None => true,
            Some(at) => full.get(offset + at).is_none_or(|&c| c == REPLACEMENT),
        };
        if whole {
            offset += chars.len();
            words.push(decoded);
            indices.push(std::mem::take(&mut current));
        }
    }
    Ok((words, indices))
}

/// `_split_tokens_on_spaces`: Unicode words joined until one starts with a space, is
/// punctuation or special.
pub fn split_tokens_on_spaces(
    tok: &Tokenizer,
    tokens: &[u32],
    eot: u32,
) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let (subwords, sub_indices) = split_tokens_on_unicode(tok, tokens)?;
    let (mut words, mut indices): (Vec<String>, Vec<Vec<usize>>) = (Vec::new(), Vec::new());
    for (subword, idx) in subwords.into_iter().zip(sub_indices) {
        let special = tokens[idx[0]] >= eot;
        let with_space = subword.starts_with(' ');
        // A substring test, as Python's `in` (the empty string passes).
        let punctuation = PUNCTUATION.contains(py_strip(&subword));
        match (words.last_mut(), indices.last_mut()) {
            (Some(w), Some(i)) if !(special || with_space || punctuation) => {
                w.push_str(&subword);
                i.extend(idx);
            }
            _ => {
                words.push(subword);
                indices.push(idx);
            }
        }
    }
    Ok((words, indices))
}

/// `_merge_punctuations`: opening punctuation joins the word after it, closing punctuation
/// the word before it; the merged-away entries become empty.
fn merge_punctuations(words: &mut [String], indices: &mut [Vec<usize>]) {
    let n = words.len();
    if n >= 2 {
        let mut j = n - 1;
        for i in (0..n - 1).rev() {
            if words[i].starts_with(' ') && PREPEND.contains(py_strip(&words[i])) {
                words[j] = std::mem::take(&mut words[i]) + &words[j];
                let moved = std::mem::take(&mut indices[i]);
                indices[j].splice(0..0, moved);
            } else {
                j = i;
            }
        }
    }
    let mut i = 0;
    for j in 1..n {
        if !words[i].ends_with(' ') && APPEND.contains(words[j].as_str()) {
            let w = std::mem::take(&mut words[j]);
            words[i].push_str(&w);
            let moved = std::mem::take(&mut indices[j]);
            indices[i].extend(moved);
        } else {
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(words: &[&str]) -> Vec<(String, Vec<usize>)> {
        let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let mut idx: Vec<Vec<usize>> = (0..w.len()).map(|i| vec![i]).collect();
        merge_punctuations(&mut w, &mut idx);
        w.into_iter()
            .zip(idx)
            .filter(|(w, _)| !w.is_empty())
            .collect()
    }

    #[test]
    fn punctuation_merges_by_hand() {
        let got = merged(&[" He", " said", ",", " (", "yes", ")", "."]);
        let want = [
            (" He", vec![0]),
            (" said,", vec![1, 2]),
            (" (yes).", vec![3, 4, 5, 6]),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((w, i), (ww, wi)) in got.iter().zip(want) {
            assert_eq!((w.as_str(), i), (ww, &wi));
        }
        // A word ending in a space takes no closing punctuation.
        let got = merged(&[" a ", "."]);
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn round2_matches_python() {
        assert_eq!(round2(0.6399999856948853), 0.64);
        assert_eq!(round2(1.0399999618530273), 1.04);
        assert_eq!(round2(0.0), 0.0);
    }
}
