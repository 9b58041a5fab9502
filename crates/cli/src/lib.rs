//! The seqbridge command line: a small dispatcher over one module per subcommand.
//!
//! Errors end the process with a non-zero status and one line on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod generate;
mod output;
mod score;

#[derive(Parser)]
#[command(name = "seqbridge", version, about = "Encoder-decoder transformers on the GPU (wgpu)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate (greedy or beam search) from token ids or text.
    Generate(generate::GenerateArgs),
    /// Teacher-forced log-probabilities of target ids given sources.
    Score(score::ScoreArgs),
}

/// Runs the command line; the root package's `main` calls this.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments");
            eprintln!("{} (see --help)", first.trim());
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Generate(a) => generate::run(&a),
        Command::Score(a) => score::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error_line(&e);
            ExitCode::FAILURE
        }
    }
}
