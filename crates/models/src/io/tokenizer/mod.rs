//! The tokenizer of a model directory, on the `tokenizers` crate.
//!
//! [`Tokenizer::from_dir`] takes what the directory has, in this order:
//! - `tokenizer.json` (any fast tokenizer);
//! - a SentencePiece layout, chosen by `tokenizer_config.json`'s `tokenizer_class`, else
//!   config.json's `model_type`, else the files present:
//!   - Marian / opus-mt ([`marian`]): `source.spm`, `target.spm`, `vocab.json` (and
//!     `target_vocab.json` with `separate_vocabs`);
//!   - T5 / mT5 ([`t5`]): `spiece.model`;
//!   - mBART ([`mbart`]): `sentencepiece.bpe.model`.
//!
//! Ids and decoded text are those of transformers' tokenizers for the same directory (see
//! each family's module for the details and the known differences).

pub mod marian;
pub mod mbart;
pub mod pieces;
pub mod sentencepiece;
pub mod t5;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// Which kind of files a [`Tokenizer`] was built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A `tokenizer.json`.
    TokenizerJson,
    /// MarianTokenizer: `source.spm`, `target.spm`, `vocab.json` (+ `target_vocab.json`).
    Marian,
    /// T5Tokenizer: `spiece.model`.
    T5,
    /// MBartTokenizer: `sentencepiece.bpe.model`.
    MBart,
}

impl Layout {
    /// The files that make up a SentencePiece layout; any one present selects it.
    fn files(self) -> &'static [&'static str] {
        match self {
            Layout::TokenizerJson => &["tokenizer.json"],
            Layout::Marian => &["source.spm", "target.spm", "vocab.json"],
            Layout::T5 => &["spiece.model"],
            Layout::MBart => &["sentencepiece.bpe.model"],
        }
    }

    fn from_class(class: &str) -> Option<Layout> {
        match class.strip_suffix("Fast").unwrap_or(class) {
            "MarianTokenizer" => Some(Layout::Marian),
            "T5Tokenizer" => Some(Layout::T5),
            "MBartTokenizer" => Some(Layout::MBart),
            _ => None,
        }
    }

    fn from_model_type(model_type: &str) -> Option<Layout> {
        match model_type {
            "marian" => Some(Layout::Marian),
            "t5" | "mt5" | "umt5" => Some(Layout::T5),
            "mbart" => Some(Layout::MBart),
            _ => None,
        }
    }
}

enum Inner {
    Json(Box<tokenizers::Tokenizer>),
    Marian(Box<marian::Marian>),
    T5(Box<t5::T5>),
    MBart(Box<mbart::MBart>),
}

/// The tokenizer of a model directory.
pub struct Tokenizer {
    inner: Inner,
    /// The tokenizer.json, or the directory of a SentencePiece layout (for messages).
    path: PathBuf,
    /// `clean_up_tokenization_spaces` of tokenizer_config.json (SentencePiece layouts).
    clean_up_spaces: bool,
}

