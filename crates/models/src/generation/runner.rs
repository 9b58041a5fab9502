//! The one loop that drives any [`Encoder`] and [`Decoder`]: encode once, project the cross
//! K/V once, then one submit per step (greedy or beam search), or one teacher-forced pass
//! (scores, cross-attention maps).
//!
//! A step: upload the new token of every row (plus beam parents, beam scores and the
//! processors' logit edits), reorder the self-attention indirection table (beams), run the
//! decoder on one token per row, then argmax (greedy) or log-softmax + top-k (beams) on the
//! GPU, and read back 4 bytes per row (greedy) or the top-k candidates (beams). The host
//! updates hypotheses exactly as transformers' `generate` does. Greedy search whose steps
//! need nothing from the host skips the upload and the wait: see `pipelined.rs`.

use seqbridge_gpu::ops::cache::reorder_rows_table;
use seqbridge_gpu::ops::logit_rules::{RULE_WORDS, logit_rules};
use seqbridge_gpu::ops::sampling::{argmax, edit_logits, log_softmax, log_softmax_gather, topk};
use seqbridge_gpu::ops::token_mask::{UNCONSTRAINED, token_mask};
use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::decoder::{CrossKv, Decoder};
use crate::encoder::{Encoder, EncoderInput};
use crate::error::Result;
use crate::generation::attention_tap::StepTap;
use crate::generation::beam::{BeamSearch, Candidate};
use crate::generation::constraint::Constraint;
use crate::generation::greedy::Greedy;
use crate::generation::options::SearchConfig;
use crate::generation::pipelined::pipelinable;
use crate::generation::processors::{Processors, forced_tokens};
use crate::generation::profile::Probe;
use crate::generation::timestamps::only_range;

/// Work done by one call (model load excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Encoder passes (one per batch of sources).
    pub encoder_runs: u64,
    /// Cross-attention K/V projections, counted per decoder layer (cross block).
    pub cross_kv_computes: u64,
    /// Decoder passes whose tokens were kept (generation steps, or 1 per teacher-forced
    /// scoring batch).
    pub decoder_steps: u64,
    /// Dispatches recorded, and command buffers submitted. Pipelined greedy search stops one
    /// step late when every row has ended on EOS: that overshoot step's dispatches and its
    /// submit are counted here, though not in `decoder_steps`.
    pub dispatches: u64,
    pub submits: u64,
    /// Host → GPU bytes (ids, edits, kernel parameters).
    pub bytes_uploaded: u64,
    pub bytes_read_back: u64,
    /// Weight bytes uploaded during the call (0: weights go up once, at load).
    pub weight_bytes_uploaded: u64,
    /// wgpu buffers created during the call (the pool's misses).
    pub buffers_created: u64,
}

/// What a search found.
pub struct Hypotheses {
    /// Per source, its hypotheses, best first.
    pub sequences: Vec<Vec<Vec<u32>>>,
    /// Beam search: their scores.
    pub scores: Option<Vec<Vec<f32>>>,
    /// Per source, the probability of [`SearchConfig::no_speech_token`] after the start token.
    pub no_speech: Option<Vec<f32>>,
}

impl Hypotheses {
    /// What greedy search found: one hypothesis per source.
    pub(crate) fn greedy(state: Greedy, no_speech: Option<NoSpeech>) -> Result<Hypotheses> {
        Ok(Hypotheses {
            sequences: state.sequences.into_iter().map(|s| vec![s]).collect(),
            scores: None,
            no_speech: no_speech.map(NoSpeech::probs).transpose()?,
        })
    }
}

/// Reads back row `r · stride` of `logits` `[rows, V]` for each source r, raw, before this
/// step's edits are recorded: the rows [`NoSpeech::probs`] reads.
pub(crate) struct NoSpeech {
    token: u32,
    rows: seqbridge_gpu::Readback,
    vocab: usize,
}

impl NoSpeech {
    pub(crate) fn record(
        search: &SearchConfig,
        rec: &mut Recorder,
        logits: &Tensor,
        (sources, stride, vocab): (usize, usize, usize),
    ) -> Result<Option<NoSpeech>> {
        let Some(token) = search.no_speech_token else {
            return Ok(None);
        };
        let rows = rec.gpu().empty(&[sources, vocab], DType::F32)?;
        for r in 0..sources {
            rec.copy_elements(logits, r * stride * vocab, &rows, r * vocab, vocab)?;
        }
        Ok(Some(NoSpeech {
            token,
            rows: rec.read_back(&rows)?,
            vocab,
        }))
    }

