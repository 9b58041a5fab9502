//! Work counters of a 24-token greedy generation: one encoder run, cross K/V once per
//! decoder layer, no weight uploads, 4 bytes read back per step and sequence, one submit per
//! step, and no buffer created during the step loop.

use std::cell::RefCell;

use seqbridge::models::GenerateOptions;

use seqbridge::gpu::Gpu;
use seqbridge::models::Model;

use crate::common::{copy_family, fixture_dir, rewrite};

#[test]
fn greedy_24_tokens_counters() {
    // Its own GPU context: the counters are per context, and other tests run in parallel.
    let gpu = Gpu::new().expect("a GPU adapter");
    let model = Model::load(fixture_dir("marian"), &gpu).expect("load marian");
    let layers = model.config().decoder_layers as u64;
    let source = vec![vec![17, 42, 5, 8, 33, 0]];
    // min_length 25 bans EOS until max_length (1 + 24): exactly 24 new tokens.
    let opts = GenerateOptions {
        max_new_tokens: Some(24),
        min_length: Some(25),
        num_beams: Some(1),
        ..Default::default()
    };
    let snaps = RefCell::new(Vec::new());
    let out = model
        .generate_with(&source, &opts, &mut |_, _| {
            snaps.borrow_mut().push(gpu.stats())
        })
        .expect("generate");
    let s = out.stats;
    let steps = out.sequences[0][0].len() as u64 - 1;
    eprintln!("24-token greedy: {s:?}");
    assert_eq!(steps, 24, "sequence {:?}", out.sequences[0][0]);
    assert_eq!(s.encoder_runs, 1);
    assert_eq!(s.cross_kv_computes, layers);
    assert_eq!(s.decoder_steps, 24);
    assert_eq!(s.weight_bytes_uploaded, 0);
    assert!(
        s.bytes_read_back <= 4 * steps,
        "read back {} bytes for {steps} steps",
        s.bytes_read_back
    );
    assert!(
        s.submits <= steps + 2,
        "{} submits for {steps} steps",
        s.submits
    );
    let snaps = snaps.into_inner();
    assert_eq!(snaps.len(), 24);
    let loop_delta = snaps[23] - snaps[0];
    assert_eq!(
        loop_delta.buffers_created, 0,
        "buffers created during steps 2..24: {loop_delta:?}"
    );
    // The first two steps fill the bind group cache: the pool hands the step's small
    // buffers out in the same order from the second step on.
    let settled = snaps[23] - snaps[1];
    assert_eq!(
        settled.bind_groups_created, 0,
        "bind groups created during steps 3..24 (each step binds what the one before did): \
         {settled:?}"
    );
    // One submit per step; the loop is pipelined (step t + 1 is submitted before step t's
    // token is reported), so the first snapshot already follows step 2's submit.
    assert_eq!(loop_delta.submits, 22, "one submit per step");
    let per_step = loop_delta.dispatches / 23;
    eprintln!("dispatches per greedy step: {per_step} ({} layers)", layers);
}

/// The same counters for every family's fixture, greedy and beam: the encoder runs once and
/// every decoder layer's cross K/V is projected once per call, one submit per step, no
/// weight bytes after load.
#[test]
fn every_family_counts_one_encoder_run_and_one_submit_per_step() {
    let gpu = Gpu::new().expect("a GPU adapter");
    for family in crate::parity::FAMILIES {
        let model = Model::load(fixture_dir(family), &gpu).expect("load");
        let layers = model.config().decoder_layers as u64;
        let r = crate::common::reference(family);
        let sources = crate::common::id_lists(&r["generate"][0]["input_ids"]);
        for beams in [1, 3] {
            let opts = GenerateOptions {
                max_new_tokens: Some(8),
                min_length: Some(9),
                num_beams: Some(beams),
                ..Default::default()
            };
            let out = model.generate(&sources, &opts).expect("generate");
            let s = out.stats;
            let name = format!("{family}, {beams} beams");
            assert_eq!(s.encoder_runs, 1, "{name}");
            assert_eq!(s.cross_kv_computes, layers, "{name}");
            assert_eq!(s.decoder_steps, 8, "{name}: {:?}", out.sequences);
            assert_eq!(s.weight_bytes_uploaded, 0, "{name}");
            assert!(s.submits <= s.decoder_steps + 2, "{name}: {s:?}");
            if beams == 1 {
                let rows = sources.len() as u64;
                assert!(
                    s.bytes_read_back <= 4 * rows * s.decoder_steps,
                    "{name}: {s:?}"
                );
            }
        }
    }
}

/// Dispatches per greedy decode step of a model loaded from `dir`, over steps 2..8, counted
/// between `on_token` calls: in the host-driven loop (an n-gram ban longer than any output
/// needs the history), where a step's callback follows its own work only; the pipelined
/// loop has submitted the next step by then.
fn dispatches_per_step(gpu: &Gpu, dir: &std::path::Path) -> u64 {
    let model = Model::load(dir, gpu).expect("load");
    let opts = GenerateOptions {
        max_new_tokens: Some(8),
        min_length: Some(9),
        num_beams: Some(1),
        no_repeat_ngram_size: Some(1000),
        ..Default::default()
    };
    let snaps = RefCell::new(Vec::new());
    model
        .generate_with(&[vec![17, 42, 5, 8, 33, 0]], &opts, &mut |_, _| {
            snaps.borrow_mut().push(gpu.stats())
        })
        .expect("generate");
    let snaps = snaps.into_inner();
    let n = snaps.len() as u64 - 1;
    let total = (snaps[snaps.len() - 1] - snaps[0]).dispatches;
    assert_eq!(
        total % n,
        0,
        "steps differ: {total} dispatches over {n} steps"
    );
    total / n
}

/// A decoder layer's step records 8 dispatches, norms included: fused Q/K/V, self-attention,
/// out_proj, cross query, cross-attention, out_proj, fc1, fc2. Every norm runs in the
/// prologue of the matmul that reads it (pre-norm: the sub-layer's first matmul; post-norm:
/// the next sub-layer's, the next layer's or the LM head's), where a separate norm kernel
/// made it 11. Counted as the difference between the fixture and a copy with one decoder
/// layer, for a post-norm (Marian) and a pre-norm (mBART, with a final norm) family.
#[test]
fn a_decoder_layer_step_is_eight_dispatches() {
    let gpu = Gpu::new().expect("a GPU adapter");
    for family in ["marian", "mbart"] {
        let full = fixture_dir(family);
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(full.join("config.json")).expect("config"))
                .expect("json");
        let layers = config["decoder_layers"].as_u64().expect("decoder_layers");
        assert!(layers > 1, "{family}: {layers} layers");
        let one = copy_family(family);
        let mut cfg = config.clone();
        cfg["decoder_layers"] = 1.into();
        std::fs::write(one.path().join("config.json"), cfg.to_string()).expect("write");
        rewrite(one.path(), |name, shape| {
            let later = (1..layers).any(|l| name.contains(&format!("decoder.layers.{l}.")));
            (!later).then(|| shape.to_vec())
        });
        let (l, d1) = (layers, dispatches_per_step(&gpu, one.path()));
        let dl = dispatches_per_step(&gpu, &full);
        eprintln!("{family}: {dl} dispatches per step with {l} decoder layers, {d1} with 1");
        assert_eq!((dl - d1) % (l - 1), 0, "{family}");
        assert_eq!(
            (dl - d1) / (l - 1),
            8,
            "{family}: dispatches per decoder layer step"
        );
    }
}
