//! Shared test helpers: one GPU context per test binary, seeded data, tolerant comparisons.

use std::sync::OnceLock;

use rand::{Rng, SeedableRng, rngs::StdRng};
use seqbridge::gpu::Gpu;

/// The test binary's GPU. Panics (fails every test) when no adapter is found: a kernel test
/// that passes because nothing ran would be worse than useless.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new().unwrap_or_else(|e| panic!("kernel tests need a GPU adapter: {e}"));
        eprintln!(
            "kernel tests on {} ({}, {}), subgroups {} ({}..{}), shader-f16 {}, timestamps {}",
            gpu.adapter().name,
            gpu.adapter().backend,
            gpu.adapter().driver,
            gpu.caps().subgroups,
            gpu.caps().subgroup_min_size,
            gpu.caps().subgroup_max_size,
            gpu.caps().shader_f16,
            gpu.caps().timestamps
        );
        gpu
    })
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` values uniform in [-scale, scale).
pub fn randn(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// Asserts |got - want| <= atol + rtol * |want| everywhere, naming the case and the first
/// offending index.
#[track_caller]
pub fn assert_close(case: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{case}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut worst = (0usize, 0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        // Equal infinities (masked logits) match; NaN never does.
        let err = if g == w { 0.0 } else { (g - w).abs() };
        assert!(
            err <= atol + rtol * w.abs() && g.is_finite() == w.is_finite(),
            "{case}: index {i}: got {g}, want {w} (|err| {err} > {atol} + {rtol}*|want|)"
        );
        if err > worst.1 {
            worst = (i, err);
        }
    }
}
