//! `seqbridge score`: teacher-forced log-probabilities of target ids.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use crate::args::{Format, ModelArgs, parse_ids};
use crate::output::{Stdout, stats_json, stats_line};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub common: ModelArgs,
    /// Target token ids, comma-separated; one per source, in order.
    #[arg(long = "target-ids", value_name = "IDS", value_parser = parse_ids)]
    pub target_ids: Vec<Vec<u32>>,
}

pub fn run(a: &ScoreArgs) -> Result<()> {
    let model = a.common.load()?;
    let sources = a.common.sources(&model)?;
    if a.target_ids.len() != sources.len() {
        bail!(
            "{} sources but {} --target-ids: give one target per source",
            sources.len(),
            a.target_ids.len()
        );
    }
    let out = model.score(&sources, &a.target_ids)?;
    let mut stdout = Stdout::new();
    match a.common.format {
        Format::Json => {
            let mut v = json!({ "logprobs": out.logprobs });
            if !a.common.text.is_empty() {
                v["text"] = json!(a.common.text);
            }
            if a.common.stats {
                v["stats"] = stats_json(&out.stats);
            }
            stdout.line(v)?;
        }
        Format::Text => {
            for (i, lp) in out.logprobs.iter().enumerate() {
                let total: f32 = lp.iter().sum();
                let each: Vec<String> = lp.iter().map(|x| format!("{x:.4}")).collect();
                stdout.line(format_args!(
                    "source {i}: total {total:.4}: {}",
                    each.join(" ")
                ))?;
            }
            if a.common.stats {
                stdout.line(stats_line(&out.stats))?;
            }
        }
    }
    stdout.flush()
}
