//! Constrained decoding: the tiny random Marian (SentencePiece-like pieces) under a regular
//! expression its unconstrained argmax breaks, greedy and beam, against transformers'
//! `generate` with an independent `prefix_allowed_tokens_fn`
//! (tests/fixtures/constrained/reference.json, tools/make_constrained_reference.py); the
//! date normaliser's ISO 8601 grammar (assets/date-normalizer/constraint.regex) against
//! calendar arithmetic; and the errors a constraint can raise.

use std::path::PathBuf;

use seqbridge::models::tokenizer::pieces::Piece;
use seqbridge::models::{Constrain, Constraint, GenerateOptions, Model};
use serde_json::Value;

use crate::common::{gpu, ids, load};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Value {
    let path = root().join("tests/fixtures/constrained/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference.json")).expect("JSON")
}

/// Whether `tokens` (generated, EOS last) spell a full match: every token allowed where it
/// stands, EOS allowed at the end.
fn spells_a_match(c: &Constraint, tokens: &[u32], eos: u32) -> bool {
    let mut node = c.start();
    for &t in tokens {
        if !c.allows(node, t) {
            return false;
        }
        node = c.advance(node, t);
    }
    tokens.last() == Some(&eos)
}

fn with(num_beams: usize, constrain: Option<Constrain>) -> GenerateOptions {
    GenerateOptions {
        num_beams: Some(num_beams),
        constrain,
        ..Default::default()
    }
}

/// Greedy and beam search under the constraint give transformers' constrained outputs, which
/// match the expression, while the unconstrained outputs (also transformers') do not.
#[test]
fn constrained_greedy_and_beam_match_transformers() {
    let r = reference();
    let pattern = r["pattern"].as_str().unwrap();
    let model = load("marian");
    let tok = model.tokenizer().expect("tokenizer.json");
    let eos = model.generation_config().eos_token_id.clone().unwrap();
    let vocab = model.config().decoder_vocab_size;
    let c = Constraint::new(pattern, tok.pieces(vocab).unwrap(), &eos).unwrap();
    for case in r["cases"].as_array().unwrap() {
        let src = vec![ids(&case["input_ids"])];
        for (name, beams) in [("greedy", 1), ("beam4", 4)] {
            let want = &case[name];
            let what = format!("{name} {}", case["text"]);
            let free = model.generate(&src, &with(beams, None)).unwrap();
            assert_eq!(free.sequences[0][0], ids(&want["unconstrained"]), "{what}");
            assert!(
                !spells_a_match(&c, &free.sequences[0][0][1..], eos[0]),
                "{what}: the unconstrained output already matches"
            );
            let opts = with(beams, Some(Constrain::Regex(pattern.into())));
            let held = model.generate(&src, &opts).unwrap();
            let seq = &held.sequences[0][0];
            assert_eq!(seq, &ids(&want["sequence"]), "{what}");
            assert_eq!(tok.decode(seq).unwrap(), want["decoded"].as_str().unwrap());
            assert!(spells_a_match(&c, &seq[1..], eos[0]), "{what}");
        }
    }
    gpu().check_errors().unwrap();
}

/// Found lazily (as when the mask table would be too big), the constraint gives the same
/// outputs: each step then uploads its rows' masks instead of their nodes.
#[test]
fn a_lazy_constraint_gives_the_same_outputs() {
    let r = reference();
    let pattern = r["pattern"].as_str().unwrap();
    let model = load("marian");
    let c = model.compile_constraint_with(pattern, 0).unwrap();
    assert!(c.is_lazy());
    for case in r["cases"].as_array().unwrap() {
        let src = vec![ids(&case["input_ids"])];
        for (name, beams) in [("greedy", 1), ("beam4", 4)] {
            let opts = with(beams, Some(Constrain::Regex(pattern.into())));
            let held = model.generate(&src, &opts).unwrap();
            assert_eq!(held.sequences[0][0], ids(&case[name]["sequence"]), "{name}");
        }
    }
    assert!(c.nodes() > 1, "nodes were found as the search went");
}

/// Every hypothesis of a beam search matches, and a batch constrains each row on its own.
#[test]
fn every_returned_beam_and_batch_row_matches() {
    let r = reference();
    let pattern = r["pattern"].as_str().unwrap();
    let model = load("marian");
    let tok = model.tokenizer().unwrap();
    let eos = model.generation_config().eos_token_id.clone().unwrap();
    let c = Constraint::new(pattern, tok.pieces(131).unwrap(), &eos).unwrap();
    let srcs: Vec<Vec<u32>> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ids(&c["input_ids"]))
        .collect();
    let opts = GenerateOptions {
        num_beams: Some(4),
        num_return_sequences: Some(4),
        constrain: Some(Constrain::Regex(pattern.into())),
        ..Default::default()
    };
    let out = model.generate(&srcs, &opts).unwrap();
    for (i, hyps) in out.sequences.iter().enumerate() {
        assert_eq!(hyps.len(), 4);
        for h in hyps {
            assert!(spells_a_match(&c, &h[1..], eos[0]), "source {i}: {h:?}");
        }
    }
    // Batched greedy equals one source at a time.
    let opts = with(1, Some(Constrain::Regex(pattern.into())));
    let batch = model.generate(&srcs, &opts).unwrap();
    for (i, src) in srcs.iter().enumerate() {
        let one = model.generate(std::slice::from_ref(src), &opts).unwrap();
        assert_eq!(batch.sequences[i], one.sequences[0], "source {i}");
    }
}

