//! Launcher for `shaders/conv.wgsl`: im2col for 1-D convolutions, so that a `Conv1d` runs as
//! this gather followed by [`matmul`](super::matmul::matmul) (Whisper's encoder front end).
//!
//! A convolution with weight `w: [out, C, K]` and bias `[out]` is
//! `matmul(im2col(x), w viewed as [out, C·K], trans_b, bias, act)`: the column order
//! `c·K + k` of the unfolded rows is the weight's own memory order, so the weight is used as
//! loaded. One plain kernel, one invocation per output element: a gather has no faster
//! variant worth keeping beside it.

use std::fmt;
use std::sync::Arc;

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of `im2col_1d`.
    pub struct Im2colParams {
        /// Elements written: batch · t_out · channels · kernel.
        pub n: u32,
        /// Columns of out: channels · kernel.
        pub cols: u32,
        pub t_out: u32,
        pub channels: u32,
        pub kernel: u32,
        pub t_in: u32,
        pub stride: u32,
        pub pad: u32,
    }
}

const WG: u32 = 256;
const BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];

fn key(layout: ConvLayout) -> KernelKey {
    KernelKey::new(Family::Conv, "im2col_1d")
        .u32("WG", WG)
        .flag("CHANNELS_LAST", layout == ConvLayout::ChannelsLast)
}

/// How a convolution's input is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ConvLayout {
    /// `[B, C, T_in]`: PyTorch's `Conv1d` input (Whisper's log-mel features as transformers
    /// feeds them).
    #[default]
    ChannelsFirst,
    /// `[B, T_in, C]`: a matmul's output (conv1's, which conv2 reads).
    ChannelsLast,
}

/// The geometry of one 1-D convolution (PyTorch's `Conv1d` arguments, dilation 1, one group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Conv1d {
    pub batch: usize,
    /// Input channels C.
    pub channels: usize,
    /// Input length T_in.
    pub t_in: usize,
    /// Kernel width K (≥ 1).
    pub kernel: usize,
    /// ≥ 1.
    pub stride: usize,
    /// Zeros on each side of the input.
    pub pad: usize,
    pub layout: ConvLayout,
}

impl Conv1d {
    /// Output length `(T_in + 2·pad − K) / stride + 1`, or 0 when the kernel is wider than
    /// the padded input or `stride` is 0 (both rejected by [`im2col_1d`]).
    pub fn t_out(&self) -> usize {
        let padded = self.t_in as u128 + 2 * self.pad as u128;
        let k = self.kernel as u128;
        if self.stride == 0 || padded < k {
            return 0;
        }
        usize::try_from((padded - k) / self.stride as u128 + 1).unwrap_or(usize::MAX)
    }

    /// Columns of the unfolded rows, C·K: the matmul's inner dimension.
    pub fn cols(&self) -> usize {
        self.channels.saturating_mul(self.kernel)
    }

    /// Shape of [`im2col_1d`]'s output: `[batch, t_out, channels · kernel]`.
    pub fn out_shape(&self) -> [usize; 3] {
        [self.batch, self.t_out(), self.cols()]
    }
}

impl fmt::Display for Conv1d {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch {}, channels {}, t_in {}, kernel {}, stride {}, pad {}, {:?}",
            self.batch, self.channels, self.t_in, self.kernel, self.stride, self.pad, self.layout
        )
    }
}

