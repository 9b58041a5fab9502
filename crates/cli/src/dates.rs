//! The date normaliser's conventions on the command line: `--month-first` (a prefix token
//! the model was trained to read) and "no date" (an empty output for a non-empty source).

use std::path::Path;

use anyhow::{Result, bail};
use seqbridge_models::Tokenizer;

/// The special token of the date model's tokenizer that, in front of a source, makes it
/// read an ambiguous numeric date (03/04/2021) month-first; without it, day-first.
pub const MONTH_FIRST_TOKEN: &str = "<mdy>";

/// `lines` with the month-first token in front of each non-blank one (blank lines stay
/// blank: they are not translated). An error when the tokenizer of `dir` does not read the
/// token as one token: only the date model knows it.
pub fn month_first(tok: &Tokenizer, dir: &Path, lines: &[String]) -> Result<Vec<String>> {
    let id = tok.token_id(MONTH_FIRST_TOKEN);
    // The text must come out as the token itself, not as the characters of its name.
    let read_as_token = id.is_some() && tok.encode(MONTH_FIRST_TOKEN)?.first().copied() == id;
    if !read_as_token {
        bail!(
            "--month-first: the tokenizer of {} has no {MONTH_FIRST_TOKEN} token; only the date \
             model (assets/date-normalizer) reads dates month-first",
            dir.display()
        );
    }
    Ok(lines
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                l.clone()
            } else {
                format!("{MONTH_FIRST_TOKEN}{l}")
            }
        })
        .collect())
}

/// One stderr line per non-blank source whose output is empty: for the date model, a
/// source with no date in it (the output keeps an empty line there, so line numbers stay
/// aligned).
pub fn no_date_lines(sources: &[String], outputs: &[String]) -> Vec<String> {
    sources
        .iter()
        .zip(outputs)
        .enumerate()
        .filter(|(_, (s, o))| !s.trim().is_empty() && o.is_empty())
        .map(|(i, (s, _))| format!("line {}: no date in {s:?} (empty output)", i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_blank_sources_with_empty_outputs_are_named() {
        let sources = ["good morning", "", "  ", "4/3/24"].map(String::from);
        let outputs = ["", "", "", "2024-03-04"].map(String::from);
        assert_eq!(
            no_date_lines(&sources, &outputs),
            ["line 1: no date in \"good morning\" (empty output)"]
        );
    }
}
