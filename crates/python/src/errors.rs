//! Engine errors as Python exceptions, each with the engine's one-line message:
//! `OSError` for what is wrong with a file (missing, unreadable, malformed model files),
//! `ValueError` for what is wrong with the caller's input or options, `RuntimeError` for
//! the GPU.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use seqbridge_models::Error;

/// The Python exception for an engine error.
pub fn model_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io { path, .. } if !path.exists() => PyFileNotFoundError::new_err(msg),
        Error::Io { .. }
        | Error::Config { .. }
        | Error::UnknownModelType { .. }
        | Error::Safetensors { .. }
        | Error::Ctranslate2 { .. }
        | Error::Ctranslate2Tensor { .. }
        | Error::MissingTensor { .. }
        | Error::TensorShape { .. }
        | Error::TensorValues { .. }
        | Error::TensorDtype { .. } => PyOSError::new_err(msg),
        // An audio file that is absent is a file problem; one that cannot be decoded, or
        // in-memory samples that cannot be used, are bad input.
        Error::Audio { path, .. } if !path.as_os_str().is_empty() && !path.exists() => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Audio { .. } | Error::Input(_) | Error::Options(_) | Error::Tokenizer(_) => {
            PyValueError::new_err(msg)
        }
        Error::Gpu(g) => gpu_err(g),
    }
}

/// The Python exception for a GPU runtime error: a setting naming nothing (a backend that
/// does not exist) is the caller's mistake; everything else is the GPU's.
pub fn gpu_err(e: seqbridge_gpu::Error) -> PyErr {
    match e {
        seqbridge_gpu::Error::Setting(msg) => PyValueError::new_err(msg),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
