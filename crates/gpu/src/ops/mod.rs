//! Kernel launchers: one module per WGSL family in `shaders/`. Each validates its inputs
//! (typed errors naming the shapes), picks a specialisation, then records a dispatch.

pub mod attention;
pub mod cache;
pub mod conv;
pub mod elementwise;
pub mod embedding;
pub mod heads;
pub mod logit_rules;
pub mod matmul;
pub mod next_ids;
pub mod norm;
pub mod norm_matmul;
pub mod position_bias;
pub mod roofline;
pub mod sampling;
pub mod softmax;
pub mod token_mask;

/// Spreads `groups` workgroups over x and y so that neither exceeds the per-dimension limit;
/// kernels recover the linear index with `group_index` (shaders/common.wgsl).
pub fn grid(gpu: &crate::Gpu, groups: u32) -> [u32; 3] {
    let max = gpu.limits().max_compute_workgroups_per_dimension.max(1);
    if groups <= max {
        [groups, 1, 1]
    } else {
        let y = groups.div_ceil(max);
        [groups.div_ceil(y), y, 1]
    }
}

/// Which adapter kind a launcher tunes for: its `Auto` choice, tile tables and plans (matmul,
/// attention). The kernels are correct under any; tests run every tuning on every adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Tuning {
    /// This adapter's kind (CPU or GPU).
    #[default]
    Adapter,
    /// As on a GPU, whatever the adapter (tests run it on lavapipe).
    Gpu,
    /// As on a CPU adapter (lavapipe, llvmpipe), whatever the adapter.
    Cpu,
}

impl Tuning {
    /// Whether this tuning means a CPU adapter on `gpu`.
    pub(crate) fn cpu(self, gpu: &crate::Gpu) -> bool {
        match self {
            Tuning::Adapter => gpu.adapter().device_type == "Cpu",
            Tuning::Gpu => false,
            Tuning::Cpu => true,
        }
    }
}
