//! T5Tokenizer (T5, mT5, umT5) for a directory without tokenizer.json, built as transformers 5
//! builds it from `spiece.model` (`T5Tokenizer.__init__` over the vocabulary that
//! `SentencePieceExtractor` and `T5Converter.convert_from_spm` take from the file), so that ids
//! and text are transformers':
//! - vocabulary: every piece of the file in its order with its score (CONTROL, UNKNOWN and
//!   USER_DEFINED pieces included), then the `extra_ids` sentinels (tokenizer_config.json, 100
//!   by default) counted down, `<extra_id_{N-1}>` ... `<extra_id_0>` (score 0), so
//!   `<extra_id_0>` is the last id;
//! - model: `Unigram` over that vocabulary with unknown id 2 (whatever the file's `unk_id`)
//!   and no byte fallback, also for a BPE file;
//! - normalizer: the file's `precompiled_charsmap` (`Precompiled`) alone, none when the file
//!   has no charsmap; SentencePiece's own whitespace rules (`remove_extra_whitespaces`, the
//!   escape to '▁', the dummy prefix) are not applied;
//! - pre-tokenizer: a split on any whitespace (`WhitespaceSplit`: U+0085, U+1680, U+3000, ...
//!   too), then `Metaspace` ('▁' before every word);
//! - added tokens, matched as flagged (the named and extra special tokens in the raw text):
//!   tokenizer_config.json's `added_tokens_decoder`, the named special tokens (`eos_token`,
//!   `unk_token`, `pad_token` with T5's defaults `</s>`, `<unk>`, `<pad>`, any other
//!   `*_token` the file sets), then the extra special tokens. Those are tokenizer_config.json's
//!   `extra_special_tokens` (or `additional_special_tokens`) when it has such a list (the
//!   sentinels then stay plain Unigram pieces unless the list names them), else the file's
//!   CONTROL (special) and USER_DEFINED (not special) pieces and the sentinels
//!   `<extra_id_0>` ... (special; not when those pieces already hold `<extra_id_` tokens). A
//!   token already added keeps its first entry; a token not in the vocabulary gets the next
//!   free id;
//! - post-processor: `</s>` (the id of `eos_token`) after the ids;
//! - decoder: `Metaspace` (the '▁' of the first token dropped).
//!
//! Decoding drops the special tokens. SentencePiece itself (the slow tokenizer of transformers
//! 4) differs on text with whitespace its normaliser leaves alone (U+0085, U+1680, ...) and
//! on a few decodings (tools/README.md).

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;
use tokenizers::AddedToken;
use tokenizers::decoders::metaspace::{Metaspace, PrependScheme};
use tokenizers::models::unigram::Unigram;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;

use super::sentencepiece::{PieceType, SPACE, SpModel};
use super::{TokenizerConfig, added_token, msg};
use crate::error::{Error, Result};

/// transformers' T5Tokenizer builds its Unigram model with this unknown id.
const UNK_ID: usize = 2;

/// transformers' named special tokens, in the order it adds them.
const NAMED: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

pub struct T5 {
    tok: tokenizers::Tokenizer,
    eos: u32,
}

impl T5 {
    pub(crate) fn load(dir: &Path, config: &TokenizerConfig) -> Result<T5> {
        T5::new(&SpModel::load(&dir.join("spiece.model"))?, config)
    }

