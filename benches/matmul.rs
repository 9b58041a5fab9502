//! matmul benchmarks: the model's shapes, f32 and f16 weights in the Hugging Face layout
//! (`b` is `[N, K]`, trans_b), Auto's choice, and Naive beside it at a few shapes.
//!
//! Throughput is `Throughput::Elements(2·M·N·K)`: criterion prints it as "elem/s", which here
//! reads as FLOP/s (one multiply and one add per term). For the decode-sized shapes (M ≤ 32,
//! memory-bound) the bench also prints GB/s of weight traffic, N·K·sizeof(weight) per matmul.
//!
//! Timing: each criterion iteration is one dispatch; up to `R` dispatches are recorded into one
//! Recorder, submitted, and `gpu.wait_idle()` waits for them, all inside `iter_custom`, so the
//! time covers recording, submission and execution.
//!
//! Run: `cargo bench --bench matmul` (a few minutes on lavapipe); filter with e.g.
//! `cargo bench --bench matmul -- 1x512x58101`.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use half::f16;
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqbridge::gpu::ops::matmul::{MatmulImpl, MatmulOptions, matmul};
use seqbridge::gpu::{DType, Gpu, Recorder, Tensor};

/// Dispatches per submit.
const R: u64 = 8;

/// (M, K, N): `x[M, K] @ w[N, K]ᵀ`, named "MxKxN" (1x512x58101 is the vocabulary projection
/// of a 512-wide model, 32x512x2048 a decode step's fc1).
const SHAPES: &[(usize, usize, usize)] = &[
    (64, 768, 768),
    (1, 512, 512),
    (32, 512, 2048),
    (1024, 1024, 1024),
    (1, 512, 58101),
];

/// Shapes where Naive runs beside Auto.
const NAIVE_SHAPES: &[(usize, usize, usize)] = &[(64, 768, 768), (1, 512, 512), (32, 512, 2048)];

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: Tensor,
    b: Tensor,
    out: Tensor,
}

fn problem(gpu: &Gpu, (m, k, n): (usize, usize, usize), dtype: DType) -> Problem {
    let a = gpu.upload(&random(m * k, 1), &[m, k]).expect("upload a");
    let w = random(n * k, 2);
    let b = match dtype {
        DType::F16 => {
            let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            gpu.upload_dedicated(&h, &[n, k]).expect("upload b")
        }
        _ => gpu.upload_dedicated(&w, &[n, k]).expect("upload b"),
    };
    let out = gpu.empty(&[m, n], DType::F32).expect("out");
    Problem { m, n, k, a, b, out }
}

/// Runs `iters` matmuls, R per submit, and returns the wall time.
fn run(gpu: &Gpu, p: &Problem, imp: MatmulImpl, iters: u64) -> Duration {
    let opts = MatmulOptions {
        trans_b: true,
        imp,
        ..Default::default()
    };
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let r = left.min(R);
        let mut rec = Recorder::new(gpu);
        for _ in 0..r {
            matmul(&mut rec, &p.a, &p.b, &p.out, &opts).expect("matmul");
        }
        rec.submit();
        gpu.wait_idle().expect("wait");
        left -= r;
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter");
    eprintln!(
        "matmul bench on {} ({}, {})",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.adapter().driver
    );
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for &(m, k, n) in SHAPES {
        for dtype in [DType::F32, DType::F16] {
            let p = problem(&gpu, (m, k, n), dtype);
            let mut imps = vec![MatmulImpl::Auto];
            if dtype == DType::F32 && NAIVE_SHAPES.contains(&(m, k, n)) {
                imps.push(MatmulImpl::Naive);
            }
            for imp in imps {
                let id = format!("{m}x{k}x{n}/{}/{imp:?}", dtype.name());
                // FLOP per matmul, read "elem/s" as FLOP/s.
                group.throughput(Throughput::Elements((2 * p.m * p.n * p.k) as u64));
                // Seconds per matmul of every timed batch (warm-up included, so the first,
                // which compiles the pipeline, is an outlier the median ignores).
                let per_call = RefCell::new(Vec::new());
                group.bench_function(&id, |bch| {
                    bch.iter_custom(|iters| {
                        let t = run(&gpu, &p, imp, iters);
                        per_call
                            .borrow_mut()
                            .push(t.as_secs_f64() / iters.max(1) as f64);
                        t
                    })
                });
                let mut per_call = per_call.into_inner();
                per_call.sort_by(f64::total_cmp);
                if p.m <= 32 && !per_call.is_empty() {
                    let per = per_call[per_call.len() / 2];
                    let bytes = (p.n * p.k * dtype.size()) as f64;
                    eprintln!(
                        "matmul/{id}: weight traffic {:.2} GB/s (median {:.1} us per matmul)",
                        bytes / per / 1e9,
                        per * 1e6
                    );
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
