//! Where rows go, and how a file destination becomes visible only when complete.
//!
//! With `-o FILE`, rows are written to `FILE.partial` beside it and renamed to `FILE` (after an
//! fsync) when the run ends, including a graceful stop (Ctrl-C, SIGTERM, `--max-time`). So
//! `FILE` is never half-written: a spreadsheet or script reading it sees the previous complete
//! run or this one. Only a crash, SIGKILL or a failed write leaves `FILE.partial` behind.
//!
//! A symlink is followed (its target is replaced, the link stays), at most [`MAX_LINKS`] deep
//! and, in a sticky world-writable directory, only when the link is ours (as the kernel's
//! `protected_symlinks` rule has it); a path that is not a regular file (`/dev/null`, a named
//! pipe) is written directly: renaming over a device would replace the device.
//!
//! The partial file is always one fetch created itself: a fresh temporary file (exclusive,
//! never through a link) renamed onto `FILE.partial`, so whatever sat there (a planted link, a
//! file someone else made) is replaced, not written through, and the final rename checks that
//! `FILE.partial` is still that file. Writes go in whole rows, and a failed one (disk full) is
//! cut back to the end of the last complete row, so the partial file never ends in a row that
//! looks complete but is not.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::resume::Recorded;
use crate::error::Error;
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
        /// Bytes of the partial file that hold complete rows (and the header).
        committed: u64,
        /// Bytes the system was told to start writing to disk (see [`start_writeback`]).
        written_back: u64,
        /// Rows already in it when the run began (`--resume`).
        rows_before: u64,
    },
    Writer(Box<dyn Write + Send>),
}

/// Most symbolic links followed from an output path (Linux's own limit is 40).
pub const MAX_LINKS: usize = 40;

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
                check_replaceable(&target).map_err(fail)?;
                let partial = partial_path(&target);
                let file =
                    create_own(&partial, |_| Ok(())).map_err(|source| Error::OutputOpen {
                        path: partial.clone(),
                        source,
                    })?;
                Ok(Output::new(Destination::file(file, partial, target, 0)))
            }
        }
    }

    /// Any writer, for library users and tests.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Output {
        Output::new(Destination::Writer(Box::new(writer)))
    }

    /// The file the rows end up in (after symlinks), when they go to a file that is replaced at
    /// the end (not stdout, a device or a writer).
    pub fn target(&self) -> Option<&Path> {
        match &self.destination {
            Destination::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether the rows continue an earlier run's file (`--resume`).
    pub fn continues(&self) -> bool {
        self.continues
    }
}

/// The path a chain of symlinks ends at (each resolved against its link's directory), or
/// `path` itself. A loop, a chain longer than [`MAX_LINKS`], or a link planted by another user
/// in a sticky world-writable directory is an error.
pub fn follow_symlink(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => meta,
            _ => return Ok(current),
        };
        refuse_foreign_link(&current, &meta)?;
        let target = fs::read_link(&current)?;
        let parent = current.parent().unwrap_or(Path::new("."));
        current = parent.join(target);
    }
    Err(io::Error::other(format!(
        "too many levels of symbolic links (a loop, or more than {MAX_LINKS})"
    )))
}

/// Creates `path` as a file of our own: a fresh temporary file beside it (created exclusively,
/// so never through a link), filled by `fill`, then renamed onto `path`, replacing whatever
/// was there (a link is replaced, not followed). Returns it open, positioned at its end.
pub(super) fn create_own(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<File> {
    let mut temp = temp_beside(path)?;
    fill(temp.as_file_mut())?;
    temp.persist(path).map_err(|e| e.error)
}

/// A new temporary file in the directory of `path` (so a rename onto `path` is atomic),
/// created exclusively, with the permissions `File::create` would give (0666 less the umask):
/// a report is for others to read, unlike tempfile's private default.
fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".new");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir_of(path)).map_err(without_temp_name)
}

