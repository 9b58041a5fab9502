//! The seqbridge command line: a small dispatcher over one module per subcommand.
//!
//! Errors end the process with a non-zero status and one line on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod align;
mod args;
mod ask;
mod bench;
mod caption;
mod dates;
mod eval;
mod generate;
mod output;
mod overlay;
mod score;
mod sources;
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
    /// Answer questions about an image (default: the shipped shapes model).
    Ask(ask::AskArgs),
    /// Exact-match accuracy on a source<TAB>reference file.
    Eval(eval::EvalArgs),
    /// Show the GPU adapter, its features and the limits seqbridge uses.
    Info,
    /// Benchmark generation on a model directory or on built-in shapes with random weights.
    Bench(bench::BenchArgs),
}

/// The argument parsers of `--input-ids` lists and numeric options, public for the fuzz
/// targets in fuzz/ (not a stable API).
#[doc(hidden)]
pub use args::{IdList, parse_finite, parse_id_list, parse_ids};

/// Parses a command line (program name first) exactly as [`main`] does, without running
/// anything: the fuzz targets in fuzz/ feed it arbitrary arguments. Any error is clap's;
/// a panic here is a bug.
#[doc(hidden)]
pub fn parse_command_line<I, T>(argv: I) -> Result<(), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(argv).map(|_| ())
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
        Command::Info => args::open_gpu().and_then(|gpu| {
            let mut out = output::Stdout::new();
            out.text(&gpu.describe())?;
            out.flush()
        }),
        Command::Translate(a) => translate::run(&a),
        Command::Transcribe(a) => transcribe::run(&a),
        Command::Caption(a) => caption::run(&a),
        Command::Ask(a) => ask::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`seqbridge … | head`): nothing more to say, to anyone.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::from(output::BROKEN_PIPE_STATUS),
        Err(e) => {
            output::error_line(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Values tried for an option until clap's parser accepts one: ids, numbers, switches.
    const CANDIDATES: &[&str] = &[
        "0", "5,17,0", "0.5", "true", "text", "never", "x.txt", "text:x", "2",
    ];

    /// Every option of every subcommand, given a value its parser accepts, is read back
    /// without a panic. clap checks a field's type against its parser only when the option
    /// is accessed, so a mismatch (`--forced-eos-token-id` once panicked on every value)
    /// hides until a user passes it; this walks them all.
    #[test]
    fn every_option_parses_and_reads_back_without_a_panic() {
        let cli = Cli::command();
        let mut checked = 0;
        for sub in cli.get_subcommands() {
            // Required options and positionals get a value every parser here accepts.
            let required = |except: &str| {
                let mut argv = Vec::new();
                for arg in sub.get_arguments().filter(|a| a.is_required_set()) {
                    if arg.get_id().as_str() == except {
                        continue;
                    }
                    if let Some(long) = arg.get_long() {
                        argv.push(format!("--{long}"));
                    }
                    argv.push("0".to_string());
                }
                // `bench` needs one of --model / --config (not a plain "required").
                if sub.get_name() == "bench" && except != "config" && except != "model" {
                    argv.extend(["--config".to_string(), "tiny".to_string()]);
                }
                // `ask` needs IMAGE and QUESTION unless --eval is given.
                if sub.get_name() == "ask" && except != "eval" {
                    argv.extend(["x.png".to_string(), "q".to_string()]);
                }
                argv
            };
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if !arg.get_action().takes_values() || long == "help" {
                    continue;
                }
                let values: Vec<String> = match arg.get_possible_values() {
                    v if !v.is_empty() => vec![v[0].get_name().to_string()],
                    _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
                };
                let mut accepted = false;
                for value in values {
                    let mut argv = vec!["seqbridge".to_string(), sub.get_name().to_string()];
                    argv.extend([format!("--{long}"), value.clone()]);
                    argv.extend(required(arg.get_id().as_str()));
                    let Ok(mut matches) = Cli::command().try_get_matches_from(&argv) else {
                        continue;
                    };
                    accepted = true;
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Cli::from_arg_matches_mut(&mut matches).map(|_| ())
                    }));
                    assert!(read.is_ok(), "{argv:?} panics when read back");
                    break;
                }
                assert!(accepted, "no candidate value parses for --{long}");
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} options were checked");
    }

    /// The options that once panicked or wrapped, by name.
    #[test]
    fn id_lists_and_floats_are_checked() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["seqbridge", "generate", "--model", "m"];
            argv.extend(args);
            Cli::try_parse_from(argv)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        parse(&["--forced-eos-token-id", "0,2"]).expect("forced EOS list");
        let e = parse(&["--input-ids", "5,4294967296,0"]).unwrap_err();
        assert!(e.contains("4294967296"), "{e}");
        let e = parse(&["--length-penalty", "NaN"]).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
        let e = parse(&["--repetition-penalty", "inf"]).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
    }
}
