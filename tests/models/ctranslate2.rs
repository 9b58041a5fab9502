//! Real Whisper checkpoints in CTranslate2's format (tiny.en and base, float16, as
//! tools/whisper/fetch_weights.py lays them out) read through `Checkpoint` under their Hugging
//! Face names, against what tools/whisper/ct2_to_hf.py wrote for them
//! (tests/fixtures/whisper/ct2_reference.json): every tensor's shape, first values, sum and
//! sum of squares, the header, the aliases and the attributes. No GPU is involved.
//!
//! Missing weights are a loud failure naming the command that fetches them; tools/test.sh
//! (and so CI) runs that command first.

use std::path::{Path, PathBuf};

use seqbridge::models::io::ctranslate2::{self, Attribute};
use seqbridge::models::io::{Checkpoint, HostData, Vars, WeightDtype};
use serde_json::Value;

/// `$SEQBRIDGE_WHISPER_DIR/<name>`, else `~/.cache/seqbridge/whisper/<name>`, as the fetch
/// script chooses.
pub(crate) fn whisper_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_WHISPER_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/seqbridge/whisper"))
        })
        .expect("neither SEQBRIDGE_WHISPER_DIR nor HOME is set");
    let dir = root.join(name);
    assert!(
        dir.join("model.bin").exists(),
        "the Whisper weights {} are missing: run `python3 tools/whisper/fetch_weights.py` \
         (it downloads about 200 MB once; set SEQBRIDGE_WHISPER_DIR to use another place)",
        dir.display()
    );
    dir
}

fn reference(name: &str) -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whisper/ct2_reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let all: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    all.get(name)
        .unwrap_or_else(|| panic!("{} has no entry {name}", path.display()))
        .clone()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("an integer") as usize)
        .collect()
}

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-9 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} against the converter's {want}"
    );
}

/// Sum and sum of squares, as the converter computes them (f64).
fn sums(v: &[f32]) -> (f64, f64) {
    v.iter().fold((0.0, 0.0), |(s, q), &x| {
        let x = x as f64;
        (s + x, q + x * x)
    })
}

fn check(name: &str) {
    let dir = whisper_dir(name);
    let r = reference(name);
    let ck = Checkpoint::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let m = ck
        .ctranslate2()
        .expect("a directory with only model.bin opens as CTranslate2");
    assert_eq!(
        m.binary_version() as u64,
        r["binary_version"].as_u64().unwrap()
    );
    assert_eq!(m.spec(), r["spec"].as_str().unwrap());
    assert_eq!(
        m.spec_revision() as u64,
        r["spec_revision"].as_u64().unwrap()
    );
    let aliases: Vec<(String, String)> = m
        .aliases()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect();
    let want: Vec<(String, String)> = r["aliases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, t)| (a.clone(), t.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(aliases, want);
    for (attr, v) in r["attributes"].as_object().unwrap() {
        assert_eq!(
            m.attribute(attr),
            Some(Attribute::Int(v.as_i64().unwrap())),
            "{attr}"
        );
    }

    // Every tensor of the converter's state dict, under its Hugging Face name.
    let tensors = r["tensors"].as_object().unwrap();
    let vars = Vars::root(&ck, WeightDtype::Auto);
    for (key, t) in tensors {
        let shape = usizes(&t["shape"]);
        let data = vars.matrix(key, &shape).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(data, HostData::F16(_)),
            "{key}: float16 stays float16"
        );
        let v = data.to_f32();
        let first: Vec<f32> = t["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(&v[..first.len()], &first[..], "{key}: first values");
        let (s, q) = sums(&v);
        close(s, t["sum"].as_f64().unwrap(), &format!("{key} sum"));
        close(
            q,
            t["sumsq"].as_f64().unwrap(),
            &format!("{key} sum of squares"),
        );
    }
    let cfg = &r["config"];
    let d = cfg["d_model"].as_u64().unwrap() as usize;
    let vocab = cfg["vocab_size"].as_u64().unwrap() as usize;
    let layers = cfg["encoder_layers"].as_u64().unwrap() as usize;
    let n_hf = tensors.len();
    // The state dict holds per layer 15 encoder and 24 decoder tensors (no K biases), plus
    // 4 conv, 2 + 2 final norm, 2 position and 1 token tensors.
    assert_eq!(n_hf, layers * (15 + 24) + 11, "{name}: tensor count");

    // The tied output projection (an alias in the file, absent from the state dict).
    let proj = ck
        .load_f32("proj_out.weight", &[vocab, d])
        .unwrap_or_else(|e| panic!("{e}"));
    let emb = &tensors["model.decoder.embed_tokens.weight"];
    close(
        sums(&proj).0,
        emb["sum"].as_f64().unwrap(),
        "proj_out.weight sum",
    );
    // Hugging Face's Whisper has no K bias, and neither does the mapping.
    for k in [
        "model.encoder.layers.0.self_attn.k_proj.bias",
        "model.decoder.layers.0.self_attn.k_proj.bias",
        "model.decoder.layers.0.encoder_attn.k_proj.bias",
    ] {
        assert!(!ck.contains(k), "{k}");
    }
    // The fused tensors under their CTranslate2 names: QKV is Q, K, V stacked, and the K
    // third of its bias is zero.
    let qkv = vars
        .pp("encoder.layer_0.self_attention.linear_0")
        .f32("weight", &[3 * d, d])
        .unwrap_or_else(|e| panic!("{e}"));
    let part_sum = |p: &str| {
        tensors[&format!("model.encoder.layers.0.self_attn.{p}_proj.weight")]["sum"]
            .as_f64()
            .unwrap()
    };
    close(
        sums(&qkv).0,
        part_sum("q") + part_sum("k") + part_sum("v"),
        "fused QKV sum",
    );
    let bias = ck
        .load_f32("encoder/layer_0/self_attention/linear_0/bias", &[3 * d])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bias[d..2 * d].iter().all(|&x| x == 0.0),
        "K bias rows are zero"
    );

    // The files beside model.bin.
    let tokens = ctranslate2::vocabulary(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("vocabulary.txt");
    assert_eq!(tokens.len(), vocab, "one vocabulary line per embedding row");
    assert_eq!(tokens[tokens.len() - 1], "<|30.00|>");
    let config = ctranslate2::config(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("config.json");
    assert!(
        config["suppress_ids"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

#[test]
fn whisper_tiny_en_ctranslate2_matches_the_converter() {
    check("whisper-tiny.en-ct2");
}

#[test]
fn whisper_base_ctranslate2_matches_the_converter() {
    check("whisper-base-ct2");
}

#[test]
fn truncated_real_model_bin_names_file_and_offset() {
    let src = whisper_dir("whisper-tiny.en-ct2").join("model.bin");
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(&src).expect("read model.bin");
    // Cut inside the variable table, and inside the last variable's data.
    for cut in [1 << 20, bytes.len() - 1000] {
        std::fs::write(dir.path().join("model.bin"), &bytes[..cut]).expect("write");
        let e = match Checkpoint::open(dir.path()) {
            Ok(_) => panic!("model.bin cut at {cut} bytes opened"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("model.bin")
                && e.contains("byte offset")
                && e.contains("truncated")
                && e.contains(&format!("file of {cut} bytes")),
            "{e}"
        );
    }
}