/// tempfile's error without the name of the temporary file it tried ("… at path
/// \"dir/.out.csv.x8Kq2.new\""): a name the user never gave, and the caller names the file.
fn without_temp_name(error: io::Error) -> io::Error {
    let text = error.to_string();
    match text.split_once(" at path ") {
        Some((cause, _)) => io::Error::new(error.kind(), cause),
        None => error,
    }
}

/// Opens the partial file an earlier run left, for `--resume`: only a regular file, owned by
/// the user running fetch, opened without following a link. `None` when there is none.
pub(super) fn open_own_partial(path: &Path) -> io::Result<Option<File>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing to resume from it: {why}; remove it to start afresh"),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symbolic link, not a file fetch wrote");
    }
    if !meta.is_file() {
        return refuse("it is not a regular file");
    }
    let file = open_no_follow(path)?;
    let opened = file.metadata()?;
    if !opened.is_file() || !same_file(&opened, &meta) {
        return refuse("it changed while being opened");
    }
    if let Some(owner) = foreign_owner(&opened) {
        return refuse(&format!("it belongs to another user (uid {owner})"));
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// The user running fetch.
#[cfg(unix)]
fn me() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The owner of `meta` when it is not the user running fetch.
#[cfg(unix)]
fn foreign_owner(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    (meta.uid() != me()).then_some(meta.uid())
}

#[cfg(not(unix))]
fn foreign_owner(_: &fs::Metadata) -> Option<u32> {
    None
}

/// Whether `dir` is sticky and world-writable (like /tmp), where entries of other users cannot
/// be replaced and their links must not be followed; and who owns it.
#[cfg(unix)]
fn sticky_shared(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(dir).ok()?;
    let mode = meta.permissions().mode();
    (mode & 0o1000 != 0 && mode & 0o002 != 0).then_some(meta.uid())
}

/// The kernel's `protected_symlinks` rule, applied to the links we follow ourselves: in a
/// sticky world-writable directory, a link is followed only when it is ours or the
/// directory's owner's.
#[cfg(unix)]
fn refuse_foreign_link(link: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let Some(dir_owner) = sticky_shared(dir_of(link)) else {
        return Ok(());
    };
    match foreign_owner(meta) {
        Some(owner) if owner != dir_owner => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "'{}' is a symbolic link of another user (uid {owner}) in a shared sticky \
                 directory; not following it",
                link.display()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn refuse_foreign_link(_: &Path, _: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

/// Fails now, before any request, when the run could not replace `target` at its end: in a
/// sticky directory only a file's owner, the directory's owner (or root) may replace it.
#[cfg(unix)]
fn check_replaceable(target: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = fs::symlink_metadata(target) else {
        return Ok(());
    };
    let Ok(dir_meta) = fs::metadata(dir_of(target)) else {
        return Ok(());
    };
    let sticky = dir_meta.permissions().mode() & 0o1000 != 0;
    match foreign_owner(&meta) {
        Some(owner) if sticky && dir_meta.uid() != me() && me() != 0 => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it belongs to another user (uid {owner}) in a sticky directory, so this run \
                 could not replace it"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn check_replaceable(_: &Path) -> io::Result<()> {
    Ok(())
}

/// A small file written whole at the end of a run (`--summary-json`): checked and prepared
/// before any request (a temporary file beside it), then replaced in one rename, so a reader
/// never sees half of it and a link planted at its name is replaced, not written through.
pub struct ReplacingFile {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl ReplacingFile {
    pub fn create(path: &Path) -> io::Result<ReplacingFile> {
        let target = follow_symlink(path)?;
        if target.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        check_replaceable(&target)?;
        Ok(ReplacingFile {
            temp: temp_beside(&target)?,
            path: target,
        })
    }

    /// Writes `bytes` and puts the file in place.
    pub fn commit(mut self, bytes: &[u8]) -> io::Result<()> {
        self.temp.write_all(bytes)?;
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.path).map(drop).map_err(|e| e.error)
    }
}

/// The directory `path` is in (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `out.csv` → `out.csv.partial`, in the same directory so the final rename is atomic.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

impl Destination {
    /// The partial file `file` at `partial`, to become `path`; `rows_before` rows (with the
    /// header) are in it already.
    pub(super) fn file(file: File, partial: PathBuf, path: PathBuf, rows_before: u64) -> Self {
        let committed = file.metadata().map_or(0, |m| m.len());
        Destination::File {
            file,
            partial,
            path,
            committed,
            written_back: committed,
            rows_before,
        }
    }

    /// Makes the output final: for a file, fsync and rename it into place, provided
    /// `FILE.partial` is still the file this run wrote.
    pub(super) fn finish(self) -> io::Result<()> {
        match self {
            Destination::Stdout(mut out) => out.flush(),
            Destination::Writer(mut w) => w.flush(),
            Destination::File {
                mut file,
                partial,
                path,
                ..
            } => {
                file.flush()?;
                file.sync_all()?;
                let ours = file.metadata()?;
                let there = fs::symlink_metadata(&partial)?;
                if there.file_type().is_symlink() || !same_file(&ours, &there) {
                    return Err(io::Error::other(format!(
                        "'{}' was replaced by another file during the run; not moving it into \
                         place",
                        partial.display()
                    )));
                }
                drop(file);
                fs::rename(&partial, &path)
            }
        }
    }

    /// Where the rows written so far are, and how many rows were in it before this run, for
    /// an error message.
    pub(super) fn partial(&self) -> Option<(&Path, u64)> {
        match self {
            Destination::File {
                partial,
                rows_before,
                ..
            } => Some((partial, *rows_before)),
            _ => None,
        }
    }
}

impl Write for Destination {
    /// Whole or nothing, like [`Destination::write_all`]: the sinks write whole rows.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Destination::Stdout(out) => out.write(buf),
            Destination::File { .. } => self.write_all(buf).map(|()| buf.len()),
            Destination::Writer(w) => w.write(buf),
        }
    }

    /// Every call carries whole rows. When one fails part-way (disk full), the file is cut
    /// back to the end of the rows written before it, so it never ends in a torn row.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Destination::Stdout(out) => out.write_all(buf),
            Destination::File {
                file,
                committed,
                written_back,
                ..
            } => match file.write_all(buf) {
                Ok(()) => {
                    *committed += buf.len() as u64;
                    if *committed - *written_back >= WRITEBACK_STEP {
                        start_writeback(file, *written_back, *committed - *written_back);
                        *written_back = *committed;
                    }
                    Ok(())
                }
                Err(error) => {
                    // Best effort: the error that stopped the run is the one to report.
                    let _ = file.set_len(*committed);
                    Err(error)
                }
            },
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

/// How much is written between two calls of [`start_writeback`].
const WRITEBACK_STEP: u64 = 1 << 20;

/// Asks the system to start writing `len` bytes from `offset` to disk, without waiting for it.
/// The output is fsynced when the run ends; rows left to the kernel's own schedule (dirty pages
/// wait up to 30 s) would all be written then, and a long list's run would end waiting for
/// them: 11 ms for 50,000 rows here, seconds for millions. Best effort: an error changes
/// nothing, the final fsync still decides.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor the `File` owns for the whole call; it reads
    // no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

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

    /// Rows go on being written whole while writeback is started behind them, step by step.
    #[test]
    fn writeback_starts_behind_the_rows_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.csv");
        let Ok(Output {
            mut destination, ..
        }) = Output::create(&out)
        else {
            panic!("opens")
        };
        let row = [b'x'; 999]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let rows = 3 * WRITEBACK_STEP as usize / row.len() + 7;
        for _ in 0..rows {
            destination.write_all(&row).unwrap();
        }
        let Destination::File {
            committed,
            written_back,
            ..
        } = &destination
        else {
            panic!("a file")
        };
        assert_eq!(*committed, (rows * row.len()) as u64);
        assert!(*written_back >= 3 * WRITEBACK_STEP && *written_back <= *committed);
        assert!(*committed - *written_back < WRITEBACK_STEP);
        destination.finish().unwrap();
        assert_eq!(fs::read(&out).unwrap().len(), rows * row.len());
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
