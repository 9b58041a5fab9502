//! transformers' logits processors as a list of processors that each turn the host's view
//! of a row (its token history) into logit edits applied on the GPU before argmax / top-k.
//! Forced tokens (forced BOS / EOS) replace the whole distribution, so those steps need no
//! GPU selection at all. A family with rules of its own (Whisper's suppression and timestamp
//! rules) adds processors to the list; the loop does not change.

use std::collections::BTreeMap;

use seqbridge_gpu::ops::sampling::LogitEdit;

use crate::generation::options::SearchConfig;

/// One logits processor: the edits it makes to a row whose tokens so far (decoder start
/// included) are `history`. A later processor's edit of the same token wins, as in
/// transformers' processor order.
pub trait LogitsProcessor: Send + Sync {
    fn edit(&self, history: &[u32], vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>);
}

/// `RepetitionPenaltyLogitsProcessor`: every token already in the row.
pub struct RepetitionPenalty;

impl LogitsProcessor for RepetitionPenalty {
    fn edit(&self, history: &[u32], vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        for &t in history {
            if (t as usize) < vocab {
                edits.insert(t, LogitEdit::Penalize);
            }
        }
    }
}

/// `NoRepeatNGramLogitsProcessor`: bans the tokens that would repeat an n-gram.
pub struct NoRepeatNgram(pub usize);

impl LogitsProcessor for NoRepeatNgram {
    fn edit(&self, history: &[u32], vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        let (n, cur_len) = (self.0, history.len());
        if n == 0 || cur_len < n {
            return;
        }
        let prefix = &history[cur_len + 1 - n..];
        for w in history.windows(n) {
            if &w[..n - 1] == prefix && (w[n - 1] as usize) < vocab {
                edits.insert(w[n - 1], LogitEdit::Ban);
            }
        }
    }
}

/// `NoBadWordsLogitsProcessor`: bans a bad word's last token after its prefix.
pub struct BadWords(pub Vec<Vec<u32>>);

impl LogitsProcessor for BadWords {
    fn edit(&self, history: &[u32], _vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        for word in &self.0 {
            if let Some((last, prefix)) = word.split_last()
                && prefix.len() <= history.len()
                && history.ends_with(prefix)
            {
                edits.insert(*last, LogitEdit::Ban);
            }
        }
    }
}

/// `MinLengthLogitsProcessor` and `MinNewTokensLengthLogitsProcessor`: EOS banned until the
/// row is long enough.
pub struct MinLength {
    pub min_length: usize,
    pub min_new_tokens: usize,
    pub eos: Vec<u32>,
}

impl LogitsProcessor for MinLength {
    fn edit(&self, history: &[u32], _vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        let cur_len = history.len();
        if cur_len < self.min_length || cur_len - 1 < self.min_new_tokens {
            for &e in &self.eos {
                edits.insert(e, LogitEdit::Ban);
            }
        }
    }
}

/// `SuppressTokensLogitsProcessor` (Whisper): these tokens at every step.
pub struct SuppressTokens(pub Vec<u32>);

impl LogitsProcessor for SuppressTokens {
    fn edit(&self, _history: &[u32], vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        for &t in &self.0 {
            if (t as usize) < vocab {
                edits.insert(t, LogitEdit::Ban);
            }
        }
    }
}

/// `SuppressTokensAtBeginLogitsProcessor` (Whisper): these tokens when the row holds
/// `begin_index` tokens (the start token and the prompt), i.e. at the first free step.
pub struct SuppressTokensAtBegin {
    pub tokens: Vec<u32>,
    pub begin_index: usize,
}

impl LogitsProcessor for SuppressTokensAtBegin {
    fn edit(&self, history: &[u32], vocab: usize, edits: &mut BTreeMap<u32, LogitEdit>) {
        if history.len() == self.begin_index {
            SuppressTokens(self.tokens.clone()).edit(history, vocab, edits);
        }
    }
}

/// The processors of a call, in transformers' order (repetition penalty, no-repeat n-gram,
/// bad words, min length).
pub struct Processors {
    pub list: Vec<Box<dyn LogitsProcessor>>,
}

impl Processors {
    /// The processors `cfg` asks for.
    pub fn new(cfg: &SearchConfig) -> Processors {
        let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
        if cfg.repetition_penalty != 1.0 {
            list.push(Box::new(RepetitionPenalty));
        }
        if cfg.no_repeat_ngram_size > 0 {
            list.push(Box::new(NoRepeatNgram(cfg.no_repeat_ngram_size)));
        }
        if !cfg.bad_words_ids.is_empty() {
            list.push(Box::new(BadWords(cfg.bad_words_ids.clone())));
        }
        if cfg.min_length > 0 || cfg.min_new_tokens > 0 {
            list.push(Box::new(MinLength {
                min_length: cfg.min_length,
                min_new_tokens: cfg.min_new_tokens,
                eos: cfg.eos_token_id.clone(),
            }));
        }
        if !cfg.suppress_tokens.is_empty() {
            list.push(Box::new(SuppressTokens(cfg.suppress_tokens.clone())));
        }
        if !cfg.begin_suppress_tokens.is_empty() {
            list.push(Box::new(SuppressTokensAtBegin {
                tokens: cfg.begin_suppress_tokens.clone(),
                begin_index: 1 + cfg.decoder_prompt.len(),
            }));
        }
        Processors { list }
    }

