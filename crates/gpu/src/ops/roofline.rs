//! Launcher for `shaders/roofline.wgsl`: the adapter's streaming read bandwidth and FMA
//! throughput, measured by kernels of our own, so that the bench can say how close each
//! kernel comes to what this adapter can do.

use std::time::{Duration, Instant};

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Gpu, Recorder, Tensor};

crate::wgsl_params! {
    /// Parameters of the roofline kernels.
    pub struct RooflineParams {
        /// Invocations with work.
        pub lanes: u32,
        /// vec4s each reads (read kernels), or FMA rounds (fmas).
        pub per_lane: u32,
        pub mul: f32,
        pub add: f32,
    }
}

const WG: u32 = 64;
const BINDINGS: Bindings = &[(1, Access::Read), (2, Access::ReadWrite)];

/// Which kernel of roofline.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Each invocation reads its own contiguous run.
    ReadRuns,
    /// Neighbouring invocations read neighbouring vec4s.
    ReadStrided,
    /// Independent FMA chains, no memory traffic.
    Fma,
}

impl Probe {
    fn entry(self) -> &'static str {
        match self {
            Probe::ReadRuns => "read_runs",
            Probe::ReadStrided => "read_strided",
            Probe::Fma => "fmas",
        }
    }
}

/// Records one launch of `probe`: `lanes` invocations, each reading `per_lane` vec4s of `src`
/// (f32, at least `lanes · per_lane · 4` elements) or running `per_lane` FMA rounds, each
/// writing one f32 to `sink` (`lanes` elements).
///
/// Results, for tests: read kernels write the sum of the elements each lane read (runs: its
/// `per_lane` vec4s from `g · per_lane`; strided: vec4s `g, g + lanes, …`); `fmas` writes
/// Σ over its 8 chains and 4 components of the chain's value after `per_lane` rounds of
/// `a = a · mul + add`, chain k starting at `(g mod 64) · 0.001 + k`.
pub fn launch(
    rec: &mut Recorder,
    probe: Probe,
    src: &Tensor,
    sink: &Tensor,
    lanes: usize,
    per_lane: usize,
    (mul, add): (f32, f32),
) -> Result<()> {
    let op = "roofline";
    let reads = lanes.checked_mul(per_lane).and_then(|v| v.checked_mul(4));
    let fits = match probe {
        Probe::Fma => true,
        _ => reads.is_some_and(|n| n <= src.numel()),
    };
    let shape_ok = match probe {
        Probe::ReadRuns => per_lane.is_multiple_of(4),
        Probe::ReadStrided => per_lane.is_multiple_of(2),
        Probe::Fma => true,
    };
    if !fits
        || !shape_ok
        || sink.numel() < lanes
        || src.dtype() != DType::F32
        || sink.dtype() != DType::F32
        || src.numel() < 4
        || u32::try_from(reads.unwrap_or(0)).is_err()
        || u32::try_from(lanes).is_err()
    {
        return shape_err(
            op,
            format!(
                "{probe:?} over {lanes} lanes × {per_lane} needs f32 src ≥ {} elements (has {:?}), \
                 f32 sink ≥ {lanes} (has {:?}), per_lane a multiple of 4 (runs) or 2 (strided)",
                reads.unwrap_or(usize::MAX).max(4),
                src.shape(),
                sink.shape()
            ),
        );
    }
    if lanes == 0 {
        return Ok(());
    }
    let key = KernelKey::new(Family::Roofline, probe.entry()).u32("WG", WG);
    let kernel = rec.gpu().kernel::<RooflineParams>(&key, BINDINGS)?;
    let params = RooflineParams {
        lanes: lanes as u32,
        per_lane: per_lane as u32,
        mul,
        add,
    };
    let groups = grid(rec.gpu(), (lanes as u32).div_ceil(WG));
    rec.dispatch(&kernel, &params, &[src, sink], groups)
}

/// What this adapter reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Best streaming read bandwidth, GB/s (10⁹ bytes).
    pub read_gb_s: f64,
    /// The load pattern that reached it, and over how many invocations.
    pub read_probe: Probe,
    pub read_lanes: usize,
    /// FMA throughput, GFLOP/s (an FMA is 2 FLOP).
    pub fma_gflop_s: f64,
}

/// Lanes of the probes: enough to fill any GPU, and a multiple of every subgroup size.
const LANES: usize = 1 << 16;
/// Fewer lanes with longer runs: what suits CPU adapters, where each workgroup costs a
/// scheduling round and a lane streams best through one long contiguous run.
const FEW_LANES: usize = 1 << 11;
/// Bytes streamed per read launch (capped by the adapter's binding size).
const READ_BYTES: u64 = 64 << 20;
/// FMA rounds per lane per launch.
const FMA_ROUNDS: usize = 256;
/// Each measurement repeats launches until one submit takes at least this long, so that
/// the submit and the wait are a small part of it.
const MIN_TIME: Duration = Duration::from_millis(60);

/// Measures the adapter's limits: each probe timed by the wall clock around submit and
/// wait, with as many launches per submit as [`MIN_TIME`] needs, best of three. About a
/// second on a software adapter; callers cache the result per adapter and driver.
pub fn measure(gpu: &Gpu) -> Result<Limits> {
    let vec4s = (READ_BYTES.min(gpu.max_binding()) / 16) as usize;
    if vec4s < LANES * 4 {
        return shape_err(
            "roofline",
            "the adapter's binding size is too small to measure",
        );
    }
    let src = gpu.upload(&vec![1.0f32; vec4s * 4], &[vec4s * 4])?;
    let sink = gpu.empty(&[LANES], DType::F32)?;
    let mut best = (0.0, Probe::ReadRuns, LANES);
    for (probe, lanes) in [
        (Probe::ReadRuns, LANES),
        (Probe::ReadRuns, FEW_LANES),
        (Probe::ReadStrided, LANES),
    ] {
        let per_lane = vec4s / lanes / 4 * 4;
        let secs = time(gpu, |rec| {
            launch(rec, probe, &src, &sink, lanes, per_lane, (1.0, 0.0))
        })?;
        let gb_s = (lanes * per_lane * 16) as f64 / secs / 1e9;
        if gb_s > best.0 {
            best = (gb_s, probe, lanes);
        }
    }
    let secs = time(gpu, |rec| {
        launch(
            rec,
            Probe::Fma,
            &src,
            &sink,
            LANES,
            FMA_ROUNDS,
            (0.999, 0.001),
        )
    })?;
    let flops = (LANES * FMA_ROUNDS * 8 * 4 * 2) as f64;
    Ok(Limits {
        read_gb_s: best.0,
        read_probe: best.1,
        read_lanes: best.2,
        fma_gflop_s: flops / secs / 1e9,
    })
}

/// Seconds per launch of `record`: launches per submit doubled until a submit takes
/// [`MIN_TIME`], then the best of three such submits.
fn time(gpu: &Gpu, record: impl Fn(&mut Recorder) -> Result<()>) -> Result<f64> {
    let run = |n: usize| -> Result<Duration> {
        let mut rec = Recorder::new(gpu);
        for _ in 0..n {
            record(&mut rec)?;
        }
        let t = Instant::now();
        rec.submit();
        gpu.wait_idle()?;
        Ok(t.elapsed())
    };
    run(1)?; // compile and warm up
    let mut n = 1;
    while run(n)? < MIN_TIME && n < 4096 {
        n *= 2;
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        best = best.min(run(n)?);
    }
    Ok(best.as_secs_f64() / n as f64)
}
