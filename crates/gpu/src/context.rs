//! The GPU context: adapter, device, queue, capabilities, caches and counters.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::bind_cache::BindCache;
use crate::error::{Error, Result};
use crate::gate::GlGate;
use crate::params::WgslParams;
use crate::pipeline::{Bindings, Kernel, KernelKey, PipelineCache};
use crate::pool::{GpuBuffer, Pool};
use crate::stats::{Counter, Counters, Stats, StatsScope};
use crate::tensor::{DType, Element, Tensor, numel, padded_bytes};

/// How to pick the adapter for a headless context.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Backends to consider (`None`: all that wgpu was built with).
    pub backends: Option<wgpu::Backends>,
    /// Keep only adapters whose name contains this (case-insensitive).
    pub adapter: Option<String>,
}

/// The names `SEQBRIDGE_BACKEND` accepts, and the backends they stand for.
const BACKEND_NAMES: &[(&str, wgpu::Backends)] = &[
    ("vulkan", wgpu::Backends::VULKAN),
    ("gl", wgpu::Backends::GL),
    ("metal", wgpu::Backends::METAL),
    ("dx12", wgpu::Backends::DX12),
];

impl GpuOptions {
    /// Reads `SEQBRIDGE_BACKEND` (`vulkan`, `gl`, `metal`, `dx12`, comma-separated) and
    /// `SEQBRIDGE_ADAPTER` (a substring of the adapter name). A backend name outside that
    /// list is an error naming it (it would otherwise select no backend at all).
    pub fn from_env() -> Result<Self> {
        let backends = match std::env::var("SEQBRIDGE_BACKEND") {
            Ok(s) if !s.trim().is_empty() => Some(parse_backends(&s)?),
            _ => None,
        };
        let adapter = std::env::var("SEQBRIDGE_ADAPTER")
            .ok()
            .filter(|s| !s.trim().is_empty());
        Ok(GpuOptions { backends, adapter })
    }
}

