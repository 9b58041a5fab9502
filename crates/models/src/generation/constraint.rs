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
//! When the table of every reachable node would pass [`MAX_TABLE_BYTES`], the nodes are
//! found lazily instead, as the search reaches them: each node's mask is built when a row
//! first stands in it (and kept), and a step uploads the masks of its rows. Lazily, a token is
//! allowed whenever it does not run the DFA into its dead state (the backward pass needs the
//! whole graph), so a vocabulary that cannot spell a continuation the expression accepts is
//! only found out when the search gets there.
//!
//! Limits: tokens that add no text (special tokens other than EOS) are never allowed; a
//! search that reaches `max_length` first ends with the text so far, which may be an
//! unfinished match.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// The DFA states from which a full match can still be reached.
    live: HashSet<StateID>,
    pieces: Vec<Option<Piece>>,
    /// The tokens sorted by their later and their first bytes.
    orders: [Order; 2],
    graph: Graph,
    words: usize,
    /// The table on the GPU, uploaded on first use.
    table: OnceLock<Tensor>,
}

/// The nodes of a constraint: all of them up front, or as the search finds them.
enum Graph {
    Full {
        /// The live nodes and their indices (rows of `masks`).
        nodes: HashMap<Key, u32>,
        keys: Vec<Key>,
        /// u32 `[nodes + 1, words]`: bit t of row n allows token t in node n; the last row
        /// ([`Constraint::dead`]) allows only EOS.
        masks: Vec<u32>,
    },
    Lazy(Mutex<Found>),
}

/// The nodes a lazy constraint has met so far, and the masks it has built.
#[derive(Default)]
struct Found {
    keys: Vec<Key>,
    index: HashMap<Key, u32>,
    masks: HashMap<u32, Arc<[u32]>>,
}

/// The node of a hypothesis that left a lazy constraint (only EOS allowed).
const LAZY_DEAD: u32 = u32::MAX - 1;

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("pattern", &self.pattern)
            .field("nodes", &self.nodes())
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

/// The bytes of one form of a piece.
fn form(p: &Piece, first: bool) -> &[u8] {
    if first { &p.first } else { &p.rest }
}

/// The tokens with a piece (EOS aside), sorted by the bytes of one form (first or rest).
struct Order {
    first: bool,
    ids: Vec<u32>,
}

impl Order {
    fn new(pieces: &[Option<Piece>], eos: &[u32], first: bool) -> Order {
        let mut ids: Vec<u32> = (0..pieces.len() as u32)
            .filter(|id| !eos.contains(id) && pieces[*id as usize].is_some())
            .collect();
        let bytes = |id: &u32| pieces[*id as usize].as_ref().map(|p| form(p, first));
        ids.sort_unstable_by(|a, b| bytes(a).cmp(&bytes(b)).then(a.cmp(b)));
        Order { first, ids }
    }

