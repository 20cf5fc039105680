//! `--resume`: carry on from what an earlier run of the same list left in `-o FILE`.
//!
//! The earlier run's rows are in `FILE.partial` if it crashed (or was killed), else in `FILE` if
//! it finished or stopped gracefully. Its complete rows are kept, except those it had to cut
//! short (`cancelled`, `deadline`), which are done again; a torn last row (the crash came in the
//! middle of a write) is detected and dropped. The kept rows are written to a fresh
//! `FILE.partial`, the run appends to it, and it is renamed to `FILE` at the end as usual. The
//! lines kept are handed to the input reader, which leaves them out.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::file::{Destination, follow_symlink, partial_path};
use super::{Format, Layout, Output};
use crate::error::Error;
use crate::input::{Recorded, cell_key};

/// Error kinds of rows the earlier run did not finish: they are done again.
const UNFINISHED: [&str; 2] = ["cancelled", "deadline"];

/// Opens `path` for a resumed run: the earlier rows are kept, the lines they cover returned.
pub fn resume(path: &Path, layout: &Layout) -> Result<Output, Error> {
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
    let source = [&partial, &target]
        .into_iter()
        .find(|p| p.is_file())
        .cloned();
    let Some(source) = source else {
        return Output::create(path); // Nothing to resume from: a first run.
    };
    let kept = match layout.format {
        Format::Csv => read_csv(&source, layout).map_err(|e| match e {
            ReadError::Io(e) => fail(e),
            ReadError::Mismatch(why) => usage(why),
        })?,
        Format::Jsonl => read_jsonl(&source).map_err(fail)?,
    };
    let recorded = Recorded::new(
        kept.keys,
        layout.format == Format::Csv && layout.spreadsheet_safe,
    );
    let file = rewrite(&partial, layout, &kept.lines).map_err(fail)?;
    Ok(Output {
        destination: Destination::File {
            file,
            partial,
            path: target,
        },
        recorded: Some(recorded),
        continues: true,
    })
}

/// What an earlier run's file holds: the rows to keep (as written), and their line keys.
#[derive(Default)]
struct Kept {
    /// The kept rows, each a complete line (or CSV record) of the earlier file.
    lines: Vec<Vec<u8>>,
    /// (line, key of the url cell) for each kept row.
    keys: Vec<(u64, u64)>,
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

fn read_csv(source: &Path, layout: &Layout) -> Result<Kept, ReadError> {
    let names: Vec<&str> = layout.columns.names().collect();
    let column = |name: &str| names.iter().position(|n| *n == name);
    let (line_at, url_at, error_at) = (column("line"), column("url"), column("error"));
    let (file, bom) = skip_bom(File::open(source)?)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let mut kept = Kept::default();
    let mut record = csv::ByteRecord::new();
    // The record read before `record`, and where it started: complete once another follows.
    let mut pending: Option<(csv::ByteRecord, u64)> = None;
    let mut header = layout.header;
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
                return Err(ReadError::Mismatch(format!(
                    "it has other columns than this run would write ({}); use the same \
                     --fields, --select, --regex and --hash options",
                    String::from_utf8_lossy(record.as_slice())
                )));
            }
            continue;
        }
        if let Some((done, _)) = pending.replace((record.clone(), start)) {
            if done.len() != names.len() {
                return Err(ReadError::Mismatch(format!(
                    "a row has {} cells instead of {}; is it the output of this list?",
                    done.len(),
                    names.len()
                )));
            }
            keep_record(&done, line_at, url_at, error_at, &mut kept);
        }
    }
    if let Some((last, start)) = pending
        && last.len() == names.len()
        && ends_cleanly(source, start)?
    {
        keep_record(&last, line_at, url_at, error_at, &mut kept);
    }
    Ok(kept)
}

fn keep_record(
    record: &csv::ByteRecord,
    line_at: Option<usize>,
    url_at: Option<usize>,
    error_at: Option<usize>,
    kept: &mut Kept,
) {
    let cell = |at: Option<usize>| at.and_then(|i| record.get(i));
    let unfinished = cell(error_at).is_some_and(|e| UNFINISHED.iter().any(|u| u.as_bytes() == e));
    let line = cell(line_at)
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.parse::<u64>().ok());
    let (Some(line), Some(url)) = (line, cell(url_at)) else {
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
    }
}

/// Whether the file's last record, starting at byte `start`, was written whole: it ends with a
/// newline that is not inside a quoted cell (an odd number of quotes in it means it is).
fn ends_cleanly(source: &Path, start: u64) -> io::Result<bool> {
    let mut file = File::open(source)?;
    file.seek(SeekFrom::Start(start))?;
    let mut last = Vec::new();
    file.read_to_end(&mut last)?;
    let quotes = last.iter().filter(|&&b| b == b'"').count();
    Ok(last.last() == Some(&b'\n') && quotes % 2 == 0)
}

fn read_jsonl(source: &Path) -> io::Result<Kept> {
    let mut bytes = Vec::new();
    File::open(source)?.read_to_end(&mut bytes)?;
    let mut kept = Kept::default();
    // Only lines ending in a newline are complete; a torn last line has none.
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let Some(text) = line.strip_suffix(b"\n") else {
            continue;
        };
        let Ok(serde_json::Value::Object(row)) = serde_json::from_slice(text) else {
            continue;
        };
        let unfinished = row
            .get("error")
            .and_then(|e| e.as_str())
            .is_some_and(|e| UNFINISHED.contains(&e));
        let number = row.get("line").and_then(serde_json::Value::as_u64);
        let url = row.get("url").and_then(|u| u.as_str());
        if let (Some(number), Some(url), false) = (number, url, unfinished) {
            kept.keys.push((number, cell_key(url)));
            kept.lines.push(line.to_vec());
        }
    }
    Ok(kept)
}

/// Skips a UTF-8 byte-order mark at the start of `file`; returns how many bytes it skipped.
fn skip_bom(mut file: File) -> io::Result<(File, u64)> {
    let mut head = [0u8; 3];
    let read = file.read(&mut head)?;
    if read == 3 && head == *b"\xEF\xBB\xBF" {
        return Ok((file, 3));
    }
    file.seek(SeekFrom::Start(0))?;
    Ok((file, 0))
}

/// Writes the kept rows (with BOM and header as configured) to a fresh partial file, atomically
/// replacing any old one, and returns it open for appending.
fn rewrite(partial: &Path, layout: &Layout, lines: &[Vec<u8>]) -> io::Result<File> {
    let mut fresh_name = partial.as_os_str().to_owned();
    fresh_name.push(".new");
    let fresh = PathBuf::from(fresh_name);
    let mut file = File::create(&fresh)?;
    {
        let mut out = io::BufWriter::new(&mut file);
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
    file.sync_all()?;
    fs::rename(&fresh, partial)?;
    Ok(file)
}
