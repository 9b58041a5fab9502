//! A buffer pool so that steady-state work creates no new wgpu buffers.
//!
//! Buffers are binned by size class (powers of two split in quarters, so at most 25% is
//! wasted) and usage. A buffer returns to its bin when its last owner drops it; a
//! [`Recorder`](crate::Recorder) owns every buffer it bound until it has submitted, so a
//! buffer is never handed out again while unsubmitted commands still read it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::gate::GlGate;
use crate::stats::{Counter, Counters};

pub(crate) struct GpuBuffer {
    pub raw: wgpu::Buffer,
    /// Unique per wgpu buffer (stable across reuse), for caches keyed by buffer identity.
    pub id: u64,
    /// The bin this buffer returns to; `None` for buffers the pool does not own (weights).
    bin: Option<Bin>,
    pool: Weak<Pool>,
    gate: GlGate,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Bin {
    size: u64,
    usage: wgpu::BufferUsages,
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let (Some(bin), Some(pool)) = (self.bin, self.pool.upgrade())
            && let Ok(mut free) = pool.free.lock()
        {
            free.entry(bin)
                .or_default()
                .push((self.raw.clone(), self.id));
            return;
        }
        // Freed here rather than when the last handle goes: bind groups in the bind group
        // cache hold handles to the buffers they bind, and they would keep a dropped model's
        // weights alive. On GL it happens inside the gate. wgpu defers it to the next submit
        // or poll if commands still use the buffer; a cached bind group that binds it is never
        // looked up again, since buffer ids are not reused.
        let _gl = self.gate.enter();
        self.raw.destroy();
    }
}

#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<HashMap<Bin, Vec<(wgpu::Buffer, u64)>>>,
}

/// Rounds `size` up to its size class: 256 bytes at least, then 1, 1.25, 1.5, 1.75 × 2^k.
pub(crate) fn size_class(size: u64) -> u64 {
    if size <= 256 {
        return 256;
    }
    let p = size.next_power_of_two();
    let quarter = (p / 2) / 4;
    (1..=4)
        .map(|k| p / 2 + k * quarter)
        .find(|&c| c >= size)
        .unwrap_or(p)
}

impl Pool {
    /// A buffer of at least `size` bytes from the pool, or a new one.
    pub fn get(
        self: &Arc<Self>,
        device: &wgpu::Device,
        gate: &GlGate,
        counters: &Counters,
        next_id: &std::sync::atomic::AtomicU64,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Arc<GpuBuffer> {
        let bin = Bin {
            size: size_class(size),
            usage,
        };
        let reused = self
            .free
            .lock()
            .ok()
            .and_then(|mut free| free.get_mut(&bin).and_then(|v| v.pop()));
        let (raw, id) = match reused {
            Some(b) => b,
            None => (
                create(device, gate, counters, bin.size, usage),
                next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ),
        };
        Arc::new(GpuBuffer {
            raw,
            id,
            bin: Some(bin),
            pool: Arc::downgrade(self),
            gate: gate.clone(),
        })
    }

    /// A buffer of exactly `size` bytes that never returns to the pool (weights).
    pub fn dedicated(
        device: &wgpu::Device,
        gate: &GlGate,
        counters: &Counters,
        next_id: &std::sync::atomic::AtomicU64,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Arc<GpuBuffer> {
        Arc::new(GpuBuffer {
            raw: create(device, gate, counters, size, usage),
            id: next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            bin: None,
            pool: Weak::new(),
            gate: gate.clone(),
        })
    }

    /// Drops every idle buffer (frees GPU memory after a large job).
    pub fn trim(&self, gate: &GlGate) {
        if let Ok(mut free) = self.free.lock() {
            let _gl = gate.enter();
            free.clear();
        }
    }
}

fn create(
    device: &wgpu::Device,
    gate: &GlGate,
    counters: &Counters,
    size: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    counters.add(Counter::BuffersCreated, 1);
    counters.add(Counter::BytesAllocated, size);
    let _gl = gate.enter();
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("seqbridge"),
        size,
        usage,
        mapped_at_creation: false,
    })
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_and_waste_at_most_a_quarter() {
        for size in [
            1u64,
            255,
            256,
            257,
            1000,
            1024,
            1025,
            4097,
            1 << 20,
            (1 << 20) + 1,
            123_456_789,
        ] {
            let c = size_class(size);
            assert!(c >= size, "{size} -> {c}");
            assert!(
                size <= 256 || (c as f64) <= size as f64 * 1.25 + 1.0,
                "{size} -> {c}"
            );
        }
    }
}
