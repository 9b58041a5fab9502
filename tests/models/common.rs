//! Shared helpers: one GPU per test binary, fixture paths, reference.json → options.

use std::path::PathBuf;
use std::sync::OnceLock;

use seqbridge::gpu::Gpu;
use seqbridge::models::{EarlyStopping, GenerateOptions, Model};
use serde_json::Value;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new().unwrap_or_else(|e| panic!("model tests need a GPU adapter: {e}"));
        eprintln!(
            "model tests on {} ({})",
            gpu.adapter().name,
            gpu.adapter().backend
        );
        gpu
    })
}

/// Rewrites model.safetensors through `edit(name, shape) -> Some(new shape) | None (drop)`.
pub fn rewrite(dir: &std::path::Path, edit: impl Fn(&str, &[usize]) -> Option<Vec<usize>>) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut kept = Vec::new();
    for (name, view) in st.tensors() {
        if let Some(shape) = edit(&name, view.shape()) {
            kept.push((
                name,
                safetensors::tensor::TensorView::new(view.dtype(), shape, view.data())
                    .expect("view"),
            ));
        }
    }
    let data = safetensors::serialize(kept, None).expect("serialize");
    std::fs::write(&path, data).expect("write");
}

/// A copy of a family's fixture in a temp dir.
pub fn copy_family(family: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for e in std::fs::read_dir(fixture_dir(family)).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    dir
}

/// `tests/fixtures/models/<family>` (or `$SEQBRIDGE_MODEL_FIXTURES/<family>`).
pub fn fixture_dir(family: &str) -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_MODEL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models"));
    let dir = root.join(family);
    assert!(
        dir.join("config.json").exists(),
        "fixture {} is missing: run tools/make_fixtures.py (or set SEQBRIDGE_MODEL_FIXTURES)",
        dir.display()
    );
    dir
}

/// `root/name`, a fixture directory that `script` writes (asserted present).
pub fn fixture_in(root: &std::path::Path, name: &str, script: &str) -> PathBuf {
    let dir = root.join(name);
    assert!(
        dir.join("config.json").exists(),
        "fixture {} is missing: run {script}",
        dir.display()
    );
    dir
}

/// A fixture directory's reference.json and model on the shared GPU.
pub struct Fixture {
    pub r: Value,
    pub model: Model,
}

impl Fixture {
    pub fn load(dir: &std::path::Path) -> Fixture {
        let path = dir.join("reference.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture {
            r: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            model: Model::load(dir, gpu()).unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
        }
    }
}

pub fn reference(family: &str) -> Value {
    let path = fixture_dir(family).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn load(family: &str) -> Model {
    Model::load(fixture_dir(family), gpu()).unwrap_or_else(|e| panic!("loading {family}: {e}"))
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list of ids, got {v}"))
        .iter()
        .map(|x| x.as_u64().expect("token id") as u32)
        .collect()
}

/// A list of id lists (or a single list, as one).
pub fn id_lists(v: &Value) -> Vec<Vec<u32>> {
    match v.as_array() {
        Some(a) if a.first().is_some_and(Value::is_array) => a.iter().map(ids).collect(),
        Some(_) => vec![ids(v)],
        None => panic!("expected id lists, got {v}"),
    }
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected numbers, got {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn ids_or_one(v: &Value) -> Vec<u32> {
    if v.is_array() {
        ids(v)
    } else {
        vec![v.as_u64().expect("token id") as u32]
    }
}

/// transformers' generate kwargs → [`GenerateOptions`].
pub fn options(kwargs: &Value) -> GenerateOptions {
    let u = |k: &str| kwargs.get(k).and_then(Value::as_u64).map(|x| x as usize);
    let f = |k: &str| kwargs.get(k).and_then(Value::as_f64);
    let present = |k: &str| kwargs.get(k).filter(|v| !v.is_null());
    GenerateOptions {
        num_beams: u("num_beams"),
        max_new_tokens: u("max_new_tokens"),
        max_length: u("max_length"),
        min_length: u("min_length"),
        min_new_tokens: u("min_new_tokens"),
        length_penalty: f("length_penalty"),
        early_stopping: present("early_stopping").map(|v| match v {
            Value::Bool(true) => EarlyStopping::True,
            Value::Bool(false) => EarlyStopping::False,
            Value::String(s) if s == "never" => EarlyStopping::Never,
            other => panic!("early_stopping {other}"),
        }),
        num_return_sequences: u("num_return_sequences"),
        no_repeat_ngram_size: u("no_repeat_ngram_size"),
        repetition_penalty: f("repetition_penalty"),
        bad_words_ids: present("bad_words_ids").map(id_lists),
        forced_bos_token_id: u("forced_bos_token_id").map(|x| x as u32),
        forced_eos_token_id: present("forced_eos_token_id").map(ids_or_one),
        eos_token_id: present("eos_token_id").map(ids_or_one),
        decoder_start_token_id: u("decoder_start_token_id").map(|x| x as u32),
        ..Default::default()
    }
}

/// Asserts |got - want| ≤ atol + rtol·|want| everywhere, naming the case and index; prints
/// the largest error.
#[track_caller]
pub fn assert_close(case: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{case}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{case}: index {i}: got {g}, want {w} (tolerance {atol} + {rtol}·|want|)"
        );
        worst = worst.max(err);
    }
    eprintln!("{case}: max |error| {worst:.2e}");
}
