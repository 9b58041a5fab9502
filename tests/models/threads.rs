//! One `Model` shared by several threads: every thread gets exactly what a sequential run
//! gives, and each call's `Stats` count that call's work alone.

use std::sync::Barrier;

use seqbridge::models::{GenerateOptions, Generation, Model};

use crate::common::{id_lists, load, options, reference};

/// The fixture's generate cases (greedy, beam, the logits processors): sources and options.
fn cases(family: &str) -> Vec<(Vec<Vec<u32>>, GenerateOptions)> {
    let r = reference(family);
    r["generate"]
        .as_array()
        .expect("generate cases")
        .iter()
        .map(|c| (id_lists(&c["input_ids"]), options(&c["kwargs"])))
        .collect()
}

fn run_case(model: &Model, (sources, opts): &(Vec<Vec<u32>>, GenerateOptions)) -> Generation {
    model.generate(sources, opts).expect("generate")
}

/// 8 threads, each running two of the cases (thread t: cases t and t + 1, so different
/// cases overlap), against the sequential results: identical sequences and beam scores.
#[test]
fn eight_threads_sharing_one_model_match_the_sequential_run() {
    for family in ["marian", "t5"] {
        let model = load(family);
        let cases = cases(family);
        let want: Vec<Generation> = cases.iter().map(|c| run_case(&model, c)).collect();
        let barrier = Barrier::new(8);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (model, cases, want, barrier) = (&model, &cases, &want, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        for k in 0..2 {
                            let i = (t + k) % cases.len();
                            let got = run_case(model, &cases[i]);
                            assert_eq!(
                                (&got.sequences, &got.scores),
                                (&want[i].sequences, &want[i].scores),
                                "{family}, thread {t}, case {i}"
                            );
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("a thread panicked");
            }
        });
    }
}

/// A call's stats while a second thread generates on the same `Model` (and `Gpu`) are the
/// stats of the same call made alone. (They once counted the other thread's dispatches.)
#[test]
fn per_call_stats_ignore_other_threads() {
    let model = load("marian");
    let sources = vec![vec![17, 42, 5, 8, 33, 0]];
    let opts = GenerateOptions {
        max_new_tokens: Some(12),
        min_length: Some(13),
        ..Default::default()
    };
    let alone = model.generate(&sources, &opts).expect("generate").stats;
    let busy = GenerateOptions {
        num_beams: Some(3),
        ..opts.clone()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let shared = std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || calls == 0 {
                model.generate(&sources, &busy).expect("generate");
                calls += 1;
            }
        });
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(model.generate(&sources, &opts).expect("generate").stats);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        other.join().expect("the other thread panicked");
        got
    });
    for s in shared {
        // Buffers created depend on what the shared pool holds at the time; the work does not.
        assert_eq!(
            (s.dispatches, s.submits, s.bytes_uploaded, s.bytes_read_back),
            (
                alone.dispatches,
                alone.submits,
                alone.bytes_uploaded,
                alone.bytes_read_back
            ),
            "alone {alone:?}, beside another thread {s:?}"
        );
        assert_eq!(
            (s.encoder_runs, s.decoder_steps, s.cross_kv_computes),
            (
                alone.encoder_runs,
                alone.decoder_steps,
                alone.cross_kv_computes
            )
        );
    }
}
