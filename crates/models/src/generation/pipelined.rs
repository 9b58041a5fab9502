//! Greedy search whose step loop never waits on the host: the next step's input ids are
//! written on the GPU (`next_ids`, after the argmax), so the host records and submits step
//! t + 1 before it reads step t's ids, through a ring of two staging buffers.
//!
//! Stopping is found as the ids arrive, one step late: when step t's ids finish the last
//! row, step t + 1 is already submitted. That overshoot step runs on the GPU and its ids are
//! never read: its submit and dispatches are in the call's [`Stats`] (one submit and one
//! step's dispatches more than `decoder_steps`, which counts the steps whose tokens were
//! kept), its bytes are not in `bytes_read_back`. A call that stops at the maximum length
//! has no overshoot (the host knows that bound). Sequences, `on_token` order and the
//! hypotheses are those of the host-driven loop ([`Runner::greedy`]).
//!
//! It runs only when nothing a step records depends on the tokens before it
//! ([`pipelinable`]); forced tokens are known on the host, so their steps need no readback.

use std::collections::VecDeque;

use seqbridge_gpu::ops::next_ids::{NextStep, next_ids};
use seqbridge_gpu::ops::sampling::argmax;
use seqbridge_gpu::wgpu::SubmissionIndex;
use seqbridge_gpu::{DType, Readback, Staging};

use crate::decoder::CrossKv;
use crate::error::Result;
use crate::generation::greedy::Greedy;
use crate::generation::options::SearchConfig;
use crate::generation::processors::forced_tokens;
use crate::generation::profile::{Probe, StepNote};
use crate::generation::runner::{Edits, Hypotheses, NoSpeech, Runner, Stats};

/// Steps in flight: step t + 1 is recorded before step t's ids are read, so two readbacks
/// are pending at most, each in its own staging buffer.
const RING: usize = 2;

/// Whether greedy search under `search` can run pipelined: no constraint, no timestamp
/// rules, no language detection, and only logits processors that depend on the step index
/// alone (min length, suppression, single-token bad words), not on the tokens chosen. The
/// caller also keeps the host-driven loop when an attention tap reads every step.
pub(crate) fn pipelinable(search: &SearchConfig) -> bool {
    search.constraint.is_none()
        && search.timestamps.is_none()
        && search.detect_language.is_none()
        && search.repetition_penalty == 1.0
        && search.no_repeat_ngram_size == 0
        && search.bad_words_ids.iter().all(|w| w.len() <= 1)
}

/// How a submitted step's tokens reach the host.
enum Tokens {
    /// The argmax, read back through a ring slot, valid once the submission ran.
    Read(Readback, Option<SubmissionIndex>),
    /// A token forced on every row: known without reading anything.
    Forced(u32),
}

impl Runner<'_> {
    /// [`Runner::greedy`] without a host round trip between steps (see the module docs);
    /// only for a `search` that is [`pipelinable`].
    pub fn greedy_pipelined(
        &self,
        search: &SearchConfig,
        cross: &CrossKv,
        on_token: &mut dyn FnMut(usize, u32),
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<Hypotheses> {
        let (b, vocab, gpu) = (cross.batch, self.decoder.vocab_size(), self.gpu);
        let t_cap = search.max_length - 1;
        let mut dec = self.decoder.state(gpu, b, 1, t_cap)?;
        // Named GPU state of the loop, allocated once per call.
        let chosen = gpu.empty(&[b], DType::U32)?; // u32 [B]: the argmax of a step
        let finished = gpu.empty(&[b], DType::U32)?; // u32 [B]: 1 once a row is over
        let eos = match search.eos_token_id.as_slice() {
            [] => None,
            ids => Some(gpu.upload(ids, &[ids.len()])?), // u32 [n_eos]
        };
        let ring: Vec<Staging> = (0..RING)
            .map(|_| Staging::new(gpu, chosen.byte_len()))
            .collect();
        let mut edits = Edits::new(gpu, search, b, vocab)?;
        // The processors read only a history's length here (see `pipelinable`).
        let lengths = vec![search.decoder_start_token_id; search.max_length];
        let mut state = Greedy::new(b, search.decoder_start_token_id);
        let mut no_speech = None;
        let mut pending: VecDeque<(Tokens, StepNote)> = VecDeque::with_capacity(RING);
        gpu.write(&dec.ids, &vec![search.decoder_start_token_id; b])?;
        let mut t = 0;
        loop {
            if t < t_cap {
                let cur_len = t + 1;
                probe.start();
                let mut rec = probe.recorder(gpu);
                if t == 0 {
                    rec.zero(&finished);
                }
                self.decoder
                    .forward(&mut rec, &mut dec, t, cross, 1, None, None)?;
                if t == 0 {
                    no_speech = NoSpeech::record(search, &mut rec, &dec.logits, (b, 1, vocab))?;
                }
                let forced = forced_tokens(search, cur_len).map(|f| f[0]);
                let mut tokens = match forced {
                    Some(tok) => Tokens::Forced(tok),
                    None => {
                        edits.record(&mut rec, &dec.logits, &vec![&lengths[..cur_len]; b])?;
                        argmax(&mut rec, &dec.logits, &chosen)?;
                        Tokens::Read(rec.read_back_into(&chosen, &ring[t % RING])?, None)
                    }
                };
                let step = NextStep {
                    pad: search.pad_token_id,
                    forced,
                    last: cur_len + 1 >= search.max_length,
                };
                next_ids(&mut rec, &chosen, eos.as_ref(), &finished, &dec.ids, step)?;
                let index = probe.submit(rec)?;
                if let Tokens::Read(_, at) = &mut tokens {
                    *at = index;
                }
                pending.push_back((tokens, probe.note()));
                t += 1;
                // Read step t - 1 only once step t is on its way.
                if pending.len() < RING && t < t_cap {
                    continue;
                }
            }
            let Some((tokens, note)) = pending.pop_front() else {
                break;
            };
            let next = match tokens {
                Tokens::Read(rb, Some(index)) => rb.wait_for_u32(index)?,
                Tokens::Read(rb, None) => rb.wait_u32()?,
                Tokens::Forced(tok) => vec![tok; b],
            };
            probe.end_pipelined_step(note);
            stats.decoder_steps += 1;
            for (row, tok) in state.advance(search, &next[..b]) {
                on_token(row, tok);
            }
            if state.done() {
                // Anything still pending is the overshoot: never read.
                break;
            }
        }
        Hypotheses::greedy(state, no_speech)
    }
}
