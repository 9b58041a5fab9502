//! [`Model`]: load a directory, then generate (greedy or beam search) and score on the GPU.
//!
//! Data flow of one `generate` call:
//! 1. one recorder: embed + encoder layers + every decoder layer's cross K/V (one matmul),
//!    kept resident in `EncoderBuffers::cross_kv`;
//! 2. per step, one recorder and one submit: upload the new token of every row (plus beam
//!    parents, beam scores and the processors' logit edits), reorder the self-attention
//!    indirection table (beams), run the decoder on one token per row, the lm_head, then
//!    argmax (greedy) or log-softmax + top-k (beams) on the GPU, and read back 4 bytes per
//!    row (greedy) or the top-k candidates (beams);
//! 3. the host updates hypotheses exactly as transformers' `generate` does (`search.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use seqbridge_gpu::ops::cache::reorder_rows_table;
use seqbridge_gpu::ops::sampling::{argmax, edit_logits, log_softmax, log_softmax_gather, topk};
use seqbridge_gpu::{DType, Gpu, Recorder, Tensor};

use crate::bart::{BartForConditionalGeneration, CrossInputs, DecoderBuffers, EncoderBuffers};
use crate::config::{GenerationConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::layers::Loader;
use crate::options::{GenerateOptions, SearchConfig};
use crate::profile::{Probe, Profile};
use crate::search::{BeamSearch, Candidate, Greedy, edit_triples, forced_tokens};
use crate::tokenizer::Tokenizer;
use crate::weights::{Checkpoint, Vars, WeightDtype};

/// Options of [`Model::load_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// How matrices are stored on the GPU (norms, biases and positions are always f32).
    pub weight_dtype: WeightDtype,
    /// Split weights into row chunks of at most this many bytes (`None`: the adapter's
    /// largest binding). Chunks are what lets a 128112-row vocabulary run on 128 MiB bindings.
    pub max_chunk_bytes: Option<u64>,
}

/// Work done by one call (model load excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Encoder passes (one per batch of sources).
    pub encoder_runs: u64,
    /// Cross-attention K/V projections, counted per decoder layer.
    pub cross_kv_computes: u64,
    /// Decoder passes (generation steps, or 1 per teacher-forced scoring batch).
    pub decoder_steps: u64,
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

/// The result of [`Model::generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Per source, `num_return_sequences` hypotheses, best first, exactly as transformers'
    /// `generate` returns them without the padding: decoder start token first, through
    /// the first EOS (or up to max_length).
    pub sequences: Vec<Vec<Vec<u32>>>,
    /// Per source and hypothesis, the length-penalised beam score (`sequences_scores`);
    /// `None` for greedy search.
    pub scores: Option<Vec<Vec<f32>>>,
    pub stats: Stats,
}

/// The result of [`Model::score`].
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Per source, log P(target_t | source, target_<t) for every target token.
    pub logprobs: Vec<Vec<f32>>,
    pub stats: Stats,
}

/// A loaded encoder-decoder model.
pub struct Model {
    gpu: Gpu,
    dir: PathBuf,
    net: BartForConditionalGeneration,
    generation_config: GenerationConfig,
    tokenizer: Option<Tokenizer>,
    weight_bytes: AtomicU64,
}

/// Snapshot taken at the start of a call, turned into [`Stats`] at the end.
struct CallStats {
    gpu: seqbridge_gpu::Stats,
    weight_bytes: u64,
    own: Stats,
}

impl Model {
    /// Loads `dir` (config.json, generation_config.json, model.safetensors or the sharded
    /// index, tokenizer.json when present) and uploads every weight to `gpu`.
    pub fn load(dir: impl AsRef<Path>, gpu: &Gpu) -> Result<Model> {
        Model::load_with(dir, gpu, &LoadOptions::default())
    }

