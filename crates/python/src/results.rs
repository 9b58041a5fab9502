//! Engine results as Python values: [`Generation`] for `generate`, dicts for transcripts.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use seqbridge_models::{Stats, Transcript};

/// What `Model.generate` returns.
#[pyclass(module = "seqbridge", frozen, get_all)]
pub struct Generation {
    /// Per source, its hypotheses (`num_return_sequences`, best first), each as
    /// transformers' `generate` returns it: decoder start token first, through EOS.
    pub sequences: Vec<Vec<Vec<u32>>>,
    /// Per source, the best hypothesis decoded (special tokens skipped); `None` when the
    /// model has no tokenizer.
    pub texts: Option<Vec<String>>,
    /// Beam search: per source and hypothesis, the length-penalised score.
    pub scores: Option<Vec<Vec<f32>>>,
    /// Whisper: per source, the probability of `<|nospeech|>` after the start token.
    pub no_speech_probs: Option<Vec<f32>>,
    /// The call's counters (encoder runs, decoder steps, dispatches, bytes, ...).
    pub stats: BTreeMap<String, u64>,
}

#[pymethods]
impl Generation {
    fn __repr__(&self) -> String {
        format!(
            "Generation(sources={}, texts={})",
            self.sequences.len(),
            match &self.texts {
                Some(t) => format!("{t:?}"),
                None => "None".into(),
            }
        )
    }
}

impl Generation {
    pub fn new(g: seqbridge_models::Generation, texts: Option<Vec<String>>) -> Generation {
        Generation {
            sequences: g.sequences,
            texts,
            scores: g.scores,
            no_speech_probs: g.no_speech_probs,
            stats: stats(&g.stats),
        }
    }
}

/// The counters of a call by name.
fn stats(s: &Stats) -> BTreeMap<String, u64> {
    [
        ("encoder_runs", s.encoder_runs),
        ("cross_kv_computes", s.cross_kv_computes),
        ("decoder_steps", s.decoder_steps),
        ("dispatches", s.dispatches),
        ("submits", s.submits),
        ("bytes_uploaded", s.bytes_uploaded),
        ("bytes_read_back", s.bytes_read_back),
        ("weight_bytes_uploaded", s.weight_bytes_uploaded),
        ("buffers_created", s.buffers_created),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A transcript as a dict: `language`, `text`, `tokens`, `segments` (`start`, `end` in
/// seconds, `text`, `tokens`, `no_speech_prob`) and, with word timestamps, `words`.
pub fn transcript<'py>(py: Python<'py>, t: &Transcript) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("language", &t.language)?;
    d.set_item("text", &t.text)?;
    d.set_item("tokens", &t.tokens)?;
    let segments = t
        .segments
        .iter()
        .map(|s| {
            let seg = PyDict::new(py);
            seg.set_item("start", s.start)?;
            seg.set_item("end", s.end)?;
            seg.set_item("text", &s.text)?;
            seg.set_item("tokens", &s.tokens)?;
            seg.set_item("no_speech_prob", s.no_speech_prob)?;
            Ok(seg)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("segments", segments)?;
    let words = match &t.words {
        Some(words) => Some(
            words
                .iter()
                .map(|w| {
                    let wd = PyDict::new(py);
                    wd.set_item("word", &w.word)?;
                    wd.set_item("start", w.start)?;
                    wd.set_item("end", w.end)?;
                    Ok(wd)
                })
                .collect::<PyResult<Vec<_>>>()?,
        ),
        None => None,
    };
    d.set_item("words", words)?;
    Ok(d)
}
