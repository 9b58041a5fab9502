//! Host-side decoding logic: transformers' logits processors turned into GPU logit edits,
//! greedy bookkeeping and beam search (a line-by-line port of `GenerationMixin._beam_search`).
//!
//! The host knows every token, so each processor becomes a short list of (row, token, edit)
//! triples uploaded per step; the GPU applies them before argmax / top-k. Forced tokens
//! (forced BOS / EOS) replace the whole distribution, so those steps need no GPU selection at all.

use std::collections::BTreeMap;

use seqbridge_gpu::ops::sampling::LogitEdit;

use crate::config::EarlyStopping;
use crate::options::SearchConfig;

/// The edits transformers' processors make to one row, in processor order
/// (repetition penalty, no-repeat n-gram, bad words, min length): a later ban wins over an
/// earlier penalty on the same token.
pub fn row_edits(cfg: &SearchConfig, history: &[u32], vocab: usize) -> BTreeMap<u32, LogitEdit> {
    let mut edits = BTreeMap::new();
    let cur_len = history.len();
    if cfg.repetition_penalty != 1.0 {
        for &t in history {
            if (t as usize) < vocab {
                edits.insert(t, LogitEdit::Penalize);
            }
        }
    }
    let n = cfg.no_repeat_ngram_size;
    if n > 0 && cur_len >= n {
        let prefix = &history[cur_len + 1 - n..];
        for w in history.windows(n) {
            if &w[..n - 1] == prefix && (w[n - 1] as usize) < vocab {
                edits.insert(w[n - 1], LogitEdit::Ban);
            }
        }
    }
    for word in &cfg.bad_words_ids {
        let (last, prefix) = word.split_last().expect("validated non-empty");
        if prefix.len() <= cur_len && history.ends_with(prefix) {
            edits.insert(*last, LogitEdit::Ban);
        }
    }
    if cur_len < cfg.min_length || cur_len - 1 < cfg.min_new_tokens {
        for &e in &cfg.eos_token_id {
            edits.insert(e, LogitEdit::Ban);
        }
    }
    edits
}

/// Tokens forced at this length (forced BOS after the start token, forced EOS at
/// max_length - 1), sorted; `None` when the model chooses. Forced EOS is applied after forced
/// BOS in transformers, so it wins when both apply.
pub fn forced_tokens(cfg: &SearchConfig, cur_len: usize) -> Option<Vec<u32>> {
    let mut forced = None;
    if cur_len == 1
        && let Some(b) = cfg.forced_bos_token_id
    {
        forced = Some(vec![b]);
    }
    if cur_len == cfg.max_length - 1
        && let Some(e) = &cfg.forced_eos_token_id
    {
        let mut e = e.clone();
        e.sort_unstable();
        e.dedup();
        forced = Some(e);
    }
    forced
}

/// Appends the edits of every row as (row, token, edit) u32 triples.
pub fn edit_triples(cfg: &SearchConfig, histories: &[&[u32]], vocab: usize, out: &mut Vec<u32>) {
    out.clear();
    for (row, h) in histories.iter().enumerate() {
        if h.is_empty() {
            continue; // a finished row: its choice is discarded
        }
        for (tok, e) in row_edits(cfg, h, vocab) {
            out.extend([row as u32, tok, e as u32]);
        }
    }
}

/// Greedy decoding state of a batch (transformers' `_sample` without sampling).
pub struct Greedy {
    /// Per source: decoder start token, then the generated tokens (no padding).
    pub sequences: Vec<Vec<u32>>,
    pub unfinished: Vec<bool>,
    /// Decoder length of every row (finished rows are padded in transformers).
    len: usize,
}

impl Greedy {
    pub fn new(batch: usize, start: u32) -> Greedy {
        Greedy {
            sequences: vec![vec![start]; batch],
            unfinished: vec![true; batch],
            len: 1,
        }
    }

    /// Current length (all rows advance together).
    pub fn cur_len(&self) -> usize {
        self.len
    }

