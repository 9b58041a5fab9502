//! Counters of GPU work, read by tests, the CLI and the bench runner.

use std::cell::RefCell;
use std::marker::PhantomData;
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
    /// wgpu bind groups created (the bind group cache's misses).
    pub bind_groups_created: u64,
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
            bind_groups_created: self.bind_groups_created - rhs.bind_groups_created,
        }
    }
}

/// One of the counters of [`Stats`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Dispatches,
    Submits,
    BytesUploaded,
    BytesReadBack,
    BuffersCreated,
    BytesAllocated,
    BindGroupsCreated,
}

impl Stats {
    fn field(&mut self, c: Counter) -> &mut u64 {
        match c {
            Counter::Dispatches => &mut self.dispatches,
            Counter::Submits => &mut self.submits,
            Counter::BytesUploaded => &mut self.bytes_uploaded,
            Counter::BytesReadBack => &mut self.bytes_read_back,
            Counter::BuffersCreated => &mut self.buffers_created,
            Counter::BytesAllocated => &mut self.bytes_allocated,
            Counter::BindGroupsCreated => &mut self.bind_groups_created,
        }
    }
}

/// A context's counters: totals since it was created, shared by every thread, and the
/// scopes ([`StatsScope`]) open on each thread.
#[derive(Debug)]
pub(crate) struct Counters {
    /// Tells this context's scopes from another context's on the same thread.
    id: u64,
    dispatches: AtomicU64,
    submits: AtomicU64,
    bytes_uploaded: AtomicU64,
    bytes_read_back: AtomicU64,
    buffers_created: AtomicU64,
    bytes_allocated: AtomicU64,
    bind_groups_created: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Counters {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dispatches: AtomicU64::new(0),
            submits: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
            bytes_read_back: AtomicU64::new(0),
            buffers_created: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bind_groups_created: AtomicU64::new(0),
        }
    }
}

/// An open scope: (its token, the context's id, what it has counted so far).
type OpenScope = (u64, u64, Stats);

thread_local! {
    /// The scopes open on this thread, innermost last. The work of a call (recording,
    /// submitting, uploading, reading back, creating buffers) happens on the thread that
    /// made the call, so a thread's scope sees that call's work and no other thread's.
    static SCOPES: RefCell<Vec<OpenScope>> = const { RefCell::new(Vec::new()) };
}

impl Counters {
    fn total(&self, c: Counter) -> &AtomicU64 {
        match c {
            Counter::Dispatches => &self.dispatches,
            Counter::Submits => &self.submits,
            Counter::BytesUploaded => &self.bytes_uploaded,
            Counter::BytesReadBack => &self.bytes_read_back,
            Counter::BuffersCreated => &self.buffers_created,
            Counter::BytesAllocated => &self.bytes_allocated,
            Counter::BindGroupsCreated => &self.bind_groups_created,
        }
    }

    /// Counts `n` of `c`: in the totals, and in every scope of this context open on the
    /// current thread.
    pub fn add(&self, c: Counter, n: u64) {
        self.total(c).fetch_add(n, Ordering::Relaxed);
        // `try_with`: work done while the thread's locals are being destroyed has no scope.
        let _ = SCOPES.try_with(|s| {
            for (_, id, stats) in s.borrow_mut().iter_mut() {
                if *id == self.id {
                    *stats.field(c) += n;
                }
            }
        });
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
            bind_groups_created: get(&self.bind_groups_created),
        }
    }

    pub fn scope(&self) -> StatsScope {
        static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        SCOPES.with(|s| s.borrow_mut().push((token, self.id, Stats::default())));
        StatsScope {
            token,
            _not_send: PhantomData,
        }
    }
}

/// The work one thread does on one context between [`Gpu::stats_scope`] and
/// [`StatsScope::finish`], whatever other threads do on the same context meanwhile.
/// (Subtracting two [`Gpu::stats`] snapshots counts every thread's work.) Scopes nest.
/// It stays on the thread that opened it.
///
/// [`Gpu::stats_scope`]: crate::Gpu::stats_scope
#[derive(Debug)]
pub struct StatsScope {
    token: u64,
    /// Scopes live in a thread-local list: sending one elsewhere would lose its counts.
    _not_send: PhantomData<*const ()>,
}

impl StatsScope {
    /// What this thread did on the context since the scope was opened.
    pub fn finish(self) -> Stats {
        self.take()
    }

    fn take(&self) -> Stats {
        SCOPES
            .try_with(|s| {
                let mut s = s.borrow_mut();
                let i = s.iter().position(|(t, _, _)| *t == self.token)?;
                Some(s.remove(i).2)
            })
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Drop for StatsScope {
    fn drop(&mut self) {
        // Closes the scope when `finish` was not called (an early return or a panic).
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope sees its own thread's work on its own context, nested scopes see theirs, the
    /// totals see everything.
    #[test]
    fn scopes_count_their_thread_and_context_only() {
        let c = Counters::default();
        let outer = c.scope();
        c.add(Counter::Dispatches, 2);
        let inner = c.scope();
        std::thread::scope(|s| {
            s.spawn(|| {
                let other = c.scope();
                c.add(Counter::Dispatches, 100);
                assert_eq!(other.finish().dispatches, 100);
            });
        });
        c.add(Counter::Submits, 1);
        Counters::default().add(Counter::Dispatches, 7);
        let want = Stats {
            submits: 1,
            ..Stats::default()
        };
        assert_eq!(inner.finish(), want);
        let want = Stats {
            dispatches: 2,
            submits: 1,
            ..Stats::default()
        };
        assert_eq!(outer.finish(), want);
        assert_eq!(c.snapshot().dispatches, 102);
        // A dropped scope is closed: nothing is left open on this thread.
        drop(c.scope());
        assert!(SCOPES.with(|s| s.borrow().is_empty()));
    }
}
