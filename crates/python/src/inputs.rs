//! Python arguments read into the engine's types: sources (texts, token ids, or one item per
//! source of a multi-source model) and the
//! keyword options of `generate`. A value of the wrong type is a `TypeError`, a value of the
//! right type but out of range (a negative id or count) a `ValueError`, both naming the
//! argument; ranges the model decides (vocabulary, lengths) are checked by the engine.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use seqbridge_models::encoder::SourceKind;
use seqbridge_models::{Constrain, EarlyStopping, GenerateOptions};

/// What `generate` and friends accept as sources.
pub enum Sources {
    Texts(Vec<String>),
    Ids(Vec<Vec<u32>>),
}

impl Sources {
    pub fn read(obj: &Bound<'_, PyAny>) -> PyResult<Sources> {
        if obj.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "expected a list of texts or of token id lists, got one str (wrap it in a list)",
            ));
        }
        if let Ok(texts) = obj.extract::<Vec<String>>() {
            return Ok(Sources::Texts(texts));
        }
        let rows: Vec<Vec<i64>> = obj.extract().map_err(|_| {
            PyTypeError::new_err("expected a list of texts or a list of lists of token ids")
        })?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| ids(&format!("source {i}"), row))
            .collect::<PyResult<_>>()
            .map(Sources::Ids)
    }
}

/// One source: a text or a list of token ids.
pub enum Source {
    Text(String),
    Ids(Vec<u32>),
}

impl Source {
    pub fn read(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Source> {
        if let Ok(text) = obj.extract::<String>() {
            return Ok(Source::Text(text));
        }
        let row: Vec<i64> = obj.extract().map_err(|_| {
            PyTypeError::new_err(format!("{what}: expected a str or a list of token ids"))
        })?;
        Ok(Source::Ids(ids(what, &row)?))
    }
}

/// One example's item for a source of a multi-source model, read by what that source takes.
pub enum Item {
    Tokens(Source),
    Image(std::path::PathBuf),
}

/// `generate_sources`' examples: a list with one list per example, each holding one item per
/// source of the model in its order (`kinds`): a text or token ids for a text encoder, an
/// image path for an image encoder. Returned by source (column), then by example.
pub fn examples(obj: &Bound<'_, PyAny>, kinds: &[SourceKind]) -> PyResult<Vec<Vec<Item>>> {
    let rows: Vec<Vec<Bound<'_, PyAny>>> = obj.extract().map_err(|_| {
        PyTypeError::new_err(
            "expected a list of examples, each a list with one item per source of the model",
        )
    })?;
    if rows.is_empty() {
        return Err(PyValueError::new_err("no examples"));
    }
    let mut columns: Vec<Vec<Item>> = kinds.iter().map(|_| Vec::new()).collect();
    for (i, row) in rows.iter().enumerate() {
        if row.len() != kinds.len() {
            return Err(PyValueError::new_err(format!(
                "example {i} has {} item(s); the model reads {} source(s)",
                row.len(),
                kinds.len()
            )));
        }
        for (j, (item, kind)) in row.iter().zip(kinds).enumerate() {
            let what = format!("example {i}, source {j}");
            columns[j].push(match kind {
                SourceKind::Tokens { .. } => Item::Tokens(Source::read(&what, item)?),
                SourceKind::Pixels(_) => Item::Image(item.extract().map_err(|_| {
                    PyTypeError::new_err(format!("{what}: expected an image path"))
                })?),
                SourceKind::Features => {
                    return Err(PyValueError::new_err(format!(
                        "{what}: audio sources are read by transcribe(), not generate_sources()"
                    )));
                }
            });
        }
    }
    Ok(columns)
}

/// Token ids checked to fit `u32` (the vocabulary check is the engine's).
pub fn ids(what: &str, row: &[i64]) -> PyResult<Vec<u32>> {
    row.iter()
        .enumerate()
        .map(|(j, &v)| {
            u32::try_from(v).map_err(|_| {
                PyValueError::new_err(format!(
                    "{what}, position {j}: token id {v} is not a valid id (0 ≤ id < 2^32)"
                ))
            })
        })
        .collect()
}

/// A list of lists of token ids, named `what` in errors.
pub fn id_lists(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u32>>> {
    let rows: Vec<Vec<i64>> = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!("{what}: expected a list of lists of token ids"))
    })?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| ids(&format!("{what} {i}"), row))
        .collect()
}

