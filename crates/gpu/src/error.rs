//! The one error type of the GPU runtime.

/// Everything the runtime can report. Messages name the op, tensor or limit involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    /// A setting (an environment variable, an option) names something that does not exist.
    #[error("{0}")]
    Setting(String),
    #[error("the GPU device could not be created: {0}")]
    RequestDevice(String),
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    #[error(
        "{what} needs {needed} bytes, but this adapter allows at most {limit} bytes per binding"
    )]
    TooLarge {
        what: String,
        needed: u64,
        limit: u64,
    },
    #[error("data length {got} does not match shape {shape:?} ({expected} elements)")]
    DataLength {
        got: usize,
        expected: usize,
        shape: Vec<usize>,
    },
    #[error("kernel {kernel} failed to compile: {msg}")]
    Compile { kernel: String, msg: String },
    #[error("GPU error: {0}")]
    Device(String),
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for a shape error raised by `op`.
pub(crate) fn shape_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape {
        op,
        msg: msg.into(),
    })
}
