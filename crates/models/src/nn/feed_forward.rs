//! The position-wise feed-forward network: plain (`fc1 → act → fc2`) or gated (T5 v1.1:
//! `act(x·W0ᵀ) ⊙ (x·W1ᵀ) → wo`).

use seqbridge_gpu::ops::elementwise::gated;
use seqbridge_gpu::ops::matmul::Activation;
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::Result;

use crate::nn::Linear;
use crate::nn::linear::Input;

pub enum FeedForward {
    /// `fc2(act(fc1(x)))`: BART's fc1/fc2 (with biases), T5 v1.0's wi/wo (without).
    Plain {
        fc1: Linear,
        fc2: Linear,
        act: Activation,
    },
    /// `wo(act(wi_0(x)) ⊙ wi_1(x))`, with wi_0 ‖ wi_1 fused into one `[2F, D]` linear.
    Gated {
        wi: Linear,
        wo: Linear,
        act: Activation,
    },
}

impl FeedForward {
    /// Hidden width F.
    pub fn hidden(&self) -> usize {
        match self {
            FeedForward::Plain { fc1, .. } => fc1.out_features,
            FeedForward::Gated { wo, .. } => wo.in_features,
        }
    }

    /// Whether [`FeedForward::forward`] needs the `[R, 2F]` gate buffer.
    pub fn is_gated(&self) -> bool {
        matches!(self, FeedForward::Gated { .. })
    }

    /// `out = residual + ffn(x)` (x normalised first when the input says so). `hidden` f32 with room for `[R, F]`; `gate` with room for
    /// `[R, 2F]` when gated (unused otherwise).
    pub fn forward(
        &self,
        rec: &mut Recorder,
        x: &Input,
        (hidden, gate): (&Tensor, &Tensor),
        out: &Tensor,
        residual: &Tensor,
    ) -> Result<()> {
        let rows = x.rows();
        match self {
            FeedForward::Plain { fc1, fc2, act } => {
                let h = hidden.view(0, &[rows, fc1.out_features])?;
                fc1.forward_in(rec, x, &h, *act, 0)?;
                fc2.forward(rec, &h, out, Activation::None, Some(residual), 0)
            }
            FeedForward::Gated { wi, wo, act } => {
                let f = wo.in_features;
                let g = gate.view(0, &[rows, 2 * f])?;
                let h = hidden.view(0, &[rows, f])?;
                wi.forward_in(rec, x, &g, Activation::None, 0)?;
                gated(rec, &g, &h, *act)?;
                wo.forward(rec, &h, out, Activation::None, Some(residual), 0)
            }
        }
    }
}
