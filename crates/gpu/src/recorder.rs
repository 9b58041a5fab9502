//! Records dispatches into one command encoder, submitted once.
//!
//! A decode step records all its dispatches into one [`Recorder`] and submits once. Kernel
//! parameters go into one uniform buffer per recorder, each dispatch at its own dynamic
//! offset, written with a single `write_buffer` at submit.

use std::sync::Arc;

use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::params::WgslParams;
use crate::pipeline::Kernel;
use crate::pool::GpuBuffer;
use crate::stats::Counters;
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
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<ParamChunk>,
    /// Buffers bound by recorded commands: they must not return to the pool before submit.
    keep: Vec<Arc<GpuBuffer>>,
    dispatches: u64,
}

/// A pending copy of a tensor to the host; [`Readback::wait`] after the recorder submitted.
pub struct Readback {
    gpu: Gpu,
    staging: Arc<GpuBuffer>,
    bytes: u64,
}

impl Recorder {
    pub fn new(gpu: &Gpu) -> Recorder {
        let encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("seqbridge") });
        Recorder {
            gpu: gpu.clone(),
            encoder: Some(encoder),
            pass: None,
            params: Vec::new(),
            keep: Vec::new(),
            dispatches: 0,
        }
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
        self.encoder
            .as_mut()
            .expect("the encoder lives until submit, which consumes the recorder")
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
                msg: format!("{}: grid {groups:?} exceeds {max} workgroups per dimension", kernel.label),
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let (chunk, offset) = self.push_params(bytemuck::bytes_of(params), kernel.params_size);
        let mut entries = Vec::with_capacity(tensors.len() + 1);
        entries.push(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.params[chunk].buf.raw,
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
        let bind_group = self
            .gpu
            .device()
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &kernel.layout,
                entries: &entries,
            });
        self.keep.extend(tensors.iter().map(|t| t.buf.clone()));

        if self.pass.is_none() {
            let encoder = self
                .encoder
                .as_mut()
                .expect("the encoder lives until submit, which consumes the recorder");
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        let pass = self.pass.as_mut().expect("opened above");
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        self.dispatches += 1;
        Counters::add(&self.gpu.counters().dispatches, 1);
        Ok(())
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
        self.encoder().copy_buffer_to_buffer(&src, off, &dst, 0, bytes);
        Ok(Readback {
            gpu: self.gpu.clone(),
            staging,
            bytes,
        })
    }

    /// Uploads the parameters and submits everything recorded, as one command buffer.
    pub fn submit(mut self) -> wgpu::SubmissionIndex {
        self.pass = None;
        for chunk in &self.params {
            self.gpu.queue().write_buffer(&chunk.buf.raw, 0, &chunk.data);
            self.gpu.note_upload(chunk.data.len() as u64);
        }
        let encoder = self
            .encoder
            .take()
            .expect("the encoder lives until submit, which consumes the recorder");
        let index = self.gpu.queue().submit([encoder.finish()]);
        Counters::add(&self.gpu.counters().submits, 1);
        index
    }
}

impl Readback {
    /// Waits for the copy and returns the bytes.
    pub fn wait(self) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging
            .raw
            .map_async(wgpu::MapMode::Read, 0..self.bytes, move |r| {
                let _ = tx.send(r);
            });
        self.gpu
            .device()
            .poll(wgpu::PollType::wait_indefinitely())
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
        Counters::add(&self.gpu.counters().bytes_read_back, self.bytes);
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
