//! Records dispatches into one command encoder, submitted once.
//!
//! A decode step records all its dispatches into one [`Recorder`] and submits once. Kernel
//! parameters go into one uniform buffer per recorder, each dispatch at its own dynamic
//! offset, written with a single `write_buffer` at submit.

use std::sync::Arc;

use crate::bind_cache::BindKey;
use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::params::WgslParams;
use crate::pipeline::{Family, Kernel};
use crate::pool::GpuBuffer;
use crate::stats::Counter;
use crate::tensor::Tensor;

/// Bytes of one parameter chunk; a recorder with more parameters takes another chunk.
const PARAM_CHUNK: u64 = 64 * 1024;

struct ParamChunk {
    buf: Arc<GpuBuffer>,
    data: Vec<u8>,
}

/// An open command encoder plus everything its commands keep alive.
pub struct Recorder {
    gpu: Gpu,
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<ParamChunk>,
    /// Buffers bound by recorded commands: they must not return to the pool before submit.
    keep: Vec<Arc<GpuBuffer>>,
    dispatches: u64,
    /// Present when recording with timestamps: each dispatch then gets its own pass.
    profiler: Option<Profiler>,
    /// Dispatches recorded before the last [`Recorder::split_point`] cut.
    dispatches_at_split: u64,
}

/// Timestamp queries around every dispatch of a profiled recorder.
struct Profiler {
    sets: Vec<wgpu::QuerySet>,
    /// The kernel family of each timed dispatch, in order.
    families: Vec<Family>,
    /// The work of each timed dispatch, in order.
    work: Vec<Work>,
}

/// What one dispatch moves and computes, for the bench's roofline: bytes of device memory
/// read and written, and floating-point operations (an FMA counts 2). A launcher that knows
/// its traffic declares it ([`Recorder::declare_work`]); otherwise a dispatch counts the
/// bytes of every tensor it binds once, and no FLOPs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    pub bytes: u64,
    pub flops: u64,
}

impl std::ops::AddAssign for Work {
    fn add_assign(&mut self, o: Work) {
        self.bytes += o.bytes;
        self.flops += o.flops;
    }
}

/// Queries per query set (wgpu's maximum), two per dispatch.
const QUERIES_PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// GPU time per kernel family, from timestamp queries.
#[derive(Clone, Debug, Default)]
pub struct KernelTimes {
    /// Milliseconds per family, largest first.
    pub by_family: Vec<(Family, f64)>,
    /// The work of each family's dispatches (same families; see [`Work`]).
    pub work: Vec<(Family, Work)>,
    /// Sum over all dispatches.
    pub total_ms: f64,
}

/// A pending copy of a tensor to the host; [`Readback::wait`] after the recorder submitted.
pub struct Readback {
    gpu: Gpu,
    staging: Arc<GpuBuffer>,
    bytes: u64,
}

/// A host-visible buffer that a loop reads back through again and again
/// ([`Recorder::read_back_into`]): a step loop keeps a small ring of them for the whole
/// call rather than taking a staging buffer per step. A slot is free again once the
/// [`Readback`] made through it was waited for or dropped.
pub struct Staging {
    buf: Arc<GpuBuffer>,
    bytes: u64,
}

