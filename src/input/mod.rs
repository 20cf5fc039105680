//! Input: turns files and stdin into a stream of [`Job`]s, one per non-skipped line.
//!
//! Lines are read one at a time with a hard cap on the bytes kept per line, so neither a
//! ten-million-line list nor a gigabyte without a newline can grow memory. Files are opened up
//! front (an unreadable file is a fatal error before any request) and read in order on a plain
//! thread, because file and terminal reads block. Every line that is not blank or a comment
//! becomes exactly one job, valid or not: bad lines are data for the output, never a reason to
//! stop.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::Utf8Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use tokio::sync::mpsc;
use url::Url;

use crate::error::Error;
use crate::redact::redact;
use crate::row::{ErrorKind, Failure, Tracked};

mod dedupe;
mod shard;

pub use self::dedupe::Dedupe;
pub use self::shard::{INDEX_VARIABLES, Shard, ShardArg, shard_of};

/// Lines longer than this are not URLs anyone can fetch (servers reject request lines past
/// 8 KiB); the row says so instead of the line's bytes occupying memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// How much of an over-long line is kept for the `url` cell, so the row is recognisable.
const LONG_LINE_PREVIEW_CHARS: usize = 200;

use crate::UTF8_BOM as BOM;

/// Where URLs come from, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// `-` means stdin, as in most Unix tools.
    pub fn from_arg(arg: &Path) -> Source {
        if arg == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_owned(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// One line to fetch, or to report as bad input.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Physical line number, from 1, running on across inputs.
    pub line: u64,
    /// Position among the lines this run gives rows to (from 0, no gaps).
    pub seq: u64,
    /// When the line was read: from here on, waiting for a turn is `queue_ms`.
    pub read_at: Instant,
    /// The line as trimmed (shortened for over-long lines), a password in it shown as `***`:
    /// the `url` column.
    pub text: String,
    /// The parsed http(s) URL, or why the line is not one.
    pub target: Result<Url, Failure>,
    /// `--state`: what the state knew of the URL (attached after reading, by the state's
    /// recall stage).
    pub tracked: Option<Box<Tracked>>,
}

/// Opened inputs, ready to be streamed. Opening is separate from reading so that every file can
/// be checked before the first request is sent.
pub struct Inputs {
    readers: Vec<(String, Box<dyn Read + Send>)>,
    files: Vec<PathBuf>,
    has_stdin: bool,
}

impl Inputs {
    /// Opens every source now; fails on the first one that cannot be opened.
    pub fn open(sources: &[Source]) -> Result<Inputs, Error> {
        let mut inputs = Inputs {
            readers: Vec::with_capacity(sources.len()),
            files: Vec::new(),
            has_stdin: false,
        };
        for source in sources {
            let reader: Box<dyn Read + Send> = match source {
                Source::Stdin => {
                    inputs.has_stdin = true;
                    Box::new(io::stdin())
                }
                Source::File(path) => {
                    let file = open_input(path)?;
                    inputs.files.push(path.clone());
                    Box::new(file)
                }
            };
            inputs.readers.push((source.name(), reader));
        }
        Ok(inputs)
    }

    /// A single in-memory or custom reader, for library users and tests.
    pub fn from_reader(name: impl Into<String>, reader: impl Read + Send + 'static) -> Inputs {
        Inputs {
            readers: vec![(name.into(), Box::new(reader))],
            files: Vec::new(),
            has_stdin: false,
        }
    }

    /// The input files when every input is a file, so their rows can be counted ahead for the
    /// progress bar; `None` when stdin or a custom reader is among them.
    pub fn countable_files(&self) -> Option<Vec<PathBuf>> {
        (!self.has_stdin && self.files.len() == self.readers.len()).then(|| self.files.clone())
    }

    /// Starts the reading thread. Jobs for which `keep` says yes arrive on the returned
    /// channel in input order (numbered from 0 in `seq`); a read error arrives as the last item.
    /// The thread ends at end of input or when the receiver is dropped (which is how a stopped
    /// run stops reading).
    pub(crate) fn spawn_reader(
        self,
        capacity: usize,
        keep: impl FnMut(&Job) -> bool + Send + 'static,
    ) -> io::Result<mpsc::Receiver<Result<Job, Error>>> {
        let (tx, rx) = mpsc::channel(capacity);
        thread::Builder::new()
            .name("fetch-input".into())
            .spawn(move || read_all(self.readers, keep, &tx))?;
        Ok(rx)
    }
}

fn open_input(path: &Path) -> Result<File, Error> {
    let fail = |source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(fail)?;
    if file.metadata().map_err(fail)?.is_dir() {
        return Err(fail(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    Ok(file)
}

fn read_all(
    readers: Vec<(String, Box<dyn Read + Send>)>,
    mut keep: impl FnMut(&Job) -> bool,
    tx: &mpsc::Sender<Result<Job, Error>>,
) {
    let mut line_number = 0u64;
    let mut seq = 0u64;
    let mut tx = Handover::new(tx);
    let mut targets = TargetParser::default();
    for (name, reader) in readers {
        let mut lines = LineReader::new(BufReader::with_capacity(64 * 1024, reader));
        loop {
            let raw = match lines.next_line() {
                Ok(Some(raw)) => raw,
                Ok(None) => break,
                Err(source) => {
                    tx.send(Err(Error::Read { name, source }));
                    return;
                }
            };
            line_number += 1;
            let Some(mut job) = classify(line_number, raw, &mut targets) else {
                continue;
            };
            if !keep(&job) {
                continue;
            }
            job.seq = seq;
            seq += 1;
            if !tx.send(Ok(job)) {
                return; // The run stopped; nobody wants more lines.
            }
        }
    }
}

/// Jobs handed to the dispatcher per wake-up of the reading thread.
const HANDOVER_BATCH: usize = 64;

/// Sends jobs from a reading thread (input's, or the state's recall) in batches of channel
/// slots. The channel is full most of
/// the time (reading is far faster than fetching); sending one job at a time would wake this
/// thread for every slot the dispatcher frees, a futex round trip per URL.
pub(crate) struct Handover<'a> {
    tx: &'a mpsc::Sender<Result<Job, Error>>,
    permits: Option<mpsc::PermitIterator<'a, Result<Job, Error>>>,
}

impl<'a> Handover<'a> {
    pub(crate) fn new(tx: &'a mpsc::Sender<Result<Job, Error>>) -> Self {
        Handover { tx, permits: None }
    }

    /// Sends `item`, waiting for a batch of free slots when needed. False when the receiver is
    /// gone.
    pub(crate) fn send(&mut self, item: Result<Job, Error>) -> bool {
        loop {
            if let Some(permit) = self.permits.as_mut().and_then(Iterator::next) {
                permit.send(item);
                return true;
            }
            let batch = HANDOVER_BATCH.min(self.tx.max_capacity());
            match futures::executor::block_on(self.tx.reserve_many(batch)) {
                Ok(permits) => self.permits = Some(permits),
                Err(_) => return false,
            }
        }
    }
}

/// Reads one list the way a run reads its inputs and yields a [`Job`] per line that gets a row,
/// in order: the same line splitting, trimming, length cap and classification, without the
/// run's `--resume`/`--dedupe`/`--shard` skipping (`seq` counts the jobs from 0). For checking
/// or converting a list without fetching it; the fuzz targets drive the reader through it.
pub fn read_jobs<R: Read>(reader: R) -> Jobs<R> {
    Jobs {
        lines: LineReader::new(BufReader::with_capacity(64 * 1024, reader)),
        line: 0,
        seq: 0,
        failed: false,
        targets: TargetParser::default(),
    }
}

/// The jobs of one list; see [`read_jobs`]. A read error is the last item.
pub struct Jobs<R> {
    lines: LineReader<BufReader<R>>,
    line: u64,
    seq: u64,
    failed: bool,
    targets: TargetParser,
}

impl<R: Read> Iterator for Jobs<R> {
    type Item = io::Result<Job>;

    fn next(&mut self) -> Option<io::Result<Job>> {
        while !self.failed {
            let raw = match self.lines.next_line() {
                Ok(Some(raw)) => raw,
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            self.line += 1;
            if let Some(mut job) = classify(self.line, raw, &mut self.targets) {
                job.seq = self.seq;
                self.seq += 1;
                return Some(Ok(job));
            }
        }
        None
    }
}

/// Counts the rows a set of files will produce, for a progress bar with a total. Reads the files
/// a second time, so it is only worth running in the background while the real run goes on;
/// setting `abandon` makes it give up early.
pub fn count_rows(files: &[PathBuf], abandon: &AtomicBool) -> io::Result<u64> {
    let mut rows = 0;
    for path in files {
        let mut lines = LineReader::new(BufReader::with_capacity(64 * 1024, File::open(path)?));
        while let Some(raw) = lines.next_line()? {
            if abandon.load(Ordering::Relaxed) {
                return Err(io::Error::other("abandoned"));
            }
            if !is_skipped(&visible_text(raw.kept).0) {
                rows += 1;
            }
        }
    }
    Ok(rows)
}

/// A physical line: the first [`MAX_LINE_BYTES`] bytes, and its full length.
struct RawLine<'a> {
    kept: &'a [u8],
    len: usize,
}

/// Splits a reader into lines on `\n`, keeping at most [`MAX_LINE_BYTES`] of each and stripping a
/// UTF-8 BOM at the very start. Unlike `BufRead::read_until` it never buffers a whole line, so a
/// line without end costs a fixed amount of memory.
struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    at_start: bool,
}

impl<R: BufRead> LineReader<R> {
    fn new(reader: R) -> Self {
        LineReader {
            reader,
            buf: Vec::with_capacity(256),
            at_start: true,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        self.buf.clear();
        let mut len = 0usize;
        let mut saw_bytes = false;
        // Leading whitespace is dropped as it is read, so indentation never counts against the
        // limit and never hides what follows it.
        let mut in_content = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            saw_bytes = true;
            let mut content = available.split(|&b| b == b'\n').next().unwrap_or_default();
            let newline = content.len() < available.len();
            let used = content.len() + usize::from(newline);
            if !in_content {
                content = content.trim_ascii_start();
                in_content = !content.is_empty();
            }
            // The first line may start with a BOM, stripped below: it does not count.
            let limit = MAX_LINE_BYTES + if self.at_start { BOM.len() } else { 0 };
            let room = limit.saturating_sub(self.buf.len());
            self.buf
                .extend_from_slice(content.get(..room).unwrap_or(content));
            len += content.len();
            self.reader.consume(used);
            if newline {
                break;
            }
        }
        if !saw_bytes {
            return Ok(None);
        }
        if std::mem::take(&mut self.at_start) && self.buf.starts_with(BOM) {
            self.buf.drain(..BOM.len());
            len -= BOM.len();
        }
        Ok(Some(RawLine {
            kept: &self.buf,
            len,
        }))
    }
}

/// A line's text as it will be judged: decoded (invalid UTF-8 replaced) and trimmed of all
/// Unicode whitespace, so skipping and trimming agree on what whitespace is; with where the
/// line stopped being UTF-8, if it did (every line is checked once, here).
fn visible_text(kept: &[u8]) -> (Cow<'_, str>, Option<Utf8Error>) {
    // Checking is much faster than the lossy decoding when there is nothing to replace.
    match std::str::from_utf8(kept) {
        Ok(text) => (Cow::Borrowed(text.trim()), None),
        Err(e) => (
            Cow::Owned(String::from_utf8_lossy(kept).trim().to_owned()),
            Some(e),
        ),
    }
}

/// The first control character in `text`. Lines are mostly ASCII, where a byte test is enough
/// (the C1 controls, U+0080 to U+009F, are not ASCII).
fn first_control(text: &str) -> Option<char> {
    if text.is_ascii() {
        let byte = text.bytes().find(u8::is_ascii_control)?;
        return Some(char::from(byte));
    }
    text.chars().find(|c| c.is_control())
}

/// Blank lines and `#` comments produce no row.
fn is_skipped(text: &str) -> bool {
    text.is_empty() || text.starts_with('#')
}

/// Turns a physical line into a job, or `None` for a line that produces no row.
fn classify(line: u64, raw: RawLine<'_>, targets: &mut TargetParser) -> Option<Job> {
    let (text, invalid) = visible_text(raw.kept);
    if is_skipped(&text) {
        return None;
    }
    let bad = |text: String, detail: String| Job {
        line,
        seq: 0,
        read_at: Instant::now(),
        text: redact(&text).into_owned(),
        target: Err(Failure::new(ErrorKind::InvalidInput, detail)),
        tracked: None,
    };
    if raw.len > MAX_LINE_BYTES {
        let preview: String = printable(&text)
            .chars()
            .take(LONG_LINE_PREVIEW_CHARS)
            .chain(std::iter::once('…'))
            .collect();
        let detail = format!(
            "line is {} bytes, longer than the {MAX_LINE_BYTES}-byte limit",
            raw.len
        );
        return Some(bad(preview, detail));
    }
    if let Some(e) = invalid {
        let detail = format!("not valid UTF-8 (bad byte at offset {})", e.valid_up_to());
        return Some(bad(printable(&text), detail));
    }
    if let Some(c) = first_control(&text) {
        let detail = format!("contains a control character (U+{:04X})", u32::from(c));
        return Some(bad(printable(&text), detail));
    }
    let target = targets.parse(&text);
    // The password of a URL with credentials is never written anywhere.
    let text = redact(&text).into_owned();
    Some(Job {
        line,
        seq: 0,
        read_at: Instant::now(),
        text,
        target,
        tracked: None,
    })
}

/// The text with control characters replaced, for the `url` cell of a bad line: a NUL or an
/// escape sequence has no business in a CSV cell or a terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Parses lines as URLs like [`parse_target`], reusing the previous line's parsed origin when a
/// line starts with the very same `http(s)://authority/`: lists are mostly grouped by site, and
/// the host (IDNA mapping, the forms of IP addresses) is most of the work of parsing a URL. The
/// rest of such a line is parsed as a path-absolute reference against that origin, which the
/// URL standard resolves exactly as it parses the whole line; tests and the `lines` fuzz target
/// hold the two ways equal.
#[derive(Debug, Default)]
pub struct TargetParser {
    /// The previous line's `scheme://authority` (raw, as written).
    origin: String,
    /// Its URL, once a second line in a row had that origin (a lone line is not worth a copy).
    base: Option<Url>,
}

impl TargetParser {
    pub fn parse(&mut self, text: &str) -> Result<Url, Failure> {
        let split = origin_end(text);
        if let Some(at) = split
            && text.get(..at) == Some(self.origin.as_str())
            && let (Some(base), Some(rest)) = (&self.base, text.get(at..))
            && let Ok(url) = base.join(rest)
        {
            return Ok(url);
        }
        let url = parse_target(text)?;
        match split.and_then(|at| text.get(..at)) {
            Some(origin) if origin == self.origin => self.base = Some(url.clone()),
            Some(origin) => {
                self.origin.clear();
                self.origin.push_str(origin);
                self.base = None;
            }
            None => {
                self.origin.clear();
                self.base = None;
            }
        }
        Ok(url)
    }
}

/// Where `http(s)://authority` ends in `text`, when what follows is a path-absolute reference
/// (one `/`, not `//` or `/\`, which would name another authority). The authority ends where
/// the URL parser ends it for these schemes: at `/`, `\`, `?` or `#`.
fn origin_end(text: &str) -> Option<usize> {
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|scheme| text.starts_with(scheme))?;
    let authority = text.get(scheme.len()..)?;
    let at = scheme.len() + authority.find(['/', '\\', '?', '#'])?;
    // No authority at all: the parser takes the host from after the extra slashes.
    if at == scheme.len() {
        return None;
    }
    let after = text.as_bytes().get(at..)?;
    matches!(after, [b'/', next, ..] if *next != b'/' && *next != b'\\')
        .then_some(at)
        .or_else(|| (after == b"/").then_some(at))
}

/// Parses a line as an absolute http(s) URL with a host.
pub fn parse_target(text: &str) -> Result<Url, Failure> {
    let url = Url::parse(text).map_err(|e| {
        let looks_like_host = text.contains('.') && !text.contains(char::is_whitespace);
        let hint = match e {
            url::ParseError::RelativeUrlWithoutBase if looks_like_host => {
                format!(": {e} (a scheme is required, e.g. https://{text})")
            }
            _ => format!(": {e}"),
        };
        Failure::new(ErrorKind::InvalidUrl, format!("not a URL{hint}"))
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Failure::new(
            ErrorKind::UnsupportedScheme,
            format!("scheme '{other}' is not supported; only http and https are fetched"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(bytes: &[u8]) -> Vec<Job> {
        let mut lines = LineReader::new(bytes);
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(raw) = lines.next_line().unwrap() {
            n += 1;
            out.extend(classify(n, raw, &mut TargetParser::default()));
        }
        out
    }

    fn kind(job: &Job) -> Option<ErrorKind> {
        job.target.as_ref().err().map(|f| f.kind)
    }

    #[test]
    fn skips_blanks_and_comments_but_counts_their_lines() {
        let got = jobs(b"# header\n\n   \nhttp://a.test/\n  # indented comment\nhttp://b.test/");
        let lines: Vec<u64> = got.iter().map(|j| j.line).collect();
        assert_eq!(lines, [4, 6]);
        assert!(got.iter().all(|j| j.target.is_ok()));
    }

    #[test]
    fn strips_bom_crlf_and_whitespace() {
        let got = jobs(b"\xEF\xBB\xBFhttp://a.test/x\r\n\t http://b.test/ \r\n");
        assert_eq!(got[0].text, "http://a.test/x");
        assert_eq!(got[1].text, "http://b.test/");
        assert!(got.iter().all(|j| j.target.is_ok()));
    }

    #[test]
    fn bom_only_stripped_at_start_of_file() {
        let got = jobs(b"http://a.test/\n\xEF\xBB\xBFhttp://b.test/\n");
        assert!(got[0].target.is_ok());
        assert_eq!(kind(&got[1]), Some(ErrorKind::InvalidUrl));
    }

    #[test]
    fn classifies_bad_lines() {
        let got = jobs(b"not a url\nftp://a.test/\nexample.com\nhttp://\n\xff\xfe/x\n");
        let kinds: Vec<_> = got.iter().map(kind).collect();
        assert_eq!(
            kinds,
            [
                Some(ErrorKind::InvalidUrl),
                Some(ErrorKind::UnsupportedScheme),
                Some(ErrorKind::InvalidUrl),
                Some(ErrorKind::InvalidUrl),
                Some(ErrorKind::InvalidInput),
            ]
        );
        let hint = &got[2].target.as_ref().unwrap_err().detail;
        assert!(hint.contains("https://example.com"), "{hint}");
    }

    #[test]
    fn caps_long_lines_without_buffering_them() {
        let mut input = b"http://a.test/".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES * 4));
        input.extend_from_slice(b"\nhttp://b.test/\n");
        let got = jobs(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(kind(&got[0]), Some(ErrorKind::InvalidInput));
        assert!(got[0].text.chars().count() <= LONG_LINE_PREVIEW_CHARS + 1);
        assert!(got[1].target.is_ok());
        assert_eq!(got[1].line, 2);
    }

    #[test]
    fn line_exactly_at_limit_is_kept() {
        let mut input = b"   http://a.test/".to_vec();
        input.resize(MAX_LINE_BYTES + 3, b'a');
        input.push(b'\n');
        assert!(jobs(&input)[0].target.is_ok(), "indentation does not count");
        input.insert(10, b'a');
        assert_eq!(kind(&jobs(&input)[0]), Some(ErrorKind::InvalidInput));
    }

    /// Found by the `lines` fuzz target: a first line of the limit or just under it after a BOM
    /// lost its last bytes (the BOM was counted against the limit, then stripped).
    #[test]
    fn a_bom_does_not_count_against_the_limit() {
        let mut line = b"http://a.test/".to_vec();
        line.resize(MAX_LINE_BYTES, b'x');
        let input = [BOM, &line[..], b"\n"].concat();
        let got = jobs(&input);
        assert_eq!(got[0].text.as_bytes(), line, "the whole line");
        assert!(got[0].target.is_ok());
        let over = [BOM, &line[..], b"x\n"].concat();
        assert_eq!(kind(&jobs(&over)[0]), Some(ErrorKind::InvalidInput));
    }

    #[test]
    fn deep_indentation_hides_nothing() {
        let mut input = vec![b' '; MAX_LINE_BYTES * 2];
        input.extend_from_slice(b"not-a-url\n");
        input.extend(vec![b'\t'; MAX_LINE_BYTES * 2]);
        input.extend_from_slice(b"\n");
        input.extend(vec![b' '; MAX_LINE_BYTES * 2]);
        input.extend_from_slice(b"# comment\n");
        let got = jobs(&input);
        assert_eq!(
            got.len(),
            1,
            "a URL-less line still gets its row; blanks and comments don't"
        );
        assert_eq!(got[0].line, 1);
        assert_eq!(kind(&got[0]), Some(ErrorKind::InvalidUrl));
    }

    #[test]
    fn unicode_whitespace_is_whitespace_everywhere() {
        let got = jobs(
            "\u{a0}# comment\n\u{b}# comment\n\u{a0}\u{2003}\nhttp://a.test/\u{a0}\n".as_bytes(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, 4);
        assert_eq!(got[0].text, "http://a.test/");
    }

    #[test]
    fn control_characters_are_bad_input_and_never_reach_the_cell() {
        let got = jobs(b"http://a.test/pa\0ge\nhttp://a.test/\x1b[31mred\n");
        for job in &got {
            assert_eq!(kind(job), Some(ErrorKind::InvalidInput));
            assert!(!job.text.chars().any(char::is_control), "{:?}", job.text);
        }
    }

    #[test]
    fn del_and_c1_controls_are_found_and_named() {
        let got = jobs(
            "http://a.test/a\u{7f}b\nhttp://a.test/\u{e9}\u{85}x\nhttp://a.test/\u{e9}\u{a0}\n"
                .as_bytes(),
        );
        let detail = |job: &Job| job.target.as_ref().map_err(|f| f.detail.clone()).err();
        assert_eq!(
            detail(&got[0]).as_deref(),
            Some("contains a control character (U+007F)")
        );
        assert_eq!(
            detail(&got[1]).as_deref(),
            Some("contains a control character (U+0085)")
        );
        assert!(
            got[2].target.is_ok(),
            "U+00A0 is no control: {:?}",
            detail(&got[2])
        );
    }

    #[test]
    fn first_control_agrees_with_char_is_control() {
        let edges = [
            'a', '\0', '\t', '\u{1f}', ' ', '~', '\u{7f}', '\u{80}', '\u{9f}', '\u{a0}', '\u{e9}',
        ];
        for a in edges {
            for b in edges {
                let text = format!("http://a.test/{a}{b}");
                let expected = text.chars().find(|c| c.is_control());
                assert_eq!(first_control(&text), expected, "{text:?}");
            }
        }
    }

    /// Origins that parse in unusual ways (or not at all), and rests of lines to follow them.
    const ORIGINS: [&str; 14] = [
        "http://a.test",
        "https://A.Test:443",
        "http://a.test:80",
        "http://127.0.0.1",
        "http://0x7f.1",
        "http://user:pw@h.test:8080",
        "http://bücher.test",
        "http://[::1]:80",
        "http://h.test:99999",
        "http://",
        "http:///",
        "http://%41.test",
        "https://a.test.",
        "ftp://a.test",
    ];
    const RESTS: [&str; 14] = [
        "",
        "/",
        "/x",
        "//b.test/x",
        "/\\b.test",
        "\\x",
        "?q=1",
        "#f",
        "/a/../b",
        "/%zz é",
        "/x?y#z",
        "/./.",
        "/ x",
        ":8080/x",
    ];

    fn same_parse(targets: &mut TargetParser, line: &str) {
        let reused = targets.parse(line).map(String::from).map_err(|f| f.detail);
        let fresh = parse_target(line).map(String::from).map_err(|f| f.detail);
        assert_eq!(reused, fresh, "{line}");
    }

    #[test]
    fn reusing_an_origin_parses_as_a_fresh_parse_does() {
        let lines: Vec<String> = ORIGINS
            .iter()
            .flat_map(|origin| RESTS.iter().map(move |rest| format!("{origin}{rest}")))
            .collect();
        // Each line after each other line, twice over (the second time with a base in place).
        let mut targets = TargetParser::default();
        for a in &lines {
            for b in &lines {
                for line in [a, a, b, b] {
                    same_parse(&mut targets, line);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn reusing_an_origin_holds_for_any_rest(
            picks in proptest::collection::vec((0..ORIGINS.len(), "[/\\\\?#a-z.%:@é ]{0,10}"), 1..20)
        ) {
            let mut targets = TargetParser::default();
            for (origin, rest) in picks {
                same_parse(&mut targets, &format!("{}{rest}", ORIGINS[origin]));
            }
        }
    }

    #[test]
    fn counting_agrees_with_classifying() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.txt");
        let data = "# c\n\nhttp://a.test/\n\u{a0}# c\nnot a url\n  \t\n\u{feff}x\n";
        std::fs::write(&path, data).unwrap();
        let counted = count_rows(&[path], &AtomicBool::new(false)).unwrap();
        assert_eq!(counted, jobs(data.as_bytes()).len() as u64);
    }

    #[test]
    fn reads_through_tiny_buffers() {
        let data = b"http://a.test/1\nhttp://a.test/2\n";
        let mut lines = LineReader::new(BufReader::with_capacity(3, &data[..]));
        let mut seen = Vec::new();
        while let Some(raw) = lines.next_line().unwrap() {
            seen.push(String::from_utf8(raw.kept.to_vec()).unwrap());
        }
        assert_eq!(seen, ["http://a.test/1", "http://a.test/2"]);
    }
}
