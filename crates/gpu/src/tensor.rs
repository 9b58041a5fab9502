//! Device tensors: a pooled buffer plus a shape and a storage dtype.

use std::sync::Arc;

use crate::context::Gpu;
use crate::error::{Error, Result, shape_err};
use crate::pool::GpuBuffer;

/// How a tensor's elements are stored on the GPU. Kernels always compute in f32; F16 is a
/// storage format (weights), read in shaders with `unpack2x16float`, so it needs no
/// `shader-f16` feature and works on every backend. I8 is the storage of int8 weights
/// (four to a u32 word, read with `unpack4xI8`), which matmul scales per output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    U32,
    I8,
}

impl DType {
    /// Bytes one element takes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
            DType::I8 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::U32 => "u32",
            DType::I8 => "i8",
        }
    }
}

/// Host element types that can be uploaded as-is.
pub trait Element: bytemuck::Pod {
    const DTYPE: DType;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for u32 {
    const DTYPE: DType = DType::U32;
}
impl Element for i8 {
    const DTYPE: DType = DType::I8;
}

/// A tensor resident on the GPU. Cloning is cheap and shares the buffer; the buffer goes
/// back to the pool when the last clone (and any recorder that bound it) is dropped.
/// Kernels write through `&Tensor`: GPU memory is not tracked by Rust's borrows.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) gpu: Gpu,
    pub(crate) buf: Arc<GpuBuffer>,
    /// Byte offset of element 0 inside the buffer (non-zero only for views).
    pub(crate) offset: u64,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {})", self.shape, self.dtype.name())
    }
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Buffer bytes for `n` elements of `dtype`: bindings must be a multiple of 4 bytes.
pub(crate) fn padded_bytes(n: usize, dtype: DType) -> u64 {
    ((n * dtype.size()) as u64).div_ceil(4).max(1) * 4
}

impl Tensor {
    pub(crate) fn from_parts(
        gpu: Gpu,
        buf: Arc<GpuBuffer>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Self {
        Tensor {
            gpu,
            buf,
            offset: 0,
            shape,
            dtype,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Bytes the elements take (rounded up to whole 4-byte words).
    pub fn byte_len(&self) -> u64 {
        padded_bytes(self.numel(), self.dtype)
    }

    /// Size of dimension `i`, counted from the end when negative (`dim(-1)` is the last).
    pub fn dim(&self, i: isize) -> usize {
        let n = self.shape.len() as isize;
        let i = if i < 0 { n + i } else { i };
        if i < 0 || i >= n {
            1
        } else {
            self.shape[i as usize]
        }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return shape_err(
                "reshape",
                format!("cannot view {:?} as {:?}", self.shape, shape),
            );
        }
        let mut t = self.clone();
        t.shape = shape.to_vec();
        Ok(t)
    }

    /// A view of `shape` starting `start` elements into this tensor. The byte offset must be
    /// a multiple of the adapter's storage offset alignment (256 bytes on most adapters).
    pub fn view(&self, start: usize, shape: &[usize]) -> Result<Tensor> {
        let end = start + numel(shape);
        if end > self.numel() {
            return shape_err(
                "view",
                format!("elements {start}..{end} are outside {:?}", self.shape),
            );
        }
        let offset = self.offset + (start * self.dtype.size()) as u64;
        let align = self.gpu.limits().min_storage_buffer_offset_alignment as u64;
        if !offset.is_multiple_of(align) {
            return shape_err(
                "view",
                format!(
                    "byte offset {offset} is not a multiple of the adapter's {align}-byte storage alignment"
                ),
            );
        }
        Ok(Tensor {
            gpu: self.gpu.clone(),
            buf: self.buf.clone(),
            offset,
            shape: shape.to_vec(),
            dtype: self.dtype,
        })
    }

    /// The wgpu buffer behind this tensor (for hosts that embed the engine). Use it while the
    /// tensor lives: on GL a buffer outside the pool is destroyed when its last tensor goes.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buf.raw
    }

    /// Where element 0 lies in [`Tensor::buffer`], in bytes (non-zero for views): a host
    /// binding the buffer in its own pipeline binds from here, [`Tensor::byte_len`] bytes.
    pub fn byte_offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buf.raw,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.byte_len()),
        })
    }

    /// Blocking download, converted to f32 (f16 widened, u32 and i8 cast; int8 weights come
    /// back unscaled).
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let bytes = self.gpu.read_bytes(self)?;
        let n = self.numel();
        Ok(match self.dtype {
            DType::F32 => bytemuck::cast_slice::<u8, f32>(&bytes)[..n].to_vec(),
            DType::U32 => bytemuck::cast_slice::<u8, u32>(&bytes)[..n]
                .iter()
                .map(|&v| v as f32)
                .collect(),
            DType::F16 => bytemuck::cast_slice::<u8, half::f16>(&bytes)[..n]
                .iter()
                .map(|v| v.to_f32())
                .collect(),
            DType::I8 => bytemuck::cast_slice::<u8, i8>(&bytes)[..n]
                .iter()
                .map(|&v| f32::from(v))
                .collect(),
        })
    }

    /// Blocking download of a u32 tensor.
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        if self.dtype != DType::U32 {
            return Err(Error::Shape {
                op: "to_vec_u32",
                msg: format!("tensor is {}, not u32", self.dtype.name()),
            });
        }
        let bytes = self.gpu.read_bytes(self)?;
        Ok(bytemuck::cast_slice::<u8, u32>(&bytes)[..self.numel()].to_vec())
    }
}
