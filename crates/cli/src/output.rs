//! Output helpers: stats as JSON, readable lines, one-line errors.

use seqbridge_models::Stats;
use serde_json::{Value, json};

pub fn stats_json(s: &Stats) -> Value {
    json!({
        "encoder_runs": s.encoder_runs,
        "cross_kv_computes": s.cross_kv_computes,
        "decoder_steps": s.decoder_steps,
        "dispatches": s.dispatches,
        "submits": s.submits,
        "bytes_uploaded": s.bytes_uploaded,
        "bytes_read_back": s.bytes_read_back,
        "weight_bytes_uploaded": s.weight_bytes_uploaded,
        "buffers_created": s.buffers_created,
    })
}

pub fn stats_line(s: &Stats) -> String {
    format!(
        "stats: encoder_runs {} cross_kv_computes {} decoder_steps {} dispatches {} submits {} bytes_uploaded {} bytes_read_back {} weight_bytes_uploaded {} buffers_created {}",
        s.encoder_runs,
        s.cross_kv_computes,
        s.decoder_steps,
        s.dispatches,
        s.submits,
        s.bytes_uploaded,
        s.bytes_read_back,
        s.weight_bytes_uploaded,
        s.buffers_created
    )
}

/// Prints an error and its causes on one stderr line.
pub fn error_line(e: &anyhow::Error) {
    let msg = format!("{e:#}").replace('\n', " ");
    eprintln!("error: {msg}");
}

pub fn ids_line(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}
