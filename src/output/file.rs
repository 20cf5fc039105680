//! Where rows go, and how a file destination becomes visible only when complete.
//!
//! With `-o FILE`, rows are written to `FILE.partial` beside it and renamed to `FILE` (after an
//! fsync) when the run ends, including a graceful stop (Ctrl-C, SIGTERM, `--max-time`). So
//! `FILE` is never half-written: a spreadsheet or script reading it sees the previous complete
//! run or this one. Only a crash, SIGKILL or a failed write leaves `FILE.partial` behind.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where rows go. Opened before the run starts, so an unwritable path fails before any request.
pub struct Output {
    pub(super) destination: Destination,
}

pub(super) enum Destination {
    Stdout(io::Stdout),
    File {
        file: File,
        partial: PathBuf,
        path: PathBuf,
    },
    Writer(Box<dyn Write + Send>),
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            destination: Destination::Stdout(io::stdout()),
        }
    }

    /// Opens `path.partial` for writing; `path` itself is replaced only when the run ends.
    pub fn create(path: &Path) -> Result<Output, Error> {
        let partial = partial_path(path);
        let fail = |source| Error::OutputOpen {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(fail(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let file = File::create(&partial).map_err(fail)?;
        Ok(Output {
            destination: Destination::File {
                file,
                partial,
                path: path.to_path_buf(),
            },
        })
    }

    /// Any writer, for library users and tests.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Output {
        Output {
            destination: Destination::Writer(Box::new(writer)),
        }
    }
}

/// `out.csv` → `out.csv.partial`, in the same directory so the final rename is atomic.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

impl Destination {
    /// Makes the output final: for a file, fsync and rename it into place.
    pub(super) fn finish(self) -> io::Result<()> {
        match self {
            Destination::Stdout(mut out) => out.flush(),
            Destination::Writer(mut w) => w.flush(),
            Destination::File {
                mut file,
                partial,
                path,
            } => {
                file.flush()?;
                file.sync_all()?;
                drop(file);
                fs::rename(&partial, &path)
            }
        }
    }

    /// Where the rows written so far are, for an error message.
    pub(super) fn partial(&self) -> Option<&Path> {
        match self {
            Destination::File { partial, .. } => Some(partial),
            _ => None,
        }
    }
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Destination::Stdout(out) => out.write(buf),
            Destination::File { file, .. } => file.write(buf),
            Destination::Writer(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Destination::Stdout(out) => out.write_all(buf),
            Destination::File { file, .. } => file.write_all(buf),
            Destination::Writer(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Destination::Stdout(out) => out.flush(),
            Destination::File { file, .. } => file.flush(),
            Destination::Writer(w) => w.flush(),
        }
    }
}

/// Whether writing `output` would destroy one of the inputs: the same file under another name,
/// a hard link, or the file stdin is redirected from. Returns the input's name.
pub fn clobbers_input(output: &Path, files: &[PathBuf], reads_stdin: bool) -> Option<String> {
    let output = fs::metadata(output).ok()?;
    let same = |other: &fs::Metadata| same_file(&output, other);
    if let Some(file) = files
        .iter()
        .find(|f| fs::metadata(f).is_ok_and(|m| same(&m)))
    {
        return Some(file.display().to_string());
    }
    if reads_stdin && stdin_metadata().is_some_and(|m| same(&m)) {
        return Some("stdin".to_owned());
    }
    None
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    // Without inode numbers, compare what we can; canonical paths are checked by the caller.
    a.len() == b.len() && a.modified().ok() == b.modified().ok() && a.file_type() == b.file_type()
}

#[cfg(unix)]
fn stdin_metadata() -> Option<fs::Metadata> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    File::from(fd).metadata().ok()
}

#[cfg(not(unix))]
fn stdin_metadata() -> Option<fs::Metadata> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sits_beside_the_target() {
        assert_eq!(
            partial_path(Path::new("/data/out.csv")),
            Path::new("/data/out.csv.partial")
        );
        assert_eq!(partial_path(Path::new("out")), Path::new("out.partial"));
    }

    #[test]
    fn finds_an_input_under_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("urls.txt");
        fs::write(&list, "x\n").unwrap();
        let link = dir.path().join("link.txt");
        fs::hard_link(&list, &link).unwrap();
        assert!(clobbers_input(&link, std::slice::from_ref(&list), false).is_some());
        let other = dir.path().join("out.csv");
        assert!(clobbers_input(&other, &[list], false).is_none());
    }
}