    pub fn load_with(dir: impl AsRef<Path>, gpu: &Gpu, opts: &LoadOptions) -> Result<Model> {
        let dir = dir.as_ref();
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let generation_config = GenerationConfig::for_model(dir, &config)?;
        let ckpt = Checkpoint::open(dir)?;
        let tokenizer = Tokenizer::from_dir(dir)?;
        Model::build(dir, config, generation_config, &ckpt, tokenizer, gpu, opts)
    }

    /// Uploads the network described by `config` from `ckpt`.
    fn build(
        dir: &Path,
        config: ModelConfig,
        generation_config: GenerationConfig,
        ckpt: &Checkpoint,
        tokenizer: Option<Tokenizer>,
        gpu: &Gpu,
        opts: &LoadOptions,
    ) -> Result<Model> {
        let weight_bytes = AtomicU64::new(0);
        let ld = Loader {
            gpu,
            weight_bytes: &weight_bytes,
            max_chunk_bytes: opts.max_chunk_bytes.unwrap_or(u64::MAX),
        };
        let net =
            BartForConditionalGeneration::load(&ld, &Vars::root(ckpt, opts.weight_dtype), &config)?;
        gpu.check_errors()?;
        Ok(Model {
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            net,
            generation_config,
            tokenizer,
            weight_bytes,
        })
    }

