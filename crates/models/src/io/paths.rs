//! Files a model directory names must stay inside it: a shard index (or a symlink) cannot
//! send the loader to `../../etc/passwd` or `/dev/zero`.

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// `name`, a file that `listed_in` (a file of the model directory `dir`) names, as a path
/// that stays inside `dir`: relative, without `..`, and, with every symlink resolved, a
/// regular file under `dir`. The one place outside `dir` a file may resolve to is the
/// `blobs/` folder of a Hugging Face hub cache when `dir` is one of its `snapshots/<rev>`
/// (the hub stores every file there and links it into the snapshot).
pub fn inside(dir: &Path, name: &str, listed_in: &Path) -> Result<PathBuf> {
    let err = |msg: String| Error::Io {
        path: listed_in.to_path_buf(),
        msg,
    };
    let rel = Path::new(name);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() || !plain {
        return Err(err(format!(
            "{name:?} is not a file name inside the model directory (absolute paths and .. are refused)"
        )));
    }
    let path = dir.join(rel);
    let real = path
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    let root = dir
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let hub_blobs = (root.parent().and_then(Path::file_name) == Some("snapshots".as_ref()))
        .then(|| {
            root.parent()
                .and_then(Path::parent)
                .map(|r| r.join("blobs"))
        })
        .flatten();
    let allowed = real.starts_with(&root) || hub_blobs.is_some_and(|b| real.starts_with(b));
    if !allowed {
        return Err(err(format!(
            "{name:?} resolves to {}, outside the model directory {}",
            real.display(),
            root.display()
        )));
    }
    if !real.is_file() {
        return Err(err(format!("{name:?} is not a regular file")));
    }
    Ok(path)
}

/// Every file a loader of this crate reads from a model directory by its fixed name.
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "target_vocab.json",
    "source.spm",
    "target.spm",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocabulary.json",
    "vocabulary.txt",
    "constraint.regex",
];

/// Checks, before anything is read, that each of [`MODEL_FILES`] present in `dir` is a
/// regular file inside it (a symlink to `/dev/zero` would be read until memory runs out).
pub fn check_model_files(dir: &Path) -> Result<()> {
    for name in MODEL_FILES {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            inside(dir, name, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d =
                std::env::temp_dir().join(format!("seqbridge-paths-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn names_stay_inside_the_directory() {
        let tmp = TempDir::new("names");
        let dir = tmp.path().join("model");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.safetensors"), b"x").unwrap();
        std::fs::write(dir.join("sub/b.safetensors"), b"x").unwrap();
        std::fs::write(tmp.path().join("outside"), b"x").unwrap();
        let index = dir.join("model.safetensors.index.json");
        assert!(inside(&dir, "a.safetensors", &index).is_ok());
        assert!(inside(&dir, "./sub/b.safetensors", &index).is_ok());
        for (name, want) in [
            ("../outside", "are refused"),
            ("sub/../../outside", "are refused"),
            ("/etc/passwd", "are refused"),
            ("", "are refused"),
            ("sub", "not a regular file"),
            ("missing.safetensors", "No such file"),
        ] {
            let e = inside(&dir, name, &index).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains("model.safetensors.index.json"),
                "{name:?}: {e}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_may_not_leave_the_directory_except_into_hub_blobs() {
        use std::os::unix::fs::symlink;
        let tmp = TempDir::new("links");
        let dir = tmp.path().join("model");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(tmp.path().join("outside"), b"x").unwrap();
        symlink(tmp.path().join("outside"), dir.join("escape.safetensors")).unwrap();
        symlink("/dev/zero", dir.join("zero.safetensors")).unwrap();
        let index = dir.join("model.safetensors.index.json");
        for name in ["escape.safetensors", "zero.safetensors"] {
            let e = inside(&dir, name, &index).unwrap_err().to_string();
            assert!(e.contains("outside the model directory"), "{name}: {e}");
        }

        // models--x/snapshots/<rev>/model.safetensors -> ../../blobs/<sha>
        let repo = tmp.path().join("models--x");
        let snap = repo.join("snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/0123"), b"x").unwrap();
        symlink("../../blobs/0123", snap.join("model.safetensors")).unwrap();
        assert!(inside(&snap, "model.safetensors", &index).is_ok());
    }
}
