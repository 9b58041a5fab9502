//! Output helpers: stats as JSON, readable lines, one-line errors, standard output that
//! reports a closed pipe or a full disk instead of panicking, and output files written
//! beside their target and renamed into place.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use seqbridge_models::Stats;
use serde_json::{Value, json};
use tempfile::NamedTempFile;

pub fn stats_json(s: &Stats) -> Value {
    json!({
        "encoder_runs": s.encoder_runs,
        "cross_kv_computes": s.cross_kv_computes,
        "decoder_steps": s.decoder_steps,
        "dispatches": s.dispatches,
        "submits": s.submits,
        "bytes_uploaded": s.bytes_uploaded,
        "bytes_read_back": s.bytes_read_back,
        "weight_bytes_uploaded": s.weight_bytes_uploaded,
        "buffers_created": s.buffers_created,
    })
}

pub fn stats_line(s: &Stats) -> String {
    format!(
        "stats: encoder_runs {} cross_kv_computes {} decoder_steps {} dispatches {} submits {} bytes_uploaded {} bytes_read_back {} weight_bytes_uploaded {} buffers_created {}",
        s.encoder_runs,
        s.cross_kv_computes,
        s.decoder_steps,
        s.dispatches,
        s.submits,
        s.bytes_uploaded,
        s.bytes_read_back,
        s.weight_bytes_uploaded,
        s.buffers_created
    )
}

/// Prints an error and its causes on one stderr line.
pub fn error_line(e: &anyhow::Error) {
    let msg = format!("{e:#}").replace('\n', " ");
    eprintln!("error: {msg}");
}

pub fn ids_line(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// Exit status of a process that wrote into a closed pipe: what a shell reports for a tool
/// killed by SIGPIPE (128 + 13), so `set -o pipefail` scripts see the usual value.
pub const BROKEN_PIPE_STATUS: u8 = 141;

/// Whether `e` (or one of its causes) is a write into a closed pipe: `seqbridge … | head`.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Standard output whose write errors are values, not panics (`println!` panics on a
/// closed pipe or a full disk). Errors carry the OS error, so a closed pipe is told apart
/// by [`is_broken_pipe`] and a full disk reads "No space left on device". Line-buffered
/// (Rust's stdout is), so each result line leaves as soon as it is written.
pub struct Stdout {
    out: io::Stdout,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout { out: io::stdout() }
    }

    /// Writes `text` and a newline.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<()> {
        writeln!(self.out, "{text}").context("writing to stdout")
    }

    /// Writes `text` as it is.
    pub fn text(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .context("writing to stdout")
    }

    /// Flushes (the write errors of text still buffered show up here).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().context("writing to stdout")
    }
}

/// Lines written in order to a temporary file beside `target`, renamed onto `target` by
/// [`OutputFile::commit`]. The temporary file is created before any work, so an unwritable
/// place fails at once; until the commit `target` keeps its old contents, and a run that
/// fails (or is dropped) removes the temporary file and leaves `target` untouched. (A run
/// killed by a signal leaves the lines done so far in `.NAME.XXXXXX.partial` beside it.)
///
/// A target that exists and is not a regular file (`/dev/stdout`, a FIFO) is written
/// directly: renaming over it would replace the device, not write to it. A symlink is
/// followed, so the link stays and the file it names is replaced.
pub struct OutputFile {
    target: PathBuf,
    /// Whether `target` was there before (for the message of a failed run).
    existed: bool,
    /// Unbuffered: each line reaches the file when it is written, so a run stopped by a
    /// signal keeps every line it finished (a write per line costs nothing next to the
    /// translation of that line).
    file: Sink,
    lines: usize,
}

enum Sink {
    Temp(NamedTempFile),
    Direct(std::fs::File),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Temp(f) => f.write(buf),
            Sink::Direct(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Temp(f) => f.flush(),
            Sink::Direct(f) => f.flush(),
        }
    }
}