/// The keyword options of `generate`, `stream` and `translate` (transformers' names).
pub const OPTION_NAMES: &[&str] = &[
    "num_beams",
    "max_new_tokens",
    "max_length",
    "min_length",
    "min_new_tokens",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "bad_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "decoder_prompt",
    "language",
    "task",
    "timestamps",
    "constrain",
];

/// `constrain=`: a regular expression the output must match, or `False` for no constraint
/// (not even the model directory's `constraint.regex`).
fn constrain(v: &Bound<'_, PyAny>) -> PyResult<Constrain> {
    if let Ok(false) = v.extract::<bool>() {
        return Ok(Constrain::Off);
    }
    v.extract::<String>()
        .map(Constrain::Regex)
        .map_err(|_| PyTypeError::new_err("constrain must be a regular expression (str) or False"))
}

/// `**options` as [`GenerateOptions`]; an unknown name is a `TypeError`, as Python's own
/// keyword arguments are, and `None` keeps the model's value.
pub fn generate_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<GenerateOptions> {
    let mut o = GenerateOptions::default();
    let Some(dict) = options else {
        return Ok(o);
    };
    for (key, value) in dict.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        let v = &value;
        let k = key.as_str();
        match k {
            "num_beams" => o.num_beams = Some(count(k, v)?),
            "max_new_tokens" => o.max_new_tokens = Some(count(k, v)?),
            "max_length" => o.max_length = Some(count(k, v)?),
            "min_length" => o.min_length = Some(count(k, v)?),
            "min_new_tokens" => o.min_new_tokens = Some(count(k, v)?),
            "num_return_sequences" => o.num_return_sequences = Some(count(k, v)?),
            "no_repeat_ngram_size" => o.no_repeat_ngram_size = Some(count(k, v)?),
            "length_penalty" => o.length_penalty = Some(typed(k, v)?),
            "repetition_penalty" => o.repetition_penalty = Some(typed(k, v)?),
            "early_stopping" => o.early_stopping = Some(early_stopping(v)?),
            "bad_words_ids" => o.bad_words_ids = Some(id_lists(k, v)?),
            "forced_bos_token_id" => o.forced_bos_token_id = Some(token(k, v)?),
            "decoder_start_token_id" => o.decoder_start_token_id = Some(token(k, v)?),
            "forced_eos_token_id" => o.forced_eos_token_id = Some(tokens(k, v)?),
            "eos_token_id" => o.eos_token_id = Some(tokens(k, v)?),
            "decoder_prompt" => o.decoder_prompt = Some(tokens(k, v)?),
            "language" => o.language = Some(typed(k, v)?),
            "task" => o.task = Some(typed(k, v)?),
            "timestamps" => o.timestamps = Some(typed(k, v)?),
            "constrain" => o.constrain = Some(constrain(v)?),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {key:?} (options: {})",
                    OPTION_NAMES.join(", ")
                )));
            }
        }
    }
    Ok(o)
}

fn typed<'py, T>(key: &str, v: &Bound<'py, PyAny>) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
    for<'a> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
{
    v.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        PyTypeError::new_err(format!("option {key}: {}", e.value(v.py())))
    })
}

/// A non-negative integer.
fn count(key: &str, v: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n: i64 = typed(key, v)?;
    usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!("option {key}: {n} is negative; give 0 or more"))
    })
}

fn token(key: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n: i64 = typed(key, v)?;
    u32::try_from(n).map_err(|_| {
        PyValueError::new_err(format!(
            "option {key}: token id {n} is not a valid id (0 ≤ id < 2^32)"
        ))
    })
}

/// One id or a list of ids.
fn tokens(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    match v.extract::<i64>() {
        Ok(n) => ids(&format!("option {key}"), &[n]),
        Err(_) => ids(&format!("option {key}"), &typed::<Vec<i64>>(key, v)?),
    }
}

/// `True`, `False` or `"never"`, as transformers takes it.
fn early_stopping(v: &Bound<'_, PyAny>) -> PyResult<EarlyStopping> {
    if let Ok(b) = v.extract::<bool>() {
        return Ok(if b {
            EarlyStopping::True
        } else {
            EarlyStopping::False
        });
    }
    match v.extract::<String>().as_deref() {
        Ok("never") => Ok(EarlyStopping::Never),
        _ => Err(PyValueError::new_err(format!(
            "option early_stopping: expected True, False or \"never\", got {}",
            v.repr()?
        ))),
    }
}
