//! MarianTokenizer (opus-mt): `source.spm` segments the source text, `vocab.json` turns the
//! pieces into ids (a piece it lacks is `<unk>`), `</s>` ends the ids. A leading target
//! language token (`>>fra<< ...`) is kept whole. Decoding maps ids to tokens through the
//! target vocabulary (`target_vocab.json` with `separate_vocabs`, else `vocab.json`), drops
//! special tokens and SentencePiece control pieces, turns '▁' into spaces and strips the
//! ends, as transformers' `MarianTokenizer.decode(ids, skip_special_tokens=True)` does (which,
//! in transformers 5, decodes with `source.spm` unless the vocabularies are separate; the two
//! differ only in which pieces count as control pieces or bytes).

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::sequence::Sequence;
use tokenizers::normalizers::Replace;

use super::sentencepiece::{ModelType, PieceType, SPACE, SpModel};
use super::{TokenizerConfig, msg, py_strip, read_vocab};
use crate::error::{Error, Result};

pub struct Marian {
    /// source.spm's pipeline; its own ids are not used, its token strings are looked up.
    source: tokenizers::Tokenizer,
    /// Source token → id: tokenizer_config.json's added tokens, then vocab.json.
    encoder: HashMap<String, u32>,
    /// Source id → token (labels).
    source_tokens: HashMap<u32, String>,
    /// Target id → token (decoding).
    target_tokens: HashMap<u32, String>,
    /// The SentencePiece model whose control pieces decode to nothing.
    decode_spm: SpModel,
    decoder: DecoderWrapper,
    special_ids: HashSet<u32>,
    eos: u32,
    unk: u32,
}

