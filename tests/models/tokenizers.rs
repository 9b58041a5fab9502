//! SentencePiece hub layouts (no tokenizer.json) against transformers: opus-mt (Marian, shared
//! and separate vocabularies), T5 and mBART directories under `tests/fixtures/hub/<name>`,
//! written by tools/make_tokenizer_fixtures.py with transformers' own tokenizer classes.
//!
//! `reference.json`: `encode[i]` = {name, text, ids, decoded} (`tokenizer(text).input_ids` and
//! `decode(ids, skip_special_tokens=True)`), `decode[i]` = {ids, decoded} for arbitrary ids,
//! `generate[i]` = greedy `generate(max_new_tokens=8)` of the encode case of the same name.
//! `ids` and `decoded` are transformers' and must match exactly. Where transformers 5's own
//! tokenizer disagrees with the SentencePiece library (the mBART and T5 rebuilds, see
//! tools/README.md) the case also records `sentencepiece_ids` / `sentencepiece_decoded`, for
//! information only.

use std::path::{Path, PathBuf};

use seqbridge::models::tokenizer::Layout;
use seqbridge::models::{Model, Tokenizer};
use serde_json::Value;

use crate::common::{gpu, ids, options};

fn hub_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hub")
        .join(name);
    assert!(
        dir.join("reference.json").exists(),
        "fixture {} is missing: run tools/make_tokenizer_fixtures.py",
        dir.display()
    );
    dir
}

fn reference(name: &str) -> Value {
    let path = hub_dir(name).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tokenizer(dir: &Path) -> Tokenizer {
    Tokenizer::from_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .unwrap_or_else(|| panic!("{}: no tokenizer found", dir.display()))
}

fn cases<'a>(r: &'a Value, key: &str) -> &'a [Value] {
    r[key]
        .as_array()
        .unwrap_or_else(|| panic!("reference.json has no {key}"))
}

/// Every encode and decode case of `name`'s reference.json.
fn check_tokenizer(name: &str, layout: Layout) -> Tokenizer {
    let r = reference(name);
    let tok = tokenizer(&hub_dir(name));
    assert_eq!(tok.layout(), layout, "{name}: layout");
    let (mut n, mut deviations) = (0, 0);
    for case in cases(&r, "encode") {
        let text = case["text"].as_str().expect("text");
        let what = format!("{name}/{} {text:?}", case["name"]);
        let got = tok.encode(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, ids(&case["ids"]), "{what}: ids");
        if case.get("sentencepiece_ids").is_some() {
            // transformers 5 (matched here) differs from the SentencePiece library on this case
            deviations += 1;
        }
        if let Some(decoded) = case.get("decoded") {
            let text = tok.decode(&ids(&case["ids"])).unwrap();
            assert_eq!(text, decoded.as_str().unwrap(), "{what}: decoded");
        }
        n += 1;
    }
    for case in cases(&r, "decode") {
        let want = case["decoded"].as_str().unwrap();
        let got = tok
            .decode(&ids(&case["ids"]))
            .unwrap_or_else(|e| panic!("{name}: decode {}: {e}", case["ids"]));
        assert_eq!(got, want, "{name}: decode {}", case["ids"]);
        n += 1;
    }
    eprintln!(
        "{name}: {n} tokenizer cases match transformers ({deviations} encode cases where \
         SentencePiece itself differs)"
    );
    tok
}

#[test]
fn opus_mt_tokenizer_matches_transformers() {
    let tok = check_tokenizer("opus_mt", Layout::Marian);
    assert_eq!(tok.token(0), "</s>");
    assert_eq!(tok.target_token(1), "<unk>");
    assert_eq!(tok.token_id("<unk>"), Some(1));
    assert_eq!(
        tok.language_id("fra"),
        None,
        "no >>fra<< token in this vocabulary"
    );
    assert!(tok.set_source_language("fr_XX").is_err());
}

#[test]
fn opus_mt_separate_tokenizer_matches_transformers() {
    let tok = check_tokenizer("opus_mt_separate", Layout::Marian);
    // the two vocabularies really differ
    let src = tok.token(40);
    let tgt = tok.target_token(40);
    assert_ne!(src, tgt, "id 40: {src:?} / {tgt:?}");
}

#[test]
fn t5_tokenizer_matches_transformers() {
    let r = reference("t5");
    let tok = check_tokenizer("t5", Layout::T5);
    for (token, id) in r["sentinel_ids"].as_object().unwrap() {
        assert_eq!(
            tok.token_id(token),
            Some(id.as_u64().unwrap() as u32),
            "{token}"
        );
        assert_eq!(&tok.token(id.as_u64().unwrap() as u32), token);
    }
    assert_eq!(tok.source_language(), None);
}

