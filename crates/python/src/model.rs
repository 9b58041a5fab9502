//! `seqbridge.Model`: one loaded model on one GPU context. Every method reads its Python
//! arguments first, then releases the GIL for the engine's work, so other Python threads
//! (and asyncio loops) keep running while the GPU works; a `Model` can be shared by any
//! number of threads, as the engine's `Model` can.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use seqbridge_gpu::{Gpu, GpuOptions};
use seqbridge_models::encoder::{EncoderInput, SourceData, SourceKind};
use seqbridge_models::io::audio::load_audio;
use seqbridge_models::{
    LoadOptions, Model, Quantization, TranscribeOptions, Transcript, WeightDtype,
};

use crate::errors::{gpu_err, model_err};
use crate::inputs::{self, Source, Sources, generate_options, id_lists, ids};
use crate::results::{Generation, transcript};
use crate::stream::TokenStream;

/// A model directory loaded onto the GPU (weights uploaded once).
#[pyclass(name = "Model", module = "seqbridge", frozen)]
pub struct PyModel {
    model: Arc<Model>,
    gpu: Gpu,
    path: PathBuf,
}

/// The adapter for `backend` / `adapter`, else `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER`;
/// with no backend named, native APIs before GL ([`Gpu::open`], as the CLI does).
fn open_gpu(backend: Option<&str>, adapter: Option<String>) -> seqbridge_gpu::Result<Gpu> {
    let mut opts = GpuOptions::from_env()?;
    if let Some(b) = backend {
        opts.backends = Some(seqbridge_gpu::context::parse_backends(b)?);
    }
    if adapter.is_some() {
        opts.adapter = adapter;
    }
    Gpu::open(&opts)
}

/// The storage of `dtype` (as the command line's `--dtype`): int8 is weight-only int8 for
/// the linear layers, f16 for the other matrices.
fn load_options(name: &str) -> PyResult<LoadOptions> {
    let (weight_dtype, quantization) = match name {
        "f32" => (WeightDtype::F32, Quantization::None),
        "f16" => (WeightDtype::F16, Quantization::None),
        "auto" => (WeightDtype::Auto, Quantization::None),
        "int8" => (WeightDtype::F16, Quantization::Int8),
        other => {
            return Err(PyValueError::new_err(format!(
                "dtype {other:?}: use \"f32\", \"f16\", \"int8\" or \"auto\" (f16 checkpoints stay f16)"
            )));
        }
    };
    Ok(LoadOptions {
        weight_dtype,
        quantization,
        ..Default::default()
    })
}

/// An audio argument: a file path, or 16 kHz mono samples.
enum Audio {
    File(PathBuf),
    Samples(Vec<f32>),
}

impl Audio {
    fn read(i: usize, obj: &Bound<'_, PyAny>) -> PyResult<Audio> {
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
            return Ok(Audio::Samples(a.as_array().to_vec()));
        }
        obj.extract::<PathBuf>().map(Audio::File).map_err(|_| {
            PyTypeError::new_err(format!(
                "audio {i}: expected a file path or a 1-D float32 numpy array of 16 kHz samples"
            ))
        })
    }

    fn samples(self) -> seqbridge_models::Result<Vec<f32>> {
        match self {
            Audio::File(path) => load_audio(&path),
            Audio::Samples(s) => Ok(s),
        }
    }
}

impl PyModel {
    /// The ids of `sources`, tokenized when they are texts.
    fn source_ids(&self, sources: Sources) -> seqbridge_models::Result<Vec<Vec<u32>>> {
        match sources {
            Sources::Ids(ids) => Ok(ids),
            Sources::Texts(texts) => {
                let tok = self.model.require_tokenizer()?;
                texts.iter().map(|t| tok.encode(t)).collect()
            }
        }
    }

    fn one_source(&self, source: Source) -> seqbridge_models::Result<Vec<u32>> {
        match source {
            Source::Ids(ids) => Ok(ids),
            Source::Text(t) => self.model.require_tokenizer()?.encode(&t),
        }
    }

    /// One source's items for every example: token rows, or the images decoded and
    /// preprocessed into one batch.
    fn load_column(&self, items: Vec<inputs::Item>) -> seqbridge_models::Result<SourceData> {
        let mut ids = Vec::new();
        let mut images = Vec::new();
        for item in items {
            match item {
                inputs::Item::Tokens(s) => ids.push(self.one_source(s)?),
                inputs::Item::Image(p) => images.push(p),
            }
        }
        if images.is_empty() {
            Ok(SourceData::Tokens(ids))
        } else {
            self.model.load_images(&images).map(SourceData::Pixels)
        }
    }

    /// The best hypothesis of each source decoded, when the model has a tokenizer.
    fn decode_best(&self, g: &seqbridge_models::Generation) -> PyResult<Option<Vec<String>>> {
        let Some(tok) = self.model.tokenizer() else {
            return Ok(None);
        };
        g.sequences
            .iter()
            .map(|hyps| tok.decode(hyps.first().map_or(&[][..], Vec::as_slice)))
            .collect::<seqbridge_models::Result<Vec<_>>>()
            .map(Some)
            .map_err(model_err)
    }
}

