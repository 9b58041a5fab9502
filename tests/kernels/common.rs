//! Shared test helpers: one GPU context per test binary, seeded data, tolerant comparisons.

use std::sync::OnceLock;

use rand::{Rng, SeedableRng, rngs::StdRng};
use seqbridge::gpu::Gpu;
use seqbridge::gpu::ops::matmul::Activation;

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

/// erf in f64: the series near 0, the continued fraction of erfc in the tails.
fn erf64(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 3.0 {
        // Maclaurin series: 2/√π Σ (-1)^j x^(2j+1) / (j! (2j+1)).
        let x2 = ax * ax;
        let (mut term, mut sum) = (ax, ax);
        for j in 1..200 {
            term *= -x2 / j as f64;
            let add = term / (2 * j + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc, evaluated from the tail.
        let mut f = ax;
        for j in (1..=120).rev() {
            f = ax + (j as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    r.copysign(x)
}

/// The activations in f64, from their definitions (gelu tanh through tanh itself).
pub fn act64(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::Gelu => 0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            0.5 * x * (1.0 + u.tanh())
        }
        Activation::Relu => x.max(0.0),
        Activation::Silu => x / (1.0 + (-x).exp()),
    }
}
