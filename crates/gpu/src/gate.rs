//! One thread at a time on wgpu's GL backend.
//!
//! wgpu-hal's GL backend has a single EGL context per device, behind a lock that every GL call
//! (buffer creation and destruction, writes, shader compilation, submits, waits, mapping) takes
//! with `try_lock_for(6 s)` and a panic when that runs out (`CONTEXT_LOCK_TIMEOUT_SECS` in
//! `wgpu-hal/src/gles/egl.rs`, "Could not lock adapter context"). The holder can legitimately
//! keep it longer than that on a software driver: llvmpipe runs a whole command buffer, or
//! compiles a kernel, inside the call. With several threads on one [`Gpu`](crate::Gpu) and
//! a loaded machine, the model tests hit it (a buffer creation panicked after another thread
//! had held the context for over 6 s). The gate makes those threads queue here instead, with
//! no time limit, so wgpu's lock is only ever taken uncontended. Other backends need no gate:
//! their queues and devices are thread-safe without a global lock.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Serialises this crate's calls into one GL device; does nothing on other backends.
#[derive(Clone, Default)]
pub(crate) struct GlGate(Option<Arc<Mutex<()>>>);

impl GlGate {
    pub fn for_backend(backend: wgpu::Backend) -> GlGate {
        GlGate((backend == wgpu::Backend::Gl).then(Arc::default))
    }

    /// Waits for the GL device (at once on other backends). Keep the guard only around wgpu
    /// calls: it is not reentrant, and a buffer dropped while it is held enters it again.
    pub fn enter(&self) -> Option<MutexGuard<'_, ()>> {
        // The mutex guards no data, so a thread that panicked holding it left nothing broken.
        self.0
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
