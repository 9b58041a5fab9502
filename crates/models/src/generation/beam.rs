//! Beam search bookkeeping: a line-by-line port of `GenerationMixin._beam_search`, fed with
//! the top-k candidates the GPU read back.

use crate::generation::config::EarlyStopping;
use crate::generation::options::SearchConfig;

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
        // transformers divides by the generated length, cur_len + 1 - decoder_prompt_len,
        // where decoder_prompt_len counts the start token and a decoder prompt (Whisper's).
        let prompt = cfg.decoder_prompt.len();
        let lp_div = (cur_len.saturating_sub(prompt).max(1) as f64).powf(cfg.length_penalty) as f32;
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
            // transformers' `beams_in_batch_are_full`: this source's finished list was full
            // before this step (per source, not over the batch).
            let full =
                item.is_finished.iter().all(|&f| f) && cfg.early_stopping == EarlyStopping::True;
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
        }
        .saturating_sub(cfg.decoder_prompt.len())
        .max(1);
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
    use crate::generation::options::tests::search_config as cfg;

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

    /// With early_stopping true, a source whose finished list is full takes no more
    /// hypotheses even while another source of the batch is still searching (transformers'
    /// `beams_in_batch_are_full` is per source). A length penalty of 2 keeps the heuristic
    /// open, so only fullness can refuse the last, better ending.
    #[test]
    fn a_full_source_stops_while_the_batch_goes_on() {
        let mut c = cfg();
        c.early_stopping = EarlyStopping::True;
        c.length_penalty = 2.0;
        let cand = |score, beam, token| Candidate { score, beam, token };
        let open = || {
            vec![
                cand(-0.1, 0, 5),
                cand(-0.2, 0, 6),
                cand(-0.3, 1, 5),
                cand(-0.4, 1, 6),
            ]
        };
        let mut bs = BeamSearch::new(2, &c);
        // Step 1: one ending (-0.5) for source 0.
        let s0 = vec![
            cand(-0.1, 0, 2),
            cand(-0.5, 0, 0),
            cand(-0.6, 0, 3),
            cand(-0.7, 0, 4),
        ];
        bs.step(&c, 10, vec![s0, open()]);
        assert_eq!(bs.items[0].is_finished, vec![true, false]);
        // Step 2: a second ending (-0.6 / 2²): source 0's list of 2 is full.
        let s0 = vec![
            cand(-0.6, 0, 0),
            cand(-0.7, 0, 2),
            cand(-0.8, 1, 3),
            cand(-0.9, 1, 4),
        ];
        bs.step(&c, 10, vec![s0, open()]);
        assert_eq!(bs.items[0].is_finished, vec![true, true]);
        assert!(
            bs.items[0].unsatisfied,
            "the heuristic still hopes for better"
        );
        let full = bs.items[0].finished.clone();
        // Step 3: a better ending (-0.75 / 3²) is refused; source 1 goes on.
        let s0 = vec![
            cand(-0.75, 0, 0),
            cand(-0.8, 0, 2),
            cand(-0.9, 1, 3),
            cand(-1.0, 1, 4),
        ];
        bs.step(&c, 10, vec![s0, open()]);
        assert_eq!(
            bs.items[0].finished, full,
            "a full source took a new hypothesis"
        );
        assert!(!bs.done(&c));
    }
}