    /// The edits of one row, every processor applied in order.
    pub fn row_edits(&self, history: &[u32], vocab: usize) -> BTreeMap<u32, LogitEdit> {
        let mut edits = BTreeMap::new();
        for p in &self.list {
            p.edit(history, vocab, &mut edits);
        }
        edits
    }

    /// The edits of every row as (row, token, edit) u32 triples; an empty history is a
    /// finished row, whose choice is discarded.
    pub fn triples(&self, histories: &[&[u32]], vocab: usize, out: &mut Vec<u32>) {
        out.clear();
        if self.list.is_empty() {
            return;
        }
        for (row, h) in histories.iter().enumerate() {
            if h.is_empty() {
                continue;
            }
            for (tok, e) in self.row_edits(h, vocab) {
                out.extend([row as u32, tok, e as u32]);
            }
        }
    }
}

/// Tokens forced at this length (the decoder prompt after the start token, else forced BOS
/// there; forced EOS at max_length - 1), sorted; `None` when the model chooses. Forced EOS
/// is applied after forced BOS in transformers, so it wins when both apply.
pub fn forced_tokens(cfg: &SearchConfig, cur_len: usize) -> Option<Vec<u32>> {
    let mut forced = None;
    if let Some(&p) = cur_len
        .checked_sub(1)
        .and_then(|i| cfg.decoder_prompt.get(i))
    {
        forced = Some(vec![p]);
    } else if cur_len == 1
        && let Some(b) = cfg.forced_bos_token_id
    {
        forced = Some(vec![b]);
    }
    // An empty list is refused by `SearchConfig::resolve`; here it forces nothing, so that
    // no caller can index into an empty forced set.
    if cur_len + 1 == cfg.max_length
        && let Some(e) = cfg.forced_eos_token_id.as_ref().filter(|e| !e.is_empty())
    {
        let mut e = e.clone();
        e.sort_unstable();
        e.dedup();
        forced = Some(e);
    }
    forced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::options::tests::search_config as cfg;

    fn row_edits(c: &SearchConfig, h: &[u32], vocab: usize) -> BTreeMap<u32, LogitEdit> {
        Processors::new(c).row_edits(h, vocab)
    }

    #[test]
    fn processors_make_the_edits_transformers_would() {
        let mut c = cfg();
        c.repetition_penalty = 1.2;
        c.no_repeat_ngram_size = 2;
        c.bad_words_ids = vec![vec![7], vec![3, 4]];
        c.min_length = 5;
        // history 9 3 5 3 : bigram prefix (3) seen before followed by 5 → ban 5.
        let e = row_edits(&c, &[9, 3, 5, 3], 10);
        assert_eq!(e.get(&9), Some(&LogitEdit::Penalize));
        assert_eq!(
            e.get(&5),
            Some(&LogitEdit::Ban),
            "no-repeat bigram wins over the penalty"
        );
        assert_eq!(e.get(&4), Some(&LogitEdit::Ban), "bad word [3, 4] after 3");
        assert_eq!(e.get(&7), Some(&LogitEdit::Ban));
        assert_eq!(e.get(&0), Some(&LogitEdit::Ban), "min_length bans eos");
        let e = row_edits(&c, &[9, 3, 5, 3, 8], 10);
        assert_eq!(e.get(&0), None, "length 5 reaches min_length 5");
        assert_eq!(e.get(&4), None);
        // ngram size 3: prefix (5,3) seen in 3,5,3? windows: (9,3,5) (3,5,3) (5,3,8) → ban 8
        c.no_repeat_ngram_size = 3;
        let e = row_edits(&c, &[9, 3, 5, 3, 8, 5, 3], 10);
        assert_eq!(e.get(&8), Some(&LogitEdit::Ban));
    }

    #[test]
    fn forced_tokens_at_their_lengths() {
        let mut c = cfg();
        c.forced_bos_token_id = Some(4);
        c.forced_eos_token_id = Some(vec![0, 2]);
        assert_eq!(forced_tokens(&c, 1), Some(vec![4]));
        assert_eq!(forced_tokens(&c, 2), None);
        assert_eq!(forced_tokens(&c, 5), Some(vec![0, 2]));
        // An empty forced set forces nothing (resolve refuses it before any step).
        c.forced_eos_token_id = Some(vec![]);
        assert_eq!(forced_tokens(&c, 5), None);
        c.decoder_prompt = vec![7, 8];
        assert_eq!(forced_tokens(&c, 1), Some(vec![7]));
        assert_eq!(forced_tokens(&c, 2), Some(vec![8]));
        assert_eq!(forced_tokens(&c, 3), None);
    }

    #[test]
    fn whisper_suppression() {
        let mut c = cfg();
        c.decoder_prompt = vec![7, 8];
        c.suppress_tokens = vec![3, 42];
        c.begin_suppress_tokens = vec![5];
        let e = row_edits(&c, &[9, 7, 8], 10);
        assert_eq!(e.get(&3), Some(&LogitEdit::Ban));
        assert_eq!(e.get(&42), None, "outside the vocabulary");
        assert_eq!(e.get(&5), Some(&LogitEdit::Ban), "first free step");
        let e = row_edits(&c, &[9, 7, 8, 1], 10);
        assert_eq!((e.get(&3), e.get(&5)), (Some(&LogitEdit::Ban), None));
    }
}
