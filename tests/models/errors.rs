//! Broken model directories and bad inputs get one clear error naming the culprit.

use std::path::Path;

use seqbridge::models::{GenerateOptions, Model};

use crate::common::{copy_family, gpu, load, rewrite};

/// A copy of the marian fixture in a temp dir.
fn copy_fixture() -> tempfile::TempDir {
    copy_family("marian")
}

fn load_err(dir: &Path) -> String {
    match Model::load(dir, gpu()) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

const KEY: &str = "model.decoder.layers.1.fc2.weight";

#[test]
fn missing_tensor_is_named() {
    let dir = copy_fixture();
    rewrite(dir.path(), |name, shape| {
        (name != KEY).then(|| shape.to_vec())
    });
    let e = load_err(dir.path());
    assert!(e.contains(KEY) && e.contains("missing"), "{e}");
}

#[test]
fn wrong_shape_is_named() {
    let dir = copy_fixture();
    rewrite(dir.path(), |name, shape| {
        Some(if name == KEY {
            vec![shape[1], shape[0]]
        } else {
            shape.to_vec()
        })
    });
    let e = load_err(dir.path());
    assert!(
        e.contains(KEY) && e.contains("shape") && e.contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn unknown_model_type_is_named() {
    let dir = copy_fixture();
    let path = dir.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["model_type"] = serde_json::json!("gpt2");
    std::fs::write(&path, v.to_string()).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("\"gpt2\"") && e.contains("config.json"), "{e}");
}

#[test]
fn truncated_safetensors_is_named() {
    let dir = copy_fixture();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_named() {
    let model = load("marian");
    let cfg = model.config().clone();
    let opts = GenerateOptions {
        max_new_tokens: Some(2),
        ..Default::default()
    };
    let too_big = cfg.vocab_size as u32 + 7;
    let e = model
        .generate(&[vec![5, too_big, 0]], &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&too_big.to_string()) && e.contains("vocab"),
        "{e}"
    );
    let long = vec![5u32; cfg.max_source_positions.expect("marian has positions") + 1];
    let e = model
        .generate(&[vec![5, 0], long], &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("source 1") && e.contains("max_position_embeddings"),
        "{e}"
    );
    let e = model
        .generate(&[vec![5, 0], vec![]], &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("source 1 is empty"), "{e}");
    let e = model
        .score(&[vec![5, 0]], &[vec![too_big]])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target 0") && e.contains(&too_big.to_string()),
        "{e}"
    );
}

/// Sizes and ids in config.json are checked before anything is allocated from them: against
/// sane ceilings, the vocabulary, the checkpoint's own layers and the adapter's binding size.
#[test]
fn config_sizes_are_bounded_and_checked_against_the_checkpoint() {
    let cases: [(&str, serde_json::Value, &str); 6] = [
        (
            "decoder_layers",
            serde_json::json!(0),
            "decoder_layers is 0",
        ),
        (
            "decoder_layers",
            serde_json::json!(2),
            "model.decoder.layers.2",
        ),
        (
            "encoder_layers",
            serde_json::json!(1_000_000_000u64),
            "encoder_layers is 1000000000",
        ),
        (
            "pad_token_id",
            serde_json::json!(100_000_000u64),
            "pad_token_id 100000000",
        ),
        (
            "max_position_embeddings",
            serde_json::json!(2_000_000),
            "max_position_embeddings is 2000000",
        ),
        ("d_model", serde_json::json!(-3), "d_model"),
    ];
    for (key, value, want) in cases {
        let dir = copy_fixture();
        let path = dir.path().join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v[key] = value.clone();
        std::fs::write(&path, v.to_string()).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(want) && e.contains("config.json"),
            "{key} = {value}: {e}"
        );
    }
}

/// Rewrites the data of tensor `key` in model.safetensors: its first element becomes NaN.
fn poison(dir: &Path, key: &str) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let mut d = view.data().to_vec();
        if name == key {
            let nan: &[u8] = match view.dtype() {
                safetensors::Dtype::F32 => &[0x00, 0x00, 0xc0, 0x7f],
                safetensors::Dtype::F16 => &[0x00, 0x7e],
                safetensors::Dtype::BF16 => &[0xc0, 0x7f],
                other => panic!("{key} is {other:?}"),
            };
            d[..nan.len()].copy_from_slice(nan);
        }
        data.push((name, view.dtype(), view.shape().to_vec(), d));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, dt, s, d)| {
            let v = safetensors::tensor::TensorView::new(*dt, s.clone(), d).expect("view");
            (n.clone(), v)
        })
        .collect();
    std::fs::write(
        &path,
        safetensors::serialize(views, None).expect("serialize"),
    )
    .expect("write");
}

/// A NaN in a weight is refused at load, naming the tensor and the file (it once loaded and
/// generated a start-token-only result with exit 0).
#[test]
fn nan_weights_are_refused_at_load() {
    let dir = copy_fixture();
    poison(dir.path(), KEY);
    let e = load_err(dir.path());
    assert!(
        e.contains(KEY) && e.contains("NaN") && e.contains("model.safetensors"),
        "{e}"
    );
}