impl Tokenizer {
    /// A `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let err = |e: &dyn std::fmt::Display| {
            Error::Tokenizer(format!("{}: cannot load tokenizer: {e}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
        // tokenizers 0.22 panics (`expect("Helper")`) instead of returning an error when a
        // decoder, normalizer, pre-tokenizer or post-processor entry is malformed; found by
        // fuzz/ (tokenizer target). Invalid JSON is refused here first, without a panic;
        // valid JSON of the wrong shape still reaches that `expect`, so the parse runs
        // under `catch_unwind` and its panic becomes this error.
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| err(&e))?;
        let parsed = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>());
        let inner = match parsed {
            Ok(r) => r.map_err(|e| err(&e))?,
            Err(panic) => {
                let why = panic_text(panic.as_ref());
                return Err(err(&format!("malformed tokenizer.json ({why})")));
            }
        };
        Ok(Tokenizer {
            inner: Inner::Json(Box::new(inner)),
            path: path.to_path_buf(),
            clean_up_spaces: false,
        })
    }

    /// The tokenizer of model directory `dir`: its tokenizer.json if it has one, else the
    /// SentencePiece layout that tokenizer_config.json's `tokenizer_class`, config.json's
    /// `model_type` or the files present point to. `Ok(None)` when the directory has no
    /// tokenizer files (or only those of an unsupported tokenizer class); an error when the
    /// files are there but incomplete or corrupt.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Option<Tokenizer>> {
        let dir = dir.as_ref();
        crate::io::paths::check_model_files(dir)?;
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Tokenizer::from_file(&json).map(Some);
        }
        let config = TokenizerConfig::read(dir)?;
        let Some(layout) = detect(dir, &config) else {
            return Ok(None);
        };
        let inner = match layout {
            Layout::Marian => Inner::Marian(Box::new(marian::Marian::load(dir, &config)?)),
            Layout::T5 => Inner::T5(Box::new(t5::T5::load(dir, &config)?)),
            Layout::MBart => Inner::MBart(Box::new(mbart::MBart::load(dir, &config)?)),
            Layout::TokenizerJson => unreachable!("tokenizer.json is loaded above"),
        };
        Ok(Some(Tokenizer {
            inner,
            path: dir.to_path_buf(),
            clean_up_spaces: config.bool("clean_up_tokenization_spaces").unwrap_or(false),
        }))
    }

    /// What the tokenizer was built from.
    pub fn layout(&self) -> Layout {
        match &self.inner {
            Inner::Json(_) => Layout::TokenizerJson,
            Inner::Marian(_) => Layout::Marian,
            Inner::T5(_) => Layout::T5,
            Inner::MBart(_) => Layout::MBart,
        }
    }

    fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::Tokenizer(format!("{}: {what}", self.path.display()))
    }

    /// Ids of `text` with the special tokens the tokenizer adds (as `tokenizer(text)` does):
    /// `</s>` for Marian and T5, `</s>` and the source language code for mBART.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let ids = guarded(|| match &self.inner {
            Inner::Json(t) => t
                .encode(text, true)
                .map(|e| e.get_ids().to_vec())
                .map_err(msg),
            Inner::Marian(m) => m.encode(text),
            Inner::T5(m) => m.encode(text),
            Inner::MBart(m) => m.encode(text),
        });
        ids.map_err(|e| self.error(format!("cannot encode {text:?}: {e}")))
    }

    /// Text of `ids` without special tokens (`tokenizer.decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let text = guarded(|| match &self.inner {
            Inner::Json(t) => t.decode(ids, true).map_err(msg),
            Inner::Marian(m) => m.decode(ids),
            Inner::T5(m) => m.decode(ids),
            Inner::MBart(m) => m.decode(ids),
        })
        .map_err(|e| self.error(format!("cannot decode {ids:?}: {e}")))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// The string of one token id, as stored in the (source) vocabulary (labels of alignment
    /// maps).
    pub fn token(&self, id: u32) -> String {
        let token = match &self.inner {
            Inner::Json(t) => t.id_to_token(id),
            Inner::Marian(m) => m.source_token(id),
            Inner::T5(m) => m.token(id),
            Inner::MBart(m) => m.token(id),
        };
        token.unwrap_or_else(|| format!("<{id}>"))
    }

    /// The string of one target-side token id: differs from [`Tokenizer::token`] only for
    /// Marian with separate source and target vocabularies.
    pub fn target_token(&self, id: u32) -> String {
        match &self.inner {
            Inner::Marian(m) => m.target_token(id).unwrap_or_else(|| format!("<{id}>")),
            _ => self.token(id),
        }
    }

    /// The (source-side) id of a token string, as `convert_tokens_to_ids` gives it; `None`
    /// when it is not in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Inner::Json(t) => t.token_to_id(token),
            Inner::Marian(m) => m.source_id(token),
            Inner::T5(m) => m.token_id(token),
            Inner::MBart(m) => m.token_id(token),
        }
    }

    /// The id of a language code: an mBART code (`ro_RO`, ...), a Marian target-language
    /// token (`>>fra<<`) or, for a tokenizer.json, any token. This is what generation forces
    /// as the first target token (`forced_bos_token_id`) or what Marian expects at the start
    /// of the source text. `None` when the tokenizer does not know the code.
    pub fn language_id(&self, code: &str) -> Option<u32> {
        match &self.inner {
            Inner::Json(t) => t.token_to_id(code),
            Inner::Marian(m) => m.language_id(code),
            Inner::T5(_) => None,
            Inner::MBart(m) => m.language_id(code),
        }
    }

    /// The source language code that [`Tokenizer::encode`] appends (mBART only).
    pub fn source_language(&self) -> Option<String> {
        match &self.inner {
            Inner::MBart(m) => Some(m.source_language()),
            _ => None,
        }
    }

    /// Sets the source language code that [`Tokenizer::encode`] appends (mBART:
    /// `tokenizer.src_lang = code`). Takes `&self` so that it works on the tokenizer a loaded
    /// [`crate::Model`] holds; the change applies to every later `encode`. An error for an
    /// unknown code or a tokenizer without source languages.
    pub fn set_source_language(&self, code: &str) -> Result<()> {
        match &self.inner {
            Inner::MBart(m) => m.set_source_language(code).map_err(|e| self.error(e)),
            _ => Err(self.error(format!(
                "cannot set the source language to {code:?}: a {:?} tokenizer has no source \
                 language codes",
                self.layout()
            ))),
        }
    }
}

