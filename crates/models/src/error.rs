//! The one error type of the model crate. Every message names the file, tensor, shape or
//! token at fault.

use std::path::PathBuf;

/// Everything loading, encoding, generating or scoring can report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {msg}")]
    Io { path: PathBuf, msg: String },
    /// config.json / generation_config.json is malformed or inconsistent.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// config.json names a model_type this crate does not implement.
    #[error(
        "{path}: unknown model_type {model_type:?} (supported: {supported})",
        supported = crate::arch::supported()
    )]
    UnknownModelType { path: PathBuf, model_type: String },
    /// A safetensors file (or the shard index) is truncated or corrupt.
    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors { path: PathBuf, msg: String },
    /// A CTranslate2 `model.bin` is truncated, corrupt or of a binary version this crate
    /// cannot read.
    #[error("{path}: not a valid CTranslate2 model.bin at byte offset {offset}: {msg}")]
    Ctranslate2 {
        path: PathBuf,
        offset: usize,
        msg: String,
    },
    /// A CTranslate2 variable cannot be read as the tensor asked for (its dtype, a missing
    /// quantization scale, an alias naming nothing, fused rows that do not split evenly).
    #[error("tensor {key} in {path}: {msg}")]
    Ctranslate2Tensor {
        key: String,
        path: PathBuf,
        msg: String,
    },
    /// A tensor the architecture needs is absent from every checkpoint file.
    #[error("missing tensor {key} (not found in {files})")]
    MissingTensor { key: String, files: String },
    /// A tensor has the wrong shape.
    #[error("tensor {key} in {path} has shape {got:?}, expected {expected:?}")]
    TensorShape {
        key: String,
        path: PathBuf,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor holds values no model can compute with (NaN, infinities).
    #[error("tensor {key} in {files}: {msg}")]
    TensorValues {
        key: String,
        files: String,
        msg: String,
    },
    /// A tensor is stored in a dtype this crate cannot convert.
    #[error("tensor {key} in {path} has dtype {dtype}; supported: F32, F16, BF16")]
    TensorDtype {
        key: String,
        path: PathBuf,
        dtype: String,
    },
    /// An audio file (or in-memory audio) that is empty, not audio, undecodable or too long.
    #[error("{path}: {msg}")]
    Audio { path: PathBuf, msg: String },
    /// The caller's input cannot be run (token outside the vocabulary, too long, empty...).
    #[error("{0}")]
    Input(String),
    /// Generation options that transformers would reject.
    #[error("invalid generation options: {0}")]
    Options(String),
    /// Tokenizer loading, encoding or decoding failed.
    #[error("{0}")]
    Tokenizer(String),
    /// The GPU runtime failed.
    #[error(transparent)]
    Gpu(#[from] seqbridge_gpu::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
