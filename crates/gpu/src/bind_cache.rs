//! Bind groups made once and reused. A decode step binds the same buffers (pooled, so
//! the same ones come back every step) at the same offsets to the same kernels, and making a
//! bind group is most of the host's cost of a dispatch: on lavapipe about 18 µs of the
//! 20 µs, 1.2 ms of an opus-mt step's 70 dispatches.
//!
//! Keys name buffers by their pool id, which is never given to another buffer, so a hit is
//! always the same binding. A cached bind group keeps its buffers' handles alive: the cache
//! is emptied when the pool frees its idle buffers, and when it grows past a bound (shapes
//! that vary call by call would otherwise grow it without end).

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 4096;

/// A kernel and, per binding, (binding index, buffer id, byte offset, byte size).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    pub kernel: u64,
    pub entries: Vec<(u32, u64, u64, u64)>,
}

#[derive(Default)]
pub(crate) struct BindCache {
    groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
}

impl BindCache {
    /// The cached bind group for `key`, or the one `make` creates (then cached).
    pub fn get_or_make(
        &self,
        key: BindKey,
        make: impl FnOnce() -> wgpu::BindGroup,
    ) -> wgpu::BindGroup {
        let Ok(mut groups) = self.groups.lock() else {
            // A thread panicked while holding the lock: work on without the cache.
            return make();
        };
        if let Some(g) = groups.get(&key) {
            return g.clone();
        }
        if groups.len() >= CAPACITY {
            groups.clear();
        }
        let g = make();
        groups.insert(key, g.clone());
        g
    }

    pub fn clear(&self) {
        if let Ok(mut groups) = self.groups.lock() {
            groups.clear();
        }
    }
}
