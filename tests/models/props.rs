//! Properties over hostile inputs: any config.json for the tiny BART fixture (sizes and ids
//! drawn from around the real values, the edges 0, 1, 2^k, 2^62, u64::MAX, and wrong types)
//! either loads (and then generates or errors) or errors with one line, quickly; any batch
//! of id sequences and options either generates or errors with one line. Never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use seqbridge::models::{GenerateOptions, Model};
use serde_json::{Value, json};

use crate::common::{fixture_dir, gpu, load};

/// The keys BART's loader sizes things by, and the ids it checks.
const KEYS: &[&str] = &[
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "vocab_size",
    "max_position_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "forced_eos_token_id",
];

/// `default` cases, or more for a longer hunt: `SEQBRIDGE_PROP_CASES=2000`.
fn cases(default: u32) -> u32 {
    std::env::var("SEQBRIDGE_PROP_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A value for a key whose real value is `real`.
fn value(real: u64) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (real.saturating_sub(3)..=real + 3).prop_map(|v| json!(v)),
        3 => (0u32..64).prop_map(|k| json!(1u64 << k)),
        2 => prop::sample::select(vec![0u64, 1, 2, u32::MAX as u64, u32::MAX as u64 + 1, 1 << 62, u64::MAX]).prop_map(|v| json!(v)),
        1 => (-5i64..0).prop_map(|v| json!(v)),
        1 => prop::sample::select(vec![json!(null), json!("12"), json!(1.5), json!([]), json!([real]), json!({})]),
    ]
}

#[test]
fn any_bart_config_loads_or_errors_cleanly() {
    let src = fixture_dir("bart");
    let dir = tempfile::tempdir().expect("temp dir");
    for e in std::fs::read_dir(&src).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let base: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let edits = prop::collection::vec(
        (0..KEYS.len()).prop_flat_map(|k| {
            let real = base[KEYS[k]].as_u64().unwrap_or(2);
            (Just(k), value(real))
        }),
        1..4,
    );
    let config = Config {
        cases: cases(48),
        failure_persistence: None,
        ..Config::default()
    };
    // Each case must fail fast (no runaway allocation: a hostile size once took 61 s on a quiet
    // machine), but a wall-clock bound must allow for a loaded one, where a case that compiles
    // new kernels took 12 s on GL: 30 s, or 10 times the unedited model if this machine is
    // slower still.
    let started = Instant::now();
    let model = Model::load(dir.path(), gpu()).expect("the unedited fixture loads");
    let opts = GenerateOptions {
        max_new_tokens: Some(2),
        ..Default::default()
    };
    model
        .generate(&[vec![5, 17, 2]], &opts)
        .expect("the unedited fixture generates");
    let bound = (started.elapsed() * 10).max(Duration::from_secs(30));
    drop(model);
    let (loaded, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    TestRunner::new(config)
        .run(&edits, |edits| {
            let mut cfg = base.clone();
            for (k, v) in &edits {
                cfg[KEYS[*k]] = v.clone();
            }
            std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let model = Model::load(dir.path(), gpu())?;
                let opts = GenerateOptions {
                    max_new_tokens: Some(2),
                    ..Default::default()
                };
                model.generate(&[vec![5, 17, 2]], &opts).map(|_| ())
            }));
            let took = started.elapsed();
            let edits: Vec<(&str, &Value)> = edits.iter().map(|(k, v)| (KEYS[*k], v)).collect();
            prop_assert!(outcome.is_ok(), "{edits:?} panicked");
            match outcome.unwrap() {
                Ok(()) => loaded.set(loaded.get() + 1),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(!msg.is_empty() && !msg.contains('\n'), "{edits:?}: {msg:?}");
                    refused.set(refused.get() + 1);
                }
            }
            prop_assert!(took < bound, "{edits:?} took {took:?} (bound {bound:?})");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "config property: {} loaded, {} refused",
        loaded.get(),
        refused.get()
    );
}

/// Any batch of id sequences (empty ones, ids past the vocabulary, sequences past the
/// position limit) with any of a few size options generates or errors with one line.
#[test]
fn any_ids_and_sizes_generate_or_error_cleanly() {
    let model = load("marian");
    let vocab = model.config().vocab_size as u32;
    // Mostly valid sources, so that generation itself runs; some hostile ones.
    let hostile_id = prop_oneof![0..vocab, vocab..=u32::MAX];
    let source = prop_oneof![
        6 => prop::collection::vec(0..vocab, 1..24),
        1 => prop::collection::vec(hostile_id, 0..80),
    ];
    let size = prop_oneof![
        Just(None),
        (0usize..6).prop_map(Some),
        Just(Some(usize::MAX))
    ];
    let case = (
        prop::collection::vec(source, 1..4),
        size.clone(),
        size,
        prop::option::of(0usize..4),
    );
    let n = cases(24);
    let config = Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    };
    let generated = std::cell::Cell::new(0);
    TestRunner::new(config)
        .run(&case, |(sources, max_new_tokens, min_length, num_beams)| {
            let opts = GenerateOptions {
                max_new_tokens,
                min_length,
                num_beams,
                ..Default::default()
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| model.generate(&sources, &opts)));
            prop_assert!(outcome.is_ok(), "{sources:?} {opts:?} panicked");
            match outcome.unwrap() {
                Ok(_) => generated.set(generated.get() + 1),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("id property: {} of {n} generated", generated.get());
}
