//! SentencePiece model files (`*.spm`, `spiece.model`, `sentencepiece.bpe.model`): the part of
//! sentencepiece_model.proto a tokenizer needs, decoded with prost, and the `tokenizers`
//! pipeline that encodes like `SentencePieceProcessor.encode`.
//!
//! The pipeline follows the file's own settings:
//! - normalizer: the `precompiled_charsmap` (`Precompiled`), then, with
//!   `remove_extra_whitespaces`, spaces trimmed at both ends and runs of spaces collapsed (only
//!   U+0020, as SentencePiece does), spaces escaped as '▁' and the dummy '▁' prefix;
//! - pre-tokenizer: a split before every '▁' (pieces never cross a word boundary when the
//!   model was trained with `split_by_whitespace`, the default);
//! - model: `Unigram` with the piece scores, or `BPE` with merges ranked by the score of the
//!   merged piece (SentencePiece's BPE merges the best-scoring adjacent pair first);
//! - decoder: byte pieces back to bytes, '▁' to spaces, the dummy prefix dropped (`Metaspace`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::metaspace::{Metaspace, PrependScheme};
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::BPE;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Prepend, Replace, Sequence};
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::{ModelWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// SentencePiece's whitespace symbol.
pub const SPACE: char = '\u{2581}';

// ---------------------------------------------------------------------------------------------
// sentencepiece_model.proto (proto2), the fields read here; prost skips the others.
// ---------------------------------------------------------------------------------------------

/// `ModelProto`: the whole model file.
#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pub pieces: Vec<SentencePiece>,
    #[prost(message, optional, tag = "2")]
    pub trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    pub normalizer_spec: Option<NormalizerSpec>,
}

/// `ModelProto.SentencePiece`: one vocabulary entry.
#[derive(Clone, PartialEq, Message)]
pub struct SentencePiece {
    #[prost(string, optional, tag = "1")]
    pub piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub score: Option<f32>,
    #[prost(enumeration = "PieceType", optional, tag = "3", default = "Normal")]
    pub r#type: Option<i32>,
}

/// `ModelProto.SentencePiece.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PieceType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// `TrainerSpec.ModelType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ModelType {
    Unigram = 1,
    Bpe = 2,
    Word = 3,
    Char = 4,
}

/// `TrainerSpec`: how the model was trained; the encoder needs a few of these.
#[derive(Clone, PartialEq, Message)]
pub struct TrainerSpec {
    #[prost(enumeration = "ModelType", optional, tag = "3", default = "Unigram")]
    pub model_type: Option<i32>,
    #[prost(int32, optional, tag = "4", default = "8000")]
    pub vocab_size: Option<i32>,
    #[prost(bool, optional, tag = "22", default = "true")]
    pub split_by_whitespace: Option<bool>,
    #[prost(bool, optional, tag = "24", default = "false")]
    pub treat_whitespace_as_suffix: Option<bool>,
    #[prost(bool, optional, tag = "35", default = "false")]
    pub byte_fallback: Option<bool>,
    #[prost(int32, optional, tag = "40", default = "0")]
    pub unk_id: Option<i32>,
    #[prost(int32, optional, tag = "41", default = "1")]
    pub bos_id: Option<i32>,
    #[prost(int32, optional, tag = "42", default = "2")]
    pub eos_id: Option<i32>,
    #[prost(int32, optional, tag = "43", default = "-1")]
    pub pad_id: Option<i32>,
    #[prost(string, optional, tag = "45", default = "<unk>")]
    pub unk_piece: Option<String>,
    #[prost(string, optional, tag = "46", default = "<s>")]
    pub bos_piece: Option<String>,
    #[prost(string, optional, tag = "47", default = "</s>")]
    pub eos_piece: Option<String>,
    #[prost(string, optional, tag = "48", default = "<pad>")]
    pub pad_piece: Option<String>,
}

