//! shaders/roofline.wgsl against the CPU: each probe's per-lane result (the sums its loads
//! make, the values its FMA chains reach), and `measure` giving finite positive limits.

use rand::Rng;
use seqbridge::gpu::ops::roofline::{Probe, launch, measure};
use seqbridge::gpu::{DType, Recorder};

use crate::common::{assert_close, gpu, rng};

fn run(probe: Probe, src: &[f32], lanes: usize, per_lane: usize, ma: (f32, f32)) -> Vec<f32> {
    let g = gpu();
    let s = g.upload(src, &[src.len()]).unwrap();
    let sink = g.empty(&[lanes], DType::F32).unwrap();
    let mut rec = Recorder::new(g);
    launch(&mut rec, probe, &s, &sink, lanes, per_lane, ma).unwrap();
    rec.submit();
    sink.to_vec_f32().unwrap()
}

#[test]
fn read_probes_sum_what_each_lane_reads() {
    let mut r = rng(3);
    for &(lanes, per_lane) in &[(1, 4), (7, 8), (65, 4), (130, 12)] {
        // A few spare elements past the end: never read.
        let src: Vec<f32> = (0..lanes * per_lane * 4 + 5)
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let vec4_sum = |v: usize| src[4 * v..4 * v + 4].iter().map(|&x| x as f64).sum::<f64>();
        let runs: Vec<f32> = (0..lanes)
            .map(|g| {
                (g * per_lane..(g + 1) * per_lane)
                    .map(vec4_sum)
                    .sum::<f64>() as f32
            })
            .collect();
        let strided: Vec<f32> = (0..lanes)
            .map(|g| (0..per_lane).map(|k| vec4_sum(g + k * lanes)).sum::<f64>() as f32)
            .collect();
        let case = format!("{lanes} lanes × {per_lane}");
        let got = run(Probe::ReadRuns, &src, lanes, per_lane, (1.0, 0.0));
        assert_close(&format!("runs {case}"), &got, &runs, 1e-4, 1e-4);
        let got = run(Probe::ReadStrided, &src, lanes, per_lane, (1.0, 0.0));
        assert_close(&format!("strided {case}"), &got, &strided, 1e-4, 1e-4);
    }
}

#[test]
fn fma_chains_reach_their_values() {
    let (mul, add) = (0.9f32, 0.05f32);
    for &(lanes, rounds) in &[(1, 0), (3, 1), (70, 17)] {
        let want: Vec<f32> = (0..lanes)
            .map(|g| {
                (0..8)
                    .map(|k| {
                        let mut a = (g % 64) as f64 * 1e-3 + k as f64;
                        for _ in 0..rounds {
                            a = a * mul as f64 + add as f64;
                        }
                        4.0 * a
                    })
                    .sum::<f64>() as f32
            })
            .collect();
        let got = run(Probe::Fma, &[0.0; 4], lanes, rounds, (mul, add));
        assert_close(&format!("fma {lanes} × {rounds}"), &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn bad_shapes_are_errors_and_limits_are_measured() {
    let g = gpu();
    let src = g.upload(&[0.0f32; 32], &[32]).unwrap();
    let sink = g.empty(&[4], DType::F32).unwrap();
    let mut rec = Recorder::new(g);
    for (probe, lanes, per_lane) in [
        (Probe::ReadRuns, 2, 8),    // reads 64 elements of 32
        (Probe::ReadRuns, 1, 6),    // not a multiple of 4
        (Probe::ReadStrided, 8, 2), // sink too short
    ] {
        let e = launch(&mut rec, probe, &src, &sink, lanes, per_lane, (1.0, 0.0));
        assert!(e.is_err(), "{probe:?} {lanes} × {per_lane}");
    }
    let l = measure(g).unwrap();
    assert!(
        l.read_gb_s.is_finite()
            && l.read_gb_s > 0.0
            && l.fma_gflop_s.is_finite()
            && l.fma_gflop_s > 0.0,
        "{l:?}"
    );
}
