//! T5Tokenizer (T5, mT5): `spiece.model` segments the text and its piece ids are the token
//! ids; `</s>` ends the ids. The `extra_ids` sentinels (`<extra_id_0>` ... , 100 by default)
//! follow the pieces, counted down from the end of the vocabulary: `<extra_id_0>` is the last
//! id. Decoding drops special tokens (pad, eos, unk, sentinels) and uses the `Metaspace`
//! decoder, as transformers' (converted) T5Tokenizer does.

use std::path::Path;

use tokenizers::AddedToken;

use super::sentencepiece::{ModelType, SpModel};
use super::{TokenizerConfig, msg};
use crate::error::{Error, Result};

pub struct T5 {
    tok: tokenizers::Tokenizer,
    eos: u32,
}

impl T5 {
    pub(crate) fn load(dir: &Path, config: &TokenizerConfig) -> Result<T5> {
        let path = dir.join("spiece.model");
        let spm = SpModel::load(&path)?;
        let model: tokenizers::ModelWrapper = match spm.model_type {
            ModelType::Bpe => {
                let ids = spm
                    .pieces
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.piece.clone(), i as u32))
                    .collect();
                spm.bpe(&ids, &spm.pieces[spm.unk_id as usize].piece)?
                    .into()
            }
            _ => {
                let vocab = spm.unigram_vocab(|_, _| false);
                spm.unigram(vocab, spm.unk_id)?.into()
            }
        };
        let mut tok = spm.tokenizer(model)?;

        // the sentinels first: they take the ids right after the pieces, <extra_id_0> last
        let extra_ids = config.u64("extra_ids").unwrap_or(100);
        if extra_ids > 100_000 {
            return Err(Error::Tokenizer(format!(
                "{}: extra_ids {extra_ids} is not a sensible count",
                config.path().display()
            )));
        }
        let sentinels: Vec<AddedToken> = (0..extra_ids)
            .rev()
            .map(|i| AddedToken::from(format!("<extra_id_{i}>"), true))
            .collect();
        tok.add_special_tokens(&sentinels);
        let eos_name = config.token("eos_token", "</s>");
        let mut specials = vec![
            config.token("pad_token", "<pad>"),
            eos_name.clone(),
            config.token("unk_token", "<unk>"),
        ];
        specials.extend(config.extra_special_tokens());
        let specials: Vec<AddedToken> = specials
            .into_iter()
            .map(|s| AddedToken::from(s, true))
            .collect();
        tok.add_special_tokens(&specials);
        let eos = spm.id(&eos_name).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: the end-of-sequence token {eos_name:?} is not a piece of the model",
                path.display()
            ))
        })?;
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