/// `NormalizerSpec`: what happens to the text before segmentation.
#[derive(Clone, PartialEq, Message)]
pub struct NormalizerSpec {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3", default = "true")]
    pub add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4", default = "true")]
    pub remove_extra_whitespaces: Option<bool>,
    #[prost(bool, optional, tag = "5", default = "true")]
    pub escape_whitespaces: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// A checked model
// ---------------------------------------------------------------------------------------------

/// One vocabulary entry of a checked model.
#[derive(Clone, Debug)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// A SentencePiece model file, parsed and checked.
#[derive(Clone, Debug)]
pub struct SpModel {
    pub path: PathBuf,
    pub pieces: Vec<Piece>,
    pub model_type: ModelType,
    /// Id of the unknown piece.
    pub unk_id: u32,
    pub byte_fallback: bool,
    split_by_whitespace: bool,
    precompiled_charsmap: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    ids: HashMap<String, u32>,
}

impl SpModel {
    /// Reads and checks `path`; every problem is an [`Error::Tokenizer`] naming the file.
    pub fn load(path: &Path) -> Result<SpModel> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: cannot read SentencePiece model: {e}",
                path.display()
            ))
        })?;
        SpModel::from_bytes(path, &bytes)
    }

    /// Parses a serialized `ModelProto`; `path` names it in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SpModel> {
        let err = |msg: String| Error::Tokenizer(format!("{}: {msg}", path.display()));
        let proto = ModelProto::decode(bytes)
            .map_err(|e| err(format!("not a SentencePiece model (protobuf: {e})")))?;
        if proto.pieces.is_empty() {
            return Err(err("not a SentencePiece model (no pieces)".into()));
        }
        let trainer = proto.trainer_spec.unwrap_or_default();
        let norm = proto.normalizer_spec.unwrap_or_default();
        // the raw values: prost's accessors turn unknown enum values into the default
        let raw_type = trainer.model_type.unwrap_or(ModelType::Unigram as i32);
        let model_type = ModelType::try_from(raw_type)
            .map_err(|_| err(format!("unknown model_type {raw_type}")))?;
        if !matches!(model_type, ModelType::Unigram | ModelType::Bpe) {
            return Err(err(format!(
                "model_type {model_type:?} is not supported (only UNIGRAM and BPE)"
            )));
        }
        if trainer.treat_whitespace_as_suffix() {
            return Err(err("treat_whitespace_as_suffix is not supported".into()));
        }
        let mut pieces = Vec::with_capacity(proto.pieces.len());
        let mut ids = HashMap::with_capacity(proto.pieces.len());
        for (i, p) in proto.pieces.iter().enumerate() {
            let raw_kind = p.r#type.unwrap_or(PieceType::Normal as i32);
            let kind = PieceType::try_from(raw_kind)
                .map_err(|_| err(format!("piece {i} has an unknown type {raw_kind}")))?;
            let piece = p.piece().to_string();
            if piece.is_empty() {
                return Err(err(format!("piece {i} is empty")));
            }
            let id = u32::try_from(i).map_err(|_| err(format!("more than {} pieces", u32::MAX)))?;
            if ids.insert(piece.clone(), id).is_some() {
                return Err(err(format!("piece {piece:?} appears twice")));
            }
            let score = p.score();
            if !score.is_finite() {
                return Err(err(format!("piece {piece:?} has score {score}")));
            }
            pieces.push(Piece { piece, score, kind });
        }
        if let Some(map) = norm
            .precompiled_charsmap
            .as_deref()
            .filter(|m| !m.is_empty())
        {
            check_charsmap(map).map_err(|e| err(format!("corrupt precompiled_charsmap: {e}")))?;
        }
        let unk_id = trainer.unk_id();
        let unk = usize::try_from(unk_id)
            .ok()
            .filter(|&u| pieces.get(u).is_some_and(|p| p.kind == PieceType::Unknown))
            .ok_or_else(|| {
                err(format!(
                    "unk_id {unk_id} is not an UNKNOWN piece of the {} pieces",
                    pieces.len()
                ))
            })?;
        Ok(SpModel {
            path: path.to_path_buf(),
            pieces,
            model_type,
            unk_id: unk as u32,
            byte_fallback: trainer.byte_fallback(),
            split_by_whitespace: trainer.split_by_whitespace(),
            precompiled_charsmap: norm.precompiled_charsmap().to_vec(),
            add_dummy_prefix: norm.add_dummy_prefix(),
            remove_extra_whitespaces: norm.remove_extra_whitespaces(),
            escape_whitespaces: norm.escape_whitespaces(),
            ids,
        })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The id of a piece, if it is in the model.
    pub fn id(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    pub fn kind(&self, id: u32) -> Option<PieceType> {
        self.pieces.get(id as usize).map(|p| p.kind)
    }

    fn error(&self, msg: impl std::fmt::Display) -> Error {
        Error::Tokenizer(format!("{}: {msg}", self.path.display()))
    }

    fn whitespace(&self) -> char {
        if self.escape_whitespaces { SPACE } else { ' ' }
    }

    /// The file's `precompiled_charsmap` as a normalizer; `None` when the file has none (an
    /// `identity` normalisation).
    pub fn precompiled(&self) -> Result<Option<Precompiled>> {
        if self.precompiled_charsmap.is_empty() {
            return Ok(None);
        }
        Precompiled::from(&self.precompiled_charsmap)
            .map(Some)
            .map_err(|e| self.error(format!("invalid precompiled_charsmap: {e}")))
    }

    /// The text normalisation of the model file.
    pub fn normalizer(&self) -> Result<NormalizerWrapper> {
        let regex = |pattern: &str, content: &str| {
            Replace::new(ReplacePattern::Regex(pattern.into()), content)
                .map(NormalizerWrapper::from)
                .map_err(|e| self.error(format!("normalizer: {e}")))
        };
        let mut steps: Vec<NormalizerWrapper> = Vec::new();
        if let Some(p) = self.precompiled()? {
            steps.push(p.into());
        }
        if self.remove_extra_whitespaces {
            steps.push(regex(r"\A +| +\z", "")?);
            steps.push(regex(" {2,}", " ")?);
        }
        if self.escape_whitespaces {
            steps.push(regex(" ", &SPACE.to_string())?);
        }
        if self.add_dummy_prefix {
            steps.push(Prepend::new(self.whitespace().to_string()).into());
        }
        Ok(Sequence::new(steps).into())
    }

    /// Words: a split before every whitespace symbol.
    pub fn pre_tokenizer(&self) -> Result<Option<Split>> {
        if !self.split_by_whitespace {
            return Ok(None);
        }
        Split::new(
            self.whitespace().to_string(),
            SplitDelimiterBehavior::MergedWithNext,
            false,
        )
        .map(Some)
        .map_err(|e| self.error(format!("pre-tokenizer: {e}")))
    }

    /// Tokens back to text: byte pieces to bytes, '▁' to spaces, the dummy prefix dropped.
    pub fn decoder(&self) -> DecoderWrapper {
        let scheme = if self.add_dummy_prefix {
            PrependScheme::Always
        } else {
            PrependScheme::Never
        };
        let meta = Metaspace::new(self.whitespace(), scheme, true);
        if self.byte_fallback {
            DecoderSequence::new(vec![ByteFallback::new().into(), meta.into()]).into()
        } else {
            meta.into()
        }
    }

    /// A Unigram model over `vocab` (id order, with scores), with this file's byte fallback.
    pub fn unigram(&self, vocab: Vec<(String, f64)>, unk_id: u32) -> Result<Unigram> {
        Unigram::from(vocab, Some(unk_id as usize), self.byte_fallback)
            .map_err(|e| self.error(format!("cannot build the Unigram model: {e}")))
    }

    /// The vocabulary in spm id order with the scores. Pieces that `hidden` selects keep their
    /// id but get a name no pre-tokenized word can contain (a whitespace symbol inside, where
    /// words only start with one), so they never match text: SentencePiece itself never
    /// segments text into CONTROL or UNUSED pieces.
    pub fn unigram_vocab(&self, hidden: impl Fn(u32, &Piece) -> bool) -> Vec<(String, f64)> {
        let ws = self.whitespace();
        self.pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if hidden(i as u32, p) {
                    (format!("{}{ws}{}", p.piece, i), p.score as f64)
                } else {
                    (p.piece.clone(), p.score as f64)
                }
            })
            .collect()
    }

    /// A BPE model over `vocab` (token → final id, which must hold every NORMAL piece and
    /// `unk_token`); merges from the NORMAL pieces, best score first.
    pub fn bpe(&self, vocab: &HashMap<String, u32>, unk_token: &str) -> Result<BPE> {
        let normal: HashMap<&str, (f32, usize)> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == PieceType::Normal)
            .map(|(i, p)| (p.piece.as_str(), (p.score, i)))
            .collect();
        let mut ranked: Vec<(f32, usize, usize, &str, &str)> = Vec::new();
        for (piece, &(score, id)) in &normal {
            for (split, _) in piece.char_indices().skip(1) {
                let (left, right) = piece.split_at(split);
                if let (Some(l), Some(r)) = (normal.get(left), normal.get(right)) {
                    ranked.push((score, id, l.1 * self.len() + r.1, left, right));
                }
            }
        }
        // best score first; equal scores by the merged piece's id, then by the halves' ids
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let merges = ranked
            .into_iter()
            .map(|(_, _, _, l, r)| (l.to_string(), r.to_string()))
            .collect();
        for p in normal.keys() {
            if !vocab.contains_key(*p) {
                return Err(self.error(format!("piece {p:?} has no id")));
            }
        }
        let vocab: tokenizers::models::bpe::Vocab =
            vocab.iter().map(|(k, &v)| (k.clone(), v)).collect();
        BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token(unk_token.to_string())
            .fuse_unk(true)
            .byte_fallback(self.byte_fallback)
            .build()
            .map_err(|e| self.error(format!("cannot build the BPE model: {e}")))
    }

    /// Normalizer, pre-tokenizer and decoder of this file around `model`.
    pub fn tokenizer(&self, model: impl Into<ModelWrapper>) -> Result<tokenizers::Tokenizer> {
        let mut tok = tokenizers::Tokenizer::new(model);
        tok.with_normalizer(Some(self.normalizer()?));
        if let Some(split) = self.pre_tokenizer()? {
            tok.with_pre_tokenizer(Some(split));
        }
        tok.with_decoder(Some(self.decoder()));
        // SentencePiece emits user-defined pieces whole wherever they occur in the normalised
        // text.
        let user: Vec<tokenizers::AddedToken> = self
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined)
            .map(|p| tokenizers::AddedToken::from(p.piece.clone(), false))
            .collect();
        if !user.is_empty() {
            tok.add_tokens(&user);
        }
        Ok(tok)
    }
}