    /// softmax(row)[token] per source, in f64 like a careful float32 softmax.
    pub(crate) fn probs(self) -> Result<Vec<f32>> {
        let v = self.rows.wait_f32()?;
        Ok(v.chunks(self.vocab)
            .map(|row| {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
                let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
                ((row[self.token as usize] as f64 - max).exp() / sum) as f32
            })
            .collect())
    }
}

/// The logits processors of a call and the GPU buffer their edits travel in.
pub(crate) struct Edits {
    processors: Processors,
    /// u32 `[cap, 3]`: (row, token, edit) triples of one step.
    buf: Tensor,
    penalty: f32,
    triples: Vec<u32>,
    /// What `buf` holds: a step whose edits are the last step's uploads nothing.
    uploaded: Vec<u32>,
    vocab: usize,
}

impl Edits {
    pub(crate) fn new(
        gpu: &Gpu,
        search: &SearchConfig,
        rows: usize,
        vocab: usize,
    ) -> Result<Edits> {
        let per_row = 2 * search.max_length
            + search.bad_words_ids.len()
            + search.eos_token_id.len()
            + search.suppress_tokens.len()
            + search.begin_suppress_tokens.len()
            + 1;
        let cap = rows * per_row.min(vocab);
        Ok(Edits {
            processors: Processors::new(search),
            buf: gpu.empty(&[cap.max(1), 3], DType::U32)?,
            penalty: search.repetition_penalty as f32,
            triples: Vec::new(),
            uploaded: Vec::new(),
            vocab,
        })
    }

    /// Uploads the edits of every row (an empty history: a finished row) and records their
    /// application to `logits`.
    pub(crate) fn record(
        &mut self,
        rec: &mut Recorder,
        logits: &Tensor,
        histories: &[&[u32]],
    ) -> Result<()> {
        self.processors
            .triples(histories, self.vocab, &mut self.triples);
        let n = self.triples.len() / 3;
        if n > 0 {
            if self.triples != self.uploaded {
                rec.gpu()
                    .write(&self.buf.view(0, &[n, 3])?, &self.triples)?;
                self.uploaded.clone_from(&self.triples);
            }
            edit_logits(rec, logits, &self.buf, n, self.penalty)?;
        }
        Ok(())
    }
}

/// The range rules of a call (Whisper's timestamp rules, language detection), applied on the
/// GPU after the processors' edits, and the buffer their words travel in.
struct RangeRules {
    /// u32 `[rows, RULE_WORDS]`.
    buf: Tensor,
    words: Vec<u32>,
    vocab: usize,
}

impl RangeRules {
    fn new(gpu: &Gpu, rows: usize, vocab: usize) -> Result<RangeRules> {
        Ok(RangeRules {
            buf: gpu.empty(&[rows, RULE_WORDS], DType::U32)?,
            words: vec![0; rows * RULE_WORDS],
            vocab,
        })
    }

    /// Records the timestamp rules of every row (an empty history: a finished row).
    fn record_timestamps(
        &mut self,
        search: &SearchConfig,
        rec: &mut Recorder,
        logits: &Tensor,
        histories: &[&[u32]],
    ) -> Result<()> {
        let Some(ts) = &search.timestamps else {
            return Ok(());
        };
        for (row, h) in histories.iter().enumerate() {
            self.words[row * RULE_WORDS..(row + 1) * RULE_WORDS]
                .copy_from_slice(&ts.row(h, self.vocab));
        }
        rec.gpu().write(&self.buf, &self.words)?;
        logit_rules(rec, logits, &self.buf, ts.timestamp_begin)?;
        Ok(())
    }

    /// Records the argmax of every row over the language ids `lo..hi` only, as
    /// transformers' `detect_language` picks a source's language from its first step.
    fn record_language(
        &mut self,
        (lo, hi): (u32, u32),
        rec: &mut Recorder,
        logits: &Tensor,
        ids: &Tensor,
    ) -> Result<()> {
        let row = only_range(lo, hi, self.vocab);
        for w in self.words.chunks_exact_mut(RULE_WORDS) {
            w.copy_from_slice(&row);
        }
        rec.gpu().write(&self.buf, &self.words)?;
        logit_rules(rec, logits, &self.buf, 0)?;
        argmax(rec, logits, ids)?;
        Ok(())
    }
}

