//! MBartTokenizer (mBART-cc25 / en-ro) for a directory without tokenizer.json, built as
//! transformers 5 builds it from `sentencepiece.bpe.model` (`MBartTokenizer.__init__` over the
//! vocabulary of `MBartConverter.convert_from_spm`), so that ids and text are transformers':
//! - vocabulary, fairseq's ids: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3 (score 0), then
//!   SentencePiece piece `i` (from 3 on) at `i + 1` with its score, then the 25 language codes
//!   and `<mask>` (score 0);
//! - model: `Unigram` over that vocabulary (unknown id 3, no byte fallback), although the file
//!   is a BPE model: the piece scores (minus the merge rank) act as log-probabilities;
//! - no normalizer: the file's `precompiled_charsmap` (nmt_nfkc) and its whitespace rules are
//!   not applied;
//! - pre-tokenizer: a split on any whitespace (`WhitespaceSplit`), then `Metaspace` ('▁' before
//!   every word);
//! - added tokens, matched in the raw text before the pre-tokenizer: tokenizer_config.json's
//!   `added_tokens_decoder`, the named special tokens (`<s>`, `</s>`, `<unk>`, `<pad>`,
//!   `<mask>`, which takes the spaces before it), then the extra special tokens. Those are
//!   tokenizer_config.json's `extra_special_tokens` (or `additional_special_tokens`) when it has
//!   such a list (transformers then leaves the language codes as plain Unigram pieces), else the
//!   language codes and the file's CONTROL pieces as special tokens and its USER_DEFINED pieces
//!   as ordinary added tokens;
//! - decoder: `Metaspace` (the '▁' of the first token dropped).
//!
//! A source is `tokens </s> src_lang`; the source language comes from tokenizer_config.json's
//! `src_lang` (default `en_XX`) and can be changed. Decoding drops special tokens (the language
//! codes too, where they are special tokens).
//!
//! SentencePiece itself (BPE merges after the nmt_nfkc normalisation, as fairseq and
//! transformers 4's MBartTokenizer segment) gives other ids for some texts: text the normaliser
//! changes (ﬁ, fullwidth letters, e + U+0301, ...) and words where the best Unigram segmentation
//! is not the BPE one (tools/README.md).

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use tokenizers::AddedToken;
use tokenizers::decoders::metaspace::{Metaspace, PrependScheme};
use tokenizers::models::unigram::Unigram;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;

use super::sentencepiece::{PieceType, SPACE, SpModel};
use super::{TokenizerConfig, msg};
use crate::error::{Error, Result};

/// The language codes of MBartTokenizer, in vocabulary order.
pub const LANGUAGE_CODES: [&str; 25] = [
    "ar_AR", "cs_CZ", "de_DE", "en_XX", "es_XX", "et_EE", "fi_FI", "fr_XX", "gu_IN", "hi_IN",
    "it_IT", "ja_XX", "kk_KZ", "ko_KR", "lt_LT", "lv_LV", "my_MM", "ne_NP", "nl_XX", "ro_RO",
    "ru_RU", "si_LK", "tr_TR", "vi_VN", "zh_CN",
];

pub struct MBart {
    tok: tokenizers::Tokenizer,
    eos: u32,
    /// Language code → id.
    languages: HashMap<&'static str, u32>,
    src_lang: AtomicU32,
}

impl MBart {
    pub(crate) fn load(dir: &Path, config: &TokenizerConfig) -> Result<MBart> {
        MBart::new(
            &SpModel::load(&dir.join("sentencepiece.bpe.model"))?,
            config,
        )
    }