/// Checks that a `precompiled_charsmap` (`[u32 trie bytes][trie units][NUL-separated
/// replacement strings]`, a darts-clone double array) can be walked with any input: the
/// `Precompiled` normalizer indexes the units and the strings without bounds checks, so a
/// damaged map would otherwise panic while encoding. Every node reachable from the root must
/// keep its 255 children and its leaf inside the array, and every leaf must point at the
/// start of a character of the strings.
fn check_charsmap(map: &[u8]) -> std::result::Result<(), String> {
    let (header, rest) = map
        .split_first_chunk::<4>()
        .ok_or("shorter than its header")?;
    let trie_bytes = u32::from_le_bytes(*header) as usize;
    let (trie, tail) = rest
        .split_at_checked(trie_bytes)
        .filter(|_| trie_bytes != 0 && trie_bytes.is_multiple_of(4))
        .ok_or_else(|| {
            format!(
                "trie size {trie_bytes} does not fit the {} bytes",
                map.len()
            )
        })?;
    let units: Vec<usize> = crate::io::words(trie)
        .map(|w| u32::from_le_bytes(w) as usize)
        .collect();
    let strings =
        std::str::from_utf8(tail).map_err(|_| "replacement strings are not UTF-8".to_string())?;
    // darts-clone's unit layout
    let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
    let label = |u: usize| u & ((1 << 31) | 0xff);
    let has_leaf = |u: usize| (u >> 8) & 1 == 1;
    let value = |u: usize| u & ((1 << 31) - 1);
    let n = units.len();
    let mut seen = vec![false; n];
    // `trie_bytes` is a non-zero multiple of 4, so the root unit is there.
    let mut stack: Vec<usize> = units
        .first()
        .map(|&root| offset(root))
        .into_iter()
        .collect();
    while let Some(base) = stack.pop() {
        let Some(visited) = seen.get_mut(base) else {
            continue;
        };
        if std::mem::replace(visited, true) {
            continue;
        }
        for c in 1..=0xffusize {
            // The largest child index is `base | 0xff`: a node whose block of 256 units runs
            // past the end fails here, whatever its labels.
            let Some(&unit) = units.get(base ^ c) else {
                return Err(format!("node {base} has children past the {n} units"));
            };
            if label(unit) != c {
                continue;
            }
            let next = (base ^ c) ^ offset(unit);
            let Some(&next_unit) = units.get(next) else {
                return Err(format!("an edge leads to unit {next} of {n}"));
            };
            if has_leaf(unit) {
                let v = value(next_unit);
                if v > strings.len() || !strings.is_char_boundary(v) {
                    return Err(format!(
                        "a replacement starts at byte {v} of {}",
                        strings.len()
                    ));
                }
            }
            stack.push(next);
        }
    }
    Ok(())
}

