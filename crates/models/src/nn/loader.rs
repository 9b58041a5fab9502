//! Uploads weights once, in row chunks that each fit one binding, and counts the bytes;
//! quantizes linear weights to int8 when asked.

use std::sync::atomic::{AtomicU64, Ordering};

use seqbridge_gpu::{Gpu, Tensor};

use crate::error::{Error, Result};
use crate::io::HostData;
use crate::nn::quantize::{Quantization, dequantized_rows, int8_rows};

/// Uploads weights with `upload_dedicated` and counts their bytes.
pub struct Loader<'a> {
    pub gpu: &'a Gpu,
    pub weight_bytes: &'a AtomicU64,
    /// Largest weight chunk in bytes: the adapter's binding limit, or less (tests force
    /// chunking with tiny models).
    pub max_chunk_bytes: u64,
    /// How linear weights are stored ([`Loader::upload_linear`]).
    pub quantization: Quantization,
}

/// One row chunk of a linear weight: first row, `[rows, cols]` weight, and with int8 its f32
/// `[rows]` scales.
pub type WeightChunk = (usize, Tensor, Option<Tensor>);

impl Loader<'_> {
    pub fn upload(&self, data: &HostData, shape: &[usize]) -> Result<Tensor> {
        let t = match data {
            HostData::F32(v) => self.gpu.upload_dedicated(v, shape)?,
            HostData::F16(v) => self.gpu.upload_dedicated(v, shape)?,
        };
        self.weight_bytes.fetch_add(t.byte_len(), Ordering::Relaxed);
        Ok(t)
    }

    pub fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        self.upload(&HostData::F32(data.to_vec()), shape)
    }

    /// Checks, before anything is computed or allocated, that an f32 `[rows, cols]` table
    /// that cannot be chunked (position tables) fits one binding.
    pub fn check_table(&self, what: &str, rows: usize, cols: usize) -> Result<()> {
        let max = self.gpu.max_binding();
        let bytes = (rows as u64).saturating_mul(cols as u64).saturating_mul(4);
        if bytes > max {
            return Err(crate::Error::Input(format!(
                "{what}: a [{rows}, {cols}] f32 table ({bytes} bytes) does not fit one GPU binding of {max} bytes"
            )));
        }
        Ok(())
    }

    /// Rows per chunk so that one chunk of a `[rows, cols]` matrix fits one binding.
    fn rows_per_chunk(&self, rows: usize, cols: usize, elem: usize) -> usize {
        let max = self.max_chunk_bytes.min(self.gpu.max_binding()) as usize;
        (max / (cols * elem).max(1)).clamp(1, rows.max(1))
    }

    /// A linear layer's `[rows, cols]` weight in row chunks: int8 with scales when
    /// [`Quantization::Int8`] applies (cols a multiple of 4), else as [`Loader::upload_rows`].
    pub fn upload_linear(
        &self,
        data: &HostData,
        rows: usize,
        cols: usize,
    ) -> Result<Vec<WeightChunk>> {
        if !self.quantizes(cols) {
            let chunks = self.upload_rows(data, rows, cols)?;
            return Ok(chunks.into_iter().map(|(r, w)| (r, w, None)).collect());
        }
        self.upload_int8(&data.to_f32(), rows, cols)
    }

    /// Whether linear weights with `cols` inputs are quantized.
    pub fn quantizes(&self, cols: usize) -> bool {
        self.quantization != Quantization::None && cols.is_multiple_of(4)
    }

    /// f32 `[rows, cols]` quantized per row and uploaded in chunks of whole rows.
    pub fn upload_int8(
        &self,
        values: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<Vec<WeightChunk>> {
        if self.quantization == Quantization::Int8Dequantized {
            let f = HostData::F32(dequantized_rows(values, cols));
            let chunks = self.upload_rows(&f, rows, cols)?;
            return Ok(chunks.into_iter().map(|(r, w)| (r, w, None)).collect());
        }
        let per = self.rows_per_chunk(rows, cols, 1);
        let mut out = Vec::new();
        for (i, block) in values.chunks(per * cols.max(1)).enumerate() {
            let n = block.len() / cols.max(1);
            let (q, scales) = int8_rows(block, cols);
            let w = self.gpu.upload_dedicated(&q, &[n, cols])?;
            self.weight_bytes.fetch_add(w.byte_len(), Ordering::Relaxed);
            let s = self.upload_f32(&scales, &[n])?;
            out.push((i * per, w, Some(s)));
        }
        Ok(out)
    }

    /// `[rows, cols]` split into row chunks that each fit one binding: (first row, tensor).
    pub fn upload_rows(
        &self,
        data: &HostData,
        rows: usize,
        cols: usize,
    ) -> Result<Vec<(usize, Tensor)>> {
        let elem = match data {
            HostData::F32(_) => 4,
            HostData::F16(_) => 2,
        };
        let per = self.rows_per_chunk(rows, cols, elem);
        let mut out = Vec::new();
        let mut r = 0;
        while r < rows {
            let n = per.min(rows - r);
            let chunk = data.slice(r * cols, n * cols).ok_or_else(|| {
                Error::Input(format!(
                    "rows {r}..{} of {cols} columns lie outside a tensor of {} elements",
                    r + n,
                    data.len()
                ))
            })?;
            out.push((r, self.upload(&chunk, &[n, cols])?));
            r += n;
        }
        Ok(out)
    }
}
