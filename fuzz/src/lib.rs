//! Fuzz target bodies: each takes arbitrary bytes, feeds them to one of seqbridge's input
//! paths (files a user downloads or arguments a user types) and must return without a
//! panic, whatever the bytes. Errors are the expected outcome for most inputs; a panic, an
//! abort or a runaway allocation is a bug in the library.
//!
//! The bodies are plain functions so that both the libFuzzer targets (`fuzz_targets/`,
//! `cargo fuzz run NAME`) call this code.
//! Nothing here needs a GPU: the paths stop where a `Gpu` would be needed.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use seqbridge_models::arch::bart::BartConfig;
use seqbridge_models::arch::t5::T5Config;
use seqbridge_models::arch::vision_encoder_decoder::VisionEncoderDecoderConfig;
use seqbridge_models::arch::whisper::WhisperConfig;
use seqbridge_models::generation::options::SearchConfig;
use seqbridge_models::io::json::parse_json;
use seqbridge_models::io::{Checkpoint, WeightDtype};
use seqbridge_models::{GenerateOptions, GenerationConfig, ModelConfig, Tokenizer};


/// The targets by name, for tools/fuzz.sh.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("config", config),
    ("checkpoint", checkpoint),
    ("tokenizer", tokenizer),
    ("cli", cli),
];

thread_local! {
    /// One scratch model directory per thread, emptied before each input.
    static SCRATCH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// An empty directory private to this thread (created once, cleared on every call).
fn scratch() -> PathBuf {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let dir = s.get_or_insert_with(|| {
            let tid = format!("{:?}", std::thread::current().id());
            let tid: String = tid.chars().filter(char::is_ascii_digit).collect();
            std::env::temp_dir().join(format!("seqbridge-fuzz-{}-{tid}", std::process::id()))
        });
        let _ = std::fs::remove_dir_all(&*dir);
        std::fs::create_dir_all(&*dir).expect("scratch directory");
        dir.clone()
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write to the scratch directory");
}

/// A config as the loader fills it for the tiny Marian fixture (tests/fixtures/models/marian),
/// and a T5-like one without position limits: what generation configs are resolved against.
fn model_configs() -> [ModelConfig; 2] {
    let marian = ModelConfig {
        model_type: "marian".into(),
        d_model: 36,
        encoder_layers: 2,
        decoder_layers: 3,
        encoder_attention_heads: 3,
        decoder_attention_heads: 3,
        vocab_size: 131,
        decoder_vocab_size: 131,
        max_source_positions: Some(64),
        max_target_positions: Some(64),
        positions_key: "max_position_embeddings",
        pad_token_id: 130,
        bos_token_id: None,
        eos_token_id: vec![0],
        decoder_start_token_id: Some(130),
        forced_bos_token_id: None,
        forced_eos_token_id: None,
        num_mel_bins: None,
    };
    let t5 = ModelConfig {
        model_type: "t5".into(),
        max_source_positions: None,
        max_target_positions: None,
        positions_key: "n_positions",
        pad_token_id: 0,
        eos_token_id: vec![1],
        decoder_start_token_id: Some(0),
        forced_eos_token_id: Some(vec![]),
        ..marian.clone()
    };
    [marian, t5]
}

/// The Marian fixture's config.json, for generation_config.json inputs.
const MARIAN_CONFIG: &str = include_str!("../../tests/fixtures/models/marian/config.json");

/// config.json and generation_config.json: the `model_type` registry, each family's config
/// parser, and the generation config as the loader reads it (from its own file, or from the
/// generation fields of config.json) resolved against a model's config into search settings.
pub fn config(data: &[u8]) {
    let dir = scratch();
    let path = dir.join("config.json");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = seqbridge_models::arch::model_type(&path, text);
        let _ = parse_json::<BartConfig>(&path, text);
        let _ = parse_json::<T5Config>(&path, text);
        let _ = parse_json::<WhisperConfig>(&path, text);
        let _ = parse_json::<VisionEncoderDecoderConfig>(&path, text);
    }
    let options = [
        GenerateOptions::default(),
        GenerateOptions {
            num_beams: Some(4),
            max_new_tokens: Some(8),
            ..Default::default()
        },
        GenerateOptions {
            max_length: Some(1),
            ..Default::default()
        },
    ];
    // Without generation_config.json the generation fields come from config.json (the fuzz
    // bytes); with one, from it (the fuzz bytes) next to the fixture's config.json.
    for own_file in [false, true] {
        if own_file {
            write(&dir, "config.json", MARIAN_CONFIG.as_bytes());
            write(&dir, "generation_config.json", data);
        } else {
            write(&dir, "config.json", data);
        }
        for model in &model_configs() {
            let Ok(gc) = GenerationConfig::for_model(&dir, model) else {
                continue;
            };
            for opts in &options {
                let _ = SearchConfig::resolve(model, &gc, opts);
            }
        }
    }
}

/// A tiny valid shard, for an index to point at.
fn tiny_shard(name: &str) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data: Vec<u8> = (0..24u8).collect();
    let view = TensorView::new(Dtype::F32, vec![2, 3], &data).expect("valid view");
    safetensors::serialize([(name, view)], None).expect("serialize")
}