    fn new(spm: &SpModel, config: &TokenizerConfig) -> Result<T5> {
        let err = |msg: String| Error::Tokenizer(format!("{}: {msg}", spm.path.display()));
        let extra_ids = config.u64("extra_ids").unwrap_or(100);
        if extra_ids > 100_000 {
            return Err(Error::Tokenizer(format!(
                "{}: extra_ids {extra_ids} is not a sensible count",
                config.path().display()
            )));
        }
        let sentinel = |i: u64| format!("<extra_id_{i}>");
        // T5Tokenizer's own extra special tokens: the file's CONTROL (special) and USER_DEFINED
        // (not special) pieces, then the sentinels unless those pieces already hold one
        let mut own: Vec<super::AddedToken> = spm
            .pieces
            .iter()
            .filter(|p| matches!(p.kind, PieceType::Control | PieceType::UserDefined))
            .map(|p| piece_token(&p.piece, p.kind == PieceType::Control))
            .collect();
        let in_file = own
            .iter()
            .filter(|t| t.content.contains("<extra_id_"))
            .count() as u64;
        if in_file == 0 {
            own.extend((0..extra_ids).map(|i| piece_token(&sentinel(i), true)));
        } else if extra_ids > 0 && extra_ids != in_file {
            return Err(err(format!(
                "{in_file} CONTROL or USER_DEFINED pieces are <extra_id_N> sentinels, but \
                 tokenizer_config.json's extra_ids is {extra_ids} (transformers refuses this too)"
            )));
        }

        let mut vocab: Vec<(String, f64)> = spm
            .pieces
            .iter()
            .map(|p| (p.piece.clone(), p.score as f64))
            .collect();
        vocab.extend((0..extra_ids).rev().map(|i| (sentinel(i), 0.0)));
        if vocab.len() <= UNK_ID {
            return Err(err(format!(
                "{} pieces: T5's unknown token is id {UNK_ID}",
                spm.len()
            )));
        }
        let model = Unigram::from(vocab, Some(UNK_ID), false)
            .map_err(|e| err(format!("cannot build the Unigram model: {e}")))?;
        let mut tok = tokenizers::Tokenizer::new(model);
        if let Some(p) = spm.precompiled()? {
            tok.with_normalizer(Some(p));
        }
        let metaspace = Metaspace::new(SPACE, PrependScheme::Always, true);
        tok.with_pre_tokenizer(Some(Sequence::new(vec![
            WhitespaceSplit.into(),
            metaspace.clone().into(),
        ])));
        tok.with_decoder(Some(metaspace));

        // The named special tokens: T5Tokenizer's defaults for eos, unk and pad (a null setting
        // drops one), the others where tokenizer_config.json sets them, then its other
        // `*_token` settings (transformers takes those in the file's order, here they are
        // sorted: that only changes the ids of two or more such tokens missing from the
        // vocabulary).
        let mut named: Vec<super::AddedToken> = NAMED
            .iter()
            .filter_map(|&key| {
                let default = match key {
                    "eos_token" => Some("</s>"),
                    "unk_token" => Some("<unk>"),
                    "pad_token" => Some("<pad>"),
                    _ => None,
                };
                named_token(config, key, default)
            })
            .collect();
        named.extend(
            config
                .keys()
                .filter(|k| k.ends_with("_token") && !NAMED.contains(k))
                .filter(|k| config.get(k).is_some_and(Value::is_string))
                .filter_map(|k| named_token(config, k, None)),
        );
        let named_contents: HashSet<&str> = named.iter().map(|t| t.content.as_str()).collect();

        // Added tokens in transformers' order; a content already listed keeps its first entry
        // (a named token is always special).
        let mut added: Vec<AddedToken> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut add = |mut t: super::AddedToken| {
            if named_contents.contains(t.content.as_str()) {
                t.special = true;
            }
            if seen.insert(t.content.clone()) {
                added.push(t.to_tokenizers_as_given());
            }
        };
        for t in config.added_tokens()? {
            add(t);
        }
        for t in &named {
            add(t.clone());
        }
        match config.extra_special_token_list() {
            // tokenizer_config.json's list replaces T5Tokenizer's own
            Some(list) => list.into_iter().for_each(&mut add),
            None => own.into_iter().for_each(&mut add),
        }
        tok.add_tokens(&added);

        let eos_name = named_token(config, "eos_token", Some("</s>"))
            .ok_or_else(|| {
                Error::Tokenizer(format!(
                    "{}: eos_token is null, but T5 ends every source with it",
                    config.path().display()
                ))
            })?
            .content;
        let eos = tok
            .token_to_id(&eos_name)
            .ok_or_else(|| err(format!("no id for the end-of-sequence token {eos_name:?}")))?;
        Ok(T5 { tok, eos })
    }

    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        let enc = self.tok.encode(text, false).map_err(msg)?;
        let mut ids = enc.get_ids().to_vec();
        ids.push(self.eos);
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> std::result::Result<String, String> {
        self.tok.decode(ids, true).map_err(msg)
    }

    pub fn token(&self, id: u32) -> Option<String> {
        self.tok.id_to_token(id)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tok.token_to_id(token)
    }
}

/// A named special token of tokenizer_config.json (a string or a token object, always
/// special), `default` when the setting is absent, `None` when it is null.
fn named_token(
    config: &TokenizerConfig,
    key: &str,
    default: Option<&str>,
) -> Option<super::AddedToken> {
    let v = match config.get(key) {
        Some(v) => v.clone(),
        None => Value::from(default?),
    };
    let mut t = added_token(&v, true)?;
    t.special = true;
    Some(t)
}

