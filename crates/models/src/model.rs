//! [`Model`]: load a directory of any registered architecture, then generate (greedy or
//! beam search), score and align on the GPU. The work itself is done by the encoder and
//! decoder the architecture built and by the generation loop ([`crate::generation`]).

mod alignment;
mod constraint;
mod sources;
mod streaming;
mod transcribe;

pub use crate::io::image::{ImageProcessor, Pixels};
pub use constraint::CONSTRAINT_FILE;
pub use transcribe::{TranscribeOptions, Transcript, TranscriptSegment, TranscriptWindow};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use seqbridge_gpu::{Gpu, Recorder, Tensor};

use crate::arch::{self, Built};
use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::encoder::{Encoder, EncoderInput, check_sequences};
use crate::error::{Error, Result};
use crate::generation::profile::{Probe, Profile};
use crate::generation::{GenerateOptions, GenerationConfig, Runner, SearchConfig, Stats};
use crate::io::json::parse_json;
use crate::io::{Checkpoint, Tokenizer, Vars, WeightDtype};
use crate::nn::{Loader, Quantization};

/// Options of [`Model::load_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// How matrices are stored on the GPU (norms, biases and positions are always f32).
    pub weight_dtype: WeightDtype,
    /// Linear weights as int8 with per-row scales (the other matrices in `weight_dtype`).
    pub quantization: Quantization,
    /// Split weights into row chunks of at most this many bytes (`None`: the adapter's
    /// largest binding). Chunks are what lets a 128112-row vocabulary run on 128 MiB bindings.
    pub max_chunk_bytes: Option<u64>,
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
    /// Whisper: per source, the probability of `<|nospeech|>` right after the start token
    /// (transformers' `no_speech_prob`, from the raw logits); `None` for other models.
    pub no_speech_probs: Option<Vec<f32>>,
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
    config: ModelConfig,
    encoder: Box<dyn Encoder>,
    decoder: Box<dyn Decoder>,
    generation_config: GenerationConfig,
    tokenizer: Option<Tokenizer>,
    /// preprocessor_config.json of an image model.
    image_processor: Option<ImageProcessor>,
    weight_bytes: AtomicU64,
    /// The directory's `constraint.regex` and the constraints compiled for this model.
    constraints: constraint::Constraints,
}

/// Counters opened at the start of a call, turned into [`Stats`] at the end. The GPU's
/// counters are the calling thread's own ([`Gpu::stats_scope`]): other threads generating
/// on the same `Gpu` meanwhile are not counted.
struct CallStats {
    gpu: seqbridge_gpu::StatsScope,
    weight_bytes: u64,
    own: Stats,
}

impl Model {
    /// Loads `dir` (config.json, generation_config.json, model.safetensors or the sharded
    /// index, the tokenizer when present) and uploads every weight to `gpu`.
    pub fn load(dir: impl AsRef<Path>, gpu: &Gpu) -> Result<Model> {
        Model::load_with(dir, gpu, &LoadOptions::default())
    }

    pub fn load_with(dir: impl AsRef<Path>, gpu: &Gpu, opts: &LoadOptions) -> Result<Model> {
        let dir = dir.as_ref();
        crate::io::paths::check_model_files(dir)?;
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let ckpt = Checkpoint::open(dir)?;
        let tokenizer = Tokenizer::from_dir(dir)?;
        // A CTranslate2 Whisper directory: its config.json is CTranslate2's, without
        // model_type; the Hugging Face config and the generation config are derived.
        if let Some(bin) = ckpt.ctranslate2()
            && bin.spec() == arch::whisper::CT2_SPEC
            && arch::model_type(&path, &text).is_err()
        {
            let (text, generation) = arch::whisper::ct2_configs(dir, bin)?;
            let mut model = Model::build(dir, &path, &text, &ckpt, tokenizer, gpu, opts)?;
            model.generation_config = generation.completed_from(&model.config, true);
            return Ok(model);
        }
        let mut model = Model::build(dir, &path, &text, &ckpt, tokenizer, gpu, opts)?;
        model.generation_config = GenerationConfig::for_model(dir, &model.config)?;
        Ok(model)
    }

