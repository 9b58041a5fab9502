//! End-to-end decode steps of built-in shapes with random weights (nothing to download):
//! one step = record the decoder for one new token per sequence, submit, read back the ids.
//! `seqbridge bench` reports the same quantities with more context (encoder, host time,
//! GPU time per kernel family); this keeps them under criterion's statistics.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seqbridge::gpu::Gpu;
use seqbridge::models::{GenerateOptions, LoadOptions, Model};

const STEPS: usize = 16;

fn config(name: &str) -> String {
    let path = format!("{}/assets/bench/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter");
    let mut group = c.benchmark_group("decode_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for (name, batch, beams) in [
        ("tiny", 1, 1),
        ("tiny", 8, 4),
        ("opus-mt", 1, 1),
        ("opus-mt", 8, 4),
    ] {
        let model =
            Model::random(name, &config(name), &gpu, &LoadOptions::default(), 0).expect("model");
        let eos = model
            .generation_config()
            .eos_token_id
            .clone()
            .unwrap_or_default()[0];
        let sources: Vec<Vec<u32>> = (0..batch)
            .map(|b| {
                (0..15)
                    .map(|i| 5 + ((b * 31 + i * 7) % 900) as u32)
                    .chain([eos])
                    .collect()
            })
            .collect();
        let opts = GenerateOptions {
            num_beams: Some(beams),
            max_new_tokens: Some(STEPS),
            min_new_tokens: Some(STEPS),
            ..Default::default()
        };
        model.generate(&sources, &opts).expect("warm-up");
        group.throughput(Throughput::Elements(batch as u64));
        let id = BenchmarkId::new(name, format!("batch{batch}_beams{beams}"));
        group.bench_function(id, |b| {
            // Sum the wall time of `iters` decode steps, taken from profiled calls (the
            // encoder is timed apart and left out).
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let (_, profile) = model
                        .generate_profiled(&sources, &opts, false)
                        .expect("generate");
                    for ms in profile.step_ms.iter().take(left) {
                        total += Duration::from_secs_f64(ms / 1e3);
                        left -= 1;
                    }
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