/// The constraint of a call on the GPU: its mask table (uploaded once per model and
/// expression) and the automaton node of every row, which is all a step uploads. A lazy
/// constraint (a table too big to build) uploads the masks of the step's rows instead.
struct Masking {
    constraint: std::sync::Arc<Constraint>,
    /// u32 `[nodes + 1, words]` (every node), or `[rows, words]` (lazily: row r's mask in
    /// row r, written each step).
    table: Tensor,
    lazy: bool,
    /// u32 `[rows]`: the mask row of each row of logits.
    row_nodes: Tensor,
    nodes: Vec<u32>,
    staged: Vec<u32>,
    staged_masks: Vec<u32>,
}

impl Masking {
    fn new(gpu: &Gpu, search: &SearchConfig, rows: usize) -> Result<Option<Masking>> {
        let Some(c) = &search.constraint else {
            return Ok(None);
        };
        let words = c.mask_words();
        let (table, lazy) = match c.table(gpu)? {
            Some(t) => (t, false),
            None => (gpu.empty(&[rows, words], DType::U32)?, true),
        };
        Ok(Some(Masking {
            table,
            lazy,
            row_nodes: gpu.empty(&[rows], DType::U32)?,
            nodes: vec![c.start(); rows],
            staged: vec![UNCONSTRAINED; rows],
            staged_masks: if lazy {
                vec![0; rows * words]
            } else {
                Vec::new()
            },
            constraint: c.clone(),
        }))
    }

    /// Records the masks of the rows for which `active(row)` holds; the others (finished
    /// rows) are left as they are.
    fn record(
        &mut self,
        rec: &mut Recorder,
        logits: &Tensor,
        active: impl Fn(usize) -> bool,
    ) -> Result<()> {
        let words = self.constraint.mask_words();
        for (row, slot) in self.staged.iter_mut().enumerate() {
            *slot = match (active(row), self.lazy) {
                (false, _) => UNCONSTRAINED,
                (true, false) => self.nodes[row],
                (true, true) => {
                    let mask = self.constraint.mask(self.nodes[row]);
                    self.staged_masks[row * words..(row + 1) * words].copy_from_slice(&mask);
                    row as u32
                }
            };
        }
        if self.lazy {
            rec.gpu().write(&self.table, &self.staged_masks)?;
        }
        rec.gpu().write(&self.row_nodes, &self.staged)?;
        token_mask(rec, logits, &self.table, &self.row_nodes)?;
        Ok(())
    }

    /// Row r now extends row `parents[r]` of the last step with `tokens[r]` (greedy: its own
    /// row; rows that took no token are left out by the caller).
    fn advance(&mut self, parents: impl Iterator<Item = usize>, tokens: &[u32]) {
        let before = self.nodes.clone();
        for (row, (parent, &tok)) in parents.zip(tokens).enumerate() {
            self.nodes[row] = self.constraint.advance(before[parent], tok);
        }
    }
}

/// Whether this step picks the language (the first prompt slot, under language detection).
fn detects_language(search: &SearchConfig, cur_len: usize) -> Option<(u32, u32)> {
    search.detect_language.filter(|_| cur_len == 1)
}

/// An encoder and a decoder on one GPU: what every loop below drives.
pub(crate) struct Runner<'a> {
    pub gpu: &'a Gpu,
    pub encoder: &'a dyn Encoder,
    pub decoder: &'a dyn Decoder,
}