impl Staging {
    /// A staging buffer for tensors of up to `bytes` bytes.
    pub fn new(gpu: &Gpu, bytes: u64) -> Staging {
        Staging {
            buf: gpu.pooled(
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            bytes,
        }
    }
}

impl Recorder {
    pub fn new(gpu: &Gpu) -> Recorder {
        let encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("seqbridge"),
            });
        Recorder {
            gpu: gpu.clone(),
            encoder,
            pass: None,
            params: Vec::new(),
            keep: Vec::new(),
            dispatches: 0,
            profiler: None,
            dispatches_at_split: 0,
        }
    }

    /// A recorder that times every dispatch with timestamp queries (one pass per dispatch,
    /// so it perturbs what it measures a little). `None` when the adapter has no timestamps.
    pub fn with_timestamps(gpu: &Gpu) -> Option<Recorder> {
        if !gpu.caps().timestamps {
            return None;
        }
        let mut rec = Recorder::new(gpu);
        rec.profiler = Some(Profiler {
            sets: Vec::new(),
            families: Vec::new(),
            work: Vec::new(),
        });
        Some(rec)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        // Commands that are not dispatches must not interleave with an open pass.
        self.pass = None;
        &mut self.encoder
    }

    /// Appends `params` to the current chunk; returns (chunk index, byte offset).
    fn push_params(&mut self, bytes: &[u8], binding_size: u64) -> (usize, u32) {
        let align = self.gpu.limits().min_uniform_buffer_offset_alignment as u64;
        let fits = |c: &ParamChunk| {
            (c.data.len() as u64).div_ceil(align) * align + binding_size <= PARAM_CHUNK
        };
        if !self.params.last().is_some_and(fits) {
            let buf = self.gpu.pooled(
                PARAM_CHUNK,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            );
            self.params.push(ParamChunk {
                buf,
                data: Vec::new(),
            });
        }
        let idx = self.params.len() - 1;
        let chunk = &mut self.params[idx];
        let offset = (chunk.data.len() as u64).div_ceil(align) * align;
        chunk.data.resize(offset as usize, 0);
        chunk.data.extend_from_slice(bytes);
        // The binding reads `binding_size` bytes: keep the tail in range.
        chunk.data.resize((offset + binding_size) as usize, 0);
        (idx, offset as u32)
    }

    /// Records one dispatch of `kernel` with `params` and `tensors` bound in the order of the
    /// kernel's storage bindings.
    pub fn dispatch<P: WgslParams>(
        &mut self,
        kernel: &Kernel,
        params: &P,
        tensors: &[&Tensor],
        groups: [u32; 3],
    ) -> Result<()> {
        if tensors.len() != kernel.bindings.len() {
            return Err(Error::Shape {
                op: "dispatch",
                msg: format!(
                    "{} takes {} buffers, {} given",
                    kernel.label,
                    kernel.bindings.len(),
                    tensors.len()
                ),
            });
        }
        let max = self.gpu.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Shape {
                op: "dispatch",
                msg: format!(
                    "{}: grid {groups:?} exceeds {max} workgroups per dimension",
                    kernel.label
                ),
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let (chunk, offset) = self.push_params(bytemuck::bytes_of(params), kernel.params_size);
        let params = &self.params[chunk].buf;
        let key = BindKey {
            kernel: kernel.id,
            entries: std::iter::once((0, params.id, 0, kernel.params_size))
                .chain(
                    tensors
                        .iter()
                        .zip(kernel.bindings)
                        .map(|(t, &(binding, _))| (binding, t.buf.id, t.offset, t.byte_len())),
                )
                .collect(),
        };
        let bind_group = self.gpu.bind_groups().get_or_make(key, || {
            let mut entries = Vec::with_capacity(tensors.len() + 1);
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params.raw,
                    offset: 0,
                    size: wgpu::BufferSize::new(kernel.params_size),
                }),
            });
            for (t, &(binding, _)) in tensors.iter().zip(kernel.bindings) {
                entries.push(wgpu::BindGroupEntry {
                    binding,
                    resource: t.binding(),
                });
            }
            self.gpu.counters().add(Counter::BindGroupsCreated, 1);
            self.gpu
                .device()
                .create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &kernel.layout,
                    entries: &entries,
                })
        });
        self.keep.extend(tensors.iter().map(|t| t.buf.clone()));

        let mut pass = if let Some(prof) = self.profiler.as_mut() {
            // A pass per dispatch, with timestamps at its boundaries.
            self.pass = None;
            let n = prof.families.len() as u32;
            let first = n * 2 % QUERIES_PER_SET;
            // A new set when the last one is full (or there is none yet); handles are
            // reference-counted, so the clone is cheap.
            let set = match prof.sets.last() {
                Some(set) if first != 0 => set.clone(),
                _ => {
                    let _gl = self.gpu.gate().enter();
                    let set = self
                        .gpu
                        .device()
                        .create_query_set(&wgpu::QuerySetDescriptor {
                            label: Some("seqbridge timestamps"),
                            ty: wgpu::QueryType::Timestamp,
                            count: QUERIES_PER_SET,
                        });
                    prof.sets.push(set.clone());
                    set
                }
            };
            prof.families.push(kernel.family);
            prof.work.push(Work {
                bytes: tensors.iter().map(|t| t.byte_len()).sum(),
                flops: 0,
            });
            self.encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&kernel.label),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(first),
                        end_of_pass_write_index: Some(first + 1),
                    }),
                })
                .forget_lifetime()
        } else if let Some(pass) = self.pass.take() {
            pass
        } else {
            self.encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime()
        };
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        // Kept open: the next dispatch of a plain recorder continues in the same pass.
        self.pass = Some(pass);
        self.dispatches += 1;
        self.gpu.counters().add(Counter::Dispatches, 1);
        Ok(())
    }

    /// Replaces the work counted for the last dispatch (a profiled recorder only; free
    /// otherwise) with what its launcher knows it moves and computes.
    pub fn declare_work(&mut self, work: Work) {
        if let Some(w) = self.profiler.as_mut().and_then(|p| p.work.last_mut()) {
            *w = work;
        }
    }

    /// Copies `src` into `dst` (whole tensors of the same byte length).
    pub fn copy(&mut self, src: &Tensor, dst: &Tensor) -> Result<()> {
        if src.byte_len() != dst.byte_len() {
            return Err(Error::Shape {
                op: "copy",
                msg: format!("{src:?} and {dst:?} differ in size"),
            });
        }
        self.keep.push(src.buf.clone());
        self.keep.push(dst.buf.clone());
        let (s, so, d, doff, n) = (
            src.buf.raw.clone(),
            src.offset,
            dst.buf.raw.clone(),
            dst.offset,
            src.byte_len(),
        );
        self.encoder().copy_buffer_to_buffer(&s, so, &d, doff, n);
        Ok(())
    }

    /// Copies elements `src_start .. src_start + len` of `src` to `dst_start ..` of `dst` (same
    /// dtype; offsets need no storage alignment, only whole elements).
    pub fn copy_elements(
        &mut self,
        src: &Tensor,
        src_start: usize,
        dst: &Tensor,
        dst_start: usize,
        len: usize,
    ) -> Result<()> {
        let fits =
            |t: &Tensor, start: usize| start.checked_add(len).is_some_and(|e| e <= t.numel());
        if src.dtype() != dst.dtype() || !fits(src, src_start) || !fits(dst, dst_start) {
            return Err(Error::Shape {
                op: "copy_elements",
                msg: format!(
                    "{len} elements from {src_start} of {src:?} to {dst_start} of {dst:?}"
                ),
            });
        }
        if len == 0 {
            return Ok(());
        }
        let size = src.dtype().size() as u64;
        self.keep.push(src.buf.clone());
        self.keep.push(dst.buf.clone());
        let (s, so, d, doff) = (
            src.buf.raw.clone(),
            src.offset + src_start as u64 * size,
            dst.buf.raw.clone(),
            dst.offset + dst_start as u64 * size,
        );
        self.encoder()
            .copy_buffer_to_buffer(&s, so, &d, doff, len as u64 * size);
        Ok(())
    }

    /// Fills a tensor with zero bytes.
    pub fn zero(&mut self, t: &Tensor) {
        self.keep.push(t.buf.clone());
        let (b, o, n) = (t.buf.raw.clone(), t.offset, t.byte_len());
        self.encoder().clear_buffer(&b, o, Some(n));
    }

    /// Schedules a copy of `t` to a host-visible buffer; read it with [`Readback::wait`]
    /// once this recorder has been submitted.
    pub fn read_back(&mut self, t: &Tensor) -> Result<Readback> {
        let bytes = t.byte_len();
        let staging = self.gpu.pooled(
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        self.keep.push(t.buf.clone());
        let (src, off, dst) = (t.buf.raw.clone(), t.offset, staging.raw.clone());
        self.encoder()
            .copy_buffer_to_buffer(&src, off, &dst, 0, bytes);
        Ok(Readback {
            gpu: self.gpu.clone(),
            staging,
            bytes,
        })
    }

    /// [`Recorder::read_back`] through `staging` instead of a staging buffer of its own.
    pub fn read_back_into(&mut self, t: &Tensor, staging: &Staging) -> Result<Readback> {
        let bytes = t.byte_len();
        if bytes > staging.bytes {
            return Err(Error::Shape {
                op: "read_back_into",
                msg: format!(
                    "{t:?} does not fit a staging buffer of {} bytes",
                    staging.bytes
                ),
            });
        }
        self.keep.push(t.buf.clone());
        let (src, off, dst) = (t.buf.raw.clone(), t.offset, staging.buf.raw.clone());
        self.encoder()
            .copy_buffer_to_buffer(&src, off, &dst, 0, bytes);
        Ok(Readback {
            gpu: self.gpu.clone(),
            staging: staging.buf.clone(),
            bytes,
        })
    }

    /// Uploads the parameters and submits everything recorded, as one command buffer.
    pub fn submit(mut self) -> wgpu::SubmissionIndex {
        let gpu = self.gpu.clone();
        let _gl = gpu.gate().enter();
        // Timestamp query sets are freed inside the gate too; the buffers this recorder
        // kept return to the pool (or are freed, gated themselves) after it.
        drop(self.profiler.take());
        self.submit_recorded()
    }

    /// A place where a long recording (an encoder's layer stack) may be cut in two. On a
    /// device shared with a host ([`Gpu::from_device`]), what is recorded since the last cut
    /// is submitted here and waited for, so the queue never holds more than that piece ahead
    /// of the host's own submissions (a window's frames): they wait for one piece, not for
    /// the whole recording. Elsewhere it does nothing: one submit is cheaper.
    pub fn split_point(&mut self) -> Result<()> {
        if !self.gpu.shares_queue() || self.dispatches == self.dispatches_at_split {
            return Ok(());
        }
        self.dispatches_at_split = self.dispatches;
        let gpu = self.gpu.clone();
        let index = {
            let _gl = gpu.gate().enter();
            self.submit_recorded()
        };
        gpu.wait_for(index)
    }

    /// Submits the commands and parameters recorded so far and opens a new command buffer;
    /// the buffers bound so far stay kept until the recorder is dropped. Callers hold the gate.
    fn submit_recorded(&mut self) -> wgpu::SubmissionIndex {
        self.pass = None;
        for chunk in &self.params {
            self.gpu
                .queue()
                .write_buffer(&chunk.buf.raw, 0, &chunk.data);
            self.gpu.note_upload(chunk.data.len() as u64);
        }
        // Dispatches after this point take fresh parameter chunks.
        self.keep
            .extend(self.params.drain(..).map(|chunk| chunk.buf));
        let next = self
            .gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("seqbridge"),
            });
        let encoder = std::mem::replace(&mut self.encoder, next);
        let index = self.gpu.queue().submit([encoder.finish()]);
        self.gpu.counters().add(Counter::Submits, 1);
        index
    }
}