#[test]
fn constraint_errors_are_one_line() {
    let model = load("marian");
    let err = |pattern: &str| {
        model
            .generate(
                &[vec![5, 0]],
                &with(1, Some(Constrain::Regex(pattern.into()))),
            )
            .unwrap_err()
            .to_string()
    };
    let e = err("(the");
    assert!(
        e.contains("\"(the\"") && e.contains("unclosed group") && !e.contains('\n'),
        "{e}"
    );
    // The fixture's vocabulary has no 'q' and no digits.
    let e = err("q[0-9]+");
    assert!(e.contains("no sequence of the vocabulary"), "{e}");
}

/// One piece per printable ASCII character (ids 2..): a char-level vocabulary on which the
/// date grammar is checked as text.
fn ascii() -> Vec<Option<Piece>> {
    let mut p = vec![None, None];
    p.extend((b' '..=b'~').map(|b| {
        Some(Piece {
            first: vec![b],
            rest: vec![b],
        })
    }));
    p
}

fn matches(c: &Constraint, text: &str) -> bool {
    let tokens: Vec<u32> = text
        .bytes()
        .map(|b| u32::from(b - b' ') + 2)
        .chain([0])
        .collect();
    spells_a_match(c, &tokens, 0)
}

fn date_grammar() -> Constraint {
    let path = root().join("assets/date-normalizer/constraint.regex");
    let pattern = std::fs::read_to_string(path).expect("constraint.regex");
    Constraint::new(pattern.trim_end(), ascii(), &[0]).expect("the date grammar compiles")
}

fn leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in(y: Option<u32>, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if y.is_none_or(leap) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The ISO 8601 grammar admits exactly the calendar's dates (checked day by day over years
/// with every kind of February), each form with and without a time, and the empty output.
#[test]
fn the_date_grammar_admits_exactly_the_calendar() {
    let c = date_grammar();
    assert!(matches(&c, ""), "no date");
    for y in [
        1, 4, 100, 400, 1900, 1999, 2000, 2019, 2020, 2024, 2100, 9999,
    ] {
        for m in 0..=13 {
            let month_ok = (1..=12).contains(&m);
            assert_eq!(matches(&c, &format!("{y:04}-{m:02}")), month_ok, "{y}-{m}");
            for d in 0..=32 {
                let ok = month_ok && d >= 1 && d <= days_in(Some(y), m);
                let date = format!("{y:04}-{m:02}-{d:02}");
                assert_eq!(matches(&c, &date), ok, "{date}");
                assert_eq!(matches(&c, &format!("{date}T07:05")), ok, "{date}T07:05");
                if y == 2019 {
                    let ok = month_ok && d >= 1 && d <= days_in(None, m);
                    let md = format!("--{m:02}-{d:02}");
                    assert_eq!(matches(&c, &md), ok, "{md}");
                    assert_eq!(matches(&c, &format!("{md}T23:59")), ok, "{md}T23:59");
                }
            }
        }
    }
    for h in 0..=25 {
        for min in [0, 7, 59, 60] {
            let t = format!("T{h:02}:{min:02}");
            assert_eq!(matches(&c, &t), h < 24 && min < 60, "{t}");
        }
    }
    for bad in [
        "2019-02-29",
        "2019-14-02",
        "T24:00",
        "0000-01-01",
        "1900-02-29",
        "2019-04-31",
        "--02-30",
        "2019-02-28T",
        "2019-02-28 08:00",
        "19-02-28",
        "20190228",
        " 2019-02-28",
    ] {
        assert!(!matches(&c, bad), "{bad}");
    }
    assert!(matches(&c, "2000-02-29") && matches(&c, "--02-29"));
}

/// The shipped model decodes under its directory's grammar by default: whatever it reads,
/// it prints a well-formed ISO 8601 value or nothing, greedy and beam alike.
#[test]
fn the_date_model_prints_only_well_formed_values() {
    let model = Model::load(root().join("assets/date-normalizer"), gpu()).unwrap();
    assert!(model.default_constraint().is_some());
    let c = date_grammar();
    let inputs = [
        "30.06.2015",
        "06/30/2015",
        "30/06/2015 08:00",
        "4/3/24",
        "Thu 2 Feb 23",
        "April 2030",
        "am 1. Mai",
        "09:45",
        "good morning",
        "30 février 2019",
    ];
    for beams in [1, 4] {
        let (_, texts) = model.generate_text(&inputs, &with(beams, None)).unwrap();
        for (input, text) in inputs.iter().zip(&texts) {
            assert!(matches(&c, text), "{input:?} -> {text:?} (beams {beams})");
        }
    }
}
