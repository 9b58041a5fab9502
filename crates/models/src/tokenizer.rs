//! A thin wrapper over the `tokenizers` crate for a model directory's tokenizer.json.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The tokenizer of a model directory.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::Tokenizer(format!("{}: cannot load tokenizer: {e}", path.display()))
        })?;
        Ok(Tokenizer {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Ids of `text` with the special tokens the tokenizer adds (as `tokenizer(text)` does).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: cannot encode {text:?}: {e}",
                self.path.display()
            ))
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` without special tokens (`tokenizer.decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: cannot decode {ids:?}: {e}",
                self.path.display()
            ))
        })
    }

    /// The string of one token id, as stored in the vocabulary (labels of alignment maps).
    pub fn token(&self, id: u32) -> String {
        self.inner
            .id_to_token(id)
            .unwrap_or_else(|| format!("<{id}>"))
    }
}
