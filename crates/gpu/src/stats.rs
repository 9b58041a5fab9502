//! Counters of GPU work, read by tests, the CLI and the bench runner.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the runtime's counters. Subtract two snapshots to get the work in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// Bytes written from the host into GPU buffers (uploads and kernel parameters).
    pub bytes_uploaded: u64,
    /// Bytes copied from GPU buffers back to the host.
    pub bytes_read_back: u64,
    /// wgpu buffers created (the pool's misses).
    pub buffers_created: u64,
    /// Bytes of all wgpu buffers created so far.
    pub bytes_allocated: u64,
}

impl std::ops::Sub for Stats {
    type Output = Stats;
    fn sub(self, rhs: Stats) -> Stats {
        Stats {
            dispatches: self.dispatches - rhs.dispatches,
            submits: self.submits - rhs.submits,
            bytes_uploaded: self.bytes_uploaded - rhs.bytes_uploaded,
            bytes_read_back: self.bytes_read_back - rhs.bytes_read_back,
            buffers_created: self.buffers_created - rhs.buffers_created,
            bytes_allocated: self.bytes_allocated - rhs.bytes_allocated,
        }
    }
}

#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub submits: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub bytes_read_back: AtomicU64,
    pub buffers_created: AtomicU64,
    pub bytes_allocated: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            dispatches: get(&self.dispatches),
            submits: get(&self.submits),
            bytes_uploaded: get(&self.bytes_uploaded),
            bytes_read_back: get(&self.bytes_read_back),
            buffers_created: get(&self.buffers_created),
            bytes_allocated: get(&self.bytes_allocated),
        }
    }
}
