//! The seqbridge command line: a small dispatcher over one module per subcommand.
//!
//! Errors end the process with a non-zero status and one line on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod align;
mod args;
mod bench;
mod caption;
mod eval;
mod generate;
mod output;
mod overlay;
mod score;
mod subtitles;
mod transcribe;
mod translate;

#[derive(Parser)]
#[command(
    name = "seqbridge",
    version,
    about = "Encoder-decoder transformers on the GPU (wgpu)"
)]
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
    /// Translate text with a model's tokenizer (default: the shipped date normaliser).
    Translate(translate::TranslateArgs),
    /// Transcribe audio files with a Whisper model (text, segments, word timestamps).
    Transcribe(transcribe::TranscribeArgs),
    /// Caption images with a vision encoder-decoder model (ViT + GPT-2).
    Caption(caption::CaptionArgs),
    /// Exact-match accuracy on a source<TAB>reference file.
    Eval(eval::EvalArgs),
    /// Show the GPU adapter, its features and the limits seqbridge uses.
    Info,
    /// Benchmark generation on a model directory or on built-in shapes with random weights.
    Bench(bench::BenchArgs),
}

/// Runs the command line; the root package's `main` calls this.
pub fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer connects to the window system just to rank devices,
    // and prints to stderr when there is none (headless machines, CI). wgpu ranks adapters
    // itself, so the layer is not needed.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
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
        Command::Bench(a) => bench::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Info => args::open_gpu().map(|gpu| print!("{}", gpu.describe())),
        Command::Translate(a) => translate::run(&a),
        Command::Transcribe(a) => transcribe::run(&a),
        Command::Caption(a) => caption::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error_line(&e);
            ExitCode::FAILURE
        }
    }
}