/// Which SentencePiece layout `dir` holds, if any.
fn detect(dir: &Path, config: &TokenizerConfig) -> Option<Layout> {
    let present = |l: Layout| l.files().iter().any(|f| dir.join(f).is_file());
    let chosen = if let Some(class) = config.string("tokenizer_class") {
        match Layout::from_class(&class) {
            Some(l) => l,
            None => {
                log::warn!(
                    "{}: tokenizer_class {class:?} is not supported without a tokenizer.json \
                     (supported: MarianTokenizer, T5Tokenizer, MBartTokenizer)",
                    dir.display()
                );
                return None;
            }
        }
    } else if let Some(model_type) = model_type(dir) {
        Layout::from_model_type(&model_type)?
    } else {
        [Layout::Marian, Layout::T5, Layout::MBart]
            .into_iter()
            .find(|&l| present(l))?
    };
    // A model directory without any tokenizer file is fine (ids in, ids out).
    present(chosen).then_some(chosen)
}

/// config.json's `model_type`, when it can be read (config errors are reported by the model).
fn model_type(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("model_type")?.as_str().map(str::to_string)
}

/// transformers' `clean_up_tokenization`: no space before some punctuation and contractions.
fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

/// Python's `str.strip()`: Unicode whitespace and the ASCII separators \x1c-\x1f.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// An added token of tokenizer_config.json's `added_tokens_decoder` (or a token object of a
/// special-token setting).
#[derive(Clone, Debug)]
pub(crate) struct AddedToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
    pub lstrip: bool,
    pub rstrip: bool,
    pub single_word: bool,
    /// Matched in the normalised text (else in the raw text); `!special` when not given.
    pub normalized: bool,
}

impl AddedToken {
    pub fn to_tokenizers(&self) -> tokenizers::AddedToken {
        tokenizers::AddedToken::from(self.content.clone(), self.special)
            .lstrip(self.lstrip)
            .rstrip(self.rstrip)
            .normalized(false)
    }

    /// As a `tokenizers` token with every flag as given (`normalized` and `single_word` too).
    pub fn to_tokenizers_as_given(&self) -> tokenizers::AddedToken {
        tokenizers::AddedToken::from(self.content.clone(), self.special)
            .lstrip(self.lstrip)
            .rstrip(self.rstrip)
            .single_word(self.single_word)
            .normalized(self.normalized)
    }
}

/// tokenizer_config.json (absent: every setting at its default).
pub(crate) struct TokenizerConfig {
    path: PathBuf,
    value: Value,
}

impl TokenizerConfig {
    pub fn read(dir: &Path) -> Result<TokenizerConfig> {
        let path = dir.join("tokenizer_config.json");
        let value = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::Tokenizer(format!("{}: invalid JSON: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Default::default()),
            Err(e) => return Err(Error::Tokenizer(format!("{}: {e}", path.display()))),
        };
        if !value.is_object() {
            return Err(Error::Tokenizer(format!(
                "{}: expected a JSON object",
                path.display()
            )));
        }
        Ok(TokenizerConfig { path, value })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw setting under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key)
    }

    /// The settings' names, sorted (serde_json's map does not keep the file's order).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.value
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.value.get(key)?.as_str().map(str::to_string)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.value.get(key)?.as_bool()
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.value.get(key)?.as_u64()
    }

    /// A special token setting (`"eos_token": "</s>"` or an AddedToken object), or `default`.
    pub fn token(&self, key: &str, default: &str) -> String {
        match self.value.get(key) {
            Some(v) => token_content(v).unwrap_or(default).to_string(),
            None => default.to_string(),
        }
    }

    /// `additional_special_tokens` / `extra_special_tokens` (transformers 5), as strings.
    pub fn extra_special_tokens(&self) -> Vec<String> {
        ["additional_special_tokens", "extra_special_tokens"]
            .iter()
            .filter_map(|k| self.value.get(*k)?.as_array())
            .flatten()
            .filter_map(token_content)
            .map(str::to_string)
            .collect()
    }

    /// `added_tokens_decoder` (id → token), sorted by id.
    pub fn added_tokens(&self) -> Result<Vec<AddedToken>> {
        let Some(map) = self
            .value
            .get("added_tokens_decoder")
            .and_then(Value::as_object)
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(map.len());
        for (id, v) in map {
            let bad = |what: &str| {
                Error::Tokenizer(format!(
                    "{}: added_tokens_decoder entry {id:?}: {what}",
                    self.path.display()
                ))
            };
            let id: u32 = id.parse().map_err(|_| bad("the key is not a token id"))?;
            let mut t = added_token(v, false).ok_or_else(|| bad("no content"))?;
            t.id = id;
            out.push(t);
        }
        out.sort_by_key(|t| t.id);
        Ok(out)
    }

    /// The extra special tokens as transformers 5 takes them from tokenizer_config.json: a
    /// non-empty `extra_special_tokens`, else `additional_special_tokens` (transformers 4's
    /// name), else an empty `extra_special_tokens`; `None` when the file has neither list (the
    /// tokenizer class's own list applies). A string is a special token; an AddedToken object
    /// keeps its flags (`special` false unless given).
    pub fn extra_special_token_list(&self) -> Option<Vec<AddedToken>> {
        let list = |key: &str| -> Option<Vec<AddedToken>> {
            let list = self.value.get(key)?.as_array()?;
            Some(list.iter().filter_map(|v| added_token(v, true)).collect())
        };
        match (
            list("extra_special_tokens"),
            list("additional_special_tokens"),
        ) {
            (Some(e), _) if !e.is_empty() => Some(e),
            (_, Some(a)) => Some(a),
            (e, None) => e,
        }
    }
}

