//! Constrained decoding: a regular expression over the output text, compiled once against
//! the tokenizer's vocabulary into one allowed-token mask per automaton state.
//!
//! `regex-automata` builds an anchored DFA of the expression (all matches kept, so no
//! alternative is pruned by match priority). A node of the token-level automaton is a DFA
//! state plus whether any text has been written yet (the first token decodes differently
//! under SentencePiece, see [`crate::io::tokenizer::pieces`]). From each node reachable from
//! the start, every token's bytes are walked through the DFA (tokens sorted by their bytes,
//! so a shared prefix is walked once); a token that runs into the dead state is not allowed.
//! EOS is allowed where the text so far is a full match. A backward pass then keeps only
//! the nodes from which some token sequence reaches a full match, so the search can never
//! walk into a dead end, and refuses an expression that no output can satisfy.
//!
//! The masks of all nodes form one bit table `[nodes + 1, ceil(V / 32)]` (the last row: a
//! hypothesis already off the automaton, e.g. after a forced token, may only end), uploaded
//! once; each step only says which node each row is in (`token_mask` kernel).
//!
//! Limits: tokens that add no text (special tokens other than EOS) are never allowed; the
//! table is built for every reachable node up front, and an expression whose table would
//! exceed [`MAX_TABLE_BYTES`] is refused rather than built lazily; a search that reaches
//! `max_length` first ends with the text so far, which may be an unfinished match.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_automata::dfa::dense::{self, DFA};
use regex_automata::dfa::{Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use seqbridge_gpu::ops::token_mask::mask_words;
use seqbridge_gpu::{Gpu, Tensor};

use crate::error::{Error, Result};
use crate::io::tokenizer::pieces::Piece;

/// The largest mask table a constraint may build (bits of every node over the vocabulary).
pub const MAX_TABLE_BYTES: usize = 64 << 20;
/// Bytes the NFA and DFA of one expression may take while they are built.
const AUTOMATON_BYTES: usize = 64 << 20;

/// A node of the token-level automaton: a DFA state, and whether no text is written yet.
type Key = (StateID, bool);

/// A regular expression compiled against a vocabulary.
pub struct Constraint {
    pattern: String,
    vocab: usize,
    eos: Vec<u32>,
    dfa: DFA<Vec<u32>>,
    pieces: Vec<Option<Piece>>,
    /// The live nodes and their indices (rows of `masks`).
    nodes: HashMap<Key, u32>,
    keys: Vec<Key>,
    /// u32 `[nodes + 1, words]`: bit t of row n allows token t in node n; the last row
    /// ([`Constraint::dead`]) allows only EOS.
    masks: Vec<u32>,
    words: usize,
    /// The table on the GPU, uploaded on first use.
    table: OnceLock<Tensor>,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("pattern", &self.pattern)
            .field("nodes", &self.keys.len())
            .field("vocab", &self.vocab)
            .finish()
    }
}

/// Two constraints are the same when they were compiled from the same expression for the
/// same vocabulary and end tokens.
impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        (&self.pattern, self.vocab, &self.eos) == (&other.pattern, other.vocab, &other.eos)
    }
}

/// Tokens with a piece, sorted by the bytes of one form (first or rest).
struct Order<'a> {
    tokens: Vec<(&'a [u8], u32)>,
}

