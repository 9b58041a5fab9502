//! The `seqbridge` Python package's native module, `seqbridge._seqbridge`: a thin layer over
//! [`seqbridge_models::Model`]. Python objects are read into Rust values first, the GIL is
//! released for every call that touches the GPU, and engine errors become Python exceptions
//! carrying the engine's one-line message (see [`errors`]).

// Library code returns errors instead of panicking, as the engine's crates do.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod inputs;
mod model;
mod results;
mod stream;

use pyo3::prelude::*;

#[pymodule]
fn _seqbridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_class::<results::Generation>()?;
    m.add_class::<stream::TokenStream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