    fn new(spm: &SpModel, config: &TokenizerConfig) -> Result<MBart> {
        let err = |msg: String| Error::Tokenizer(format!("{}: {msg}", spm.path.display()));
        let kinds: Vec<PieceType> = spm.pieces.iter().take(3).map(|p| p.kind).collect();
        if kinds != [PieceType::Unknown, PieceType::Control, PieceType::Control] {
            return Err(err(format!(
                "expected <unk>, <s>, </s> as pieces 0-2 (fairseq's layout), found {:?}",
                spm.pieces
                    .iter()
                    .take(3)
                    .map(|p| &p.piece)
                    .collect::<Vec<_>>()
            )));
        }
        let name = |key: &str, default: &str| config.token(key, default);
        let (bos, pad, eos, unk, mask) = (
            name("bos_token", "<s>"),
            name("pad_token", "<pad>"),
            name("eos_token", "</s>"),
            name("unk_token", "<unk>"),
            name("mask_token", "<mask>"),
        );
        // fairseq's dictionary: 4 specials, then the pieces from 3 on shifted by one
        let mut vocab: Vec<(String, f64)> = [&bos, &pad, &eos, &unk]
            .iter()
            .map(|s| (s.to_string(), 0.0))
            .collect();
        vocab.extend(
            // At least 3 pieces: checked above.
            spm.pieces
                .iter()
                .skip(3)
                .map(|p| (p.piece.clone(), p.score as f64)),
        );
        let ids: HashMap<String, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.clone(), i as u32))
            .collect();
        if ids.len() != vocab.len() {
            return Err(err(format!(
                "a piece from 3 on repeats one of {bos:?}, {pad:?}, {eos:?}, {unk:?}"
            )));
        }
        // then the language codes and the mask, as Unigram pieces too (score 0)
        vocab.extend(LANGUAGE_CODES.iter().map(|c| (c.to_string(), 0.0)));
        vocab.push((mask.clone(), 0.0));
        let model = Unigram::from(vocab, Some(3), false)
            .map_err(|e| err(format!("cannot build the Unigram model: {e}")))?;
        let mut tok = tokenizers::Tokenizer::new(model);
        let metaspace = Metaspace::new(SPACE, PrependScheme::Always, true);
        tok.with_pre_tokenizer(Some(Sequence::new(vec![
            WhitespaceSplit.into(),
            metaspace.clone().into(),
        ])));
        tok.with_decoder(Some(metaspace));

        // Added tokens, in transformers' order (the order only decides the ids of tokens that
        // are not in the vocabulary): tokenizer_config.json's added_tokens_decoder, the named
        // special tokens, then the extra special tokens. A token already listed keeps its first
        // entry.
        let mut added: Vec<AddedToken> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut add = |t: AddedToken| {
            if seen.insert(t.content.clone()) {
                added.push(t);
            }
        };
        for t in config.added_tokens()? {
            add(t.to_tokenizers());
        }
        let (sep, cls) = (name("sep_token", "</s>"), name("cls_token", "<s>"));
        for s in [&bos, &eos, &unk, &sep, &pad, &cls] {
            add(AddedToken::from(s.clone(), true));
        }
        add(AddedToken::from(mask.clone(), true).lstrip(true));
        match config.extra_special_token_list() {
            // the configuration's list replaces MBartTokenizer's own: the language codes are then
            // ordinary pieces of the Unigram vocabulary (only the text of each entry is read)
            Some(list) => {
                for t in list {
                    add(AddedToken::from(t.content, true));
                }
            }
            // MBartTokenizer's own: the language codes, then the file's CONTROL (special) and
            // USER_DEFINED (not special) pieces
            None => {
                for c in LANGUAGE_CODES {
                    add(AddedToken::from(c, true));
                }
                for p in &spm.pieces {
                    if matches!(p.kind, PieceType::Control | PieceType::UserDefined) {
                        let special = p.kind == PieceType::Control;
                        add(AddedToken::from(p.piece.clone(), special).normalized(false));
                    }
                }
            }
        }
        tok.add_tokens(&added);
        let languages: HashMap<&'static str, u32> = LANGUAGE_CODES
            .iter()
            .map(|&c| {
                Ok((
                    c,
                    tok.token_to_id(c)
                        .ok_or_else(|| err(format!("no id for {c}")))?,
                ))
            })
            .collect::<Result<_>>()?;
        let src = config.string("src_lang").unwrap_or_else(|| "en_XX".into());
        let src_lang = *languages.get(src.as_str()).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: src_lang {src:?} is not an mBART language code ({})",
                config.path().display(),
                LANGUAGE_CODES.join(", ")
            ))
        })?;
        Ok(MBart {
            tok,
            eos: *ids
                .get(&eos)
                .ok_or_else(|| err(format!("eos_token {eos:?} is not in the vocabulary")))?,
            languages,
            src_lang: AtomicU32::new(src_lang),
        })
    }

    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        let enc = self.tok.encode(text, false).map_err(msg)?;
        let mut ids = enc.get_ids().to_vec();
        ids.push(self.eos);
        ids.push(self.src_lang.load(Ordering::Relaxed));
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

    pub fn language_id(&self, code: &str) -> Option<u32> {
        self.languages.get(code).copied()
    }

    pub fn source_language(&self) -> String {
        let id = self.src_lang.load(Ordering::Relaxed);
        LANGUAGE_CODES
            .iter()
            .find(|c| self.languages.get(*c) == Some(&id))
            .map_or_else(|| format!("<{id}>"), |c| c.to_string())
    }

    pub fn set_source_language(&self, code: &str) -> std::result::Result<(), String> {
        let id = self.language_id(code).ok_or_else(|| {
            format!(
                "{code:?} is not an mBART language code ({})",
                LANGUAGE_CODES.join(", ")
            )
        })?;
        self.src_lang.store(id, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::io::tokenizer::sentencepiece::{ModelType, TrainerSpec, test_model};

    /// A BPE model with a CONTROL and a USER_DEFINED piece after fairseq's three.
    fn model() -> SpModel {
        let pieces = [
            ("<unk>", 0.0, PieceType::Unknown),
            ("<s>", 0.0, PieceType::Control),
            ("</s>", 0.0, PieceType::Control),
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
            "sentencepiece.bpe.model",
            &pieces,
            TrainerSpec {
                model_type: Some(ModelType::Bpe as i32),
                ..Default::default()
            },
        )
    }

    fn mbart(config: serde_json::Value) -> MBart {
        let config = TokenizerConfig {
            path: PathBuf::from("tokenizer_config.json"),
            value: config,
        };
        MBart::new(&model(), &config).unwrap()
    }

    const WORDS: &str = "abc ab\u{3000}a\u{a0}bc";
    const ADDED: &str = "x@@abc <ctl>a <foo>b <mask>c ro_RO";

    /// Expected values: transformers 5.24's `MBartTokenizer.from_pretrained` on a directory with
    /// this model and tokenizer_config.json.
    #[test]
    fn segments_and_adds_tokens_like_transformers() {
        let t = mbart(json!({"src_lang": "ro_RO"}));
        // Unigram over the BPE pieces (SentencePiece's BPE gives ▁ab c), any whitespace splits
        let ids = t.encode(WORDS).unwrap();
        assert_eq!(ids, [7, 8, 6, 7, 9, 8, 2, 33]);
        assert_eq!(t.decode(&ids).unwrap(), "abc ab a bc");
        // <ctl> special, @@ an ordinary added token, the language codes special
        let ids = t.encode(ADDED).unwrap();
        assert_eq!(ids, [9, 3, 5, 7, 8, 4, 7, 9, 3, 11, 39, 9, 12, 33, 2, 33]);
        assert_eq!(t.decode(&ids).unwrap(), "@@ abc a b c");
        assert_eq!(t.token_id("<foo>"), None);
    }

    #[test]
    fn configured_extra_special_tokens_replace_the_language_codes() {
        let t = mbart(json!({"src_lang": "ro_RO", "extra_special_tokens": ["<foo>"]}));
        let ids = t.encode(WORDS).unwrap();
        assert_eq!(ids, [7, 8, 6, 7, 9, 8, 2, 33]);
        assert_eq!(t.decode(&ids).unwrap(), "abc ab a bcro_RO");
        let ids = t.encode(ADDED).unwrap();
        assert_eq!(
            ids,
            [9, 3, 5, 13, 9, 4, 10, 40, 9, 11, 39, 9, 12, 9, 33, 2, 33]
        );
        assert_eq!(t.decode(&ids).unwrap(), "@@abc <ctl>a b c ro_ROro_RO");
        // transformers 4's name for the list
        let t = mbart(json!({"additional_special_tokens": ["<foo>", "ro_RO"]}));
        let ids = t.encode(ADDED).unwrap();
        assert_eq!(
            ids,
            [9, 3, 5, 13, 9, 4, 10, 40, 9, 11, 39, 9, 12, 33, 2, 17]
        );
        assert_eq!(t.decode(&ids).unwrap(), "@@abc <ctl>a b cen_XX");
    }
}