impl<'a> Order<'a> {
    fn new(pieces: &'a [Option<Piece>], eos: &[u32], first: bool) -> Order<'a> {
        let mut tokens: Vec<(&[u8], u32)> = pieces
            .iter()
            .enumerate()
            .filter(|(id, _)| !eos.contains(&(*id as u32)))
            .filter_map(|(id, p)| {
                let p = p.as_ref()?;
                let bytes = if first { &p.first } else { &p.rest };
                Some((bytes.as_slice(), id as u32))
            })
            .collect();
        tokens.sort_unstable();
        Order { tokens }
    }

    /// Calls `f(token, state)` for every token whose bytes lead from `from` to a state that
    /// is not dead, sharing the walk of common prefixes between neighbours.
    fn walk(&self, dfa: &DFA<Vec<u32>>, from: StateID, mut f: impl FnMut(u32, StateID)) {
        // states[i]: the state after the first i bytes of `prev`.
        let mut states = vec![from];
        let mut prev: &[u8] = &[];
        for &(bytes, id) in &self.tokens {
            let common = prev
                .iter()
                .zip(bytes)
                .take_while(|(a, b)| a == b)
                .count()
                .min(states.len() - 1);
            states.truncate(common + 1);
            prev = bytes;
            let mut alive = true;
            for &b in &bytes[common..] {
                let s = dfa.next_state(states[states.len() - 1], b);
                if dfa.is_dead_state(s) || dfa.is_quit_state(s) {
                    alive = false;
                    break;
                }
                states.push(s);
            }
            if alive {
                f(id, states[states.len() - 1]);
            }
        }
    }
}

/// An error naming the expression, on one line.
fn refuse(pattern: &str, msg: impl std::fmt::Display) -> Error {
    let msg = msg.to_string();
    let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    Error::Options(format!("constraint {pattern:?}: {line}"))
}

/// The syntax error of `pattern` as one line: what is wrong and at which character.
fn syntax_error(pattern: &str, e: &regex_syntax::Error) -> Error {
    let (kind, span) = match e {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span()),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span()),
        other => return refuse(pattern, other),
    };
    refuse(
        pattern,
        format!("{kind} at character {}", span.start.column),
    )
}

