//! Whisper's timestamp rules (transformers' `WhisperTimeStampLogitsProcessor`) as per-row
//! token-range bans plus the "timestamps outweigh every text token" rule, which the
//! `logit_rules` kernel applies on the GPU so the row never comes back to the host.

use seqbridge_gpu::ops::logit_rules::{RULE_FLAG as FLAG, RULE_RANGES, RULE_WORDS};

/// The constants of the timestamp processor of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampRules {
    /// `<|0.00|>`: ids from it on are timestamps.
    pub timestamp_begin: u32,
    /// `<|notimestamps|>`, banned at every step.
    pub no_timestamps: u32,
    /// `<|endoftext|>`: after a lone timestamp only ids from it on may follow.
    pub eos: u32,
    /// Decoder length (start token and prompt) at the first free step.
    pub begin_index: usize,
    /// The largest timestamp index allowed at the first free step (`None`: any).
    pub max_initial_timestamp_index: Option<u32>,
}

/// The range bans and flag word of one row, in the kernel's layout.
struct RowRules {
    words: [u32; RULE_WORDS],
    ranges: usize,
}

impl RowRules {
    fn new() -> RowRules {
        RowRules {
            words: [0; RULE_WORDS],
            ranges: 0,
        }
    }

    fn ban(&mut self, lo: u32, hi: u32) {
        if lo < hi {
            debug_assert!(
                self.ranges < RULE_RANGES,
                "more ranges than the kernel takes"
            );
            self.words[2 * self.ranges] = lo;
            self.words[2 * self.ranges + 1] = hi;
            self.ranges += 1;
        }
    }
}

impl TimestampRules {
    /// The kernel words of a row whose tokens so far (start token included) are `history`;
    /// all zero (no edit) for an empty history, a finished row.
    pub fn row(&self, history: &[u32], vocab: usize) -> [u32; RULE_WORDS] {
        let mut r = RowRules::new();
        if history.is_empty() {
            return r.words;
        }
        let (tb, v) = (self.timestamp_begin, vocab as u32);
        r.ban(self.no_timestamps, self.no_timestamps + 1);
        let sampled = history.get(self.begin_index..).unwrap_or(&[]);
        let is_ts = |t: &u32| *t >= tb;
        let last_was_ts = sampled.last().is_some_and(is_ts);
        let penultimate_was_ts = sampled.len() < 2 || is_ts(&sampled[sampled.len() - 2]);
        if last_was_ts {
            if penultimate_was_ts {
                // A pair just closed: text (or EOS) must follow.
                r.ban(tb, v);
            } else {
                // An open timestamp: only its closing timestamp or EOS and later ids.
                r.ban(0, self.eos);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|t| is_ts(t)) {
            // Timestamps never decrease, and a closed pair's end is not repeated.
            let floor = if last_was_ts && !penultimate_was_ts {
                last
            } else {
                last + 1
            };
            r.ban(tb, floor);
        }
        if history.len() == self.begin_index {
            r.ban(0, tb);
            if let Some(max) = self.max_initial_timestamp_index {
                r.ban(tb + max + 1, v);
            }
        }
        r.words[FLAG] = 1;
        r.words
    }
}

/// Kernel words that allow only the tokens `lo..hi` (language detection).
pub fn only_range(lo: u32, hi: u32, vocab: usize) -> [u32; RULE_WORDS] {
    let mut r = RowRules::new();
    r.ban(0, lo);
    r.ban(hi, vocab as u32);
    r.words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ban ranges of a row, as (lo, hi) pairs, and its flag.
    fn ranges(w: &[u32; RULE_WORDS]) -> (Vec<(u32, u32)>, u32) {
        let r = (0..RULE_RANGES)
            .map(|i| (w[2 * i], w[2 * i + 1]))
            .filter(|(lo, hi)| lo < hi)
            .collect();
        (r, w[FLAG])
    }

    fn rules() -> TimestampRules {
        // vocab 100: text 0..50, eos 50, notimestamps 59, timestamps 60..100.
        TimestampRules {
            timestamp_begin: 60,
            no_timestamps: 59,
            eos: 50,
            begin_index: 2,
            max_initial_timestamp_index: Some(5),
        }
    }

    #[test]
    fn first_free_step_needs_an_early_timestamp() {
        let (r, flag) = ranges(&rules().row(&[55, 56], 100));
        assert_eq!(r, vec![(59, 60), (0, 60), (66, 100)]);
        assert_eq!(flag, 1);
    }

    #[test]
    fn pairs_and_monotonic_timestamps() {
        let t = rules();
        // A first timestamp counts as a closed pair: text must follow.
        let (r, _) = ranges(&t.row(&[55, 56, 60], 100));
        assert_eq!(r, vec![(59, 60), (60, 100), (60, 61)]);
        // text after <|0.00|>: timestamps from 61 on (the opener may not repeat).
        let (r, _) = ranges(&t.row(&[55, 56, 60, 7], 100));
        assert_eq!(r, vec![(59, 60), (60, 61)]);
        // <|0.00|> text <|0.10|>: a lone closing timestamp may repeat as the next opener.
        let (r, _) = ranges(&t.row(&[55, 56, 60, 7, 65], 100));
        assert_eq!(r, vec![(59, 60), (0, 50), (60, 65)]);
        // ... <|0.10|><|0.10|>: a closed pair, text must follow, timestamps ≥ 66.
        let (r, _) = ranges(&t.row(&[55, 56, 60, 7, 65, 65], 100));
        assert_eq!(r, vec![(59, 60), (60, 100), (60, 66)]);
    }

    #[test]
    fn finished_rows_are_untouched() {
        assert_eq!(rules().row(&[], 100), [0; RULE_WORDS]);
    }

    #[test]
    fn only_range_bans_both_sides() {
        let (r, flag) = ranges(&only_range(10, 20, 100));
        assert_eq!((r, flag), (vec![(0, 10), (20, 100)], 0));
        let (r, _) = ranges(&only_range(0, 100, 100));
        assert!(r.is_empty());
    }
}
