//! `--resume`: carry on from what an earlier run of the same list left in `-o FILE`.
//!
//! The earlier run's rows are in `FILE.partial` if it crashed (or was killed), else in `FILE` if
//! it finished or stopped gracefully. Its complete rows are kept, except those it had to cut
//! short (`cancelled`, `deadline`), which are done again; a torn last row (the crash came in the
//! middle of a write) is detected and dropped. The kept rows are written to a fresh
//! `FILE.partial`, the run appends to it, and it is renamed to `FILE` at the end as usual. The
//! lines kept are handed to the input reader, which leaves them out, and their figures (status,
//! error, latency) to the summary, which covers the whole file.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::file::{Destination, create_own, follow_symlink, open_own_partial, partial_path};
use super::{Format, Layout, Output, skip_bom};
use crate::error::Error;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::is_formula_like;
use crate::report::Totals;
use crate::row::{ChangeKind, ErrorKind};

/// Why `--resume` cannot continue a workbook, and what to do instead.
pub const XLSX_RESUME: &str = "a workbook cannot be continued (it is written whole at the end, \
    and a run cut off by a crash leaves none); resume to CSV instead (--resume -o out.csv) and \
    convert it when it is complete: fetch --merge out.csv -o out.xlsx";

/// Error kinds of rows the earlier run did not finish: they are done again.
const UNFINISHED: [ErrorKind; 2] = [ErrorKind::Cancelled, ErrorKind::Deadline];

/// Lines a previous run recorded: line number → a hash of its `url` cell as written.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Sorted by line.
    entries: Vec<(u64, u64)>,
    /// Whether the cells were written spreadsheet-safe (a formula-like URL then has a `'`).
    spreadsheet_safe: bool,
}