impl OutputFile {
    pub fn create(target: &Path) -> Result<OutputFile> {
        let cannot = || format!("cannot write {}", target.display());
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.is_dir() {
                bail!("{} is a directory", target.display());
            }
            if !meta.is_file() {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(target)
                    .with_context(cannot)?;
                return Ok(OutputFile {
                    target: target.to_path_buf(),
                    existed: true,
                    file: Sink::Direct(f),
                    lines: 0,
                });
            }
        }
        let real = match std::fs::symlink_metadata(target) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(target).with_context(cannot)?
            }
            _ => target.to_path_buf(),
        };
        let dir = match real.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = real
            .file_name()
            .with_context(|| format!("{}: not a file name", target.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(cannot)?;
        Ok(OutputFile {
            existed: real.exists(),
            target: real,
            file: Sink::Temp(tmp),
            lines: 0,
        })
    }

    /// Appends `text` and a newline.
    pub fn line(&mut self, text: &str) -> Result<()> {
        let line = format!("{text}\n");
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| self.failed(e))?;
        self.lines += 1;
        Ok(())
    }

    /// What a run that stops now leaves behind, for its error message.
    pub fn abandon_context(&self) -> String {
        let what = if self.existed {
            "left unchanged"
        } else {
            "not written"
        };
        format!(
            "{} {what}; {} lines were done",
            self.target.display(),
            self.lines
        )
    }

    fn failed(&self, e: io::Error) -> anyhow::Error {
        anyhow::Error::new(e).context(format!("writing {}", self.target.display()))
    }

    /// Flushes, syncs and renames the temporary file onto the target. On an error the
    /// temporary file is removed and the target keeps its old contents.
    pub fn commit(self) -> Result<()> {
        let writing = format!("writing {}", self.target.display());
        let context = self.abandon_context();
        let target = self.target;
        match self.file {
            Sink::Direct(_) => Ok(()),
            Sink::Temp(tmp) => {
                tmp.as_file().sync_all().context(writing)?;
                tmp.persist(&target).map_err(|e| {
                    anyhow::Error::new(e.error).context(format!("renaming into place: {context}"))
                })?;
                Ok(())
            }
        }
    }
}

/// Where a command's result lines go: `--output FILE` (through [`OutputFile`]) or stdout.
pub enum Lines {
    File(OutputFile),
    Stdout(Stdout),
}

impl Lines {
    /// Opens `--output` (before any work) or stdout.
    pub fn open(output: Option<&Path>) -> Result<Lines> {
        Ok(match output {
            Some(p) => Lines::File(OutputFile::create(p)?),
            None => Lines::Stdout(Stdout::new()),
        })
    }

    pub fn line(&mut self, text: &str) -> Result<()> {
        match self {
            Lines::File(f) => f.line(text),
            Lines::Stdout(s) => s.line(text),
        }
    }

    /// Adds to an error of the run what happened to the output file: left unchanged, and
    /// how many lines were done.
    pub fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        match self {
            Lines::File(f) => e.context(f.abandon_context()),
            Lines::Stdout(_) => e,
        }
    }

    /// Renames the file into place, or flushes stdout.
    pub fn finish(self) -> Result<()> {
        match self {
            Lines::File(f) => f.commit(),
            Lines::Stdout(mut s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_file_replaces_the_target_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old\n").unwrap();
        let entries = || std::fs::read_dir(dir.path()).unwrap().count();

        // Dropped after two lines (a failed run): the old file stays, no temporary is left.
        let mut f = OutputFile::create(&target).unwrap();
        f.line("a").unwrap();
        f.line("b").unwrap();
        assert_eq!(entries(), 2, "the temporary file sits beside the target");
        let why = f.abandon_context();
        assert!(why.contains("left unchanged; 2 lines were done"), "{why}");
        drop(f);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(entries(), 1);

        let mut f = OutputFile::create(&target).unwrap();
        f.line("new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(entries(), 1);
    }

    #[test]
    fn output_file_fails_at_once_in_an_unwritable_place() {
        let dir = tempfile::tempdir().unwrap();
        let e = OutputFile::create(&dir.path().join("missing/out.txt"))
            .err()
            .expect("no such directory");
        assert!(format!("{e:#}").contains("cannot write"), "{e:#}");
        let e = OutputFile::create(dir.path()).err().expect("a directory");
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    /// A symlink stays a symlink: the file it names is replaced.
    #[cfg(unix)]
    #[test]
    fn output_file_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        let link = dir.path().join("link.txt");
        std::fs::write(&real, "old\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut f = OutputFile::create(&link).unwrap();
        f.line("new").unwrap();
        f.commit().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    }

    /// A device is written, not replaced; a full one is an error that says so.
    #[cfg(target_os = "linux")]
    #[test]
    fn output_file_reports_a_full_device() {
        let mut f = OutputFile::create(Path::new("/dev/full")).unwrap();
        // Unbuffered: the first line already fails.
        let e = f.line("0123456789").unwrap_err();

        assert!(
            format!("{e:#}").contains("No space left on device"),
            "{e:#}"
        );
        assert!(Path::new("/dev/full").exists());
    }
}
