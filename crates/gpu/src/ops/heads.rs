//! Launcher for `shaders/heads.wgsl`: copies between a strided sequence of heads (the layout
//! attention reads, [`SeqLayout`]) and head-major contiguous blocks `[rows · heads, len,
//! head_dim]`, the operands of attention as batched matmuls.

use crate::error::{Result, shape_err};
use crate::ops::attention::SeqLayout;
use crate::ops::grid;
use crate::ops::softmax::same_buffer;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `split` and `merge`.
    pub struct HeadsParams {
        /// Elements of the block.
        pub total: u32,
        pub heads: u32,
        pub head_dim: u32,
        pub len: u32,
        pub off: u32,
        pub bs: u32,
        pub rs: u32,
        pub first: u32,
        pub div: u32,
        pub has_lengths: u32,
        /// split: positions from here on are written as 0.
        pub visible: u32,
    }
}

const WG: u32 = 64;
const SPLIT_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite), (3, Access::Read)];
const MERGE_BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];

/// Which rows of a strided sequence of heads a copy covers.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub layout: SeqLayout,
    /// Block row r is sequence row `(first + r) / div` (div > 1: beams reading their
    /// source's keys).
    pub first: usize,
    pub rows: usize,
    pub div: usize,
    pub len: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Heads {
    fn block_len(&self) -> Option<usize> {
        [self.rows, self.heads, self.len, self.head_dim]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Checks that the block and every strided place fit their tensors and u32 indices.
    fn params(&self, op: &'static str, strided: &Tensor, block: &Tensor) -> Result<HeadsParams> {
        if self.div == 0 {
            return shape_err(op, "div must be at least 1");
        }
        let total = self.block_len().unwrap_or(usize::MAX);
        if block.numel() != total {
            return shape_err(
                op,
                format!(
                    "block {:?} must hold [{} rows × {} heads, {}, {}]",
                    block.shape(),
                    self.rows,
                    self.heads,
                    self.len,
                    self.head_dim
                ),
            );
        }
        let last_row = (self.first + self.rows.saturating_sub(1)) / self.div;
        let end = self
            .layout
            .end(last_row + 1, self.len, self.heads * self.head_dim);
        match end {
            Some(end) if end <= strided.numel() => {}
            _ => {
                return shape_err(
                    op,
                    format!(
                        "{:?} rows {}..{} (÷{}) of {} × {} heads × {} do not fit {:?}",
                        self.layout,
                        self.first,
                        self.first + self.rows,
                        self.div,
                        self.len,
                        self.heads,
                        self.head_dim,
                        strided.shape()
                    ),
                );
            }
        }
        if strided.numel() > u32::MAX as usize - WG as usize || total > u32::MAX as usize {
            return shape_err(op, "tensors too large for u32 indices");
        }
        if [strided, block].iter().any(|t| t.dtype() != DType::F32) || same_buffer(strided, block) {
            return shape_err(op, "both tensors must be f32, in different buffers");
        }
        Ok(HeadsParams {
            total: total as u32,
            heads: self.heads as u32,
            head_dim: self.head_dim as u32,
            len: self.len as u32,
            off: self.layout.offset as u32,
            bs: self.layout.batch_stride as u32,
            rs: self.layout.row_stride as u32,
            first: self.first as u32,
            div: self.div as u32,
            has_lengths: 0,
            visible: self.len as u32,
        })
    }
}

fn key(split: bool) -> KernelKey {
    KernelKey::new(Family::Heads, if split { "split" } else { "merge" })
        .u32("WG", WG)
        .flag("SPLIT", split)
}

/// Which positions [`split_heads`] copies; the others are written as 0.
#[derive(Clone, Copy, Debug)]
pub struct Visible<'a> {
    /// Positions below this.
    pub positions: usize,
    /// u32, indexed by sequence row: positions below the row's length.
    pub lengths: Option<&'a Tensor>,
}

/// Copies the rows `h` names out of `src` (strided) into `block` f32 `[rows · heads, len,
/// head_dim]`, positions outside `visible` as 0.
pub fn split_heads(
    rec: &mut Recorder,
    src: &Tensor,
    h: &Heads,
    visible: Visible,
    block: &Tensor,
) -> Result<()> {
    let mut p = h.params("split_heads", src, block)?;
    p.visible = visible.positions.min(h.len) as u32;
    let lengths = visible.lengths;
    if p.total == 0 {
        return Ok(());
    }
    let stand_in;
    let lengths = match lengths {
        Some(l) => {
            let need = (h.first + h.rows - 1) / h.div + 1;
            if l.dtype() != DType::U32 || l.numel() < need {
                return shape_err(
                    "split_heads",
                    format!(
                        "lengths {:?} must be u32 with at least {need} values",
                        l.shape()
                    ),
                );
            }
            p.has_lengths = 1;
            l
        }
        None => {
            stand_in = rec.gpu().empty(&[1], DType::U32)?;
            &stand_in
        }
    };
    let kernel = rec
        .gpu()
        .kernel::<HeadsParams>(&key(true), SPLIT_BINDINGS)?;
    let groups = grid(rec.gpu(), p.total.div_ceil(WG));
    rec.dispatch(&kernel, &p, &[src, block, lengths], groups)
}

/// Copies `block` f32 `[rows · heads, len, head_dim]` into the rows `h` names of `dst`
/// (strided; `h.div` must be 1).
pub fn merge_heads(rec: &mut Recorder, block: &Tensor, h: &Heads, dst: &Tensor) -> Result<()> {
    if h.div != 1 {
        return shape_err(
            "merge_heads",
            "div must be 1 (one block row per output row)",
        );
    }
    let p = h.params("merge_heads", dst, block)?;
    if p.total == 0 {
        return Ok(());
    }
    let kernel = rec
        .gpu()
        .kernel::<HeadsParams>(&key(false), MERGE_BINDINGS)?;
    let groups = grid(rec.gpu(), p.total.div_ceil(WG));
    rec.dispatch(&kernel, &p, &[block, dst], groups)
}