/// A model file for unit tests: `pieces` (text, score, kind) in order, no normaliser.
#[cfg(test)]
pub(crate) fn test_model(
    file: &str,
    pieces: &[(&str, f32, PieceType)],
    trainer: TrainerSpec,
) -> SpModel {
    use prost::Message;
    let proto = ModelProto {
        pieces: pieces
            .iter()
            .map(|&(p, score, t)| SentencePiece {
                piece: Some(p.into()),
                score: Some(score),
                r#type: Some(t as i32),
            })
            .collect(),
        trainer_spec: Some(trainer),
        normalizer_spec: Some(NormalizerSpec::default()),
    };
    SpModel::from_bytes(Path::new(file), &proto.encode_to_vec()).expect("test model")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(s: &str, score: f32, t: PieceType) -> SentencePiece {
        SentencePiece {
            piece: Some(s.into()),
            score: Some(score),
            r#type: Some(t as i32),
        }
    }

    fn proto(model_type: ModelType) -> ModelProto {
        ModelProto {
            pieces: vec![
                piece("<unk>", 0.0, PieceType::Unknown),
                piece("<s>", 0.0, PieceType::Control),
                piece("</s>", 0.0, PieceType::Control),
                piece("▁a", -1.0, PieceType::Normal),
                piece("b", -2.0, PieceType::Normal),
                piece("▁", -3.0, PieceType::Normal),
                piece("a", -4.0, PieceType::Normal),
                piece("▁ab", -0.5, PieceType::Normal),
            ],
            trainer_spec: Some(TrainerSpec {
                model_type: Some(model_type as i32),
                ..Default::default()
            }),
            normalizer_spec: Some(NormalizerSpec::default()),
        }
    }

    #[test]
    fn defaults_of_absent_fields_are_sentencepiece_defaults() {
        let m = SpModel::from_bytes(Path::new("x.model"), &ModelProto::default().encode_to_vec());
        assert!(m.unwrap_err().to_string().contains("no pieces"));
        let bytes = ModelProto {
            pieces: vec![piece("<unk>", 0.0, PieceType::Unknown)],
            ..Default::default()
        }
        .encode_to_vec();
        let m = SpModel::from_bytes(Path::new("x.model"), &bytes).unwrap();
        assert_eq!(m.model_type, ModelType::Unigram);
        assert!(m.add_dummy_prefix && m.remove_extra_whitespaces && m.escape_whitespaces);
        assert!(m.split_by_whitespace && !m.byte_fallback);
        assert_eq!(m.unk_id, 0);
    }

    #[test]
    fn unigram_and_bpe_segment_text() {
        for t in [ModelType::Unigram, ModelType::Bpe] {
            let m = SpModel::from_bytes(Path::new("x.model"), &proto(t).encode_to_vec()).unwrap();
            let ids: HashMap<String, u32> = m
                .pieces
                .iter()
                .enumerate()
                .map(|(i, p)| (p.piece.clone(), i as u32))
                .collect();
            let tok = match t {
                ModelType::Unigram => {
                    let vocab = m.unigram_vocab(|_, p| p.kind == PieceType::Control);
                    m.tokenizer(m.unigram(vocab, m.unk_id).unwrap()).unwrap()
                }
                _ => m.tokenizer(m.bpe(&ids, "<unk>").unwrap()).unwrap(),
            };
            let enc = tok.encode("  ab   a c ", false).unwrap();
            assert_eq!(enc.get_ids(), [7, 3, 5, 0], "{t:?}");
            let text = tok.decode(enc.get_ids(), false).unwrap();
            assert_eq!(text, "ab a <unk>", "{t:?}");
        }
    }

    #[test]
    fn damaged_charsmaps_are_errors() {
        let mut p = proto(ModelType::Unigram);
        for map in [
            &b"\x04"[..],
            b"\x00\x00\x00\x00abc",
            b"\x08\x00\x00\x00\x00\x04\x00\x00",
        ] {
            p.normalizer_spec.as_mut().unwrap().precompiled_charsmap = Some(map.to_vec());
            let e = SpModel::from_bytes(Path::new("m.model"), &p.encode_to_vec()).unwrap_err();
            assert!(e.to_string().contains("precompiled_charsmap"), "{e}");
        }
    }

    #[test]
    fn each_charsmap_fault_is_named() {
        // A map: [trie bytes][units][strings]; unit 0 is the root (offset 0, so node 0), and a
        // unit with label c at index c is the root's child c (darts-clone's layout).
        let map = |units: &[u32], strings: &[u8]| {
            let mut m = ((units.len() * 4) as u32).to_le_bytes().to_vec();
            units.iter().for_each(|u| m.extend(u.to_le_bytes()));
            m.extend(strings);
            m
        };
        let leaf = 1 << 8;
        // Child 1 of the root, with `offset` pointing (xor) at its next unit.
        let child = |offset: u32, flags: u32| (offset << 10) | flags | 1;
        let mut units = vec![0u32; 256];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\x04\x00".to_vec(), "shorter than its header"),
            (
                b"\x03\x00\x00\x00abc".to_vec(),
                "trie size 3 does not fit the 7 bytes",
            ),
            (
                map(&[0, 0], b"")[..8].to_vec(),
                "trie size 8 does not fit the 8 bytes",
            ),
            (map(&[0, 0], b""), "node 0 has children past the 2 units"),
            (
                {
                    units[1] = child(512, 0);
                    map(&units, b"a\0")
                },
                "an edge leads to unit 513 of 256",
            ),
            (
                {
                    units[1] = child(0, leaf);
                    map(&units, b"a\0")
                },
                "a replacement starts at byte 257 of 2",
            ),
            (
                {
                    // The leaf's value (unit 2, reached by 1 ^ 3) lands inside the 2-byte é.
                    units[1] = child(3, leaf);
                    units[2] = 1;
                    map(&units, "é\0".as_bytes())
                },
                "a replacement starts at byte 1 of 3",
            ),
        ];
        let mut p = proto(ModelType::Unigram);
        for (bytes, want) in cases {
            p.normalizer_spec.as_mut().unwrap().precompiled_charsmap = Some(bytes);
            let e = SpModel::from_bytes(Path::new("m.model"), &p.encode_to_vec())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("corrupt precompiled_charsmap") && e.contains(want) && !e.contains('\n'),
                "{want}: {e}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        for bytes in [&b"\xff\xff\xff"[..], b"not a model at all"] {
            let e = SpModel::from_bytes(Path::new("dir/source.spm"), bytes).unwrap_err();
            assert!(e.to_string().starts_with("dir/source.spm: "), "{e}");
        }
        let mut p = proto(ModelType::Unigram);
        p.trainer_spec.as_mut().unwrap().unk_id = Some(3);
        let e = SpModel::from_bytes(Path::new("m.model"), &p.encode_to_vec()).unwrap_err();
        assert!(e.to_string().contains("unk_id 3"), "{e}");
        let mut p = proto(ModelType::Unigram);
        p.trainer_spec.as_mut().unwrap().model_type = Some(ModelType::Word as i32);
        let e = SpModel::from_bytes(Path::new("m.model"), &p.encode_to_vec()).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
