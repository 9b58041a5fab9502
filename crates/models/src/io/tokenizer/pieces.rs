//! The text each target token adds to a decoded output, as the tokenizer's own decoder
//! writes it: what a constraint over the output text walks its automaton over.
//!
//! A token's text depends on where it stands: SentencePiece's decoder drops the leading
//! space of the first piece (`▁the` is `the` first, ` the` later), a decoder without a
//! decoder section joins tokens with spaces, WordPiece glues `##` pieces. Rather than
//! re-implement each decoder, the text is read off the real one by differences: with a
//! plain one-character anchor token `a`, a token's text after other text is
//! `decode([a, t, a])` less the anchor's text on both sides, and its text as the first
//! token is `decode([t, a])` less the anchor's text after it. Tokens that decode to nothing
//! (special tokens, control pieces, ids outside the target vocabulary) and tokens whose text
//! is not whole UTF-8 (byte-level BPE pieces of a multi-byte character, which decode to
//! U+FFFD alone) have no piece: a constraint never allows them.
//!
//! Known limits: decoders whose output depends on more than the previous text (the
//! `clean_up_tokenization_spaces` rule, Marian's strip of trailing whitespace) are seen one
//! token at a time, so the automaton walks the text before that final clean-up.

use super::Tokenizer;
use crate::error::{Error, Result};

/// The bytes one token adds to the decoded text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// As the first token with text.
    pub first: Vec<u8>,
    /// After other text.
    pub rest: Vec<u8>,
}

/// The anchor token and the text it decodes to alone (`single`) and as a second copy
/// after itself (`after`).
struct Anchor {
    id: u32,
    single: String,
    after: String,
}

impl Tokenizer {
    /// The piece of every target token id below `vocab` (`None`: never part of a
    /// constrained output; see the module documentation).
    pub fn pieces(&self, vocab: usize) -> Result<Vec<Option<Piece>>> {
        let anchor = self.anchor(vocab)?;
        Ok((0..vocab as u32)
            .map(|id| self.piece(id, &anchor))
            .collect())
    }

    /// The first token that decodes to one ASCII letter or digit and repeats as itself.
    fn anchor(&self, vocab: usize) -> Result<Anchor> {
        for id in 0..vocab as u32 {
            let Ok(single) = self.decode(&[id]) else {
                continue;
            };
            if single.len() != 1 || !single.bytes().all(|b| b.is_ascii_alphanumeric()) {
                continue;
            }
            let Ok(two) = self.decode(&[id, id]) else {
                continue;
            };
            if let Some(after) = two.strip_prefix(single.as_str())
                && after.ends_with(single.as_str())
            {
                return Ok(Anchor {
                    id,
                    after: after.to_string(),
                    single,
                });
            }
        }
        Err(Error::Tokenizer(format!(
            "{}: no token decodes to a single ASCII letter or digit, so the text of each \
             token cannot be read off the decoder (needed by a constraint)",
            self.path.display()
        )))
    }

    fn piece(&self, id: u32, a: &Anchor) -> Option<Piece> {
        let mid = self.decode(&[a.id, id, a.id]).ok()?;
        let rest = mid
            .strip_prefix(a.single.as_str())?
            .strip_suffix(a.after.as_str())?;
        let lead = self.decode(&[id, a.id]).ok()?;
        let first = match lead.strip_suffix(a.after.as_str()) {
            Some(f) => f,
            // The token wrote nothing, so the anchor decoded as the first token.
            None if lead == a.single => "",
            None => return None,
        };
        if (rest.is_empty() && first.is_empty())
            || rest.contains('\u{FFFD}')
            || first.contains('\u{FFFD}')
        {
            return None;
        }
        Some(Piece {
            first: first.as_bytes().to_vec(),
            rest: rest.as_bytes().to_vec(),
        })
    }
}