/// Each tensor `bytes` (a safetensors file) declares: name and shape.
fn declared(bytes: &[u8]) -> Vec<(String, Vec<usize>)> {
    match safetensors::SafeTensors::read_metadata(bytes) {
        Ok((_, meta)) => meta
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.shape.clone()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The checkpoint readers: a single model.safetensors, a shard index (model.safetensors.index.json)
/// over two small valid shards, or a CTranslate2 model.bin, chosen by the first byte; then
/// every declared tensor loaded at its declared shape, at a wrong shape, and as f16.
pub fn checkpoint(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch();
    let mut tensors = Vec::new();
    match mode % 3 {
        0 => {
            write(&dir, "model.safetensors", rest);
            tensors = declared(rest);
        }
        1 => {
            write(&dir, "model.safetensors.index.json", rest);
            for (i, file) in ["model-00001-of-00002", "model-00002-of-00002"]
                .iter()
                .enumerate()
            {
                let shard = tiny_shard(&format!("layers.{i}.weight"));
                tensors.extend(declared(&shard));
                write(&dir, &format!("{file}.safetensors"), &shard);
            }
        }
        _ => write(&dir, "model.bin", rest),
    }
    let Ok(ckpt) = Checkpoint::open(&dir) else {
        return;
    };
    let _ = ckpt.file_names();
    if let Some(bin) = ckpt.ctranslate2() {
        let _ = bin.describe();
        for v in bin.variables() {
            tensors.push((v.name.clone(), v.shape.clone()));
        }
        let _ = seqbridge_models::arch::whisper::ct2_configs(&dir, bin);
    }
    tensors.truncate(64);
    tensors.push(("absent.weight".into(), vec![1]));
    for (name, shape) in &tensors {
        let _ = ckpt.contains(name);
        for dtype in [WeightDtype::Auto, WeightDtype::F32, WeightDtype::F16] {
            let _ = ckpt.load(name, shape, dtype);
        }
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if let Some(n) = numel {
            let _ = ckpt.load(name, &[n.saturating_add(1)], WeightDtype::F32);
        }
        let _ = ckpt.load(name, &[usize::MAX, 2], WeightDtype::F32);
    }
}

/// Small tokenizer files for the files an input does not replace.
const T5_SPIECE: &[u8] = include_bytes!("../corpus/tokenizer/t5_spiece");
const MARIAN_VOCAB: &[u8] = include_bytes!("../corpus/tokenizer/marian_vocab");

/// The tokenizer loader: the first byte picks which file of which layout the rest becomes
/// (tokenizer.json, a SentencePiece model of the T5, mBART or Marian layout, Marian's
/// vocab.json, or tokenizer_config.json); a tokenizer that loads then encodes and decodes.
pub fn tokenizer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The companion files are committed seeds of this target, whose first byte is their mode.
    let dir = scratch();
    let spiece = T5_SPIECE.get(1..).unwrap_or_default();
    let vocab = MARIAN_VOCAB.get(1..).unwrap_or_default();
    match mode % 6 {
        0 => write(&dir, "tokenizer.json", rest),
        1 => write(&dir, "spiece.model", rest),
        2 => write(&dir, "sentencepiece.bpe.model", rest),
        3 => {
            write(&dir, "source.spm", rest);
            write(&dir, "target.spm", rest);
            write(&dir, "vocab.json", vocab);
        }
        4 => {
            write(&dir, "source.spm", spiece);
            write(&dir, "target.spm", spiece);
            write(&dir, "vocab.json", rest);
        }
        _ => {
            write(&dir, "tokenizer_config.json", rest);
            write(&dir, "spiece.model", spiece);
        }
    }
    let Ok(Some(tok)) = Tokenizer::from_dir(&dir) else {
        return;
    };
    let text: String = String::from_utf8_lossy(rest).chars().take(64).collect();
    for t in ["Hello world", "", "<unk> </s> ▁x", text.as_str()] {
        if let Ok(ids) = tok.encode(t) {
            let _ = tok.decode(&ids);
        }
    }
    let ids: Vec<u32> = rest.iter().take(16).map(|&b| u32::from(b)).collect();
    let _ = tok.decode(&ids);
    let _ = tok.decode(&[u32::MAX, 0, 1 << 20]);
    for id in [0, 1, 2, 127, u32::MAX] {
        let _ = tok.token(id);
        let _ = tok.target_token(id);
    }
    let _ = tok.token_id(&text);
    let _ = tok.language_id(&text);
    let _ = tok.source_language();
    let _ = tok.set_source_language(&text);
    let _ = tok.set_source_language("en_XX");
}

/// The command line: the bytes split on NUL into arguments (not necessarily UTF-8), parsed
/// by the CLI's clap definition with every option read back; and the whole input through the
/// `--input-ids` list parser and the finite-number parser.
pub fn cli(data: &[u8]) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let argv = std::iter::once(OsStr::new("seqbridge"))
        .chain(data.split(|&b| b == 0).map(OsStr::from_bytes));
    let _ = seqbridge_cli::parse_command_line(argv);
    let text = String::from_utf8_lossy(data);
    let _ = seqbridge_cli::parse_ids(&text);
    let _ = seqbridge_cli::parse_id_list(&text);
    let _ = seqbridge_cli::parse_finite(&text);
}
