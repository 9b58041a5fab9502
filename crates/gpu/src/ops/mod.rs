//! Kernel launchers: one module per WGSL family in `shaders/`. Each validates its inputs
//! (typed errors naming the shapes), picks a specialisation, then records a dispatch.

pub mod attention;
pub mod cache;
pub mod elementwise;
pub mod embedding;
pub mod matmul;
pub mod norm;
pub mod sampling;
pub mod softmax;

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
