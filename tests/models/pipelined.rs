//! The pipelined greedy loop (ids written on the GPU, step t + 1 submitted before step t's
//! ids are read) against the host-driven one, on fixture families: the same sequences
//! and `on_token` calls over padded batches whose rows stop at different steps, at the
//! maximum length, with forced tokens, min length and single-token bad words; and its
//! counters: no ids uploaded per step, a fixed ring of staging buffers.

use seqbridge::gpu::Gpu;
use seqbridge::models::{GenerateOptions, Generation, Model};

use crate::common::{fixture_dir, id_lists, load, reference};

/// A logits processor that needs every row's history, so the call runs the host-driven
/// loop, yet never edits anything: no n-gram of this size fits in the lengths used here.
const HOST_LOOP: usize = 1000;

fn host_driven(opts: &GenerateOptions) -> GenerateOptions {
    GenerateOptions {
        no_repeat_ngram_size: Some(HOST_LOOP),
        ..opts.clone()
    }
}

/// Generates, collecting the `on_token` calls in order.
fn run(
    model: &Model,
    sources: &[Vec<u32>],
    opts: &GenerateOptions,
) -> (Generation, Vec<(usize, u32)>) {
    let mut calls = Vec::new();
    let out = model
        .generate_with(sources, opts, &mut |s, t| calls.push((s, t)))
        .unwrap_or_else(|e| panic!("{opts:?}: {e}"));
    (out, calls)
}

/// The padded batch of the family's greedy_batch reference case, plus one more source.
fn batch(family: &str) -> Vec<Vec<u32>> {
    let r = reference(family);
    let case = r["generate"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "greedy_batch"))
        .unwrap_or_else(|| panic!("{family}: no greedy_batch case"));
    let mut sources = id_lists(&case["input_ids"]);
    sources.push(sources[0][..sources[0].len().div_ceil(2)].to_vec());
    sources
}

#[test]
fn pipelined_greedy_matches_the_host_driven_loop() {
    let mut overshoots = 0;
    let mut max_length_hits = 0;
    // One family per position scheme (the parity tests run every family's greedy cases
    // through the pipelined loop against transformers).
    for family in ["marian", "bart", "m2m100", "t5"] {
        let model = load(family);
        let sources = batch(family);
        let eos = model.config().eos_token_id.first().map(|&e| vec![e]);
        let cases = [
            GenerateOptions {
                num_beams: Some(1),
                max_new_tokens: Some(12),
                ..Default::default()
            },
            GenerateOptions {
                num_beams: Some(1),
                max_new_tokens: Some(4),
                ..Default::default()
            },
            GenerateOptions {
                num_beams: Some(1),
                max_new_tokens: Some(9),
                min_new_tokens: Some(3),
                forced_bos_token_id: Some(5),
                forced_eos_token_id: eos.clone(),
                bad_words_ids: Some(vec![vec![7]]),
                ..Default::default()
            },
        ];
        for opts in cases {
            let name = format!("{family} {opts:?}");
            let (pipe, pipe_calls) = run(&model, &sources, &opts);
            let (host, host_calls) = run(&model, &sources, &host_driven(&opts));
            assert_eq!(pipe.sequences, host.sequences, "{name}");
            assert_eq!(pipe_calls, host_calls, "{name}: on_token calls");
            let (p, h) = (pipe.stats, host.stats);
            assert_eq!(p.decoder_steps, h.decoder_steps, "{name}");
            // Both submit the encoder and every kept step; the pipelined loop also the step
            // after the last row stopped, unless the maximum length stopped it.
            let longest = pipe.sequences.iter().map(|h| h[0].len()).max().unwrap_or(0);
            let stopped_at_max = longest == 1 + opts.max_new_tokens.unwrap_or(0);
            let overshoot = u64::from(!stopped_at_max);
            assert_eq!(h.submits, 1 + h.decoder_steps, "{name}: {h:?}");
            assert_eq!(p.submits, 1 + p.decoder_steps + overshoot, "{name}: {p:?}");
            overshoots += overshoot;
            max_length_hits += u64::from(stopped_at_max);
        }
    }
    // The cases above must exercise both ways of stopping.
    assert!(
        overshoots > 0 && max_length_hits > 0,
        "{overshoots} {max_length_hits}"
    );
}

/// Median bytes uploaded per step after the first (which writes the start ids).
fn upload_per_step(model: &Model, sources: &[Vec<u32>], opts: &GenerateOptions) -> u64 {
    let (g, p) = model
        .generate_profiled(sources, opts, false)
        .expect("generate");
    assert_eq!(p.step_bytes_uploaded.len() as u64, g.stats.decoder_steps);
    let mut v = p.step_bytes_uploaded[1..].to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn pipelined_greedy_uploads_no_ids_and_reads_back_through_a_ring() {
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(fixture_dir("marian"), &gpu).expect("load marian");
    let one = vec![vec![17, 42, 5, 8, 33, 0]];
    let many = vec![one[0].clone(); 16];
    // min_length bans EOS up to the maximum length: every call runs all its steps.
    let opts = |steps: usize| GenerateOptions {
        num_beams: Some(1),
        max_new_tokens: Some(steps),
        min_length: Some(steps + 1),
        ..Default::default()
    };
    // Kernel parameters are uploaded every step by either loop, and grow with the batch
    // where a wider batch picks other kernels (norms outside the matmuls on CPU adapters);
    // ids grow by 4 bytes per row per step in the host-driven loop only.
    let growth = |name: &str, o: &GenerateOptions| {
        let (a, b) = (
            upload_per_step(&model, &one, o),
            upload_per_step(&model, &many, o),
        );
        eprintln!("{name} loop: bytes uploaded per step, batch 1 / 16: {a} / {b}");
        b as i64 - a as i64
    };
    assert_eq!(
        growth("host-driven", &host_driven(&opts(12))) - growth("pipelined", &opts(12)),
        4 * 15
    );

    // Buffers: a fresh context for each length, so that no pool is warm; the ring is
    // allocated once per call, so a longer call creates no more buffers.
    let created = |steps: usize| {
        let gpu = Gpu::new().expect("a GPU adapter");
        let model = Model::load(fixture_dir("marian"), &gpu).expect("load marian");
        let out = model.generate(&one, &opts(steps)).expect("generate");
        assert_eq!(out.stats.decoder_steps, steps as u64);
        assert!(
            out.stats.bytes_read_back <= 4 * steps as u64,
            "{:?}",
            out.stats
        );
        out.stats.buffers_created
    };
    assert_eq!(
        created(4),
        created(24),
        "buffers created: 4 steps vs 24 steps"
    );
}
