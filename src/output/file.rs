//! Where rows go, and how a file destination becomes visible only when complete.
//!
//! With `-o FILE`, rows are written to `FILE.partial` beside it and renamed to `FILE` (after an
//! fsync) when the run ends, including a graceful stop (Ctrl-C, SIGTERM, `--max-time`). So
//! `FILE` is never half-written: a spreadsheet or script reading it sees the previous complete
//! run or this one. Only a crash, SIGKILL or a failed write leaves `FILE.partial` behind.
//!
//! A symlink is followed (its target is replaced, the link stays), and a path that is not a
//! regular file (`/dev/null`, a named pipe) is written directly: renaming over a device would
//! replace the device.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::input::Recorded;
use crate::report::Totals;

/// Where rows go. Opened before the run starts, so an unwritable path fails before any request.
pub struct Output {
    pub(super) destination: Destination,
    /// `--resume`: the lines an earlier run already recorded in this file.
    pub(crate) recorded: Option<Recorded>,
    /// `--resume`: the figures of the rows kept from earlier runs, for the summary.
    pub(crate) carried: Option<Totals>,
    /// Appending to rows already there (`--resume`): no header or byte-order mark again.
    pub(super) continues: bool,
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
        Output::new(Destination::Stdout(io::stdout()))
    }

    fn new(destination: Destination) -> Output {
        Output {
            destination,
            recorded: None,
            carried: None,
            continues: false,
        }
    }

    /// Opens `path.partial` for writing; `path` itself is replaced only when the run ends.
    pub fn create(path: &Path) -> Result<Output, Error> {
        let fail = |source| Error::OutputOpen {
            path: path.to_path_buf(),
            source,
        };
        if path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR)
        {
            return Err(fail(io::Error::new(
                io::ErrorKind::IsADirectory,
                "names a directory, not a file",
            )));
        }
        let target = follow_symlink(path).map_err(fail)?;
        match fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => Err(fail(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ))),
            Ok(meta) if !meta.is_file() => {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(fail)?;
                Ok(Output::new(Destination::Writer(Box::new(file))))
            }
            _ => {
                let partial = partial_path(&target);
                let file = File::create(&partial).map_err(fail)?;
                Ok(Output::new(Destination::File {
                    file,
                    partial,
                    path: target,
                }))
            }
        }
    }

    /// Any writer, for library users and tests.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Output {
        Output::new(Destination::Writer(Box::new(writer)))
    }
}

/// The path a symlink points to (resolved against the link's directory), or `path` itself.
pub(super) fn follow_symlink(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(path)?;
            let parent = path.parent().unwrap_or(Path::new("."));
            follow_symlink(&parent.join(target))
        }
        _ => Ok(path.to_path_buf()),
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
/// a hard link, or the file stdin is redirected from; or an input is the partial file the run
/// would write first. Returns the input's name.
pub fn clobbers_input(output: &Path, files: &[PathBuf], reads_stdin: bool) -> Option<String> {
    let target = follow_symlink(output).ok()?;
    [target.clone(), partial_path(&target)]
        .iter()
        .find_map(|path| same_as_input(path, files, reads_stdin))
}

fn same_as_input(output: &Path, files: &[PathBuf], reads_stdin: bool) -> Option<String> {
    let output = fs::metadata(output).ok().filter(fs::Metadata::is_file)?;
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
    fn a_list_named_like_the_partial_file_is_an_input_too() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("out.csv.partial");
        fs::write(&list, "x\n").unwrap();
        let out = dir.path().join("out.csv");
        assert!(clobbers_input(&out, std::slice::from_ref(&list), false).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_devices_written_directly() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.csv");
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        let Ok(Output { destination, .. }) = Output::create(&link) else {
            panic!("opens")
        };
        assert!(matches!(&destination, Destination::File { path, .. } if *path == real));
        destination.finish().unwrap();
        assert!(real.is_file() && link.is_symlink());
        let Ok(Output { destination, .. }) = Output::create(Path::new("/dev/null")) else {
            panic!("opens /dev/null")
        };
        assert!(matches!(destination, Destination::Writer(_)));
        assert!(Output::create(&dir.path().join("nodir/")).is_err());
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