/// A shard index naming files outside the model directory, and a model file that is a
/// symlink to a device, are refused before anything is read from them.
#[test]
fn model_files_stay_inside_the_model_directory() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("x.safetensors"), b"not read").unwrap();
    let escape = format!("{}/x.safetensors", outside.path().display());
    for name in ["../../etc/passwd", "/dev/zero", escape.as_str()] {
        let dir = copy_fixture();
        std::fs::rename(
            dir.path().join("model.safetensors"),
            dir.path().join("model-00001.safetensors"),
        )
        .unwrap();
        let index = serde_json::json!({"weight_map": {
            "model.shared.weight": "model-00001.safetensors",
            "model.encoder.layers.0.fc1.weight": name,
        }});
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains("model.safetensors.index.json") && e.contains(name),
            "{name}: {e}"
        );
    }
    #[cfg(unix)]
    for name in ["tokenizer.json", "model.safetensors", "config.json"] {
        let dir = copy_fixture();
        let _ = std::fs::remove_file(dir.path().join(name));
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(name)).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(name) && e.contains("outside the model directory"),
            "{name}: {e}"
        );
    }
}

/// Sizes and ids that once drove unbounded host allocations or panics, per family: each is
/// refused at once, naming config.json, the key and the bound, before any allocation.
#[test]
fn hostile_config_sizes_fail_fast_in_every_family() {
    let big = 1u64 << 62;
    let cases: &[(&str, &str, serde_json::Value, &str)] = &[
        // M2M100 computes its position table (no stored one to check against).
        (
            "m2m100",
            "max_position_embeddings",
            serde_json::json!(1_000_000_000u64),
            "max_position_embeddings is 1000000000, outside",
        ),
        (
            "m2m100",
            "max_position_embeddings",
            serde_json::json!(big),
            "max_position_embeddings is 4611686018427387904",
        ),
        (
            "m2m100",
            "pad_token_id",
            serde_json::json!(100_000_000u64),
            "pad_token_id 100000000 is outside the vocabulary",
        ),
        (
            "nllb",
            "encoder_layers",
            serde_json::json!(1_000_000_000u64),
            "encoder_layers is 1000000000, outside",
        ),
        (
            "pegasus",
            "max_position_embeddings",
            serde_json::json!(10_000_000u64),
            "max_position_embeddings is 10000000, outside",
        ),
        (
            "bart",
            "decoder_layers",
            serde_json::json!(0),
            "decoder_layers is 0",
        ),
        (
            "mbart",
            "vocab_size",
            serde_json::json!(big),
            "vocab_size is 4611686018427387904",
        ),
        (
            "t5",
            "num_layers",
            serde_json::json!(1_000_000_000u64),
            "num_layers is 1000000000, outside",
        ),
        (
            "t5",
            "num_decoder_layers",
            serde_json::json!(0),
            "num_decoder_layers is 0",
        ),
        (
            "t5_v1_1",
            "pad_token_id",
            serde_json::json!(4_000_000_000u64),
            "pad_token_id 4000000000 is outside the vocabulary",
        ),
        (
            "umt5",
            "d_ff",
            serde_json::json!(big),
            "d_ff is 4611686018427387904",
        ),
        (
            "mt5",
            "pad_token_id",
            serde_json::json!(big),
            "pad_token_id",
        ),
    ];
    for (family, key, value, want) in cases {
        let dir = copy_family(family);
        let path = dir.path().join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v[*key] = value.clone();
        std::fs::write(&path, v.to_string()).unwrap();
        let started = std::time::Instant::now();
        let e = load_err(dir.path());
        assert!(
            e.contains(want) && e.contains("config.json"),
            "{family}: {key} = {value}: {e}"
        );
        assert!(
            started.elapsed().as_secs() < 5,
            "{family}: {key} = {value} took {:?}",
            started.elapsed()
        );
    }
}

/// `"forced_eos_token_id": []` in generation_config.json is refused (as transformers does)
/// for greedy and beam search alike; it once panicked in greedy search and gave a
/// start-token-only result with beams.
#[test]
fn an_empty_forced_eos_list_is_refused() {
    let dir = copy_fixture();
    let path = dir.path().join("generation_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["forced_eos_token_id"] = serde_json::json!([]);
    std::fs::write(&path, v.to_string()).unwrap();
    let model = Model::load(dir.path(), gpu()).expect("the config itself loads");
    for beams in [1, 3] {
        let opts = GenerateOptions {
            num_beams: Some(beams),
            max_new_tokens: Some(3),
            ..Default::default()
        };
        let e = model
            .generate(&[vec![17, 42, 0]], &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("forced_eos_token_id is an empty list"),
            "{beams} beams: {e}"
        );
    }
}