/// `vulkan`, `gl`, `metal`, `dx12`, comma-separated, any case.
pub fn parse_backends(list: &str) -> Result<wgpu::Backends> {
    let mut out = wgpu::Backends::empty();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let lower = name.to_lowercase();
        let found = BACKEND_NAMES.iter().find(|(n, _)| *n == lower);
        match found {
            Some((_, b)) => out |= *b,
            None => {
                let names: Vec<&str> = BACKEND_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(Error::Setting(format!(
                    "SEQBRIDGE_BACKEND={list:?}: {name:?} is not a backend; use {} (comma-separated)",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// What the device can do, read from the adapter (never assumed).
#[derive(Clone, Debug)]
pub struct Caps {
    /// WGSL `f16` arithmetic (`shader-f16`). Storage of f16 weights does not need it.
    pub shader_f16: bool,
    /// Subgroup operations, with the adapter's subgroup size range.
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// Timestamp queries at pass boundaries.
    pub timestamps: bool,
}

/// Names of the adapter for reports.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub driver: String,
    pub device_type: String,
}

/// A handle to the GPU. Cheap to clone; all clones share device, caches and counters.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    caps: Caps,
    limits: wgpu::Limits,
    pipelines: PipelineCache,
    pool: Arc<Pool>,
    counters: Counters,
    next_buffer_id: AtomicU64,
    /// Errors wgpu reported outside an error scope (instead of its default panic).
    uncaptured: Arc<Mutex<Vec<String>>>,
    /// Queues this crate's GL calls (see [`crate::gate`]).
    gate: GlGate,
    /// Made by [`Gpu::from_device`]: the host submits to the same queue.
    shared: bool,
    bind_groups: BindCache,
}

/// Ranks adapters: real GPUs first, then software; native APIs before GL.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (ty, backend)
}

/// The device seqbridge asks `adapter` for: the adapter's real limits (not wgpu's small
/// portable defaults) and the optional features the kernels use where present (f16,
/// subgroups, timestamps). A host that creates the device it then passes to
/// [`Gpu::from_device`] (a window's renderer) gets the same kernels by asking for this.
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    let wanted_features = wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    wgpu::DeviceDescriptor {
        label: Some("seqbridge"),
        required_features: adapter.features() & wanted_features,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }
}

impl Gpu {
    /// A headless context on the adapter picked from [`GpuOptions::from_env`].
    pub fn new() -> Result<Gpu> {
        Gpu::with_options(&GpuOptions::from_env()?)
    }

    /// A headless context on `opts`; when it names no backend, the native APIs (Vulkan,
    /// Metal, DX12) first, so that GL's window-system probing (and its stderr chatter) only
    /// happens when none of them gives a device. What the command line and the Python
    /// package open.
    pub fn open(opts: &GpuOptions) -> Result<Gpu> {
        if opts.backends.is_none() {
            let native = GpuOptions {
                backends: Some(wgpu::Backends::PRIMARY),
                ..opts.clone()
            };
            if let Ok(gpu) = Gpu::with_options(&native) {
                return Ok(gpu);
            }
        }
        Gpu::with_options(opts)
    }

    /// A headless context on the best adapter that matches `opts`.
    pub fn with_options(opts: &GpuOptions) -> Result<Gpu> {
        let backends = opts.backends.unwrap_or(wgpu::Backends::all());
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        desc.flags = wgpu::InstanceFlags::from_build_config().with_env();
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let wanted = opts.adapter.as_ref().map(|s| s.to_lowercase());
        let adapter = adapters
            .into_iter()
            .filter(|a| {
                wanted
                    .as_ref()
                    .is_none_or(|w| a.get_info().name.to_lowercase().contains(w))
            })
            .min_by_key(|a| adapter_rank(&a.get_info()))
            .ok_or_else(|| {
                Error::NoAdapter(format!(
                    "backends {backends:?}, adapter filter {:?}; adapters present: [{}]",
                    opts.adapter,
                    names.join(", ")
                ))
            })?;

        let (device, queue) =
            pollster::block_on(adapter.request_device(&device_descriptor(&adapter)))
                .map_err(|e| Error::RequestDevice(e.to_string()))?;
        Ok(Gpu::wrap(Some(&adapter), device, queue, false))
    }

    /// Wraps a device and queue that the host application already owns (desktop embedding).
    /// Pass the adapter when you have it: subgroup sizes are read from its info; without it
    /// the kernels do not use subgroups, and on GL this crate's threads are not queued for
    /// the device (wgpu's GL backend panics when one waits over 6 s for another). Limits and
    /// features are the device's: a device requested with [`device_descriptor`] has the
    /// adapter's, others run within their own.
    ///
    /// The host's own submissions (a window's frames) share the queue with this crate's, so
    /// long recordings are cut into several submits at [`crate::Recorder::split_point`]s.
    pub fn from_device(
        adapter: Option<&wgpu::Adapter>,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Gpu {
        Gpu::wrap(adapter, device, queue, true)
    }

    fn wrap(
        adapter: Option<&wgpu::Adapter>,
        device: wgpu::Device,
        queue: wgpu::Queue,
        shared: bool,
    ) -> Gpu {
        let features = device.features();
        let info = adapter.map(|a| a.get_info());
        let subgroup_sizes = info
            .as_ref()
            .map(|i| (i.subgroup_min_size, i.subgroup_max_size));
        let gate = info
            .as_ref()
            .map_or_else(GlGate::default, |i| GlGate::for_backend(i.backend));
        let caps = Caps {
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP) && subgroup_sizes.is_some(),
            subgroup_min_size: subgroup_sizes.map_or(0, |s| s.0),
            subgroup_max_size: subgroup_sizes.map_or(0, |s| s.1),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        };
        let adapter = match info {
            Some(i) => AdapterSummary {
                name: i.name,
                backend: format!("{:?}", i.backend),
                driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
                device_type: format!("{:?}", i.device_type),
            },
            None => AdapterSummary {
                name: "host-provided device".into(),
                backend: "unknown".into(),
                driver: String::new(),
                device_type: "unknown".into(),
            },
        };
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Gpu {
            inner: Arc::new(Inner {
                limits: device.limits(),
                device,
                queue,
                adapter,
                caps,
                pipelines: PipelineCache::default(),
                pool: Arc::new(Pool::default()),
                counters: Counters::default(),
                next_buffer_id: AtomicU64::new(0),
                uncaptured,
                gate,
                shared,
                bind_groups: BindCache::default(),
            }),
        }
    }

    /// What this context got from its adapter: name, backend, driver, features and the
    /// limits the kernels size themselves by.
    pub fn describe(&self) -> String {
        let (a, c, l) = (self.adapter(), self.caps(), self.limits());
        let subgroups = if c.subgroups {
            format!("yes, size {}..{}", c.subgroup_min_size, c.subgroup_max_size)
        } else {
            "no".into()
        };
        format!(
            "adapter: {} ({}, {})\ndriver: {}\nshader-f16: {}\nsubgroups: {subgroups}\ntimestamp queries: {}\n\
             max storage binding: {} bytes\nmax buffer: {} bytes\nmax workgroup storage: {} bytes\n\
             max invocations per workgroup: {}\nmax workgroups per dimension: {}\n",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            if c.shader_f16 { "yes" } else { "no" },
            if c.timestamps { "yes" } else { "no" },
            l.max_storage_buffer_binding_size,
            l.max_buffer_size,
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
        )
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }
    pub fn adapter(&self) -> &AdapterSummary {
        &self.inner.adapter
    }
    pub fn caps(&self) -> &Caps {
        &self.inner.caps
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }
    /// A snapshot of the counters since the context was created: every thread's work.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }
    /// Starts counting the work of the current thread alone on this context (a call's own
    /// stats while other threads share the context); [`StatsScope::finish`] returns it.
    pub fn stats_scope(&self) -> StatsScope {
        self.inner.counters.scope()
    }
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }
    /// Whether the device came from the host ([`Gpu::from_device`]), whose own submissions
    /// wait behind this crate's.
    pub fn shares_queue(&self) -> bool {
        self.inner.shared
    }

    pub(crate) fn bind_groups(&self) -> &BindCache {
        &self.inner.bind_groups
    }

    pub(crate) fn gate(&self) -> &GlGate {
        &self.inner.gate
    }
    /// Number of compiled pipelines.
    pub fn pipelines_compiled(&self) -> usize {
        self.inner.pipelines.len()
    }

    /// Fails with the first error wgpu reported outside an error scope, if any.
    pub fn check_errors(&self) -> Result<()> {
        let mut v = self
            .inner
            .uncaptured
            .lock()
            .map_err(|_| Error::Device("error log lock poisoned".into()))?;
        match v.drain(..).next() {
            Some(e) => Err(Error::Device(e)),
            None => Ok(()),
        }
    }

    /// The compiled kernel for `key`, building it on first use.
    pub fn kernel<P: WgslParams>(
        &self,
        key: &KernelKey,
        bindings: Bindings,
    ) -> Result<Arc<Kernel>> {
        self.inner.pipelines.get_or_build(
            &self.inner.device,
            &self.inner.gate,
            key,
            P::WGSL,
            std::mem::size_of::<P>(),
            bindings,
        )
    }

    /// Largest single storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.inner
            .limits
            .max_storage_buffer_binding_size
            .min(self.inner.limits.max_buffer_size)
    }

    fn check_size(&self, what: impl FnOnce() -> String, bytes: u64) -> Result<()> {
        let limit = self.max_binding();
        if bytes > limit {
            return Err(Error::TooLarge {
                what: what(),
                needed: bytes,
                limit,
            });
        }
        Ok(())
    }

    pub(crate) fn pooled(&self, bytes: u64, usage: wgpu::BufferUsages) -> Arc<GpuBuffer> {
        self.inner.pool.get(
            &self.inner.device,
            &self.inner.gate,
            &self.inner.counters,
            &self.inner.next_buffer_id,
            bytes,
            usage,
        )
    }

    const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
        .union(wgpu::BufferUsages::COPY_DST)
        .union(wgpu::BufferUsages::COPY_SRC);

    /// A tensor from the pool. Its contents are unspecified until a kernel writes it.
    pub fn empty(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = padded_bytes(numel(shape), dtype);
        self.check_size(|| format!("tensor {shape:?} {}", dtype.name()), bytes)?;
        Ok(Tensor::from_parts(
            self.clone(),
            self.pooled(bytes, Self::TENSOR_USAGE),
            shape.to_vec(),
            dtype,
        ))
    }

    /// A pooled tensor holding `data`.
    pub fn upload<T: Element>(&self, data: &[T], shape: &[usize]) -> Result<Tensor> {
        let t = self.empty(shape, T::DTYPE)?;
        self.write(&t, data)?;
        Ok(t)
    }

    /// A tensor outside the pool, sized exactly, holding `data`: for weights that live as
    /// long as the model.
    pub fn upload_dedicated<T: Element>(&self, data: &[T], shape: &[usize]) -> Result<Tensor> {
        let bytes = padded_bytes(numel(shape), T::DTYPE);
        self.check_size(|| format!("tensor {shape:?} {}", T::DTYPE.name()), bytes)?;
        let buf = Pool::dedicated(
            &self.inner.device,
            &self.inner.gate,
            &self.inner.counters,
            &self.inner.next_buffer_id,
            bytes,
            Self::TENSOR_USAGE,
        );
        let t = Tensor::from_parts(self.clone(), buf, shape.to_vec(), T::DTYPE);
        self.write(&t, data)?;
        Ok(t)
    }

    /// Overwrites a tensor's contents (ordered before the next submit).
    pub fn write<T: Element>(&self, t: &Tensor, data: &[T]) -> Result<()> {
        if T::DTYPE != t.dtype() {
            return Err(Error::Shape {
                op: "write",
                msg: format!(
                    "writing {} data into a {} tensor",
                    T::DTYPE.name(),
                    t.dtype().name()
                ),
            });
        }
        if data.len() != t.numel() {
            return Err(Error::DataLength {
                got: data.len(),
                expected: t.numel(),
                shape: t.shape().to_vec(),
            });
        }
        let mut bytes: Vec<u8> = bytemuck::cast_slice(data).to_vec();
        bytes.resize(t.byte_len() as usize, 0);
        if !bytes.is_empty() {
            let _gl = self.inner.gate.enter();
            self.inner.queue.write_buffer(&t.buf.raw, t.offset, &bytes);
        }
        self.inner
            .counters
            .add(Counter::BytesUploaded, bytes.len() as u64);
        Ok(())
    }

    pub(crate) fn note_upload(&self, bytes: u64) {
        self.inner.counters.add(Counter::BytesUploaded, bytes);
    }

    /// Blocking copy of a tensor's bytes to the host.
    pub(crate) fn read_bytes(&self, t: &Tensor) -> Result<Vec<u8>> {
        let mut rec = crate::Recorder::new(self);
        let rb = rec.read_back(t)?;
        rec.submit();
        rb.wait()
    }

    /// Blocks until all submitted work has finished.
    pub fn wait_idle(&self) -> Result<()> {
        let _gl = self.inner.gate.enter();
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(e.to_string()))
    }

    /// Waits until the GPU has run `submission`.
    pub(crate) fn wait_for(&self, submission: wgpu::SubmissionIndex) -> Result<()> {
        let _gl = self.inner.gate.enter();
        self.inner
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map(|_| ())
            .map_err(|e| Error::Device(e.to_string()))
    }

    /// Frees idle pooled buffers.
    pub fn trim_pool(&self) {
        // Cached bind groups hold buffer handles: drop them first, so the memory goes too.
        self.inner.bind_groups.clear();
        self.inner.pool.trim(&self.inner.gate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_backends("vulkan").unwrap(), wgpu::Backends::VULKAN);
        assert_eq!(
            parse_backends(" GL , vulkan").unwrap(),
            wgpu::Backends::GL | wgpu::Backends::VULKAN
        );
        let e = parse_backends("vulkan,bogus").unwrap_err().to_string();
        assert!(
            e.contains("\"bogus\" is not a backend") && e.contains("vulkan, gl, metal, dx12"),
            "{e}"
        );
    }
}