    /// Calls `f(token, state)` for every token whose bytes lead from `from` through live
    /// states only (see [`live_states`]), sharing the walk of common prefixes between neighbours.
    fn walk(
        &self,
        pieces: &[Option<Piece>],
        (dfa, live): (&DFA<Vec<u32>>, &HashSet<StateID>),
        from: StateID,
        mut f: impl FnMut(u32, StateID),
    ) {
        // states[i]: the state after the first i bytes of `prev`.
        let mut states = vec![from];
        let mut prev: &[u8] = &[];
        for &id in &self.ids {
            let Some(Some(piece)) = pieces.get(id as usize) else {
                continue;
            };
            let bytes = form(piece, self.first);
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
                if !live.contains(&s) {
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

/// The DFA states reachable from `start` from which some text reaches a full match. Not
/// only the dead state is excluded: the DFA reports a match one byte late, so a byte after
/// a complete match leads to a "match ended here" state that nothing can follow.
fn live_states(dfa: &DFA<Vec<u32>>, start: StateID) -> HashSet<StateID> {
    let mut seen = HashSet::from([start]);
    let mut order = vec![start];
    let mut pred: HashMap<StateID, Vec<StateID>> = HashMap::new();
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        for b in 0..=255u8 {
            let t = dfa.next_state(s, b);
            if dfa.is_dead_state(t) || dfa.is_quit_state(t) {
                continue;
            }
            pred.entry(t).or_default().push(s);
            if seen.insert(t) {
                order.push(t);
            }
        }
        i += 1;
    }
    let mut live: HashSet<StateID> = order
        .iter()
        .copied()
        .filter(|&s| dfa.is_match_state(dfa.next_eoi_state(s)))
        .collect();
    let mut stack: Vec<StateID> = live.iter().copied().collect();
    while let Some(s) = stack.pop() {
        for &p in pred.get(&s).map_or(&[][..], Vec::as_slice) {
            if live.insert(p) {
                stack.push(p);
            }
        }
    }
    live
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
        Constraint::with_table_limit(pattern, pieces, eos, MAX_TABLE_BYTES)
    }

    /// [`Constraint::new`] with the mask table limited to `table_bytes`, past which the nodes
    /// are found lazily (0: always lazily).
    pub fn with_table_limit(
        pattern: &str,
        pieces: Vec<Option<Piece>>,
        eos: &[u32],
        table_bytes: usize,
    ) -> Result<Constraint> {
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
        let orders = [
            Order::new(&pieces, eos, false),
            Order::new(&pieces, eos, true),
        ];
        let live = live_states(&dfa, start);
        let mut c = Constraint {
            pattern: pattern.to_string(),
            vocab,
            eos: eos.to_vec(),
            dfa,
            live,
            pieces,
            orders,
            graph: Graph::Lazy(Mutex::new(Found::default())),
            words,
            table: OnceLock::new(),
        };
        let max_nodes = table_bytes / (4 * words);
        match c.full_graph(start, max_nodes)? {
            Some(full) => c.graph = full,
            None => {
                let found = Found {
                    keys: vec![(start, true)],
                    index: HashMap::from([((start, true), 0)]),
                    masks: HashMap::new(),
                };
                c.graph = Graph::Lazy(Mutex::new(found));
                if c.mask(c.start()).iter().all(|&w| w == 0) {
                    return Err(c.unsatisfiable());
                }
            }
        }
        Ok(c)
    }

    fn unsatisfiable(&self) -> Error {
        refuse(
            &self.pattern,
            "no sequence of the vocabulary's tokens can match it (the tokens cannot spell any \
             text the expression accepts)",
        )
    }

    fn order(&self, first: bool) -> &Order {
        &self.orders[usize::from(first)]
    }

    fn accepts(&self, s: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(s))
    }

    fn allow(mask: &mut [u32], t: u32) {
        mask[t as usize / 32] |= 1 << (t % 32);
    }

    fn allow_eos(&self, mask: &mut [u32]) {
        for &e in self.eos.iter().filter(|&&e| (e as usize) < self.vocab) {
            Constraint::allow(mask, e);
        }
    }

    /// Every node reachable from the start with its mask, only the live ones kept; `None`
    /// when there are more than `max_nodes`.
    fn full_graph(&self, start: StateID, max_nodes: usize) -> Result<Option<Graph>> {
        // Forward: every node reachable from the start, and its successors.
        let mut keys: Vec<Key> = vec![(start, true)];
        let mut index: HashMap<Key, usize> = HashMap::from([((start, true), 0)]);
        let mut succ: Vec<Vec<usize>> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            if keys.len() > max_nodes {
                return Ok(None);
            }
            let (s, first) = keys[i];
            let mut next = Vec::new();
            self.order(first)
                .walk(&self.pieces, (&self.dfa, &self.live), s, |_, t| {
                    let n = *index.entry((t, false)).or_insert_with(|| {
                        keys.push((t, false));
                        keys.len() - 1
                    });
                    next.push(n);
                });
            next.sort_unstable();
            next.dedup();
            succ.push(next);
            i += 1;
        }
        if keys.len() > max_nodes {
            return Ok(None);
        }

        // Backward: the nodes from which a full match can still be reached.
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (n, next) in succ.iter().enumerate() {
            for &m in next {
                pred[m].push(n);
            }
        }
        let mut live: Vec<bool> = keys.iter().map(|&(s, _)| self.accepts(s)).collect();
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
            return Err(self.unsatisfiable());
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
        let words = self.words;
        let mut masks = vec![0u32; (keys.len() + 1) * words];
        for (row, &(s, first)) in masks.chunks_exact_mut(words).zip(&keys) {
            self.order(first)
                .walk(&self.pieces, (&self.dfa, &self.live), s, |t, next| {
                    if nodes.contains_key(&(next, false)) {
                        Constraint::allow(row, t);
                    }
                });
            if self.accepts(s) {
                self.allow_eos(row);
            }
        }
        let dead = keys.len() * words;
        self.allow_eos(&mut masks[dead..]);
        Ok(Some(Graph::Full { nodes, keys, masks }))
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

    /// Whether the nodes are found as the search reaches them (the table would be too big).
    pub fn is_lazy(&self) -> bool {
        matches!(self.graph, Graph::Lazy(_))
    }

    fn found(&self) -> Option<std::sync::MutexGuard<'_, Found>> {
        match &self.graph {
            Graph::Full { .. } => None,
            Graph::Lazy(m) => Some(m.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Nodes of the token-level automaton: all of them, or those found so far (lazily).
    pub fn nodes(&self) -> usize {
        match &self.graph {
            Graph::Full { keys, .. } => keys.len(),
            Graph::Lazy(_) => self.found().map_or(0, |f| f.keys.len()),
        }
    }

    /// The node before any token.
    pub fn start(&self) -> u32 {
        0
    }

    /// The node of a hypothesis that left the automaton: only EOS is allowed.
    pub fn dead(&self) -> u32 {
        match &self.graph {
            Graph::Full { keys, .. } => keys.len() as u32,
            Graph::Lazy(_) => LAZY_DEAD,
        }
    }

    /// The mask of `node`: u32 `[ceil(V / 32)]`, bit t set when token t is allowed.
    pub fn mask(&self, node: u32) -> Arc<[u32]> {
        let words = self.words;
        if let Graph::Full { masks, .. } = &self.graph {
            let row = (node as usize).min(masks.len() / words - 1);
            return masks[row * words..(row + 1) * words].into();
        }
        let key = self.found().and_then(|f| {
            if let Some(m) = f.masks.get(&node) {
                return Some(Err(m.clone()));
            }
            f.keys.get(node as usize).map(|&k| Ok(k))
        });
        let mut mask = vec![0u32; words];
        match key {
            Some(Err(cached)) => return cached,
            Some(Ok((s, first))) => {
                self.order(first)
                    .walk(&self.pieces, (&self.dfa, &self.live), s, |t, _| {
                        Constraint::allow(&mut mask, t)
                    });
                if self.accepts(s) {
                    self.allow_eos(&mut mask);
                }
            }
            None => self.allow_eos(&mut mask),
        }
        let mask: Arc<[u32]> = mask.into();
        if let Some(mut f) = self.found() {
            f.masks.insert(node, mask.clone());
        }
        mask
    }

    /// The mask table of every node (the last row: [`Constraint::dead`]), u32
    /// `[nodes + 1, ceil(V / 32)]`; `None` when the nodes are found lazily.
    pub fn masks(&self) -> Option<&[u32]> {
        match &self.graph {
            Graph::Full { masks, .. } => Some(masks),
            Graph::Lazy(_) => None,
        }
    }

    /// Whether `token` is allowed in `node`.
    pub fn allows(&self, node: u32, token: u32) -> bool {
        (token as usize) < self.vocab
            && self.mask(node)[token as usize / 32] >> (token % 32) & 1 == 1
    }

    /// The node after `token` in `node`. A token that writes no text (EOS, a forced special
    /// token) leaves the node as it is; one that leaves the automaton leads to
    /// [`Constraint::dead`].
    pub fn advance(&self, node: u32, token: u32) -> u32 {
        let dead = self.dead();
        let key = match &self.graph {
            Graph::Full { keys, .. } => keys.get(node as usize).copied(),
            Graph::Lazy(_) => self
                .found()
                .and_then(|f| f.keys.get(node as usize).copied()),
        };
        let Some((mut s, first)) = key else {
            return dead;
        };
        let Some(Some(piece)) = self.pieces.get(token as usize) else {
            return node;
        };
        if self.eos.contains(&token) {
            return node;
        }
        for &b in form(piece, first) {
            s = self.dfa.next_state(s, b);
            if !self.live.contains(&s) {
                return dead;
            }
        }
        match &self.graph {
            Graph::Full { nodes, .. } => nodes.get(&(s, false)).copied().unwrap_or(dead),
            Graph::Lazy(_) => self.found().map_or(dead, |mut f| {
                let f = &mut *f;
                *f.index.entry((s, false)).or_insert_with(|| {
                    f.keys.push((s, false));
                    (f.keys.len() - 1) as u32
                })
            }),
        }
    }

    /// The mask table on `gpu`, uploaded on first use (a constraint serves one model, and so
    /// one GPU); `None` when the nodes are found lazily.
    pub(crate) fn table(&self, gpu: &Gpu) -> Result<Option<Tensor>> {
        let Some(masks) = self.masks() else {
            return Ok(None);
        };
        if let Some(t) = self.table.get() {
            return Ok(Some(t.clone()));
        }
        let t = gpu.upload(masks, &[masks.len() / self.words, self.words])?;
        Ok(Some(self.table.get_or_init(|| t).clone()))
    }

    /// u32 words of one mask.
    pub fn mask_words(&self) -> usize {
        self.words
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

    /// Found lazily, the nodes allow what the full table allows wherever the full table's
    /// backward pass pruned nothing, and advance alike along any walk.
    #[test]
    fn lazy_nodes_agree_with_the_table() {
        let pattern = "(ab|a-)+(-b)?";
        let full = Constraint::new(pattern, chars("ab-"), &[0]).unwrap();
        let lazy = Constraint::with_table_limit(pattern, chars("ab-"), &[0], 0).unwrap();
        assert!(!full.is_lazy() && lazy.is_lazy());
        let mut seed = 7u32;
        for _ in 0..50 {
            let (mut f, mut l) = (full.start(), lazy.start());
            for _ in 0..12 {
                for t in 0..5 {
                    assert_eq!(full.allows(f, t), lazy.allows(l, t), "token {t}");
                }
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let t = 2 + (seed >> 16) % 3;
                f = full.advance(f, t);
                l = lazy.advance(l, t);
                assert_eq!(f == full.dead(), l == lazy.dead());
            }
        }
        let e = Constraint::with_table_limit("z", chars("ab"), &[0], 0).unwrap_err();
        assert!(e.to_string().contains("no sequence"), "{e}");
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