/// A token setting as an [`AddedToken`] (id 0): a string (special as `string_special` says,
/// normalised when not special) or an object with `content` and the flags.
pub(crate) fn added_token(v: &Value, string_special: bool) -> Option<AddedToken> {
    let content = token_content(v)?.to_string();
    if v.is_string() {
        return Some(AddedToken {
            id: 0,
            content,
            special: string_special,
            lstrip: false,
            rstrip: false,
            single_word: false,
            normalized: !string_special,
        });
    }
    let flag = |k: &str| v.get(k).and_then(Value::as_bool);
    let special = flag("special").unwrap_or(false);
    Some(AddedToken {
        id: 0,
        content,
        special,
        lstrip: flag("lstrip").unwrap_or(false),
        rstrip: flag("rstrip").unwrap_or(false),
        single_word: flag("single_word").unwrap_or(false),
        normalized: flag("normalized").unwrap_or(!special),
    })
}

fn token_content(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

/// Reads a `{"token": id}` vocabulary (vocab.json).
pub(crate) fn read_vocab(path: &Path) -> Result<std::collections::HashMap<String, u32>> {
    let err = |msg: String| Error::Tokenizer(format!("{}: {msg}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| err(format!("invalid JSON: {e}")))?;
    let map = v
        .as_object()
        .ok_or_else(|| err("expected a JSON object of token ids".into()))?;
    map.iter()
        .map(|(k, v)| {
            let id = v
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| err(format!("token {k:?} has id {v}, not a token id")))?;
            Ok((k.clone(), id))
        })
        .collect()
}

/// `map_err` helper for the family modules: any displayable error as a message.
/// Runs a call into the `tokenizers` crate, which indexes a SentencePiece model's precompiled
/// charsmap unchecked: a corrupt charsmap panics at encode time (found by fuzz/, tokenizer
/// target), long after load. The panic becomes an error naming the likely cause.
fn guarded<T>(
    f: impl FnOnce() -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(format!(
            "the tokenizer failed ({}); its model files may be corrupt",
            panic_text(panic.as_ref())
        ))
    })
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("panic")
}

pub(crate) fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    /// tokenizers panicked on a decoder entry `{1: 2}` (invalid JSON, found by fuzz/); that
    /// and valid JSON of the wrong shape are errors naming the file.
    #[test]
    fn malformed_tokenizer_json_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("seqbridge-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokenizer.json");
        for text in [
            r#"{"decoder": {1: 2}}"#,
            r#"{"decoder": 5}"#,
            r#"{"normalizer": []}"#,
        ] {
            std::fs::write(&path, text).expect("write");
            match super::Tokenizer::from_file(&path) {
                Ok(_) => panic!("{text} loaded"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("tokenizer.json"), "{text}: {msg}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A spiece.model whose precompiled charsmap is corrupt (fuzz/ found it; the first byte
    /// is the fuzz target's mode): the tokenizers crate panicked on encode; now an error.
    #[test]
    fn corrupt_precompiled_charsmap_is_an_error_not_a_panic() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let input = std::fs::read(root.join("tests/fixtures/fuzz/tokenizer-corrupt-charsmap"))
            .expect("fixture");
        let dir = std::env::temp_dir().join(format!("seqbridge-spm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("spiece.model"), &input[1..]).expect("write");
        let tok = super::Tokenizer::from_dir(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let tok = tok.expect("loads").expect("a T5 layout");
        let text: String = String::from_utf8_lossy(&input[1..])
            .chars()
            .take(64)
            .collect();
        let results: Vec<_> = ["Hello world", "<unk> </s> ▁x", text.as_str()]
            .iter()
            .map(|t| tok.encode(t))
            .collect();
        assert!(
            results.iter().any(|r| r.is_err()),
            "no input hit the corrupt charsmap"
        );
    }

    use super::*;

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(
            clean_up_tokenization("a , b . c ? do n't I 'm"),
            "a, b. c? don't I'm"
        );
    }

    #[test]
    fn python_strip() {
        assert_eq!(py_strip("\x1c a b\u{3000}\n"), "a b");
    }
}
