//! A fuzz driver on stable Rust, for machines without libFuzzer: feeds each target mutated
//! seeds from fuzz/corpus/TARGET/ (see `seqbridge_fuzz::mutate`) and fails on the first
//! panic, saving the input to fuzz/artifacts/TARGET/.
//!
//! (Not yet built here: untested.) `cargo run --release --features driver --bin drive -- [--runs N] [--seconds S] [--seed X] [TARGET...]`
//! (all targets when none is named; stops at N runs or S seconds per target, whichever first).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

fn main() {
    let mut runs = 1_000_000u64;
    let mut seconds = u64::MAX;
    let mut seed = 0u64;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--runs" => runs = value("--runs"),
            "--seconds" => seconds = value("--seconds"),
            "--seed" => seed = value("--seed"),
            _ => names.push(a),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failed = false;
    for &(name, target) in seqbridge_fuzz::TARGETS {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        let seeds = read_corpus(&root.join("corpus").join(name));
        // Seeds first, unchanged, then mutations.
        let mut rng = StdRng::seed_from_u64(seed);
        let start = Instant::now();
        let limit = Duration::from_secs(seconds);
        let mut n = 0u64;
        let mut crash = None;
        while n < runs && start.elapsed() < limit {
            let input = match seeds.get(n as usize) {
                Some(s) => s.clone(),
                None => seqbridge_fuzz::mutate::mutate(&mut rng, &seeds),
            };
            n += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                crash = Some(input);
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {n} executions in {secs:.1} s ({:.0}/s), {} seeds",
            n as f64 / secs,
            seeds.len()
        );
        if let Some(input) = crash {
            let dir = root.join("artifacts").join(name);
            std::fs::create_dir_all(&dir).expect("artifacts directory");
            let path = dir.join(format!("crash-seed{seed}-run{n}"));
            std::fs::write(&path, &input).expect("write the crashing input");
            eprintln!("{name}: PANIC on input saved to {}", path.display());
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}
