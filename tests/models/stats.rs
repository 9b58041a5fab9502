//! Work counters of a 24-token greedy generation: one encoder run, cross K/V once per
//! decoder layer, no weight uploads, 4 bytes read back per step and sequence, one submit per
//! step, and no buffer created during the step loop.

use std::cell::RefCell;

use seqbridge::models::GenerateOptions;

use seqbridge::gpu::Gpu;
use seqbridge::models::Model;

use crate::common::fixture_dir;

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