/// A piece or sentinel that T5Tokenizer adds: matched in the raw text.
fn piece_token(content: &str, special: bool) -> super::AddedToken {
    super::AddedToken {
        id: 0,
        content: content.to_string(),
        special,
        lstrip: false,
        rstrip: false,
        single_word: false,
        normalized: false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::io::tokenizer::sentencepiece::{ModelType, TrainerSpec, test_model};

    /// A Unigram model without a charsmap, with an extra CONTROL and a USER_DEFINED piece
    /// after T5's three.
    fn model() -> SpModel {
        let pieces = [
            ("<pad>", 0.0, PieceType::Control),
            ("</s>", 0.0, PieceType::Control),
            ("<unk>", 0.0, PieceType::Unknown),
            ("<ctl>", 0.0, PieceType::Control),
            ("@@", 0.0, PieceType::UserDefined),
            ("▁ab", -1.0, PieceType::Normal),
            ("▁a", -2.0, PieceType::Normal),
            ("bc", -3.0, PieceType::Normal),
            ("▁", -4.0, PieceType::Normal),
            ("a", -5.0, PieceType::Normal),
            ("b", -6.0, PieceType::Normal),
            ("c", -7.0, PieceType::Normal),
            ("abc", -8.0, PieceType::Normal),
        ];
        test_model(
            "spiece.model",
            &pieces,
            TrainerSpec {
                model_type: Some(ModelType::Unigram as i32),
                unk_id: Some(2),
                ..Default::default()
            },
        )
    }

    fn t5(config: serde_json::Value) -> T5 {
        let config = TokenizerConfig {
            path: PathBuf::from("tokenizer_config.json"),
            value: config,
        };
        T5::new(&model(), &config).unwrap()
    }

    /// NEL, U+3000 and U+1680 split words; the combining mark after U+1680 is a word of its own
    const WORDS: &str = "abc ab\u{85}a\u{3000}bc\u{1680}\u{301}c";
    const ADDED: &str = "x@@abc <ctl>a <extra_id_0>b</s>c <extra_id_2><foo> <eos>";

    /// Expected values: transformers 5.24's `AutoTokenizer.from_pretrained` on a directory
    /// with this model and tokenizer_config.json (plus `"tokenizer_class": "T5Tokenizer"`).
    #[test]
    fn segments_and_adds_tokens_like_transformers() {
        let t = t5(json!({"extra_ids": 3}));
        let ids = t.encode(WORDS).unwrap();
        assert_eq!(ids, [6, 7, 5, 6, 8, 7, 8, 2, 11, 1]);
        assert_eq!(t.decode(&ids).unwrap(), "abc ab a bc c");
        // <ctl> and the sentinels special, @@ an ordinary added token
        let ids = t.encode(ADDED).unwrap();
        assert_eq!(
            ids,
            [8, 2, 4, 6, 7, 3, 6, 15, 8, 10, 1, 8, 11, 13, 8, 2, 8, 2, 1]
        );
        assert_eq!(t.decode(&ids).unwrap(), "@@ abc a b c  ");
        assert_eq!(t.token_id("<extra_id_0>"), Some(15));
        assert_eq!(t.token_id("<extra_id_1>"), Some(14));
        assert_eq!(t.token_id("<foo>"), None);
    }

    #[test]
    fn configured_extra_special_tokens_replace_the_sentinels() {
        let t =
            t5(json!({"extra_ids": 2, "extra_special_tokens": ["<foo>"], "eos_token": "<eos>"}));
        let ids = t.encode(WORDS).unwrap();
        assert_eq!(ids, [6, 7, 5, 6, 8, 7, 8, 2, 11, 15]);
        // the sentinels, <ctl>, </s> and @@ are plain Unigram pieces; <eos> and <foo> are new
        let ids = t.encode(ADDED).unwrap();
        assert_eq!(
            ids,
            [
                8, 2, 4, 12, 8, 3, 9, 8, 14, 10, 1, 11, 8, 2, 9, 2, 16, 15, 15
            ]
        );
        assert_eq!(t.decode(&ids).unwrap(), "@@abc <ctl>a <extra_id_0>b</s>c a");
        assert_eq!(t.token_id("<extra_id_0>"), Some(14));
        assert_eq!(t.token_id("<foo>"), Some(16));
    }
}