    /// A model of the shape that `config_json` (a Hugging Face config.json) describes, with
    /// random weights drawn on the fly: benchmarks on real shapes with nothing to download.
    /// `name` stands for the directory in messages.
    pub fn random(
        name: &str,
        config_json: &str,
        gpu: &Gpu,
        opts: &LoadOptions,
        seed: u64,
    ) -> Result<Model> {
        let path = Path::new(name);
        let v: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                msg: format!("invalid JSON: {e}"),
            })?;
        let config = ModelConfig::from_json(path, &v)?;
        let generation_config =
            GenerationConfig::from_json(path, &v)?.completed_from(&config, false);
        let std = v.get("init_std").and_then(|x| x.as_f64()).unwrap_or(0.02) as f32;
        let ckpt = Checkpoint::random(seed, std);
        Model::build(path, config, generation_config, &ckpt, None, gpu, opts)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.net.config
    }

    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation_config
    }

    /// The directory's tokenizer.json, if it has one.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// Weight bytes uploaded at load.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes.load(Ordering::Relaxed)
    }

    /// The tokenizer, or an error naming the directory.
    pub fn require_tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: no tokenizer.json in the model directory",
                self.dir.display()
            ))
        })
    }

    fn begin(&self) -> CallStats {
        CallStats {
            gpu: self.gpu.stats(),
            weight_bytes: self.weight_bytes(),
            own: Stats::default(),
        }
    }

    fn finish(&self, c: CallStats) -> Stats {
        let d = self.gpu.stats() - c.gpu;
        Stats {
            dispatches: d.dispatches,
            submits: d.submits,
            bytes_uploaded: d.bytes_uploaded,
            bytes_read_back: d.bytes_read_back,
            buffers_created: d.buffers_created,
            weight_bytes_uploaded: self.weight_bytes() - c.weight_bytes,
            ..c.own
        }
    }

    /// Checks sources: non-empty, ids inside the vocabulary, not longer than the positions.
    fn check_sources(&self, sources: &[Vec<u32>]) -> Result<()> {
        if sources.is_empty() {
            return Err(Error::Input("no source sequences given".into()));
        }
        check_sequences("source", sources, self.config().vocab_size, self.config())
    }

    /// Runs the encoder and the cross K/V projection of every decoder layer (one submit).
    fn encode(
        &self,
        sources: &[Vec<u32>],
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<EncoderBuffers> {
        probe.start();
        let cfg = self.config();
        let s = sources.iter().map(Vec::len).max().unwrap_or(1);
        let mut enc = EncoderBuffers::new(&self.gpu, cfg, sources.len(), s)?;
        let mut ids = Vec::with_capacity(sources.len() * s);
        for src in sources {
            ids.extend_from_slice(src);
            ids.extend(std::iter::repeat_n(cfg.pad_token_id, s - src.len()));
        }
        let lengths: Vec<u32> = sources.iter().map(|x| x.len() as u32).collect();
        self.gpu.write(&enc.ids, &ids)?;
        self.gpu.write(&enc.lengths, &lengths)?;
        let mut rec = probe.recorder(&self.gpu);
        self.net.encode(&mut rec, &mut enc)?;
        probe.submit(rec)?;
        probe.end_encoder(&self.gpu)?;
        stats.encoder_runs += 1;
        stats.cross_kv_computes += cfg.decoder_layers as u64;
        Ok(enc)
    }

    /// Generates from token ids. See [`Model::generate_with`].
    pub fn generate(&self, sources: &[Vec<u32>], opts: &GenerateOptions) -> Result<Generation> {
        self.generate_with(sources, opts, &mut |_, _| {})
    }

    /// Generates for every source, honouring generation_config.json under `opts`, and calls
    /// `on_token(source, token)` for each new token: during greedy search as each step
    /// finishes, for beam search once the search is over (with the best hypothesis).
    pub fn generate_with(
        &self,
        sources: &[Vec<u32>],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Generation> {
        self.generate_inner(sources, opts, on_token, &mut Probe::off())
    }

    /// [`Model::generate`] with timings of the encoder and of every step (host and wall
    /// time, dispatches, submits) and, with `timestamps`, GPU time per kernel family. The
    /// profiled call waits for the GPU after the encoder, so it runs a little slower.
    pub fn generate_profiled(
        &self,
        sources: &[Vec<u32>],
        opts: &GenerateOptions,
        timestamps: bool,
    ) -> Result<(Generation, Profile)> {
        let mut profile = Profile::default();
        let g = self.generate_inner(
            sources,
            opts,
            &mut |_, _| {},
            &mut Probe::on(&mut profile, timestamps),
        )?;
        Ok((g, profile))
    }

    fn generate_inner(
        &self,
        sources: &[Vec<u32>],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
        probe: &mut Probe,
    ) -> Result<Generation> {
        let search = SearchConfig::resolve(self.config(), &self.generation_config, opts)?;
        self.check_sources(sources)?;
        let mut call = self.begin();
        let enc = self.encode(sources, &mut call.own, probe)?;
        let result = if search.num_beams == 1 {
            self.greedy(&search, &enc, on_token, &mut call.own, probe)?
        } else {
            self.beam(&search, &enc, on_token, &mut call.own, probe)?
        };
        self.gpu.check_errors()?;
        let (sequences, scores) = result;
        Ok(Generation {
            sequences,
            scores,
            stats: self.finish(call),
        })
    }

    /// Tokenizes `texts`, generates, and decodes the best hypothesis of each (special tokens
    /// skipped). Returns the generation and the texts.
    pub fn generate_text(
        &self,
        texts: &[&str],
        opts: &GenerateOptions,
    ) -> Result<(Generation, Vec<String>)> {
        let tok = self.require_tokenizer()?;
        let sources = texts
            .iter()
            .map(|t| tok.encode(t))
            .collect::<Result<Vec<_>>>()?;
        let g = self.generate(&sources, opts)?;
        let out = g
            .sequences
            .iter()
            .map(|hyps| tok.decode(hyps.first().map_or(&[][..], Vec::as_slice)))
            .collect::<Result<Vec<_>>>()?;
        Ok((g, out))
    }

    fn edits_tensor(&self, search: &SearchConfig, rows: usize) -> Result<Tensor> {
        let per_row =
            2 * search.max_length + search.bad_words_ids.len() + search.eos_token_id.len() + 1;
        let cap = rows * per_row.min(self.config().decoder_vocab_size);
        Ok(self.gpu.empty(&[cap.max(1), 3], DType::U32)?)
    }

    /// Uploads edit triples into the front of `edits`; returns their count.
    fn upload_edits(&self, edits: &Tensor, triples: &[u32]) -> Result<usize> {
        let n = triples.len() / 3;
        if n > 0 {
            self.gpu.write(&edits.view(0, &[n, 3])?, triples)?;
        }
        Ok(n)
    }

    #[allow(clippy::type_complexity)]
    fn greedy(
        &self,
        search: &SearchConfig,
        enc: &EncoderBuffers,
        on_token: &mut dyn FnMut(usize, u32),
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<(Vec<Vec<Vec<u32>>>, Option<Vec<Vec<f32>>>)> {
        let cfg = self.config();
        let (b, vocab) = (enc.batch, cfg.decoder_vocab_size);
        let t_cap = search.max_length - 1;
        let mut dec = DecoderBuffers::new(&self.gpu, cfg, b, 1, t_cap)?;
        let next_ids = self.gpu.empty(&[b], DType::U32)?;
        let edits = self.edits_tensor(search, b)?;
        let cross = CrossInputs {
            cross_kv: &enc.cross_kv,
            lengths: &enc.lengths,
            src_len: enc.src_len,
            kv_group: 1,
        };
        let penalty = search.repetition_penalty as f32;
        let mut state = Greedy::new(b, search.decoder_start_token_id);
        let mut tokens = vec![search.decoder_start_token_id; b];
        let mut triples = Vec::new();
        for t in 0..t_cap {
            let cur_len = t + 1;
            probe.start();
            self.gpu.write(&dec.ids, &tokens)?;
            let mut rec = probe.recorder(&self.gpu);
            self.net.decode(&mut rec, &mut dec, t, &cross, None, None)?;
            let next = if let Some(forced) = forced_tokens(search, cur_len) {
                probe.submit(rec)?;
                vec![forced[0]; b]
            } else {
                let hist: Vec<&[u32]> = state
                    .sequences
                    .iter()
                    .zip(&state.unfinished)
                    .map(|(s, &u)| if u { s.as_slice() } else { &[][..] })
                    .collect();
                edit_triples(search, &hist, vocab, &mut triples);
                let n = self.upload_edits(&edits, &triples)?;
                if n > 0 {
                    edit_logits(&mut rec, &dec.logits, &edits, n, penalty)?;
                }
                argmax(&mut rec, &dec.logits, &next_ids)?;
                let rb = rec.read_back(&next_ids)?;
                probe.submit(rec)?;
                rb.wait_u32()?
            };
            probe.end_step();
            stats.decoder_steps += 1;
            for (row, tok) in state.advance(search, &next[..b]) {
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
        Ok((state.sequences.into_iter().map(|s| vec![s]).collect(), None))
    }

    #[allow(clippy::type_complexity)]
    fn beam(
        &self,
        search: &SearchConfig,
        enc: &EncoderBuffers,
        on_token: &mut dyn FnMut(usize, u32),
        stats: &mut Stats,
        probe: &mut Probe,
    ) -> Result<(Vec<Vec<Vec<u32>>>, Option<Vec<Vec<f32>>>)> {
        let cfg = self.config();
        let (b, nb, vocab) = (enc.batch, search.num_beams, cfg.decoder_vocab_size);
        let n = b * nb;
        let t_cap = search.max_length - 1;
        let k = search.beams_to_keep().min(vocab);
        let mut dec = DecoderBuffers::new(&self.gpu, cfg, n, 1, t_cap)?;
        let gpu = &self.gpu;
        // Beam search state on the GPU (named; allocated once per call).
        let kv_rows = [
            gpu.empty(&[n, t_cap], DType::U32)?,
            gpu.empty(&[n, t_cap], DType::U32)?,
        ]; // u32 [N, Tcap] ping-pong
        let parents = gpu.empty(&[n], DType::U32)?; // u32 [N]
        let beam_scores = gpu.empty(&[n], DType::F32)?; // f32 [N]
        let top_values = gpu.empty(&[n, k], DType::F32)?; // f32 [N, K]
        let top_ids = gpu.empty(&[n, k], DType::U32)?; // u32 [N, K]
        let edits = self.edits_tensor(search, n)?;
        let cross = CrossInputs {
            cross_kv: &enc.cross_kv,
            lengths: &enc.lengths,
            src_len: enc.src_len,
            kv_group: nb,
        };
        let penalty = search.repetition_penalty as f32;
        let mut state = BeamSearch::new(b, search);
        let mut tokens = vec![search.decoder_start_token_id; n];
        let mut parent_rows: Vec<u32> = (0..n as u32).collect();
        let mut triples = Vec::new();
        for t in 0..t_cap {
            let cur_len = t + 1;
            probe.start();
            gpu.write(&dec.ids, &tokens)?;
            gpu.write(&parents, &parent_rows)?;
            let (old, new) = (&kv_rows[(t + 1) % 2], &kv_rows[t % 2]);
            let mut rec = probe.recorder(gpu);
            reorder_rows_table(&mut rec, &parents, old, new, t)?;
            self.net
                .decode(&mut rec, &mut dec, t, &cross, Some(new), None)?;
            let candidates = if let Some(forced) = forced_tokens(search, cur_len) {
                probe.submit(rec)?;
                state.forced_candidates(&forced)
            } else {
                gpu.write(&beam_scores, &state.row_scores())?;
                log_softmax(&mut rec, &dec.logits, &dec.logits)?;
                edit_triples(search, &state.histories(), vocab, &mut triples);
                let ne = self.upload_edits(&edits, &triples)?;
                if ne > 0 {
                    edit_logits(&mut rec, &dec.logits, &edits, ne, penalty)?;
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
        Ok((seqs, Some(scores)))
    }

    fn check_targets(&self, sources: &[Vec<u32>], targets: &[Vec<u32>]) -> Result<()> {
        let cfg = self.config();
        if sources.len() != targets.len() {
            return Err(Error::Input(format!(
                "{} sources but {} targets",
                sources.len(),
                targets.len()
            )));
        }
        check_sequences("target", targets, cfg.decoder_vocab_size, cfg)
    }

    /// The decoder start token of this model (generation config, else bos).
    fn decoder_start(&self) -> Result<u32> {
        let g = &self.generation_config;
        g.decoder_start_token_id.or(g.bos_token_id).ok_or_else(|| {
            Error::Options("decoder_start_token_id or bos_token_id has to be defined".into())
        })
    }

    /// Teacher-forced log-probabilities of `targets` given `sources` (CTranslate2's
    /// `score_batch`): the decoder reads `[decoder_start] + target[..-1]` in one causal pass.
    pub fn score(&self, sources: &[Vec<u32>], targets: &[Vec<u32>]) -> Result<Scores> {
        self.check_sources(sources)?;
        self.check_targets(sources, targets)?;
        let cfg = self.config();
        let start = self.decoder_start()?;
        let vocab = cfg.decoder_vocab_size;
        let mut call = self.begin();
        // Batches whose logits `[rows·T, V]` fit one binding.
        let max_rows = (self.gpu.max_binding() as usize / (vocab * 4)).max(1);
        let mut logprobs = Vec::with_capacity(sources.len());
        let mut i = 0;
        while i < sources.len() {
            let mut j = i + 1;
            let mut t = targets[i].len();
            while j < sources.len() && (j + 1 - i) * t.max(targets[j].len()) <= max_rows {
                t = t.max(targets[j].len());
                j += 1;
            }
            if t > max_rows {
                return Err(Error::Input(format!(
                    "target {i} has {t} tokens: its logits ({t} × {vocab}) do not fit one GPU binding of {} bytes",
                    self.gpu.max_binding()
                )));
            }
            logprobs.extend(self.score_batch(
                &sources[i..j],
                &targets[i..j],
                t,
                start,
                &mut call.own,
            )?);
            i = j;
        }
        self.gpu.check_errors()?;
        Ok(Scores {
            logprobs,
            stats: self.finish(call),
        })
    }

    fn score_batch(
        &self,
        sources: &[Vec<u32>],
        targets: &[Vec<u32>],
        t: usize,
        start: u32,
        stats: &mut Stats,
    ) -> Result<Vec<Vec<f32>>> {
        let cfg = self.config();
        let b = sources.len();
        let enc = self.encode(sources, stats, &mut Probe::off())?;
        let mut dec = DecoderBuffers::new(&self.gpu, cfg, b, t, t)?;
        let mut inputs = Vec::with_capacity(b * t);
        let mut gold = Vec::with_capacity(b * t);
        for tgt in targets {
            inputs.push(start);
            inputs.extend_from_slice(&tgt[..tgt.len() - 1]);
            inputs.extend(std::iter::repeat_n(cfg.pad_token_id, t - tgt.len()));
            gold.extend_from_slice(tgt);
            gold.extend(std::iter::repeat_n(0, t - tgt.len()));
        }
        self.gpu.write(&dec.ids, &inputs)?;
        let gold_t = self.gpu.upload(&gold, &[b * t])?;
        let out = self.gpu.empty(&[b * t], DType::F32)?;
        let cross = CrossInputs {
            cross_kv: &enc.cross_kv,
            lengths: &enc.lengths,
            src_len: enc.src_len,
            kv_group: 1,
        };
        let mut rec = Recorder::new(&self.gpu);
        self.net.decode(&mut rec, &mut dec, 0, &cross, None, None)?;
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

    /// Cross-attention probabilities of a teacher-forced pass over `decoder_input_ids` (as
    /// given, decoder start included): per decoder layer, `[heads, T, S]` row-major.
    pub fn cross_attentions(
        &self,
        source: &[u32],
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        let sources = [source.to_vec()];
        self.check_sources(&sources)?;
        self.check_targets(&sources, &[decoder_input_ids.to_vec()])?;
        let cfg = self.config();
        let (t, s, h) = (
            decoder_input_ids.len(),
            source.len(),
            cfg.decoder_attention_heads,
        );
        let mut own = Stats::default();
        let enc = self.encode(&sources, &mut own, &mut Probe::off())?;
        let mut dec = DecoderBuffers::new(&self.gpu, cfg, 1, t, t)?;
        self.gpu.write(&dec.ids, decoder_input_ids)?;
        let probs = (0..cfg.decoder_layers)
            .map(|_| self.gpu.empty(&[1, h, t, s], DType::F32))
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        let cross = CrossInputs {
            cross_kv: &enc.cross_kv,
            lengths: &enc.lengths,
            src_len: s,
            kv_group: 1,
        };
        let mut rec = Recorder::new(&self.gpu);
        self.net
            .decode(&mut rec, &mut dec, 0, &cross, None, Some(&probs))?;
        let rbs = probs
            .iter()
            .map(|p| rec.read_back(p))
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        rec.submit();
        let out = rbs
            .into_iter()
            .map(|rb| {
                rb.wait_f32().map(|mut v| {
                    v.truncate(h * t * s);
                    v
                })
            })
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        self.gpu.check_errors()?;
        Ok(out)
    }
}

/// Every sequence non-empty, its ids inside a vocabulary of `vocab` and its length within the
/// position table; errors name the sequence (`what` and index), the token and its position.
fn check_sequences(what: &str, seqs: &[Vec<u32>], vocab: usize, cfg: &ModelConfig) -> Result<()> {
    for (i, s) in seqs.iter().enumerate() {
        if s.is_empty() {
            return Err(Error::Input(format!("{what} {i} is empty")));
        }
        if let Some((p, t)) = s.iter().enumerate().find(|(_, t)| **t as usize >= vocab) {
            return Err(Error::Input(format!(
                "{what} {i}: token id {t} at position {p} is outside the vocabulary (vocab_size {vocab})"
            )));
        }
        if s.len() > cfg.max_position_embeddings {
            return Err(Error::Input(format!(
                "{what} {i} has {} tokens, more than max_position_embeddings {}",
                s.len(),
                cfg.max_position_embeddings
            )));
        }
    }
    Ok(())
}