    /// Appends the chosen tokens; finished rows keep their sequence (transformers pads
    /// them). Returns the rows that received a real token.
    pub fn advance(&mut self, cfg: &SearchConfig, next: &[u32]) -> Vec<(usize, u32)> {
        let cur_len = self.cur_len() + 1;
        let mut emitted = Vec::new();
        for (row, &tok) in next.iter().enumerate() {
            if !self.unfinished[row] {
                continue;
            }
            self.sequences[row].push(tok);
            emitted.push((row, tok));
            if cfg.eos_token_id.contains(&tok) || cur_len >= cfg.max_length {
                self.unfinished[row] = false;
            }
        }
        self.len = cur_len;
        emitted
    }

    pub fn done(&self) -> bool {
        !self.unfinished.iter().any(|&u| u)
    }
}

/// One candidate continuation read back from the GPU: accumulated score (beam score +
/// processed log-probability), the beam it extends, the token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub score: f32,
    pub beam: usize,
    pub token: u32,
}

/// Sorts candidates as `torch.topk` over the flattened `[num_beams * vocab]` row: score
/// descending, then lower flat index first.
pub fn sort_candidates(c: &mut [Candidate], vocab: usize) {
    c.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then((a.beam * vocab + a.token as usize).cmp(&(b.beam * vocab + b.token as usize)))
    });
}