impl Constraint {
    /// Compiles `pattern` (regex-automata's syntax: the `regex` crate's) against `pieces`
    /// (one per token id, [`crate::Tokenizer::pieces`]); `eos` end a hypothesis.
    pub fn new(pattern: &str, pieces: Vec<Option<Piece>>, eos: &[u32]) -> Result<Constraint> {
        let hir =
            regex_automata::util::syntax::parse(pattern).map_err(|e| syntax_error(pattern, &e))?;
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().nfa_size_limit(Some(AUTOMATON_BYTES)))
            .build_from_hir(&hir)
            .map_err(|e| refuse(pattern, e))?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(AUTOMATON_BYTES))
                    .determinize_size_limit(Some(AUTOMATON_BYTES)),
            )
            .build_from_nfa(&nfa)
            .map_err(|e| refuse(pattern, e))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| refuse(pattern, e))?;
        let vocab = pieces.len();
        let words = mask_words(vocab);
        let max_nodes = (MAX_TABLE_BYTES / (4 * words)).max(1);
        let orders = [
            Order::new(&pieces, eos, false),
            Order::new(&pieces, eos, true),
        ];
        let order = |first: bool| &orders[usize::from(first)];
        let accepts = |s: StateID| dfa.is_match_state(dfa.next_eoi_state(s));

        // Forward: every node reachable from the start, and its successors.
        let mut keys: Vec<Key> = vec![(start, true)];
        let mut index: HashMap<Key, usize> = HashMap::from([((start, true), 0)]);
        let mut succ: Vec<Vec<usize>> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let (s, first) = keys[i];
            let mut next = Vec::new();
            order(first).walk(&dfa, s, |_, t| {
                let n = *index.entry((t, false)).or_insert_with(|| {
                    keys.push((t, false));
                    keys.len() - 1
                });
                next.push(n);
            });
            next.sort_unstable();
            next.dedup();
            succ.push(next);
            if keys.len() > max_nodes {
                return Err(refuse(
                    pattern,
                    format!(
                        "more than {max_nodes} automaton states over {vocab} tokens: its mask \
                         table would exceed {} MiB; simplify the expression",
                        MAX_TABLE_BYTES >> 20
                    ),
                ));
            }
            i += 1;
        }

        // Backward: the nodes from which a full match can still be reached.
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (n, next) in succ.iter().enumerate() {
            for &m in next {
                pred[m].push(n);
            }
        }
        let mut live: Vec<bool> = keys.iter().map(|&(s, _)| accepts(s)).collect();
        let mut stack: Vec<usize> = (0..keys.len()).filter(|&n| live[n]).collect();
        while let Some(n) = stack.pop() {
            for &p in &pred[n] {
                if !live[p] {
                    live[p] = true;
                    stack.push(p);
                }
            }
        }
        if !live[0] {
            return Err(refuse(
                pattern,
                "no sequence of the vocabulary's tokens can match it (the tokens cannot spell \
                 any text the expression accepts)",
            ));
        }
        // Live nodes keep their forward order, so the start stays node 0.
        let keys: Vec<Key> = keys
            .into_iter()
            .zip(&live)
            .filter_map(|(k, &l)| l.then_some(k))
            .collect();
        let nodes: HashMap<Key, u32> = keys
            .iter()
            .enumerate()
            .map(|(n, &k)| (k, n as u32))
            .collect();
        let mut masks = vec![0u32; (keys.len() + 1) * words];
        let mut allow = |row: usize, t: u32| {
            masks[row * words + t as usize / 32] |= 1 << (t % 32);
        };
        for (n, &(s, first)) in keys.iter().enumerate() {
            order(first).walk(&dfa, s, |t, next| {
                if nodes.contains_key(&(next, false)) {
                    allow(n, t);
                }
            });
            if accepts(s) {
                eos.iter()
                    .filter(|&&e| (e as usize) < vocab)
                    .for_each(|&e| allow(n, e));
            }
        }
        let dead = keys.len();
        eos.iter()
            .filter(|&&e| (e as usize) < vocab)
            .for_each(|&e| allow(dead, e));
        Ok(Constraint {
            pattern: pattern.to_string(),
            vocab,
            eos: eos.to_vec(),
            dfa,
            pieces,
            nodes,
            keys,
            masks,
            words,
            table: OnceLock::new(),
        })
    }

    /// The expression.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The tokens that end a hypothesis.
    pub fn eos(&self) -> &[u32] {
        &self.eos
    }

    /// The vocabulary size it was compiled for.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Nodes of the token-level automaton (rows of the mask table, less the dead row).
    pub fn nodes(&self) -> usize {
        self.keys.len()
    }

    /// The node before any token.
    pub fn start(&self) -> u32 {
        0
    }

    /// The row of a hypothesis that left the automaton: only EOS is allowed.
    pub fn dead(&self) -> u32 {
        self.keys.len() as u32
    }

    /// The mask table, u32 `[nodes + 1, ceil(V / 32)]`.
    pub fn masks(&self) -> &[u32] {
        &self.masks
    }

    /// Whether `token` is allowed in `node`.
    pub fn allows(&self, node: u32, token: u32) -> bool {
        (token as usize) < self.vocab
            && self.masks[node as usize * self.words + token as usize / 32] >> (token % 32) & 1 == 1
    }

    /// The node after `token` in `node`. A token that writes no text (EOS, a forced special
    /// token) leaves the node as it is; one that leaves the automaton leads to
    /// [`Constraint::dead`].
    pub fn advance(&self, node: u32, token: u32) -> u32 {
        let dead = self.dead();
        let Some(&(mut s, first)) = self.keys.get(node as usize) else {
            return dead;
        };
        let Some(Some(piece)) = self.pieces.get(token as usize) else {
            return node;
        };
        if self.eos.contains(&token) {
            return node;
        }
        for &b in if first { &piece.first } else { &piece.rest } {
            s = self.dfa.next_state(s, b);
            if self.dfa.is_dead_state(s) || self.dfa.is_quit_state(s) {
                return dead;
            }
        }
        self.nodes.get(&(s, false)).copied().unwrap_or(dead)
    }

    /// The mask table on `gpu`, uploaded on first use (a constraint serves one model, and so
    /// one GPU).
    pub(crate) fn table(&self, gpu: &Gpu) -> Result<Tensor> {
        if let Some(t) = self.table.get() {
            return Ok(t.clone());
        }
        let t = gpu.upload(&self.masks, &[self.keys.len() + 1, self.words])?;
        Ok(self.table.get_or_init(|| t).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One piece per character, the same first and later (a char-level tokenizer), and
    /// special tokens 0 (EOS) and 1.
    fn chars(alphabet: &str) -> Vec<Option<Piece>> {
        let mut p = vec![None, None];
        p.extend(alphabet.chars().map(|c| {
            let b = c.to_string().into_bytes();
            Some(Piece {
                first: b.clone(),
                rest: b,
            })
        }));
        p
    }

    /// Runs greedy "decoding" that takes the lowest allowed token id at each step.
    fn spell(c: &Constraint, tokens: &[u32]) -> (u32, Vec<bool>) {
        let mut node = c.start();
        let mut ok = Vec::new();
        for &t in tokens {
            ok.push(c.allows(node, t));
            node = c.advance(node, t);
        }
        (node, ok)
    }

    #[test]
    fn masks_follow_the_expression() {
        // tokens: 2 'a', 3 'b', 4 '-'
        let c = Constraint::new("a+-?b", chars("ab-"), &[0]).unwrap();
        assert!(c.allows(c.start(), 2) && !c.allows(c.start(), 3) && !c.allows(c.start(), 0));
        let (n, ok) = spell(&c, &[2, 2, 4]);
        assert_eq!(ok, vec![true, true, true]);
        assert!(c.allows(n, 3) && !c.allows(n, 4) && !c.allows(n, 0) && !c.allows(n, 1));
        let n = c.advance(n, 3);
        assert!(c.allows(n, 0), "a full match may end");
        assert!(!(2..5).any(|t| c.allows(n, t)), "and must");
        assert_eq!(c.advance(c.start(), 3), c.dead());
        assert!(c.allows(c.dead(), 0) && !c.allows(c.dead(), 2));
    }

    /// SentencePiece pieces: the first piece's space is dropped, later ones keep it.
    #[test]
    fn first_pieces_decode_without_their_space() {
        let piece = |first: &str, rest: &str| {
            Some(Piece {
                first: first.into(),
                rest: rest.into(),
            })
        };
        // 2 "▁ab", 3 "c", 4 "▁", 5 "▁c"
        let pieces = vec![
            None,
            None,
            piece("ab", " ab"),
            piece("c", "c"),
            piece("", " "),
            piece("c", " c"),
        ];
        let c = Constraint::new("ab( c)*", pieces, &[0]).unwrap();
        assert!(c.allows(c.start(), 2) && !c.allows(c.start(), 4) && !c.allows(c.start(), 5));
        let n = c.advance(c.start(), 2);
        assert!(c.allows(n, 0) && c.allows(n, 5) && c.allows(n, 4) && !c.allows(n, 3));
        let n = c.advance(n, 4);
        assert!(c.allows(n, 3) && !c.allows(n, 0) && !c.allows(n, 5));
    }

    /// Nodes from which no token sequence reaches a match are pruned: with no 'z' token,
    /// "a" may not be followed by "b" (only "bz" would complete it).
    #[test]
    fn dead_ends_are_pruned_and_impossible_expressions_refused() {
        let c = Constraint::new("ab?z|ac", chars("abc"), &[0]).unwrap();
        let n = c.advance(c.start(), 2);
        assert!(c.allows(n, 4) && !c.allows(n, 3));
        let e = Constraint::new("z+", chars("abc"), &[0]).unwrap_err();
        assert!(
            e.to_string().contains("no sequence of the vocabulary"),
            "{e}"
        );
        let e = Constraint::new("a(b", chars("abc"), &[0]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("unclosed group") && !msg.contains('\n'),
            "{msg}"
        );
    }

    /// The empty output is allowed exactly when the expression matches the empty text.
    #[test]
    fn empty_output() {
        let c = Constraint::new("(ab)?", chars("ab"), &[0]).unwrap();
        assert!(c.allows(c.start(), 0) && c.allows(c.start(), 2));
        let c = Constraint::new("ab", chars("ab"), &[0]).unwrap();
        assert!(!c.allows(c.start(), 0));
    }
}