#[test]
fn mbart_tokenizer_matches_transformers() {
    let r = reference("mbart");
    let tok = check_tokenizer("mbart", Layout::MBart);
    for (code, id) in r["lang_code_ids"].as_object().unwrap() {
        assert_eq!(
            tok.language_id(code),
            Some(id.as_u64().unwrap() as u32),
            "{code}"
        );
    }
    assert_eq!(tok.language_id("xx_YY"), None);
    // tokenizer_config.json's src_lang (de_DE, not the en_XX default)
    assert_eq!(tok.source_language().as_deref(), r["src_lang"].as_str());
    for case in cases(&r, "src_lang_cases") {
        let lang = case["src_lang"].as_str().unwrap();
        tok.set_source_language(lang).unwrap();
        assert_eq!(tok.source_language().as_deref(), Some(lang));
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text).unwrap(),
            ids(&case["ids"]),
            "{lang} {text:?}"
        );
    }
    let e = tok.set_source_language("xx_YY").unwrap_err().to_string();
    assert!(e.contains("xx_YY") && e.contains("en_XX"), "{e}");
}

/// Model::load on the whole directory: text → ids → greedy generate → text, as transformers.
fn check_generate(name: &str) {
    let r = reference(name);
    let model = Model::load(hub_dir(name), gpu()).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let tok = model.tokenizer().expect("the SentencePiece tokenizer");
    let encode = cases(&r, "encode");
    for case in cases(&r, "generate") {
        let what = format!("{name}/{}", case["name"]);
        let text = encode
            .iter()
            .find(|c| c["name"] == case["name"])
            .and_then(|c| c["text"].as_str())
            .unwrap_or_else(|| panic!("{what}: no encode case of that name"));
        assert_eq!(
            tok.encode(text).unwrap(),
            ids(&case["input_ids"]),
            "{what}: ids"
        );
        let (g, texts) = model
            .generate_text(&[text], &options(&case["kwargs"]))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            g.sequences[0][0],
            ids(&case["sequence"]),
            "{what}: sequence"
        );
        assert_eq!(
            texts[0],
            case["decoded"].as_str().unwrap(),
            "{what}: decoded"
        );
    }
}

#[test]
fn opus_mt_generates_like_transformers() {
    check_generate("opus_mt");
}

#[test]
fn opus_mt_separate_generates_like_transformers() {
    check_generate("opus_mt_separate");
}

#[test]
fn mbart_generates_like_transformers() {
    check_generate("mbart");
}

#[test]
fn t5_generates_like_transformers() {
    check_generate("t5");
}

/// A scratch copy of some files of a fixture.
fn scratch(name: &str, files: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::copy(hub_dir(name).join(f), tmp.path().join(f)).unwrap();
    }
    tmp
}

#[track_caller]
fn load_error(dir: &Path) -> String {
    match Tokenizer::from_dir(dir) {
        Ok(t) => panic!("{}: loaded ({:?})", dir.display(), t.map(|t| t.layout())),
        Err(e) => e.to_string(),
    }
}

#[test]
fn layouts_are_found_from_files_class_or_model_type() {
    // files alone (no tokenizer_config.json, no config.json)
    for (name, files, layout) in [
        (
            "opus_mt",
            &["source.spm", "target.spm", "vocab.json"][..],
            Layout::Marian,
        ),
        ("t5", &["spiece.model"][..], Layout::T5),
        ("mbart", &["sentencepiece.bpe.model"][..], Layout::MBart),
    ] {
        let tmp = scratch(name, files);
        assert_eq!(tokenizer(tmp.path()).layout(), layout, "{name}");
    }
    // mBART without tokenizer_config.json: src_lang defaults to en_XX
    let tmp = scratch("mbart", &["sentencepiece.bpe.model"]);
    assert_eq!(
        tokenizer(tmp.path()).source_language().as_deref(),
        Some("en_XX")
    );
    // a model directory without tokenizer files has no tokenizer (ids in, ids out)
    let tmp = scratch("mbart", &["config.json"]);
    assert!(Tokenizer::from_dir(tmp.path()).unwrap().is_none());
    // ... nor does an unsupported family's SentencePiece file
    let tmp = scratch("t5", &["spiece.model"]);
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"model_type": "pegasus"}"#,
    )
    .unwrap();
    assert!(Tokenizer::from_dir(tmp.path()).unwrap().is_none());
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        r#"{"tokenizer_class": "PegasusTokenizer"}"#,
    )
    .unwrap();
    assert!(Tokenizer::from_dir(tmp.path()).unwrap().is_none());
    // tokenizer_class wins over model_type
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        r#"{"tokenizer_class": "T5TokenizerFast"}"#,
    )
    .unwrap();
    assert_eq!(tokenizer(tmp.path()).layout(), Layout::T5);
    // ... and names the files it needs
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        r#"{"tokenizer_class": "MarianTokenizer"}"#,
    )
    .unwrap();
    assert!(Tokenizer::from_dir(tmp.path()).unwrap().is_none());
    std::fs::copy(
        hub_dir("opus_mt").join("source.spm"),
        tmp.path().join("source.spm"),
    )
    .unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("target.spm") && e.contains("missing"), "{e}");
    // tokenizer.json first
    let tmp = scratch("opus_mt", &["source.spm", "target.spm", "vocab.json"]);
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/marian/tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    assert_eq!(tokenizer(tmp.path()).layout(), Layout::TokenizerJson);
}