impl Recorder {
    /// Submits, waits, and returns the GPU time of each kernel family. Without timestamps
    /// (a recorder made by [`Recorder::new`]) it submits and returns empty times.
    pub fn submit_timed(mut self) -> Result<KernelTimes> {
        let Some(prof) = self.profiler.take() else {
            self.submit();
            return Ok(KernelTimes::default());
        };
        let n = prof.families.len() as u64;
        let bytes = (n * 2 * 8).max(8);
        let resolve = self.gpu.pooled(
            bytes.div_ceil(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT)
                * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        );
        let staging = self.gpu.pooled(
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let (res, stg) = (resolve.raw.clone(), staging.raw.clone());
        let encoder = self.encoder();
        let mut left = n as u32 * 2;
        for (i, set) in prof.sets.iter().enumerate() {
            let count = left.min(QUERIES_PER_SET);
            let at = i as u64 * QUERIES_PER_SET as u64 * 8;
            encoder.resolve_query_set(set, 0..count, &res, at);
            left -= count;
        }
        encoder.copy_buffer_to_buffer(&res, 0, &stg, 0, bytes);
        self.keep.push(resolve);
        let gpu = self.gpu.clone();
        self.submit();
        let ticks = Readback {
            gpu: gpu.clone(),
            staging,
            bytes,
        }
        .wait()?;
        let ticks: &[u64] = bytemuck::cast_slice(&ticks);
        let period_ms = gpu.queue().get_timestamp_period() as f64 * 1e-6;
        let mut by_family: Vec<(Family, f64)> = Vec::new();
        let mut work: Vec<(Family, Work)> = Vec::new();
        for (i, (family, w)) in prof.families.iter().zip(&prof.work).enumerate() {
            let ms = ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period_ms;
            match by_family.iter_mut().find(|(f, _)| f == family) {
                Some((_, t)) => *t += ms,
                None => by_family.push((*family, ms)),
            }
            match work.iter_mut().find(|(f, _)| f == family) {
                Some((_, t)) => *t += *w,
                None => work.push((*family, *w)),
            }
        }
        {
            let _gl = gpu.gate().enter();
            drop(prof);
        }
        by_family.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total_ms = by_family.iter().map(|(_, t)| t).sum();
        Ok(KernelTimes {
            by_family,
            work,
            total_ms,
        })
    }
}

impl Readback {
    /// Waits for the copy and returns the bytes. It waits for everything submitted so far:
    /// a loop that keeps work queued behind the copy waits with [`Readback::wait_for`].
    pub fn wait(self) -> Result<Vec<u8>> {
        self.wait_poll(wgpu::PollType::wait_indefinitely())
    }