/// `out[b, t, c·K + k] = x(b, c, t·stride + k − pad)`, 0 outside `0..T_in`, for b < batch,
/// t < T_out ([`Conv1d::t_out`]), c < C, k < K.
///
/// - `x`: f32 with batch · C · T_in elements, `[B, C, T_in]` (`ChannelsFirst`) or
///   `[B, T_in, C]` (`ChannelsLast`), as `args.layout` says.
/// - `out`: f32 with batch · T_out · C · K elements, laid out `[B, T_out, C·K]`
///   ([`Conv1d::out_shape`]); a different buffer than `x`.
///
/// Only element counts are checked, so either tensor may carry any shape of that size.
/// Errors: K or stride 0, T_out < 1, wrong element counts, a dtype other than f32, sizes or
/// positions past 32-bit indexing, `x` and `out` sharing a buffer. A batch or C of 0 writes
/// nothing.
pub fn im2col_1d(rec: &mut Recorder, x: &Tensor, out: &Tensor, args: &Conv1d) -> Result<()> {
    let op = "im2col_1d";
    let shapes = || {
        format!(
            "x {:?} {}, out {:?} {} ({args})",
            x.shape(),
            x.dtype().name(),
            out.shape(),
            out.dtype().name()
        )
    };
    if x.dtype() != DType::F32 || out.dtype() != DType::F32 {
        return shape_err(op, format!("{}: x and out must be f32", shapes()));
    }
    if args.kernel == 0 || args.stride == 0 {
        return shape_err(
            op,
            format!("{}: kernel and stride must be at least 1", shapes()),
        );
    }
    let t_out = args.t_out();
    if t_out == 0 {
        return shape_err(
            op,
            format!(
                "{}: kernel {} is wider than t_in {} + 2 * pad {}, so T_out would be < 1",
                shapes(),
                args.kernel,
                args.t_in,
                args.pad
            ),
        );
    }
    let x_n = args
        .batch
        .checked_mul(args.channels)
        .and_then(|n| n.checked_mul(args.t_in));
    if x_n != Some(x.numel()) {
        return shape_err(
            op,
            format!(
                "{}: x must hold batch {} x channels {} x t_in {} elements",
                shapes(),
                args.batch,
                args.channels,
                args.t_in
            ),
        );
    }
    let out_n = args
        .batch
        .checked_mul(t_out)
        .and_then(|n| n.checked_mul(args.channels))
        .and_then(|n| n.checked_mul(args.kernel));
    if out_n != Some(out.numel()) {
        return shape_err(
            op,
            format!(
                "{}: out must hold batch {} x t_out {t_out} x channels {} x kernel {} elements",
                shapes(),
                args.batch,
                args.channels,
                args.kernel
            ),
        );
    }
    let n = out.numel();
    if n == 0 {
        return Ok(());
    }
    // Every index the kernel forms stays below 2^32: the element index over the whole grid
    // (rounded up to whole workgroups, folded into two dimensions), the input index, and
    // the padded position t·stride + k < T_in + 2·pad.
    let groups = grid(rec.gpu(), (n.min(u32::MAX as usize) as u32).div_ceil(WG));
    let launched = groups[0] as u64 * groups[1] as u64 * WG as u64;
    let padded = args.t_in as u128 + 2 * args.pad as u128;
    if n > (u32::MAX - WG) as usize
        || launched > u32::MAX as u64
        || x.numel() > u32::MAX as usize
        || padded > u32::MAX as u128
    {
        return shape_err(
            op,
            format!(
                "{}: t_out {t_out}, sizes or positions beyond 32-bit indexing",
                shapes()
            ),
        );
    }
    if Arc::ptr_eq(&x.buf, &out.buf) {
        return shape_err(
            op,
            format!("{}: x and out must be different buffers", shapes()),
        );
    }
    let kernel = rec
        .gpu()
        .kernel::<Im2colParams>(&key(args.layout), BINDINGS)?;
    let params = Im2colParams {
        n: n as u32,
        cols: (args.channels * args.kernel) as u32,
        t_out: t_out as u32,
        channels: args.channels as u32,
        kernel: args.kernel as u32,
        t_in: args.t_in as u32,
        stride: args.stride as u32,
        pad: args.pad as u32,
    };
    rec.dispatch(&kernel, &params, &[x, out], groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sampling::tests::validate;

    #[test]
    fn every_variant_validates() {
        for layout in [ConvLayout::ChannelsFirst, ConvLayout::ChannelsLast] {
            validate::<Im2colParams>(&key(layout), false);
        }
    }

    #[test]
    fn t_out_follows_pytorch() {
        let c = |t_in, kernel, stride, pad| Conv1d {
            batch: 1,
            channels: 1,
            t_in,
            kernel,
            stride,
            pad,
            layout: ConvLayout::ChannelsFirst,
        };
        // Whisper: conv1 keeps 3000 frames, conv2 halves them.
        assert_eq!(c(3000, 3, 1, 1).t_out(), 3000);
        assert_eq!(c(3000, 3, 2, 1).t_out(), 1500);
        assert_eq!(c(3001, 3, 2, 1).t_out(), 1501);
        assert_eq!(c(1, 3, 1, 1).t_out(), 1);
        assert_eq!(c(1, 5, 1, 1).t_out(), 0);
        assert_eq!(c(7, 3, 3, 0).t_out(), 2);
        assert_eq!(c(7, 3, 0, 0).t_out(), 0);
        assert_eq!(c(0, 1, 1, 1).t_out(), 2);
        assert_eq!(c(7, 3, 2, 1).out_shape(), [1, 4, 3]);
    }
}