impl Recorded {
    /// `entries` are (line, [`cell_key`] of the `url` cell) pairs, in any order.
    pub fn new(mut entries: Vec<(u64, u64)>, spreadsheet_safe: bool) -> Recorded {
        entries.sort_unstable();
        entries.dedup_by_key(|(line, _)| *line);
        Recorded {
            entries,
            spreadsheet_safe,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `line`, whose trimmed text is `text`, is recorded: same line number, same URL
    /// (a changed list is not mistaken for the old one).
    pub fn contains(&self, line: u64, text: &str) -> bool {
        let Ok(at) = self.entries.binary_search_by_key(&line, |(l, _)| *l) else {
            return false;
        };
        let written = if self.spreadsheet_safe && is_formula_like(text) {
            cell_key(&format!("'{text}"))
        } else {
            cell_key(text)
        };
        self.entries.get(at).is_some_and(|(_, key)| *key == written)
    }
}

/// The key of a `url` cell as written in an output file.
pub fn cell_key(cell: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    cell.hash(&mut hasher);
    hasher.finish()
}

/// Opens `path` for a resumed run: the earlier rows are kept, the lines they cover returned.
/// With `recorded`, only the file's first `recorded` rows are kept (`--state` recorded those;
/// the lines of the rows after them are done again, so file and state agree).
pub fn resume(path: &Path, layout: &Layout, recorded: Option<u64>) -> Result<Output, Error> {
    let fail = |source| Error::OutputOpen {
        path: path.to_path_buf(),
        source,
    };
    let usage = |why: String| Error::Usage(format!("cannot resume '{}': {why}", path.display()));
    for needed in ["line", "url"] {
        if !layout.columns.names().any(|n| n == needed) {
            return Err(usage(format!("--resume needs the '{needed}' column")));
        }
    }
    let target = follow_symlink(path).map_err(fail)?;
    let partial = partial_path(&target);
    let fail_partial = |source| Error::OutputOpen {
        path: partial.clone(),
        source,
    };
    // The partial file is read only if it is ours; the output itself is the user's own path.
    let source = match open_own_partial(&partial).map_err(fail_partial)? {
        Some(file) => Some(file),
        None if target.is_file() => Some(File::open(&target).map_err(fail)?),
        None => None,
    };
    let Some(source) = source else {
        return Output::create(path); // Nothing to resume from: a first run.
    };
    let kept = match layout.format {
        Format::Csv => read_csv(source, layout, recorded).map_err(|e| match e {
            ReadError::Io(e) => fail(e),
            ReadError::Mismatch(why) => usage(why),
        })?,
        Format::Jsonl => read_jsonl(source, recorded).map_err(fail)?,
        Format::Xlsx => return Err(usage(XLSX_RESUME.into())),
    };
    let recorded = Recorded::new(
        kept.keys,
        layout.format == Format::Csv && layout.spreadsheet_safe,
    );
    let file =
        create_own(&partial, |file| write_kept(file, layout, &kept.lines)).map_err(fail_partial)?;
    let rows_before = kept.lines.len() as u64;
    Ok(Output {
        destination: Destination::file(file, partial, target, rows_before),
        recorded: Some(recorded),
        carried: Some(kept.totals),
        continues: true,
    })
}

/// What an earlier run's file holds: the rows to keep (as written), their line keys and their
/// figures.
#[derive(Default)]
struct Kept {
    /// The kept rows, each a complete line (or CSV record) of the earlier file.
    lines: Vec<Vec<u8>>,
    /// (line, key of the url cell) for each kept row.
    keys: Vec<(u64, u64)>,
    totals: Totals,
}

/// Where the cells the resumed run needs are in the earlier file's records; also where a
/// merge finds the figures of the rows it merges.
pub(super) struct Cells {
    line: Option<usize>,
    url: Option<usize>,
    error: Option<usize>,
    status: Option<usize>,
    latency: Option<usize>,
    change: Option<usize>,
}

impl Cells {
    pub(super) fn of(names: &[impl AsRef<str>]) -> Cells {
        let column = |name: &str| names.iter().position(|n| n.as_ref() == name);
        Cells {
            line: column("line"),
            url: column("url"),
            error: column("error"),
            status: column("status"),
            latency: column("latency_ms"),
            change: column("change"),
        }
    }

    /// The cell at `at` of `record`, when it is there and text.
    fn text(record: &csv::ByteRecord, at: Option<usize>) -> Option<&str> {
        at.and_then(|i| record.get(i))
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    /// Adds the figures of `record` (status, error, latency, change) to `totals`, as the run
    /// that wrote it counted them.
    pub(super) fn count(&self, record: &csv::ByteRecord, totals: &mut Totals) {
        let cell = |at| Cells::text(record, at);
        totals.record(
            cell(self.status).and_then(|s| s.parse().ok()),
            cell(self.error).and_then(ErrorKind::from_name),
            cell(self.latency).and_then(parse_millis),
        );
        if let Some(change) = cell(self.change).and_then(ChangeKind::from_name) {
            totals.record_change(change);
        }
    }
}

enum ReadError {
    Io(io::Error),
    Mismatch(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn read_csv(source: File, layout: &Layout, limit: Option<u64>) -> Result<Kept, ReadError> {
    let names: Vec<&str> = layout.columns.names().collect();
    let cells = Cells::of(&names);
    let again = source.try_clone()?;
    let mut file = source;
    let bom = if skip_bom(&mut file)? {
        crate::UTF8_BOM.len() as u64
    } else {
        0
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let mut kept = Kept::default();
    let mut record = csv::ByteRecord::new();
    // The record read before `record`, and where it started: complete once another follows.
    let mut pending: Option<(csv::ByteRecord, u64)> = None;
    let mut header = layout.header;
    let mut rows = 0u64;
    let mut cut = false;
    loop {
        let start = bom + reader.position().byte();
        if !reader
            .read_byte_record(&mut record)
            .map_err(|e| ReadError::Io(io::Error::other(e)))?
        {
            break;
        }
        if std::mem::take(&mut header) {
            if record.iter().ne(names.iter().map(|n| n.as_bytes())) {
                let has: Vec<String> = record
                    .iter()
                    .map(|cell| String::from_utf8_lossy(cell).into_owned())
                    .collect();
                return Err(ReadError::Mismatch(format!(
                    "it has other columns than this run writes; the file has: {}; this run \
                     writes: {} (use the options of the run that wrote it: --fields, \
                     --select, --regex, --header-column, --hash, --tls-info)",
                    has.join(", "),
                    names.join(", ")
                )));
            }
            continue;
        }
        if limit.is_some_and(|limit| rows >= limit) {
            cut = true;
            break;
        }
        rows += 1;
        if let Some((done, _)) = pending.replace((record.clone(), start)) {
            if done.len() != names.len() {
                return Err(ReadError::Mismatch(format!(
                    "a row has {} cells instead of {}; is it the output of this list?",
                    done.len(),
                    names.len()
                )));
            }
            keep_record(&done, &cells, &mut kept);
        }
    }
    // A record followed by another one is complete.
    if let Some((last, start)) = pending
        && last.len() == names.len()
        && (cut || ends_cleanly(again, start)?)
    {
        keep_record(&last, &cells, &mut kept);
    }
    Ok(kept)
}

fn keep_record(record: &csv::ByteRecord, cells: &Cells, kept: &mut Kept) {
    let cell = |at| Cells::text(record, at);
    let error = cell(cells.error).and_then(ErrorKind::from_name);
    let unfinished = error.is_some_and(|kind| UNFINISHED.contains(&kind));
    let line = cell(cells.line).and_then(|l| l.parse::<u64>().ok());
    let (Some(line), Some(url)) = (line, cells.url.and_then(|i| record.get(i))) else {
        return;
    };
    if unfinished {
        return;
    }
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    if writer.write_byte_record(record).is_ok()
        && let Ok(bytes) = writer.into_inner()
    {
        kept.keys
            .push((line, cell_key(&String::from_utf8_lossy(url))));
        kept.lines.push(bytes);
        cells.count(record, &mut kept.totals);
    }
}

/// A `_ms` cell back as a duration.
pub(super) fn parse_millis(cell: &str) -> Option<Duration> {
    let ms: f64 = cell.parse().ok()?;
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

/// Whether the file's last record, starting at byte `start`, was written whole: it ends with a
/// newline that is not inside a quoted cell (an odd number of quotes in it means it is).
fn ends_cleanly(mut file: File, start: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(start))?;
    let mut last = Vec::new();
    file.read_to_end(&mut last)?;
    let quotes = last.iter().filter(|&&b| b == b'"').count();
    Ok(last.last() == Some(&b'\n') && quotes % 2 == 0)
}

fn read_jsonl(mut source: File, limit: Option<u64>) -> io::Result<Kept> {
    let mut bytes = Vec::new();
    source.read_to_end(&mut bytes)?;
    let mut kept = Kept::default();
    // Only lines ending in a newline are complete; a torn last line has none.
    let complete = bytes
        .split_inclusive(|&b| b == b'\n')
        .filter_map(|line| Some((line, line.strip_suffix(b"\n")?)));
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    for (line, text) in complete.take(limit) {
        let Ok(serde_json::Value::Object(row)) = serde_json::from_slice(text) else {
            continue;
        };
        let error = row
            .get("error")
            .and_then(|e| e.as_str())
            .and_then(ErrorKind::from_name);
        let unfinished = error.is_some_and(|kind| UNFINISHED.contains(&kind));
        let number = row.get("line").and_then(serde_json::Value::as_u64);
        let url = row.get("url").and_then(|u| u.as_str());
        if let (Some(number), Some(url), false) = (number, url, unfinished) {
            kept.keys.push((number, cell_key(url)));
            kept.lines.push(line.to_vec());
            kept.totals.record(
                row.get("status")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
                error,
                row.get("latency_ms")
                    .and_then(serde_json::Value::as_f64)
                    .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()),
            );
            if let Some(change) = row
                .get("change")
                .and_then(|c| c.as_str())
                .and_then(ChangeKind::from_name)
            {
                kept.totals.record_change(change);
            }
        }
    }
    Ok(kept)
}

/// Writes the kept rows (with BOM and header as configured) into the fresh partial file, and
/// makes them durable before the run appends to them.
fn write_kept(file: &mut File, layout: &Layout, lines: &[Vec<u8>]) -> io::Result<()> {
    {
        let mut out = io::BufWriter::new(&mut *file);
        if layout.format == Format::Csv {
            if layout.bom {
                out.write_all(b"\xEF\xBB\xBF")?;
            }
            if layout.header {
                let mut header = csv::Writer::from_writer(Vec::new());
                header.write_record(layout.columns.names())?;
                out.write_all(&header.into_inner().map_err(|e| e.into_error())?)?;
            }
        }
        for line in lines {
            out.write_all(line)?;
        }
        out.flush()?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{ColumnSpec, Options};

    fn layout(format: Format) -> Layout {
        let options = Options {
            format,
            fields: Some(vec!["line".into(), "url".into(), "change".into()]),
            ..Options::default()
        };
        options
            .layout(&ColumnSpec {
                changes: true,
                ..ColumnSpec::default()
            })
            .unwrap()
    }

    fn file_with(text: &str) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file
    }

    fn lines(kept: &Kept) -> Vec<u64> {
        kept.keys.iter().map(|(line, _)| *line).collect()
    }

    #[test]
    fn only_the_rows_the_state_recorded_are_kept() {
        let csv = "line,url,change\n1,http://a/,new\n2,http://b/,new\n3,http://c/,same\n\
                   4,http://d/,new\n5,http://e/,new";
        let kept = |limit| {
            read_csv(file_with(csv), &layout(Format::Csv), limit)
                .ok()
                .unwrap()
        };
        assert_eq!(
            lines(&kept(None)),
            [1, 2, 3, 4],
            "the torn last row is dropped"
        );
        assert_eq!(lines(&kept(Some(3))), [1, 2, 3]);
        assert_eq!(kept(Some(3)).totals.changes().same, 1);
        assert_eq!(lines(&kept(Some(0))), Vec::<u64>::new());
        assert_eq!(lines(&kept(Some(9))), [1, 2, 3, 4]);
        let whole = format!("{csv}\n");
        let kept = read_csv(file_with(&whole), &layout(Format::Csv), Some(5))
            .ok()
            .unwrap();
        assert_eq!(lines(&kept), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn json_lines_are_cut_back_the_same_way() {
        let rows: String = (1..=4)
            .map(|i| format!("{{\"line\":{i},\"url\":\"http://{i}/\",\"change\":\"new\"}}\n"))
            .collect();
        let kept = read_jsonl(file_with(&rows), Some(2)).unwrap();
        assert_eq!(lines(&kept), [1, 2]);
        assert_eq!(kept.totals.changes().new, 2);
        assert_eq!(
            lines(&read_jsonl(file_with(&rows), None).unwrap()),
            [1, 2, 3, 4]
        );
    }
}