    /// Waits for the copy, submitted in `submission`, and no longer: later submissions keep
    /// running while the host reads the bytes.
    pub fn wait_for(self, submission: wgpu::SubmissionIndex) -> Result<Vec<u8>> {
        self.wait_poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
    }

    /// [`Readback::wait_for`] as u32 values.
    pub fn wait_for_u32(self, submission: wgpu::SubmissionIndex) -> Result<Vec<u32>> {
        Ok(bytemuck::cast_slice(&self.wait_for(submission)?).to_vec())
    }

    fn wait_poll(self, poll: wgpu::PollType) -> Result<Vec<u8>> {
        let _gl = self.gpu.gate().enter();
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging
            .raw
            .map_async(wgpu::MapMode::Read, 0..self.bytes, move |r| {
                let _ = tx.send(r);
            });
        self.gpu
            .device()
            .poll(poll)
            .map_err(|e| Error::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| Error::Readback(e.to_string()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let out = {
            let view = self
                .staging
                .raw
                .get_mapped_range(0..self.bytes)
                .map_err(|e| Error::Readback(e.to_string()))?;
            view.to_vec()
        };
        self.staging.raw.unmap();
        self.gpu.counters().add(Counter::BytesReadBack, self.bytes);
        Ok(out)
    }

    /// Waits and reinterprets the bytes as u32 values.
    pub fn wait_u32(self) -> Result<Vec<u32>> {
        Ok(bytemuck::cast_slice(&self.wait()?).to_vec())
    }

    /// Waits and reinterprets the bytes as f32 values.
    pub fn wait_f32(self) -> Result<Vec<f32>> {
        Ok(bytemuck::cast_slice(&self.wait()?).to_vec())
    }
}
