//! Uploads weights once, in row chunks that each fit one binding, and counts the bytes.

use std::sync::atomic::{AtomicU64, Ordering};

use seqbridge_gpu::{Gpu, Tensor};

use crate::error::{Error, Result};
use crate::io::HostData;

/// Uploads weights with `upload_dedicated` and counts their bytes.
pub struct Loader<'a> {
    pub gpu: &'a Gpu,
    pub weight_bytes: &'a AtomicU64,
    /// Largest weight chunk in bytes: the adapter's binding limit, or less (tests force
    /// chunking with tiny models).
    pub max_chunk_bytes: u64,
}

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
