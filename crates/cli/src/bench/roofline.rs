//! The adapter's measured limits for the bench's `roofline` object: streaming read bandwidth
//! and FMA throughput (`seqbridge_gpu::ops::roofline`), cached per adapter, driver and
//! backend in `~/.cache/seqbridge/roofline.json` (about a second to measure on a software
//! adapter), and the step's weight traffic set against them.

use std::path::PathBuf;

use anyhow::Result;
use seqbridge_gpu::Gpu;
use seqbridge_gpu::ops::roofline::{Limits, Probe, measure};
use seqbridge_models::Profile;
use serde_json::{Value, json};

fn cache_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/seqbridge/roofline.json"))
}

fn adapter_key(gpu: &Gpu) -> String {
    let a = gpu.adapter();
    format!("{} | {} | {}", a.name, a.driver, a.backend)
}

/// The limits of `gpu`'s adapter, from the cache or measured now (and cached; a cache that
/// cannot be read or written is only a slower bench).
fn limits(gpu: &Gpu) -> Result<(Limits, bool)> {
    let key = adapter_key(gpu);
    let path = cache_path();
    let mut cache: serde_json::Map<String, Value> = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(v) = cache.get(&key) {
        let num = |k: &str| v[k].as_f64().filter(|x| x.is_finite() && *x > 0.0);
        let probe = match v["read_probe"].as_str() {
            Some("ReadStrided") => Probe::ReadStrided,
            _ => Probe::ReadRuns,
        };
        if let (Some(read_gb_s), Some(fma_gflop_s)) = (num("read_gb_s"), num("fma_gflop_s")) {
            let l = Limits {
                read_gb_s,
                read_probe: probe,
                read_lanes: v["read_lanes"].as_u64().unwrap_or(0) as usize,
                fma_gflop_s,
            };
            return Ok((l, true));
        }
    }
    let l = measure(gpu)?;
    cache.insert(
        key,
        json!({
            "read_gb_s": l.read_gb_s,
            "read_probe": format!("{:?}", l.read_probe),
            "read_lanes": l.read_lanes,
            "fma_gflop_s": l.fma_gflop_s,
        }),
    );
    if let Some(p) = path {
        let text = Value::Object(cache).to_string();
        let written = p.parent().map(std::fs::create_dir_all).transpose().is_ok()
            && tempfile::NamedTempFile::new_in(p.parent().unwrap_or(std::path::Path::new(".")))
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, text.as_bytes())?;
                    f.persist(&p).map_err(|e| e.error)
                })
                .is_ok();
        if !written {
            eprintln!("note: could not cache the roofline in {}", p.display());
        }
    }
    Ok((l, false))
}

/// Per kernel family of a call timed with timestamps: GPU ms, achieved GB/s and GFLOP/s over
/// the bytes and FLOPs its dispatches declared (`seqbridge_gpu::Work`), and those as
/// fractions of the adapter's read bandwidth and FMA throughput.
fn families(l: &Limits, p: &Profile) -> Value {
    let mut m = serde_json::Map::new();
    for (family, ms) in &p.kernel_ms {
        let Some((_, w)) = p.kernel_work.iter().find(|(f, _)| f == family) else {
            continue;
        };
        let s = ms / 1e3;
        let gb_s = if s > 0.0 {
            w.bytes as f64 / s / 1e9
        } else {
            0.0
        };
        let gflop_s = if s > 0.0 {
            w.flops as f64 / s / 1e9
        } else {
            0.0
        };
        m.insert(
            family.name().to_string(),
            json!({
                "ms": ms,
                "gb": w.bytes as f64 / 1e9,
                "gflop": w.flops as f64 / 1e9,
                "gb_s": gb_s,
                "gflop_s": gflop_s,
                "bandwidth_fraction": gb_s / l.read_gb_s,
                "fma_fraction": gflop_s / l.fma_gflop_s,
            }),
        );
    }
    Value::Object(m)
}

/// The `roofline` object: the adapter's limits, the decode step's weight streaming
/// (`step_weight_bytes` per `step_ms`) as a fraction of the read bandwidth, and per kernel
/// family of the timed call (`null` without timestamps) where it stands against them.
pub fn roofline(
    gpu: &Gpu,
    step_weight_bytes: u64,
    step_ms: f64,
    timed: Option<&Profile>,
) -> Result<Value> {
    let (l, cached) = limits(gpu)?;
    let step_gb_s = step_weight_bytes as f64 / (step_ms * 1e6);
    Ok(json!({
        "families": timed.map_or(Value::Null, |p| families(&l, p)),
        "read_gb_s": l.read_gb_s,
        "read_probe": format!("{:?}", l.read_probe),
        "read_lanes": l.read_lanes,
        "fma_gflop_s": l.fma_gflop_s,
        "cached": cached,
        "step_weight_gb_per_s": step_gb_s,
        "step_bandwidth_fraction": step_gb_s / l.read_gb_s,
    }))
}