impl Marian {
    pub(crate) fn load(dir: &Path, config: &TokenizerConfig) -> Result<Marian> {
        let separate = config.bool("separate_vocabs").unwrap_or(false);
        let mut needed = vec!["source.spm", "target.spm", "vocab.json"];
        if separate {
            needed.push("target_vocab.json");
        }
        for f in &needed {
            if !dir.join(f).is_file() {
                return Err(Error::Tokenizer(format!(
                    "{}: missing; a MarianTokenizer directory needs {}{}",
                    dir.join(f).display(),
                    needed.join(", "),
                    if separate {
                        " (separate_vocabs is set in tokenizer_config.json)"
                    } else {
                        ""
                    }
                )));
            }
        }
        let source_spm = SpModel::load(&dir.join("source.spm"))?;
        let target_spm = SpModel::load(&dir.join("target.spm"))?;
        let vocab_path = dir.join("vocab.json");
        let vocab = read_vocab(&vocab_path)?;
        let added = config.added_tokens()?;

        let mut encoder = vocab.clone();
        for t in &added {
            encoder.insert(t.content.clone(), t.id);
        }
        let name = |key: &str, default: &str| config.token(key, default);
        let (eos_name, unk_name, pad_name) = (
            name("eos_token", "</s>"),
            name("unk_token", "<unk>"),
            name("pad_token", "<pad>"),
        );
        // (as MarianTokenizer: vocab.json itself must have it)
        let unk = *vocab.get(&unk_name).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: the unknown token {unk_name:?} is not in the vocabulary",
                vocab_path.display()
            ))
        })?;
        let eos = *encoder.get(&eos_name).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: the end-of-sequence token {eos_name:?} is not in the vocabulary",
                vocab_path.display()
            ))
        })?;
        // all_special_ids: the named special tokens, the extra special tokens and the special
        // added tokens, resolved through the source side (as transformers does)
        let mut special_names = vec![eos_name.clone(), unk_name.clone(), pad_name.clone()];
        special_names.extend(config.extra_special_tokens());
        special_names.extend(
            added
                .iter()
                .filter(|t| t.special)
                .map(|t| t.content.clone()),
        );
        let special_ids: HashSet<u32> = special_names
            .iter()
            .filter_map(|n| encoder.get(n).copied())
            .collect();

        let invert = |v: &HashMap<String, u32>| -> HashMap<u32, String> {
            let mut inv: HashMap<u32, String> = v.iter().map(|(k, &i)| (i, k.clone())).collect();
            for t in &added {
                inv.insert(t.id, t.content.clone());
            }
            inv
        };
        let source_tokens = invert(&vocab);
        let target_tokens = if separate {
            invert(&read_vocab(&dir.join("target_vocab.json"))?)
        } else {
            source_tokens.clone()
        };

        // source.spm as SentencePiece encodes: CONTROL / UNUSED pieces never match text
        let model: tokenizers::ModelWrapper = match source_spm.model_type {
            ModelType::Bpe => {
                let ids = (0u32..)
                    .zip(&source_spm.pieces)
                    .map(|(i, p)| (p.piece.clone(), i))
                    .collect();
                // `SpModel::load` checked that unk_id names a piece.
                let unk = source_spm
                    .pieces
                    .get(source_spm.unk_id as usize)
                    .ok_or_else(|| {
                        Error::Tokenizer(format!(
                            "{}: unk_id {} is outside the {} pieces",
                            source_spm.path.display(),
                            source_spm.unk_id,
                            source_spm.len()
                        ))
                    })?;
                source_spm.bpe(&ids, &unk.piece)?
            }
            .into(),
            _ => {
                let vocab = source_spm
                    .unigram_vocab(|_, p| matches!(p.kind, PieceType::Control | PieceType::Unused));
                source_spm.unigram(vocab, source_spm.unk_id)?.into()
            }
        };
        let mut source = source_spm.tokenizer(model)?;
        let mut specials: Vec<tokenizers::AddedToken> =
            added.iter().map(|t| t.to_tokenizers()).collect();
        for n in &special_names {
            if encoder.contains_key(n) && !added.iter().any(|t| &t.content == n) {
                specials.push(tokenizers::AddedToken::from(n.clone(), true));
            }
        }
        source.add_special_tokens(&specials);

        let decode_spm = if separate { target_spm } else { source_spm };
        let replace = Replace::new(SPACE.to_string(), " ").map_err(|e| {
            Error::Tokenizer(format!("{}: decoder: {e}", decode_spm.path.display()))
        })?;
        let decoder = if decode_spm.byte_fallback {
            Sequence::new(vec![ByteFallback::new().into(), replace.into()]).into()
        } else {
            replace.into()
        };
        Ok(Marian {
            source,
            encoder,
            source_tokens,
            target_tokens,
            decode_spm,
            decoder,
            special_ids,
            eos,
            unk,
        })
    }

    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        let (code, rest) = split_language_code(text);
        if let Some(code) = code {
            ids.push(self.encoder.get(code).copied().unwrap_or(self.unk));
        }
        let enc = self.source.encode(rest, false).map_err(msg)?;
        ids.extend(
            enc.get_tokens()
                .iter()
                .map(|t| self.encoder.get(t).copied().unwrap_or(self.unk)),
        );
        ids.push(self.eos);
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> std::result::Result<String, String> {
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            if self.special_ids.contains(&id) {
                continue;
            }
            let token = self.target_tokens.get(&id).ok_or_else(|| {
                format!(
                    "id {id} is not in the target vocabulary ({} tokens)",
                    self.target_tokens.len()
                )
            })?;
            let control = self
                .decode_spm
                .id(token)
                .and_then(|i| self.decode_spm.kind(i))
                == Some(PieceType::Control);
            if !control {
                tokens.push(token.clone());
            }
        }
        let text = tokenizers::Decoder::decode(&self.decoder, tokens).map_err(msg)?;
        Ok(py_strip(&text).to_string())
    }

    pub fn source_token(&self, id: u32) -> Option<String> {
        self.source_tokens.get(&id).cloned()
    }

    pub fn target_token(&self, id: u32) -> Option<String> {
        self.target_tokens.get(&id).cloned()
    }

    pub fn source_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// A `>>code<<` token of the source vocabulary (multilingual opus-mt targets).
    pub fn language_id(&self, code: &str) -> Option<u32> {
        let code = if code.starts_with(">>") && code.ends_with("<<") {
            code.to_string()
        } else {
            format!(">>{code}<<")
        };
        self.encoder.get(&code).copied()
    }
}

/// A leading `>>xx<<`, kept whole, and the rest of the text.
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    if text.starts_with(">>") {
        if let Some(end) = text.find("<<") {
            return (Some(&text[..end + 2]), &text[end + 2..]);
        }
    }
    (None, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_code_prefix() {
        assert_eq!(
            split_language_code(">>fra<< Salut"),
            (Some(">>fra<<"), " Salut")
        );
        assert_eq!(split_language_code("a >>fra<<"), (None, "a >>fra<<"));
        assert_eq!(split_language_code(">>fra"), (None, ">>fra"));
    }
}
