//! Greedy search bookkeeping (transformers' `_sample` without sampling).

use crate::generation::options::SearchConfig;

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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::options::tests::search_config as cfg;

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
}
