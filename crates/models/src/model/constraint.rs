//! The constraint of a generate call: the call's own expression, else the model directory's
//! `constraint.regex` (the default of that model, like generation_config.json's settings),
//! or none. Each expression is compiled against the tokenizer once and kept with the model.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::generation::{Constrain, Constraint, GenerateOptions};
use crate::io::tokenizer::pieces::Piece;

use super::Model;

/// The file of a model directory that holds its default constraint: one regular expression;
/// trailing line breaks are not part of it.
pub const CONSTRAINT_FILE: &str = "constraint.regex";

/// Constraints compiled for one model: the most recent ones are kept.
const KEPT: usize = 8;

pub(super) struct Constraints {
    /// The directory's expression and its file.
    default: Option<(String, PathBuf)>,
    /// The text of every target token (read off the tokenizer once).
    pieces: OnceLock<Vec<Option<Piece>>>,
    compiled: Mutex<Vec<Arc<Constraint>>>,
}

impl Constraints {
    pub fn from_dir(dir: &Path) -> Result<Constraints> {
        let path = dir.join(CONSTRAINT_FILE);
        let default = match std::fs::read_to_string(&path) {
            Ok(text) => Some((text.trim_end_matches(['\n', '\r']).to_string(), path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Io {
                    path,
                    msg: e.to_string(),
                });
            }
        };
        Ok(Constraints {
            default,
            pieces: OnceLock::new(),
            compiled: Mutex::new(Vec::new()),
        })
    }
}

impl Model {
    /// The model directory's default constraint (its `constraint.regex`), if it has one.
    pub fn default_constraint(&self) -> Option<&str> {
        self.constraints.default.as_ref().map(|(r, _)| r.as_str())
    }

    /// `pattern` compiled against this model's tokenizer and end tokens (what a call with
    /// `constrain: Regex(pattern)` uses; kept for later calls).
    pub fn compile_constraint(&self, pattern: &str) -> Result<Arc<Constraint>> {
        self.compile_constraint_with(pattern, crate::generation::constraint::MAX_TABLE_BYTES)
    }

    /// [`Model::compile_constraint`] with the mask table limited to `table_bytes`, past which
    /// its nodes are found lazily ([`Constraint::with_table_limit`]). Later calls with the
    /// same expression use what this compiled.
    pub fn compile_constraint_with(
        &self,
        pattern: &str,
        table_bytes: usize,
    ) -> Result<Arc<Constraint>> {
        let eos = self
            .generation_config
            .eos_token_id
            .clone()
            .unwrap_or_default();
        let opts = GenerateOptions {
            constrain: Some(Constrain::Regex(pattern.to_string())),
            ..Default::default()
        };
        self.constraint_with(&opts, &eos, table_bytes)?
            .ok_or_else(|| Error::Options(format!("constraint {pattern:?} was not compiled")))
    }

    /// The compiled constraint `opts` ask for (`None`: unconstrained).
    pub(crate) fn constraint_for(
        &self,
        opts: &GenerateOptions,
        eos: &[u32],
    ) -> Result<Option<Arc<Constraint>>> {
        let limit = crate::generation::constraint::MAX_TABLE_BYTES;
        self.constraint_with(opts, eos, limit)
    }

    fn constraint_with(
        &self,
        opts: &GenerateOptions,
        eos: &[u32],
        table_bytes: usize,
    ) -> Result<Option<Arc<Constraint>>> {
        let (pattern, file) = match (&opts.constrain, &self.constraints.default) {
            (Some(Constrain::Off), _) | (None, None) => return Ok(None),
            (Some(Constrain::Regex(r)), _) => (r.as_str(), None),
            (None, Some((r, path))) => (r.as_str(), Some(path)),
        };
        let cache = &self.constraints.compiled;
        let lock = || {
            cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let vocab = self.config.decoder_vocab_size;
        if let Some(c) = lock()
            .iter()
            .find(|c| c.pattern() == pattern && c.eos() == eos && c.vocab() == vocab)
        {
            return Ok(Some(c.clone()));
        }
        let tok = self.tokenizer.as_ref().ok_or_else(|| {
            Error::Options(format!(
                "constraint {pattern:?}: {} has no tokenizer, and the constraint needs it to \
                 read the text of each token",
                self.dir.display()
            ))
        })?;
        let pieces = match self.constraints.pieces.get() {
            Some(p) => p,
            None => {
                let p = tok.pieces(vocab)?;
                self.constraints.pieces.get_or_init(|| p)
            }
        };
        let c = Constraint::with_table_limit(pattern, pieces.clone(), eos, table_bytes).map_err(
            |e| match file {
                Some(path) => Error::Io {
                    path: path.clone(),
                    msg: e.to_string(),
                },
                None => e,
            },
        )?;
        let c = Arc::new(c);
        let mut kept = lock();
        if kept.len() == KEPT {
            kept.remove(0);
        }
        kept.push(c.clone());
        Ok(Some(c))
    }
}
