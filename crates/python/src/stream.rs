//! `Model.stream`: generation on a worker thread, its tokens handed to Python through a
//! channel as they are chosen. Python iterates without holding the GIL while it waits, so
//! other Python threads run meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use seqbridge_models::{GenerateOptions, Model, Result};

use crate::errors::model_err;
use crate::results::Generation;

/// What the worker sends: each token as it is chosen, then the whole result.
enum Msg {
    Token(u32),
    Done(Box<Result<seqbridge_models::Generation>>),
}

/// An iterator over the new token ids of one source. With greedy search each arrives as its
/// step finishes; beam search knows its best hypothesis only at the end, so its tokens all
/// arrive then. Once exhausted, `generation` holds the whole result.
#[pyclass(module = "seqbridge")]
pub struct TokenStream {
    rx: Mutex<Receiver<Msg>>,
    /// Set once the result (or the error) has been handed to Python.
    ended: AtomicBool,
    finished: Mutex<Option<Py<Generation>>>,
}

impl TokenStream {
    /// Starts generating `source` on its own thread.
    pub fn start(model: Arc<Model>, source: Vec<u32>, opts: GenerateOptions) -> PyResult<Self> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("seqbridge-stream".into())
            .spawn(move || work(&model, source, &opts, &tx))
            .map_err(|e| PyRuntimeError::new_err(format!("starting the stream thread: {e}")))?;
        Ok(TokenStream {
            rx: Mutex::new(rx),
            ended: AtomicBool::new(false),
            finished: Mutex::new(None),
        })
    }
}

/// The worker: a send fails only when the stream was dropped, and then nobody listens.
fn work(model: &Model, source: Vec<u32>, opts: &GenerateOptions, tx: &Sender<Msg>) {
    let result = model.generate_with(&[source], opts, &mut |_, token| {
        let _ = tx.send(Msg::Token(token));
    });
    let _ = tx.send(Msg::Done(Box::new(result)));
}

#[pymethods]
impl TokenStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<u32>> {
        if self.ended.load(Ordering::Acquire) {
            return Ok(None);
        }
        let msg = py.detach(|| {
            self.rx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv()
        });
        match msg {
            Ok(Msg::Token(t)) => Ok(Some(t)),
            Ok(Msg::Done(result)) => {
                self.ended.store(true, Ordering::Release);
                let g = (*result).map_err(model_err)?;
                *self.lock_finished() = Some(Py::new(py, Generation::new(g, None))?);
                Ok(None)
            }
            Err(_) => {
                self.ended.store(true, Ordering::Release);
                Err(PyRuntimeError::new_err(
                    "the generation thread ended without a result",
                ))
            }
        }
    }

    /// The whole result, once the iterator is exhausted (`None` before).
    #[getter]
    fn generation(&self, py: Python<'_>) -> Option<Py<Generation>> {
        self.lock_finished().as_ref().map(|g| g.clone_ref(py))
    }
}

impl TokenStream {
    fn lock_finished(&self) -> std::sync::MutexGuard<'_, Option<Py<Generation>>> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