    /// Builds the architecture `config_text` names from `ckpt` and uploads it.
    fn build(
        dir: &Path,
        config_path: &Path,
        config_text: &str,
        ckpt: &Checkpoint,
        tokenizer: Option<Tokenizer>,
        gpu: &Gpu,
        opts: &LoadOptions,
    ) -> Result<Model> {
        let (_, builder) = arch::model_type(config_path, config_text)?;
        let weight_bytes = AtomicU64::new(0);
        let ld = Loader {
            gpu,
            weight_bytes: &weight_bytes,
            max_chunk_bytes: opts.max_chunk_bytes.unwrap_or(u64::MAX),
            quantization: opts.quantization,
        };
        let Built {
            config,
            encoder,
            decoder,
        } = builder(
            config_path,
            config_text,
            &ld,
            &Vars::root(ckpt, opts.weight_dtype),
        )?;
        gpu.check_errors()?;
        // Only an image model reads preprocessor_config.json as an image processor
        // (Whisper's is a feature extractor's).
        let image_processor = match encoder.patch_grid() {
            Some(_) => ImageProcessor::from_dir(dir)?,
            None => None,
        };
        Ok(Model {
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            config,
            encoder,
            decoder,
            generation_config: GenerationConfig::default(),
            tokenizer,
            image_processor,
            weight_bytes,
            constraints: constraint::Constraints::from_dir(dir)?,
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
        #[derive(serde::Deserialize)]
        struct InitStd {
            init_std: Option<f32>,
        }
        let path = Path::new(name);
        let std = parse_json::<InitStd>(path, config_json)?
            .init_std
            .unwrap_or(0.02);
        let ckpt = Checkpoint::random(seed, std);
        let mut model = Model::build(path, path, config_json, &ckpt, None, gpu, opts)?;
        model.generation_config =
            parse_json::<GenerationConfig>(path, config_json)?.completed_from(&model.config, false);
        Ok(model)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation_config
    }

    /// The directory's tokenizer, if it has one.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// The directory's image processor (preprocessor_config.json), if it has one.
    pub fn image_processor(&self) -> Option<&ImageProcessor> {
        self.image_processor.as_ref()
    }

    /// Decodes PNG / JPEG files and prepares them as the directory's
    /// preprocessor_config.json says: one batch of pixel values, in order.
    pub fn load_images<P: AsRef<Path>>(&self, files: &[P]) -> Result<Pixels> {
        let proc = self.image_processor.as_ref().ok_or_else(|| Error::Io {
            path: self.dir.join(crate::io::image::PREPROCESSOR_FILE),
            msg: "not found: the model has no image processor".into(),
        })?;
        proc.load(files)
    }

    /// Captions image files: decodes and preprocesses them ([`Model::load_images`]),
    /// generates for the batch, and decodes the best hypothesis of each (special tokens
    /// skipped). Returns the generation and the captions.
    pub fn generate_images<P: AsRef<Path>>(
        &self,
        files: &[P],
        opts: &GenerateOptions,
    ) -> Result<(Generation, Vec<String>)> {
        let tok = self.require_tokenizer()?;
        let pixels = self.load_images(files)?;
        let g = self.generate_input(&pixels.input(), opts, &mut |_, _| {})?;
        let texts = g
            .sequences
            .iter()
            .map(|hyps| tok.decode(hyps.first().map_or(&[][..], Vec::as_slice)))
            .collect::<Result<Vec<_>>>()?;
        Ok((g, texts))
    }

    /// The encoder's output for `input` as the decoder reads it: f32 `[batch, len, dim]`
    /// row-major (for an image model, after `enc_to_dec_proj`), and `[batch, len, dim]`.
    pub fn encoder_states(&self, input: &EncoderInput) -> Result<(Vec<f32>, [usize; 3])> {
        self.encoder.check(input)?;
        let mut rec = seqbridge_gpu::Recorder::new(&self.gpu);
        let m = self.encoder.encode(&mut rec, input)?;
        let rb = rec.read_back(&m.states)?;
        rec.submit();
        let states = rb.wait_f32()?;
        self.gpu.check_errors()?;
        Ok((states, [m.batch, m.len, m.dim]))
    }

    /// Where an image model's encoder positions lie on its input image (for drawing
    /// cross-attention over the patches); `None` for text and audio models.
    pub fn patch_grid(&self) -> Option<crate::encoder::PatchGrid> {
        self.encoder.patch_grid()
    }

    /// What each source of the model reads, in order (one entry except for multi-source
    /// models).
    pub fn source_kinds(&self) -> Vec<crate::encoder::SourceKind> {
        self.encoder.source_kinds()
    }

    /// Weight bytes uploaded at load.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes.load(Ordering::Relaxed)
    }

    /// Weight bytes one decode step reads ([`Decoder::step_weight_bytes`]): divided by a
    /// step's time, the bandwidth a step draws from its weights alone.
    pub fn step_weight_bytes(&self) -> u64 {
        self.decoder.step_weight_bytes()
    }

    /// The tokenizer, or an error naming the directory.
    pub fn require_tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: no tokenizer in the model directory",
                self.dir.display()
            ))
        })
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            gpu: &self.gpu,
            encoder: self.encoder.as_ref(),
            decoder: self.decoder.as_ref(),
        }
    }

    fn begin(&self) -> CallStats {
        CallStats {
            gpu: self.gpu.stats_scope(),
            weight_bytes: self.weight_bytes(),
            own: Stats::default(),
        }
    }

    fn finish(&self, c: CallStats) -> Stats {
        let d = c.gpu.finish();
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
        let input = EncoderInput::Tokens(sources);
        self.generate_inner(&input, opts, on_token, &mut Probe::off())
    }

    /// Generates from any encoder input (Whisper: log-mel features
    /// `[batch, n_mels, frames]`), as [`Model::generate_with`] does from token ids. The
    /// returned sequences hold the decoder start token, the decoder prompt (Whisper's
    /// language, task and `<|notimestamps|>`), then the generated tokens.
    pub fn generate_input(
        &self,
        input: &EncoderInput,
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Generation> {
        self.generate_inner(input, opts, on_token, &mut Probe::off())
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
        self.generate_input_profiled(&EncoderInput::Tokens(sources), opts, timestamps)
    }

    /// [`Model::generate_profiled`] from any encoder input (Whisper: log-mel features).
    pub fn generate_input_profiled(
        &self,
        input: &EncoderInput,
        opts: &GenerateOptions,
        timestamps: bool,
    ) -> Result<(Generation, Profile)> {
        let mut profile = Profile::default();
        let g = self.generate_inner(
            input,
            opts,
            &mut |_, _| {},
            &mut Probe::on(&mut profile, timestamps),
        )?;
        Ok((g, profile))
    }

    fn generate_inner(
        &self,
        input: &EncoderInput,
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
        probe: &mut Probe,
    ) -> Result<Generation> {
        let mut search = SearchConfig::resolve(&self.config, &self.generation_config, opts)?;
        search.constraint = self.constraint_for(opts, &search.eos_token_id)?;
        self.encoder.check(input)?;
        let mut call = self.begin();
        let run = self.runner();
        let cross = run.encode(input, &mut call.own, probe)?;
        let found = if search.num_beams == 1 {
            run.greedy(&search, &cross, on_token, None, &mut call.own, probe)?
        } else {
            run.beam(&search, &cross, on_token, &mut call.own, probe)?
        };
        self.gpu.check_errors()?;
        Ok(Generation {
            sequences: found.sequences,
            scores: found.scores,
            no_speech_probs: found.no_speech,
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

    fn check_targets(&self, sources: usize, targets: &[Vec<u32>]) -> Result<()> {
        let cfg = &self.config;
        if sources != targets.len() {
            return Err(Error::Input(format!(
                "{sources} sources but {} targets",
                targets.len()
            )));
        }
        check_sequences(
            "target",
            targets,
            cfg.decoder_vocab_size,
            cfg.max_target_positions,
            cfg.positions_key,
        )
    }

    /// The decoder start token of this model (generation config, else bos).
    pub(crate) fn decoder_start(&self) -> Result<u32> {
        let g = &self.generation_config;
        g.decoder_start_token_id.or(g.bos_token_id).ok_or_else(|| {
            Error::Options("decoder_start_token_id or bos_token_id has to be defined".into())
        })
    }

    /// Teacher-forced log-probabilities of `targets` given `sources` (CTranslate2's
    /// `score_batch`): the decoder reads `[decoder_start] + target[..-1]` in one causal pass.
    pub fn score(&self, sources: &[Vec<u32>], targets: &[Vec<u32>]) -> Result<Scores> {
        self.score_input(&EncoderInput::Tokens(sources), targets)
    }

    /// [`Model::score`] from any encoder input (pixels, audio features).
    pub fn score_input(&self, input: &EncoderInput, targets: &[Vec<u32>]) -> Result<Scores> {
        self.encoder.check(input)?;
        let n = input.batch();
        self.check_targets(n, targets)?;
        let start = self.decoder_start()?;
        let vocab = self.config.decoder_vocab_size;
        let mut call = self.begin();
        // Batches whose logits `[rows·T, V]` fit one binding.
        let max_rows = (self.gpu.max_binding() as usize / (vocab * 4)).max(1);
        let mut logprobs = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            let mut j = i + 1;
            let mut t = targets[i].len();
            while j < n && (j + 1 - i) * t.max(targets[j].len()) <= max_rows {
                t = t.max(targets[j].len());
                j += 1;
            }
            if t > max_rows {
                return Err(Error::Input(format!(
                    "target {i} has {t} tokens: its logits ({t} × {vocab}) do not fit one GPU binding of {} bytes",
                    self.gpu.max_binding()
                )));
            }
            let run = self.runner();
            let cross = run.encode(&input.rows(i, j)?, &mut call.own, &mut Probe::off())?;
            let pad = self.config.pad_token_id;
            logprobs.extend(run.score(&cross, &targets[i..j], t, (start, pad), &mut call.own)?);
            i = j;
        }
        self.gpu.check_errors()?;
        Ok(Scores {
            logprobs,
            stats: self.finish(call),
        })
    }

    /// Cross-attention probabilities of a teacher-forced pass over `decoder_input_ids` (as
    /// given, decoder start included): per decoder layer, `[heads, T, S]` row-major (a
    /// multi-source model with separate blocks: per block, layer by layer; see
    /// [`Model::cross_attentions_sources`]).
    pub fn cross_attentions(
        &self,
        source: &[u32],
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        let sources = [source.to_vec()];
        self.cross_attentions_input(&EncoderInput::Tokens(&sources), decoder_input_ids)
    }

    /// [`Model::cross_attentions`] from any encoder input of one source (an image's
    /// pixels: the maps' columns are the encoder positions, leading tokens then patches).
    pub fn cross_attentions_input(
        &self,
        input: &EncoderInput,
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        self.check_one(input, decoder_input_ids)?;
        let run = self.runner();
        let cross = run.encode(input, &mut Stats::default(), &mut Probe::off())?;
        let out = run.cross_attentions(&cross, decoder_input_ids)?;
        self.gpu.check_errors()?;
        Ok(out)
    }

    /// [`Model::cross_attentions_input`] left on the GPU, for a host that draws the maps with
    /// its own pipeline (the desktop app's heatmap): per decoder layer (per cross block), the f32 tensor
    /// `[1, heads, T, S]` the attention kernel wrote. The pass is submitted, not waited for
    /// (work the host submits later on the same queue sees the result); nothing is read back.
    pub fn cross_attention_tensors(
        &self,
        input: &EncoderInput,
        decoder_input_ids: &[u32],
    ) -> Result<Vec<Tensor>> {
        self.check_one(input, decoder_input_ids)?;
        let run = self.runner();
        let cross = run.encode(input, &mut Stats::default(), &mut Probe::off())?;
        let mut rec = Recorder::new(&self.gpu);
        let out = run.record_cross_attentions(&mut rec, &cross, decoder_input_ids)?;
        rec.submit();
        self.gpu.check_errors()?;
        Ok(out)
    }

    /// One source and a target that the decoder accepts (the alignment maps' inputs).
    fn check_one(&self, input: &EncoderInput, decoder_input_ids: &[u32]) -> Result<()> {
        if input.batch() != 1 {
            return Err(Error::Input(format!(
                "cross-attention maps of one source at a time, {} given",
                input.batch()
            )));
        }
        self.encoder.check(input)?;
        self.check_targets(1, &[decoder_input_ids.to_vec()])
    }
}
