//! Soak: 2,000 calls in one process leave the GPU buffer count and the resident memory
//! flat. Ignored by default (about a minute on a software adapter); `tools/soak.sh` runs
//! it on Vulkan and on GL.

use seqbridge::gpu::Gpu;
use seqbridge::models::{GenerateOptions, Model};

use crate::common::fixture_dir;

/// Resident set size in bytes (Linux `/proc/self/statm`), `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
#[ignore = "2,000 calls: run by tools/soak.sh"]
fn two_thousand_calls_stay_flat() {
    let calls: usize = std::env::var("SEQBRIDGE_SOAK_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(fixture_dir("marian"), &gpu).expect("load marian");
    let cases = [
        (vec![vec![17, 42, 5, 8, 33, 0]], 1),
        (vec![vec![17, 42, 0], vec![9, 8, 7, 6, 5, 4, 0]], 1),
        (vec![vec![17, 42, 5, 0]], 3),
    ];
    let call = |i: usize| {
        let (sources, beams) = &cases[i % cases.len()];
        let opts = GenerateOptions {
            num_beams: Some(*beams),
            max_new_tokens: Some(8),
            ..Default::default()
        };
        model.generate(sources, &opts).expect("generate");
        if i.is_multiple_of(7) {
            model.score(&sources[..1], &[vec![8, 9, 0]]).expect("score");
        }
    };
    // Warm up: pipelines compiled, the pool filled for every shape used.
    (0..100).for_each(call);
    let (buffers0, rss0) = (gpu.stats().buffers_created, rss_bytes());
    (0..calls).for_each(call);
    let (buffers1, rss1) = (gpu.stats().buffers_created, rss_bytes());
    let grew = rss1.zip(rss0).map(|(a, b)| a as i64 - b as i64);
    eprintln!(
        "{calls} calls on {}: buffers created {buffers0} -> {buffers1}, RSS {rss0:?} -> {rss1:?} ({grew:?} bytes)",
        gpu.adapter().backend
    );
    assert_eq!(buffers1, buffers0, "buffers were created after the warm-up");
    if let Some(grew) = grew {
        assert!(
            grew < 16 << 20,
            "RSS grew by {grew} bytes over {calls} calls"
        );
    }
}