/// Indices of the `k` largest values, descending, ties to the lower index.
fn topk_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| {
        values[b]
            .partial_cmp(&values[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    idx.truncate(k);
    idx
}

/// Beam search state of one source.
#[derive(Clone, Debug)]
pub struct BeamItem {
    /// Running hypotheses, best first.
    pub running: Vec<Vec<u32>>,
    pub running_scores: Vec<f32>,
    /// Finished hypotheses (with `is_finished`), best first, scores length-penalised.
    pub finished: Vec<Vec<u32>>,
    pub finished_scores: Vec<f32>,
    pub is_finished: Vec<bool>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`.
    pub unsatisfied: bool,
    /// Whether every kept candidate of the last step hit a stopping criterion.
    pub all_hit: bool,
}

const NEG: f32 = -1.0e9;

/// Beam search over a batch of sources, `num_beams` rows each.
pub struct BeamSearch {
    pub items: Vec<BeamItem>,
    pub cur_len: usize,
}

/// What the next decoder step needs: for every row (source-major), its parent row in the
/// previous step and its last token.
pub struct BeamStep {
    pub parents: Vec<u32>,
    pub tokens: Vec<u32>,
}

impl BeamSearch {
    pub fn new(batch: usize, cfg: &SearchConfig) -> BeamSearch {
        let nb = cfg.num_beams;
        let start = vec![cfg.decoder_start_token_id];
        let mut scores = vec![NEG; nb];
        scores[0] = 0.0;
        BeamSearch {
            items: (0..batch)
                .map(|_| BeamItem {
                    running: vec![start.clone(); nb],
                    running_scores: scores.clone(),
                    finished: vec![start.clone(); nb],
                    finished_scores: vec![NEG; nb],
                    is_finished: vec![false; nb],
                    unsatisfied: true,
                    all_hit: false,
                })
                .collect(),
            cur_len: 1,
        }
    }

    /// Running scores of every row (the top-k addend of the next step).
    pub fn row_scores(&self) -> Vec<f32> {
        self.items
            .iter()
            .flat_map(|i| i.running_scores.iter().copied())
            .collect()
    }

    /// Histories of every row, for the processors.
    pub fn histories(&self) -> Vec<&[u32]> {
        self.items
            .iter()
            .flat_map(|i| i.running.iter().map(Vec::as_slice))
            .collect()
    }

    /// Candidates of a forced step: each beam extends with each forced token at its own score
    /// (every other continuation is -inf and can never be kept).
    pub fn forced_candidates(&self, forced: &[u32]) -> Vec<Vec<Candidate>> {
        self.items
            .iter()
            .map(|it| {
                it.running_scores
                    .iter()
                    .enumerate()
                    .flat_map(|(beam, &s)| {
                        forced.iter().map(move |&token| Candidate {
                            score: s,
                            beam,
                            token,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// One step of `_beam_search` given each source's candidates (at least `beams_to_keep`
    /// unless the vocabulary is smaller; any order: they are sorted here). Returns the
    /// parents and tokens of the next running rows.
    pub fn step(
        &mut self,
        cfg: &SearchConfig,
        vocab: usize,
        mut candidates: Vec<Vec<Candidate>>,
    ) -> BeamStep {
        let nb = cfg.num_beams;
        let k = cfg.beams_to_keep();
        let cur_len = self.cur_len;
        let lp_div = (cur_len as f64).powf(cfg.length_penalty) as f32;
        let all_finished_globally = self.items.iter().all(|i| i.is_finished.iter().all(|&f| f));
        let mut parents = Vec::with_capacity(self.items.len() * nb);
        let mut tokens = Vec::with_capacity(self.items.len() * nb);
        for (b, (item, cands)) in self.items.iter_mut().zip(candidates.iter_mut()).enumerate() {
            sort_candidates(cands, vocab);
            // Pad with impossible continuations if the vocabulary is tiny.
            while cands.len() < k {
                cands.push(Candidate {
                    score: f32::NEG_INFINITY,
                    beam: 0,
                    token: 0,
                });
            }
            cands.truncate(k);
            let seqs: Vec<Vec<u32>> = cands
                .iter()
                .map(|c| {
                    let mut s = item.running[c.beam].clone();
                    s.push(c.token);
                    s
                })
                .collect();
            let hits: Vec<bool> = cands
                .iter()
                .map(|c| cfg.eos_token_id.contains(&c.token) || cur_len + 1 >= cfg.max_length)
                .collect();
            item.all_hit = hits.iter().all(|&h| h);
            // e. running beams for the next iteration
            let run_lp: Vec<f32> = cands
                .iter()
                .zip(&hits)
                .map(|(c, &h)| if h { c.score + NEG } else { c.score })
                .collect();
            let next = topk_indices(&run_lp, nb);
            let new_running: Vec<Vec<u32>> = next.iter().map(|&i| seqs[i].clone()).collect();
            item.running_scores = next.iter().map(|&i| run_lp[i]).collect();
            for &i in &next {
                parents.push((b * nb + cands[i].beam) as u32);
                tokens.push(cands[i].token);
            }
            // f. finished beams
            let full = all_finished_globally && cfg.early_stopping == EarlyStopping::True;
            let fin_lp: Vec<f32> = cands
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut s = c.score / lp_div;
                    if full {
                        s += NEG;
                    }
                    if !item.unsatisfied {
                        s += NEG;
                    }
                    if !(hits[i] && i < nb) {
                        s += NEG;
                    }
                    s
                })
                .collect();
            let merged_scores: Vec<f32> = item
                .finished_scores
                .iter()
                .copied()
                .chain(fin_lp.iter().copied())
                .collect();
            let pick = topk_indices(&merged_scores, nb);
            let (mut fs, mut fsc, mut ff) = (Vec::new(), Vec::new(), Vec::new());
            for &i in &pick {
                if i < nb {
                    fs.push(item.finished[i].clone());
                    ff.push(item.is_finished[i]);
                } else {
                    fs.push(seqs[i - nb].clone());
                    ff.push(hits[i - nb] && i - nb < nb);
                }
                fsc.push(merged_scores[i]);
            }
            item.finished = fs;
            item.finished_scores = fsc;
            item.is_finished = ff;
            item.running = new_running;
        }
        self.cur_len += 1;
        // g. early-stop heuristic with the new length
        let best_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0 {
            cfg.max_length - 1
        } else {
            self.cur_len - 1
        };
        let div = (best_len as f64).powf(cfg.length_penalty) as f32;
        for item in &mut self.items {
            let best_possible = item.running_scores[0] / div;
            let min_finished = item
                .finished_scores
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            let improvable = item
                .is_finished
                .iter()
                .any(|&f| best_possible > if f { min_finished } else { NEG });
            item.unsatisfied = item.unsatisfied && improvable;
        }
        BeamStep { parents, tokens }
    }

    /// transformers' `_beam_search_has_unfinished_sequences`, over the whole batch.
    pub fn done(&self, cfg: &SearchConfig) -> bool {
        let improvement_possible = self.items.iter().any(|i| i.unsatisfied);
        let all_finished = self.items.iter().all(|i| i.is_finished.iter().all(|&f| f));
        let exists_open_beam = !(all_finished && cfg.early_stopping == EarlyStopping::True);
        let valid_continuations = !self.items.iter().all(|i| i.all_hit);
        !(improvement_possible && exists_open_beam && valid_continuations)
    }

    /// The best `num_return_sequences` finished hypotheses of each source, with scores.
    pub fn results(&self, cfg: &SearchConfig) -> Vec<Vec<(Vec<u32>, f32)>> {
        self.items
            .iter()
            .map(|i| {
                i.finished
                    .iter()
                    .zip(&i.finished_scores)
                    .take(cfg.num_return_sequences)
                    .map(|(s, &sc)| (s.clone(), sc))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SearchConfig {
        SearchConfig {
            num_beams: 2,
            max_length: 6,
            min_length: 0,
            min_new_tokens: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            num_return_sequences: 1,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            bad_words_ids: vec![],
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            eos_token_id: vec![0],
            pad_token_id: 9,
            decoder_start_token_id: 9,
        }
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
    }

    #[test]
    fn greedy_stops_rows_independently() {
        let c = cfg();
        let mut g = Greedy::new(2, 9);
        g.advance(&c, &[0, 5]);
        assert!(!g.unfinished[0] && g.unfinished[1]);
        g.advance(&c, &[3, 6]);
        assert_eq!(g.sequences, vec![vec![9, 0], vec![9, 5, 6]]);
        for _ in 0..3 {
            g.advance(&c, &[1, 1]);
        }
        assert!(g.done());
        assert_eq!(g.sequences[1].len(), 6);
    }

    /// A hand-checked beam search over a 3-token vocabulary (eos 0), 2 beams.
    #[test]
    fn beam_search_bookkeeping() {
        let c = cfg();
        let mut bs = BeamSearch::new(1, &c);
        // Step 1: only beam 0 matters (beam 1 starts at -1e9).
        let cands = vec![vec![
            Candidate {
                score: -0.1,
                beam: 0,
                token: 1,
            },
            Candidate {
                score: -0.5,
                beam: 0,
                token: 0,
            },
            Candidate {
                score: -2.0,
                beam: 0,
                token: 2,
            },
            Candidate {
                score: NEG - 0.1,
                beam: 1,
                token: 1,
            },
        ]];
        let st = bs.step(&c, 3, cands);
        // eos candidate -0.5 is in the top 2 → finished with score -0.5/1.
        assert_eq!(bs.items[0].finished[0], vec![9, 0]);
        assert_eq!(bs.items[0].finished_scores[0], -0.5);
        assert_eq!(st.tokens, vec![1, 2]);
        assert_eq!(st.parents, vec![0, 0]);
        assert_eq!(bs.items[0].running_scores, vec![-0.1, -2.0]);
        // heuristic: best running -0.1/1 > worst finished? slot 1 unfinished → -1e9 → still unsatisfied.
        assert!(bs.items[0].unsatisfied);
        assert!(!bs.done(&c));
        // Step 2: both continuations end.
        let cands = vec![vec![
            Candidate {
                score: -0.3,
                beam: 0,
                token: 0,
            },
            Candidate {
                score: -2.5,
                beam: 1,
                token: 0,
            },
            Candidate {
                score: -3.0,
                beam: 0,
                token: 2,
            },
            Candidate {
                score: -4.0,
                beam: 1,
                token: 1,
            },
        ]];
        bs.step(&c, 3, cands);
        assert_eq!(bs.items[0].finished[0], vec![9, 1, 0]);
        assert_eq!(bs.items[0].finished_scores[0], -0.15);
        assert_eq!(bs.items[0].finished[1], vec![9, 0]);
        // best running now -3.0 / 2 = -1.5 < worst finished -0.5 → done.
        assert!(!bs.items[0].unsatisfied);
        assert!(bs.done(&c));
        let r = bs.results(&c);
        assert_eq!(r[0][0], (vec![9, 1, 0], -0.15));
    }
}