#[test]
fn broken_directories_are_errors_naming_the_file() {
    let marian = [
        "source.spm",
        "target.spm",
        "vocab.json",
        "tokenizer_config.json",
    ];
    // a missing vocab.json
    let tmp = scratch("opus_mt", &marian[..2]);
    let e = load_error(tmp.path());
    assert!(e.contains("vocab.json") && e.contains("missing"), "{e}");
    // separate_vocabs without target_vocab.json
    let tmp = scratch("opus_mt_separate", &marian);
    let e = load_error(tmp.path());
    assert!(
        e.contains("target_vocab.json") && e.contains("separate_vocabs"),
        "{e}"
    );
    // a corrupt or truncated .spm
    let tmp = scratch("opus_mt", &marian);
    std::fs::write(
        tmp.path().join("source.spm"),
        b"\x0a\xff\xff\xff\xff garbage",
    )
    .unwrap();
    let e = load_error(tmp.path());
    assert!(
        e.contains("source.spm") && e.contains("not a SentencePiece model"),
        "{e}"
    );
    // (cut inside the last field, the normaliser's precompiled_charsmap)
    let good = std::fs::read(hub_dir("opus_mt").join("source.spm")).unwrap();
    std::fs::write(tmp.path().join("source.spm"), &good[..good.len() * 3 / 4]).unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("source.spm"), "{e}");
    // vocab.json without the unknown token, or not a token → id map
    let tmp = scratch("opus_mt", &marian);
    std::fs::write(tmp.path().join("vocab.json"), r#"{"</s>": 0, "a": 1}"#).unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("vocab.json") && e.contains("<unk>"), "{e}");
    std::fs::write(tmp.path().join("vocab.json"), r#"["</s>"]"#).unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("vocab.json"), "{e}");
    // an empty spiece.model, bad tokenizer_config.json, unknown mBART src_lang
    let tmp = scratch("t5", &["spiece.model"]);
    std::fs::write(tmp.path().join("spiece.model"), b"").unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("spiece.model") && e.contains("no pieces"), "{e}");
    std::fs::write(tmp.path().join("tokenizer_config.json"), "{").unwrap();
    let e = load_error(tmp.path());
    assert!(e.contains("tokenizer_config.json"), "{e}");
    let tmp = scratch("mbart", &["sentencepiece.bpe.model"]);
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        r#"{"src_lang": "xx"}"#,
    )
    .unwrap();
    let e = load_error(tmp.path());
    assert!(
        e.contains("tokenizer_config.json") && e.contains("src_lang"),
        "{e}"
    );
    // and a whole model directory reports it through Model::load
    let tmp = scratch(
        "opus_mt",
        &[
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "source.spm",
            "target.spm",
        ],
    );
    let e = match Model::load(tmp.path(), gpu()) {
        Ok(_) => panic!("loaded without vocab.json"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("vocab.json"), "{e}");
}

/// Damaged bytes inside source.spm's precompiled_charsmap keep the protobuf valid: loading
/// must then fail cleanly or the tokenizer must still encode every case without panicking.
#[test]
fn damaged_charsmap_never_panics() {
    let r = reference("opus_mt");
    let texts: Vec<&str> = cases(&r, "encode")
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let good = std::fs::read(hub_dir("opus_mt").join("source.spm")).unwrap();
    let tmp = scratch(
        "opus_mt",
        &["target.spm", "vocab.json", "tokenizer_config.json"],
    );
    let (mut rejected, mut loaded) = (0, 0);
    // the charsmap is the last ~240 KB of the file (trie first, then the replacement strings)
    for k in 0..48 {
        let pos = good.len() - 200 - k * (good.len() - 4000) / 48;
        let mut bad = good.clone();
        bad[pos] ^= 0x5a;
        std::fs::write(tmp.path().join("source.spm"), &bad).unwrap();
        match Tokenizer::from_dir(tmp.path()) {
            Err(e) => {
                assert!(e.to_string().contains("source.spm"), "{e}");
                rejected += 1;
            }
            Ok(tok) => {
                let tok = tok.unwrap();
                for t in &texts {
                    let _ = tok.encode(t);
                }
                loaded += 1;
            }
        }
    }
    eprintln!("damaged charsmaps: {rejected} rejected, {loaded} loaded");
}
