//! seqbridge's GPU runtime: a wgpu context, device tensors, a buffer pool, a pipeline cache,
//! a command recorder and the WGSL kernels of `shaders/`, each with a small launcher in
//! [`ops`].

// Library code returns errors instead of panicking (README, "Guarantees"); tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bind_cache;
pub mod context;
pub mod error;
mod gate;
pub mod ops;
pub mod params;
pub mod pipeline;
mod pool;
pub mod recorder;
pub mod stats;
pub mod tensor;

pub use bytemuck;
pub use context::{AdapterSummary, Caps, Gpu, GpuOptions, device_descriptor};
pub use error::{Error, Result};
pub use params::WgslParams;
pub use pipeline::{Access, Const, Family, Kernel, KernelKey};
pub use recorder::{KernelTimes, Readback, Recorder, Staging, Work};
pub use stats::{Stats, StatsScope};
pub use tensor::{DType, Element, Tensor};
pub use wgpu;