#[pymethods]
impl PyModel {
    /// Loads the model directory at `path`. `backend` (`"vulkan"`, `"gl"`, `"metal"`,
    /// `"dx12"`, comma-separated) and `adapter` (a substring of the adapter's name) pick
    /// the GPU; `dtype` is how matrices are stored on it.
    #[new]
    #[pyo3(signature = (path, *, backend=None, adapter=None, dtype="f32"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        backend: Option<String>,
        adapter: Option<String>,
        dtype: &str,
    ) -> PyResult<Self> {
        let opts = load_options(dtype)?;
        let gpu = py
            .detach(|| open_gpu(backend.as_deref(), adapter))
            .map_err(gpu_err)?;
        let model = py
            .detach(|| Model::load_with(&path, &gpu, &opts))
            .map_err(model_err)?;
        Ok(PyModel {
            model: Arc::new(model),
            gpu,
            path,
        })
    }

    /// The model directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// config.json's `model_type`.
    #[getter]
    fn model_type(&self) -> String {
        self.model.config().model_type.clone()
    }

    /// The GPU adapter's name (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`).
    #[getter]
    fn adapter(&self) -> String {
        self.gpu.adapter().name.clone()
    }

    /// The adapter's graphics API (`Vulkan`, `Gl`, `Metal`, `Dx12`).
    #[getter]
    fn backend(&self) -> String {
        self.gpu.adapter().backend.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Model({:?}, model_type={:?}, adapter={:?})",
            self.path.display().to_string(),
            self.model.config().model_type,
            self.gpu.adapter().name
        )
    }

    /// The token ids of `text` (the model's tokenizer, special tokens included).
    fn encode(&self, text: &str) -> PyResult<Vec<u32>> {
        self.one_source(Source::Text(text.to_string()))
            .map_err(model_err)
    }

    /// The text of `ids`, special tokens skipped.
    fn decode(&self, ids_: &Bound<'_, PyAny>) -> PyResult<String> {
        let row: Vec<i64> = ids_
            .extract()
            .map_err(|_| PyTypeError::new_err("expected a list of token ids"))?;
        let row = ids("ids", &row)?;
        self.model
            .require_tokenizer()
            .and_then(|t| t.decode(&row))
            .map_err(model_err)
    }

    /// Generates for a batch of sources: texts (tokenized by the model's tokenizer) or
    /// lists of token ids. Keyword options are transformers' `generate` names
    /// (`num_beams`, `max_new_tokens`, `length_penalty`, ...); `None` keeps the model's
    /// generation_config.json value.
    #[pyo3(signature = (ids_or_texts, **options))]
    fn generate(
        &self,
        py: Python<'_>,
        ids_or_texts: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Generation> {
        let sources = Sources::read(ids_or_texts)?;
        let opts = generate_options(options)?;
        let g = py
            .detach(|| {
                let ids = self.source_ids(sources)?;
                self.model.generate(&ids, &opts)
            })
            .map_err(model_err)?;
        let texts = self.decode_best(&g)?;
        Ok(Generation::new(g, texts))
    }

    /// Generates for a batch of examples of a multi-source model (or any model: one source):
    /// each example a list with one item per source, in the order of the model's encoders
    /// (`source_kinds()`): a text or token ids for a text encoder, an image path for an
    /// image encoder. `generate`'s options.
    #[pyo3(signature = (examples, **options))]
    fn generate_sources(
        &self,
        py: Python<'_>,
        examples: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Generation> {
        let columns = inputs::examples(examples, &self.model.source_kinds())?;
        let opts = generate_options(options)?;
        let g = py
            .detach(|| {
                let loaded = columns
                    .into_iter()
                    .map(|col| self.load_column(col))
                    .collect::<seqbridge_models::Result<Vec<_>>>()?;
                let inputs: Vec<EncoderInput> = loaded.iter().map(SourceData::input).collect();
                self.model
                    .generate_input(&EncoderInput::Sources(&inputs), &opts, &mut |_, _| {})
            })
            .map_err(model_err)?;
        let texts = self.decode_best(&g)?;
        Ok(Generation::new(g, texts))
    }

    /// What each source of the model reads, in order: `"text"` or `"image"` (`"audio"`
    /// for Whisper).
    fn source_kinds(&self) -> Vec<&'static str> {
        self.model
            .source_kinds()
            .iter()
            .map(|k| match k {
                SourceKind::Tokens { .. } => "text",
                SourceKind::Pixels(_) => "image",
                SourceKind::Features => "audio",
            })
            .collect()
    }

    /// Streams the new token ids of one source (a text or a list of ids) as an iterator;
    /// `generate`'s options. Generation runs on its own thread.
    #[pyo3(signature = (source, **options))]
    fn stream(
        &self,
        source: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<TokenStream> {
        let source = Source::read("source", source)?;
        let opts = generate_options(options)?;
        let ids = self.one_source(source).map_err(model_err)?;
        TokenStream::start(Arc::clone(&self.model), ids, opts)
    }

    /// Translates texts with the model's tokenizer, `batch_size` sources per GPU batch, in
    /// order; a blank text gives `""` (as `seqbridge translate` does for a blank line).
    #[pyo3(signature = (texts, *, batch_size=64, **options))]
    fn translate(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        batch_size: usize,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<String>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let opts = generate_options(options)?;
        py.detach(|| {
            let mut out = vec![String::new(); texts.len()];
            let jobs: Vec<usize> = (0..texts.len())
                .filter(|&i| !texts[i].trim().is_empty())
                .collect();
            for chunk in jobs.chunks(batch_size) {
                let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
                let (_, done) = self.model.generate_text(&batch, &opts)?;
                for (&i, t) in chunk.iter().zip(done) {
                    out[i] = t;
                }
            }
            Ok(out)
        })
        .map_err(model_err)
    }

    /// Teacher-forced log P(target_t | source, target_<t) of every target token: one
    /// float32 array per source. Sources are texts or id lists; targets are id lists
    /// (without the decoder start token, as `seqbridge score` takes them).
    fn score<'py>(
        &self,
        py: Python<'py>,
        sources: &Bound<'py, PyAny>,
        targets: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<f32>>>> {
        let sources = Sources::read(sources)?;
        let targets = id_lists("target", targets)?;
        let scores = py
            .detach(|| {
                let ids = self.source_ids(sources)?;
                self.model.score(&ids, &targets)
            })
            .map_err(model_err)?;
        Ok(scores
            .logprobs
            .into_iter()
            .map(|lp| PyArray1::from_vec(py, lp))
            .collect())
    }

    /// Cross-attention probabilities of a teacher-forced pass over `decoder_input_ids`
    /// (decoder start included) for one source: float32 `[layers, heads, T, S]`.
    fn cross_attentions<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        decoder_input_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let source = Source::read("source", source)?;
        let dec: Vec<i64> = decoder_input_ids
            .extract()
            .map_err(|_| PyTypeError::new_err("decoder_input_ids: expected a list of token ids"))?;
        let dec = ids("decoder_input_ids", &dec)?;
        let (maps, s) = py
            .detach(|| {
                let src = self.one_source(source)?;
                let maps = self.model.cross_attentions(&src, &dec)?;
                Ok((maps, src.len()))
            })
            .map_err(model_err)?;
        let (layers, t) = (maps.len(), dec.len());
        let heads = self.model.config().decoder_attention_heads;
        let flat: Vec<f32> = maps.into_iter().flatten().collect();
        PyArray1::from_vec(py, flat)
            .reshape([layers, heads, t, s])
            .map(Bound::into_any)
    }

    /// Transcribes audio with a Whisper model: each item a file path (WAV, FLAC, MP3, OGG)
    /// or a 1-D float32 array of 16 kHz mono samples. Clips up to 30 s decode together,
    /// `batch_size` per batch. Options: `language` (`"en"`, or `None` / `"auto"` to
    /// detect), `task` (`"transcribe"` / `"translate"`), `num_beams`, `timestamps`, ...
    /// Returns one dict per clip (`language`, `text`, `tokens`, `segments`, `words`).
    #[pyo3(signature = (audio, *, word_timestamps=false, batch_size=8, **options))]
    fn transcribe<'py>(
        &self,
        py: Python<'py>,
        audio: &Bound<'py, PyList>,
        word_timestamps: bool,
        batch_size: usize,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let clips = audio
            .iter()
            .enumerate()
            .map(|(i, a)| Audio::read(i, &a))
            .collect::<PyResult<Vec<_>>>()?;
        let mut generate = generate_options(options)?;
        generate.language = generate.language.filter(|l| l != "auto");
        let opts = TranscribeOptions {
            generate,
            word_timestamps,
        };
        let transcripts = py
            .detach(|| transcribe(&self.model, clips, &opts, batch_size))
            .map_err(model_err)?;
        transcripts.iter().map(|t| transcript(py, t)).collect()
    }

    /// Captions image files (PNG, JPEG) with an image-to-text model, one batch: one text
    /// per image. `generate`'s options.
    #[pyo3(signature = (images, **options))]
    fn caption(
        &self,
        py: Python<'_>,
        images: Vec<PathBuf>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<String>> {
        let opts = generate_options(options)?;
        py.detach(|| self.model.generate_images(&images, &opts))
            .map(|(_, texts)| texts)
            .map_err(model_err)
    }
}

/// Clips in batches of `batch_size`, in order.
fn transcribe(
    model: &Model,
    clips: Vec<Audio>,
    opts: &TranscribeOptions,
    batch_size: usize,
) -> seqbridge_models::Result<Vec<Transcript>> {
    model.require_tokenizer()?;
    let mel = model.mel_extractor()?;
    let samples = clips
        .into_iter()
        .map(Audio::samples)
        .collect::<seqbridge_models::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(samples.len());
    for batch in samples.chunks(batch_size) {
        let views: Vec<&[f32]> = batch.iter().map(Vec::as_slice).collect();
        out.extend(model.transcribe_batch(&views, &mel, opts)?);
    }
    Ok(out)
}
