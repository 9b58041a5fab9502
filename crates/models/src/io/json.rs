//! JSON config files read into serde structs, with errors naming the file.

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// Reads `path` into `T`; a missing file, bad JSON or a field of the wrong type is an error
/// naming the file (and serde's line, column and field).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    parse_json(path, &text)
}

/// Parses `text` (the contents of `path`, or a config given inline) into `T`; errors name
/// the offending key.
pub fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        msg: match e.path().to_string() {
            p if p == "." => format!("invalid config: {}", e.inner()),
            p => format!("invalid config: {p}: {}", e.inner()),
        },
    })
}

/// `eos_token_id: 2` or `eos_token_id: [2, 3]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

/// Deserializes an optional token id or list of ids into an optional list.
pub fn token_ids<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<u32>>, D::Error> {
    Ok(Option::<TokenIds>::deserialize(d)?.map(|t| match t {
        TokenIds::One(x) => vec![x],
        TokenIds::Many(v) => v,
    }))
}
