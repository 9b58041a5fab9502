//! MBartTokenizer (mBART-cc25 / en-ro): `sentencepiece.bpe.model` segments the text; ids follow
//! fairseq's dictionary: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, then SentencePiece piece
//! `i` (from 3 on) at `i + 1`, then the 25 language codes, then `<mask>`. A source is
//! `tokens </s> src_lang`; the source language comes from tokenizer_config.json's `src_lang`
//! (default `en_XX`) and can be changed. Decoding drops special tokens (language codes
//! included) and uses the `Metaspace` decoder.
//!
//! Segmentation follows the SentencePiece file (BPE and the nmt_nfkc normalisation), as
//! transformers 4's slow and fast MBartTokenizer and fairseq did. transformers 5 rebuilds a
//! directory without tokenizer.json as a Unigram over the BPE pieces without the normaliser,
//! and its ids can differ from these (tools/README.md).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use tokenizers::AddedToken;

use super::sentencepiece::{ModelType, PieceType, SpModel};
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
        let path = dir.join("sentencepiece.bpe.model");
        let spm = SpModel::load(&path)?;
        let err = |msg: String| Error::Tokenizer(format!("{}: {msg}", path.display()));
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
            spm.pieces[3..]
                .iter()
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
        let model: tokenizers::ModelWrapper = match spm.model_type {
            ModelType::Bpe => spm.bpe(&ids, &unk)?.into(),
            _ => spm.unigram(vocab, 3)?.into(),
        };
        let mut tok = spm.tokenizer(model)?;
        let mut specials: Vec<AddedToken> = [&bos, &pad, &eos, &unk]
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        specials.extend(LANGUAGE_CODES.iter().map(|c| AddedToken::from(*c, true)));
        specials.push(AddedToken::from(mask, true).lstrip(true));
        tok.add_special_tokens(&specials);
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
            eos: ids[&eos],
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
            .find(|c| self.languages[*c] == id)
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