impl Runner<'_> {
    /// Runs the encoder and every cross-attention block's K/V projection (one submit).
    pub fn encode(
        &self,
        input: &EncoderInput,
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<CrossKv> {
        probe.start();
        let mut rec = probe.recorder(self.gpu);
        let memories = self.encoder.encode_sources(&mut rec, input)?;
        let cross = self
            .decoder
            .project(&mut rec, &memories.iter().collect::<Vec<_>>())?;
        probe.submit(rec)?;
        probe.end_encoder(self.gpu)?;
        stats.encoder_runs += memories.len() as u64;
        stats.cross_kv_computes += cross.blocks as u64;
        Ok(cross)
    }

    /// Greedy search over the sources of `cross`; `on_token(source, token)` as each step
    /// finishes; with `tap`, its chosen cross-attention heads are read back each step and
    /// reported with the token. Without a tap, a search whose steps need nothing from the
    /// host runs pipelined ([`Runner::greedy_pipelined`]); the others wait for each step's
    /// ids before recording the next.
    #[allow(clippy::too_many_arguments)]
    pub fn greedy(
        &self,
        search: &SearchConfig,
        cross: &CrossKv,
        on_token: &mut dyn FnMut(usize, u32),
        mut tap: Option<&mut StepTap>,
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<Hypotheses> {
        if tap.is_none() && pipelinable(search) {
            return self.greedy_pipelined(search, cross, on_token, stats, probe);
        }
        let (b, vocab) = (cross.batch, self.decoder.vocab_size());
        let t_cap = search.max_length - 1;
        let mut dec = self.decoder.state(self.gpu, b, 1, t_cap)?;
        let next_ids = self.gpu.empty(&[b], DType::U32)?;
        let mut edits = Edits::new(self.gpu, search, b, vocab)?;
        let mut rules = RangeRules::new(self.gpu, b, vocab)?;
        let mut masking = Masking::new(self.gpu, search, b)?;
        let mut state = Greedy::new(b, search.decoder_start_token_id);
        let mut tokens = vec![search.decoder_start_token_id; b];
        let mut no_speech = None;
        for t in 0..t_cap {
            let cur_len = t + 1;
            probe.start();
            self.gpu.write(&dec.ids, &tokens)?;
            let mut rec = probe.recorder(self.gpu);
            let probs = tap.as_deref().map(StepTap::probs);
            self.decoder
                .forward(&mut rec, &mut dec, t, cross, 1, None, probs)?;
            if let Some(tap) = tap.as_deref_mut() {
                tap.tap.record(&mut rec)?;
            }
            if t == 0 {
                no_speech = NoSpeech::record(search, &mut rec, &dec.logits, (b, 1, vocab))?;
            }
            let next = if let Some(langs) = detects_language(search, cur_len) {
                rules.record_language(langs, &mut rec, &dec.logits, &next_ids)?;
                let rb = rec.read_back(&next_ids)?;
                probe.submit(rec)?;
                rb.wait_u32()?
            } else if let Some(forced) = forced_tokens(search, cur_len) {
                probe.submit(rec)?;
                vec![forced[0]; b]
            } else {
                let hist: Vec<&[u32]> = state
                    .sequences
                    .iter()
                    .zip(&state.unfinished)
                    .map(|(s, &u)| if u { s.as_slice() } else { &[][..] })
                    .collect();
                edits.record(&mut rec, &dec.logits, &hist)?;
                rules.record_timestamps(search, &mut rec, &dec.logits, &hist)?;
                if let Some(m) = masking.as_mut() {
                    m.record(&mut rec, &dec.logits, |row| state.unfinished[row])?;
                }
                argmax(&mut rec, &dec.logits, &next_ids)?;
                let rb = rec.read_back(&next_ids)?;
                probe.submit(rec)?;
                rb.wait_u32()?
            };
            probe.end_step();
            stats.decoder_steps += 1;
            if let Some(tap) = tap.as_deref_mut() {
                tap.tap.wait()?;
            }
            if let Some(m) = masking.as_mut() {
                // A finished row keeps its node (its token is padding).
                let kept: Vec<u32> = (0..b)
                    .map(|row| {
                        if state.unfinished[row] {
                            next[row]
                        } else {
                            search.eos_token_id.first().copied().unwrap_or(next[row])
                        }
                    })
                    .collect();
                m.advance(0..b, &kept);
            }
            for (row, tok) in state.advance(search, &next[..b]) {
                if let Some(tap) = tap.as_deref_mut() {
                    tap.emit(row, tok, t);
                }
                on_token(row, tok);
            }
            if state.done() {
                break;
            }
            for (row, tok) in tokens.iter_mut().enumerate() {
                *tok = if state.unfinished[row] {
                    next[row]
                } else {
                    search.pad_token_id
                };
            }
        }
        Hypotheses::greedy(state, no_speech)
    }

    /// Beam search over the sources of `cross`; `on_token(source, token)` once the search is
    /// over, with the best hypothesis.
    pub fn beam(
        &self,
        search: &SearchConfig,
        cross: &CrossKv,
        on_token: &mut dyn FnMut(usize, u32),
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<Hypotheses> {
        let (b, nb, vocab) = (cross.batch, search.num_beams, self.decoder.vocab_size());
        let n = b * nb;
        let t_cap = search.max_length - 1;
        let k = search.beams_to_keep().min(vocab);
        let gpu = self.gpu;
        let mut dec = self.decoder.state(gpu, n, 1, t_cap)?;
        // Beam search state on the GPU (named; allocated once per call).
        let kv_rows = [
            gpu.empty(&[n, t_cap], DType::U32)?,
            gpu.empty(&[n, t_cap], DType::U32)?,
        ]; // u32 [N, Tcap] ping-pong
        let parents = gpu.empty(&[n], DType::U32)?; // u32 [N]
        let beam_scores = gpu.empty(&[n], DType::F32)?; // f32 [N]
        let top_values = gpu.empty(&[n, k], DType::F32)?; // f32 [N, K]
        let top_ids = gpu.empty(&[n, k], DType::U32)?; // u32 [N, K]
        let mut edits = Edits::new(gpu, search, n, vocab)?;
        let mut rules = RangeRules::new(gpu, n, vocab)?;
        let lang_ids = gpu.empty(&[n], DType::U32)?;
        let mut masking = Masking::new(gpu, search, n)?;
        let mut state = BeamSearch::new(b, search);
        let mut tokens = vec![search.decoder_start_token_id; n];
        let mut parent_rows: Vec<u32> = (0..n as u32).collect();
        let mut no_speech = None;
        for t in 0..t_cap {
            let cur_len = t + 1;
            probe.start();
            gpu.write(&dec.ids, &tokens)?;
            gpu.write(&parents, &parent_rows)?;
            let (old, new) = (&kv_rows[(t + 1) % 2], &kv_rows[t % 2]);
            let mut rec = probe.recorder(gpu);
            reorder_rows_table(&mut rec, &parents, old, new, t)?;
            self.decoder
                .forward(&mut rec, &mut dec, t, cross, nb, Some(new), None)?;
            if t == 0 {
                // Every beam of a source holds the same first row.
                no_speech = NoSpeech::record(search, &mut rec, &dec.logits, (b, nb, vocab))?;
            }
            let candidates = if let Some(langs) = detects_language(search, cur_len) {
                // One language per source (its beams are still identical), then forced.
                rules.record_language(langs, &mut rec, &dec.logits, &lang_ids)?;
                let rb = rec.read_back(&lang_ids)?;
                probe.submit(rec)?;
                let ids = rb.wait_u32()?;
                (0..b)
                    .map(|src| state.forced_candidates(&[ids[src * nb]]).swap_remove(src))
                    .collect()
            } else if let Some(forced) = forced_tokens(search, cur_len) {
                probe.submit(rec)?;
                state.forced_candidates(&forced)
            } else {
                gpu.write(&beam_scores, &state.row_scores())?;
                log_softmax(&mut rec, &dec.logits, &dec.logits)?;
                let histories = state.histories();
                edits.record(&mut rec, &dec.logits, &histories)?;
                rules.record_timestamps(search, &mut rec, &dec.logits, &histories)?;
                if let Some(m) = masking.as_mut() {
                    m.record(&mut rec, &dec.logits, |_| true)?;
                }
                topk(
                    &mut rec,
                    &dec.logits,
                    Some(&beam_scores),
                    k,
                    &top_values,
                    &top_ids,
                )?;
                let rv = rec.read_back(&top_values)?;
                let ri = rec.read_back(&top_ids)?;
                probe.submit(rec)?;
                let (values, ids) = (rv.wait_f32()?, ri.wait_u32()?);
                (0..b)
                    .map(|src| {
                        (0..nb * k)
                            .map(|j| {
                                let (beam, r) = (j / k, (src * nb + j / k) * k + j % k);
                                Candidate {
                                    score: values[r],
                                    beam,
                                    token: ids[r],
                                }
                            })
                            .collect()
                    })
                    .collect()
            };
            probe.end_step();
            stats.decoder_steps += 1;
            let step = state.step(search, vocab, candidates);
            if state.done(search) {
                break;
            }
            if let Some(m) = masking.as_mut() {
                m.advance(step.parents.iter().map(|&p| p as usize), &step.tokens);
            }
            parent_rows = step.parents;
            tokens = step.tokens;
        }
        let results = state.results(search);
        for (src, hyps) in results.iter().enumerate() {
            if let Some((best, _)) = hyps.first() {
                for &tok in &best[1..] {
                    on_token(src, tok);
                }
            }
        }
        let scores = results
            .iter()
            .map(|h| h.iter().map(|(_, s)| *s).collect())
            .collect();
        let seqs = results
            .into_iter()
            .map(|h| h.into_iter().map(|(s, _)| s).collect())
            .collect();
        Ok(Hypotheses {
            sequences: seqs,
            scores: Some(scores),
            no_speech: no_speech.map(NoSpeech::probs).transpose()?,
        })
    }

    /// Teacher-forced log-probabilities of `targets` (padded to `t`): the decoder reads
    /// `[start] + target[..-1]` in one causal pass.
    pub fn score(
        &self,
        cross: &CrossKv,
        targets: &[Vec<u32>],
        t: usize,
        (start, pad): (u32, u32),
        stats: &mut Stats,
    ) -> Result<Vec<Vec<f32>>> {
        let b = targets.len();
        let mut dec = self.decoder.state(self.gpu, b, t, t)?;
        let mut inputs = Vec::with_capacity(b * t);
        let mut gold = Vec::with_capacity(b * t);
        for tgt in targets {
            inputs.push(start);
            inputs.extend_from_slice(&tgt[..tgt.len() - 1]);
            inputs.extend(std::iter::repeat_n(pad, t - tgt.len()));
            gold.extend_from_slice(tgt);
            gold.extend(std::iter::repeat_n(0, t - tgt.len()));
        }
        self.gpu.write(&dec.ids, &inputs)?;
        let gold_t = self.gpu.upload(&gold, &[b * t])?;
        let out = self.gpu.empty(&[b * t], DType::F32)?;
        let mut rec = Recorder::new(self.gpu);
        self.decoder
            .forward(&mut rec, &mut dec, 0, cross, 1, None, None)?;
        log_softmax_gather(&mut rec, &dec.logits, &gold_t, &out)?;
        let rb = rec.read_back(&out)?;
        rec.submit();
        let v = rb.wait_f32()?;
        stats.decoder_steps += 1;
        Ok(targets
            .iter()
            .enumerate()
            .map(|(i, tgt)| v[i * t..i * t + tgt.len()].to_vec())
            .collect())
    }

    /// Per cross block, layer by layer, its probabilities `[heads, T, S]` of one
    /// teacher-forced pass over `decoder_input_ids` (one block per layer and source of
    /// `cross`).
    pub fn cross_attentions(
        &self,
        cross: &CrossKv,
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        let mut rec = Recorder::new(self.gpu);
        let probs = self.record_cross_attentions(&mut rec, cross, decoder_input_ids)?;
        let rbs = probs
            .iter()
            .map(|p| rec.read_back(p))
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        rec.submit();
        let out = rbs
            .into_iter()
            .zip(&probs)
            .map(|(rb, p)| {
                rb.wait_f32().map(|mut v| {
                    v.truncate(p.numel());
                    v
                })
            })
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        Ok(out)
    }

    /// [`Runner::cross_attentions`] left on the GPU: per cross block, the f32 tensor
    /// `[1, heads, T, S]` the pass writes, recorded into `rec` (valid once it is submitted).
    pub fn record_cross_attentions(
        &self,
        rec: &mut Recorder,
        cross: &CrossKv,
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Tensor>> {
        let t = decoder_input_ids.len();
        let h = self.decoder.cross_heads();
        let mut dec = self.decoder.state(self.gpu, 1, t, t)?;
        self.gpu.write(&dec.ids, decoder_input_ids)?;
        // Every layer has one block per source, in source order.
        let blocks = cross.sources.len();
        let probs = (0..self.decoder.num_layers() * blocks)
            .map(|i| {
                self.gpu
                    .empty(&[1, h, t, cross.sources[i % blocks].len], DType::F32)
            })
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        let slots: Vec<_> = probs.iter().cloned().map(Some).collect();
        self.decoder
            .forward(rec, &mut dec, 0, cross, 1, None, Some(&slots))?;
        Ok(probs)
    }
}
