//! `--merge`: the outputs of several shards, as one.
//!
//! Every shard writes rows for its own lines, numbered as in the whole list. Merging writes the
//! header once and interleaves the rows by `line`: when each shard ran with `--ordered` (its
//! rows sorted by line), the result is in input order, exactly as one process would have
//! written it with `--ordered`. Unsorted shards are merged completely all the same, just not in
//! order. Rows are copied as they are, streamed: memory does not depend on the files' size.
//!
//! Merging CSV into a workbook (`-o all.xlsx`) reads every cell back typed, by its column, and
//! adds the summary sheet of the rows merged: that is also how a CSV written with `--resume`
//! becomes a workbook. Workbooks are never read (a shard's workbook cannot be merged: write
//! the shards as CSV).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use std::time::Duration;

use super::file::Destination;
use super::xlsx::{SHEET_ROWS, XlsxSink};
use super::{Columns, Format, Layout, Output, skip_bom};
use crate::error::Error;
use crate::report::Totals;
use crate::row::{ChangeKind, ErrorKind};

/// Merges `inputs` into `output`; returns the number of rows written.
pub fn merge(inputs: &[PathBuf], format: Format, output: Output) -> Result<u64, Error> {
    for path in inputs {
        check_kind(path, format)?;
    }
    let partial = output.destination.partial().map(|(p, _)| p.to_path_buf());
    let mut destination = output.destination;
    let written = match format {
        Format::Csv => merge_csv(inputs, &mut destination)?,
        Format::Jsonl => merge_jsonl(inputs, &mut destination)?,
        Format::Xlsx => {
            let beside = partial.as_deref().and_then(Path::parent);
            let (rows, workbook) = merge_into_workbook(inputs, destination, beside)?;
            destination = workbook;
            rows
        }
    };
    destination.finish().map_err(|source| Error::Write {
        source,
        partial,
        rows: None,
    })?;
    Ok(written)
}

/// What a file holds, from its first bytes.
#[derive(Debug, PartialEq)]
enum Kind {
    Csv,
    Jsonl,
    Workbook,
}

/// Refuses inputs the merge cannot read as `format` asks: workbooks always, JSON Lines for a
/// CSV or workbook output, CSV for a JSON Lines one.
fn check_kind(path: &Path, format: Format) -> Result<(), Error> {
    let mut head = [0u8; 8];
    let read = File::open(path)
        .and_then(|mut file| {
            use std::io::Read;
            file.read(&mut head)
        })
        .map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
    let head = head.get(..read).unwrap_or_default();
    let head = head.strip_prefix(crate::UTF8_BOM).unwrap_or(head);
    let kind = match head.trim_ascii_start().first() {
        _ if head.starts_with(b"PK\x03\x04") => Kind::Workbook,
        Some(b'{') => Kind::Jsonl,
        _ => Kind::Csv,
    };
    let why = match (kind, format) {
        (Kind::Workbook, _) => {
            "it is a workbook; --merge reads CSV or JSON Lines shards (write \
             the shards as CSV and merge them into a workbook with -o all.xlsx)"
        }
        (Kind::Jsonl, Format::Csv | Format::Xlsx) => {
            "it holds JSON Lines; merge JSON Lines \
             shards with --format jsonl, or write the shards as CSV to merge them into CSV or a \
             workbook"
        }
        (Kind::Csv, Format::Jsonl) => "it holds CSV, not JSON Lines (--format jsonl)",
        _ => return Ok(()),
    };
    Err(usage(path, why))
}

/// CSV inputs opened: the header, each file's reader past it, whether the first had a BOM.
type CsvInputs<'a> = (
    Option<csv::ByteRecord>,
    Vec<(&'a PathBuf, csv::Reader<BufReader<File>>)>,
    bool,
);

/// Opens CSV inputs with the same header: their readers, past it, and the header (`None` for
/// no inputs). Says whether the first file started with a byte-order mark.
fn open_csv(inputs: &[PathBuf]) -> Result<CsvInputs<'_>, Error> {
    let mut readers = Vec::with_capacity(inputs.len());
    let mut header: Option<csv::ByteRecord> = None;
    let mut first_bom = false;
    for path in inputs {
        let mut file = open(path)?;
        let bom = skip_bom(&mut file).map_err(|source| Error::Read {
            name: path.display().to_string(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::new(file));
        let this = reader
            .byte_headers()
            .map_err(|e| usage(path, &format!("not a CSV with a header: {e}")))?
            .clone();
        match &header {
            Some(first) if *first != this => {
                return Err(usage(path, "its columns differ from the first file's"));
            }
            Some(_) => {}
            None => {
                first_bom = bom;
                header = Some(this);
            }
        }
        readers.push((path, reader));
    }
    Ok((header, readers, first_bom))
}

/// Merges CSV inputs into a workbook written to `out`, with the summary sheet of the rows.
fn merge_into_workbook(
    inputs: &[PathBuf],
    out: Destination,
    tempdir: Option<&Path>,
) -> Result<(u64, Destination), Error> {
    let (header, mut readers, _) = open_csv(inputs)?;
    let (Some(header), Some(first)) = (header, inputs.first()) else {
        return Ok((0, out));
    };
    let names: Vec<String> = header
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    let line_at = names
        .iter()
        .position(|n| n == "line")
        .ok_or_else(|| usage(first, "it has no 'line' column to merge by"))?;
    let columns = Columns::from_names(names.iter().map(String::as_str));
    let at = |name: &str| names.iter().position(|n| n == name);
    let (status, error, latency, change) =
        (at("status"), at("error"), at("latency_ms"), at("change"));
    let layout = Layout {
        columns,
        spreadsheet_safe: true,
        format: Format::Xlsx,
        header: true,
        bom: false,
        sheet_rows: SHEET_ROWS,
    };
    let mut sink = XlsxSink::new(out, layout, SHEET_ROWS, tempdir).map_err(write_error)?;
    let mut totals = Totals::default();
    let written = merge_by_line(
        readers.len(),
        |record| line_of(record, line_at),
        |i| match readers.get_mut(i) {
            Some((path, reader)) => next_csv(reader, path),
            None => Ok(None),
        },
        |record| {
            let cells: Vec<std::borrow::Cow<'_, str>> =
                record.iter().map(String::from_utf8_lossy).collect();
            let text = |at: Option<usize>| at.and_then(|i| cells.get(i)).map(|c| c.as_ref());
            sink.write_cells(|i, column| column.read_cell(text(Some(i)).unwrap_or_default()))
                .map_err(write_error)?;
            count(
                &mut totals,
                text(status),
                text(error),
                text(latency),
                text(change),
            );
            Ok(())
        },
    )?;
    let summary = totals.summary(change.is_some());
    let out = sink.finish(Some(&summary)).map_err(write_error)?;
    Ok((written, out))
}

/// Counts a merged row for the workbook's summary sheet.
fn count(
    totals: &mut Totals,
    status: Option<&str>,
    error: Option<&str>,
    latency: Option<&str>,
    change: Option<&str>,
) {
    let millis = latency
        .and_then(|ms| ms.parse::<f64>().ok())
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
    totals.record(
        status.and_then(|s| s.parse().ok()),
        error.and_then(ErrorKind::from_name),
        millis,
    );
    if let Some(kind) = change.and_then(ChangeKind::from_name) {
        totals.record_change(kind);
    }
}

fn open(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::Input {
        path: path.to_path_buf(),
        source,
    })
}

fn write_error(source: io::Error) -> Error {
    Error::Write {
        source,
        partial: None,
        rows: None,
    }
}

fn merge_csv(inputs: &[PathBuf], out: &mut impl Write) -> Result<u64, Error> {
    let (header, mut readers, bom) = open_csv(inputs)?;
    let (Some(header), Some(first)) = (header, inputs.first()) else {
        return Ok(0);
    };
    if bom {
        out.write_all(crate::UTF8_BOM).map_err(write_error)?;
    }
    let line_at = header
        .iter()
        .position(|h| h == b"line")
        .ok_or_else(|| usage(first, "it has no 'line' column to merge by"))?;
    let mut writer = csv::Writer::from_writer(out);
    writer.write_byte_record(&header).map_err(csv_error)?;

    let written = merge_by_line(
        readers.len(),
        |record| line_of(record, line_at),
        |i| match readers.get_mut(i) {
            Some((path, reader)) => next_csv(reader, path),
            None => Ok(None),
        },
        |record| writer.write_byte_record(record).map_err(csv_error),
    )?;
    writer.flush().map_err(write_error)?;
    Ok(written)
}

/// The k-way merge both formats share: `next(i)` reads file `i`'s next row, `line_of` its line
/// number; rows are written smallest line first (each file's rows in the order it has them).
/// Memory holds one row per file.
fn merge_by_line<T>(
    files: usize,
    line_of: impl Fn(&T) -> u64,
    mut next: impl FnMut(usize) -> Result<Option<T>, Error>,
    mut write: impl FnMut(&T) -> Result<(), Error>,
) -> Result<u64, Error> {
    let mut heads: Vec<Option<T>> = Vec::with_capacity(files);
    let mut queue = BinaryHeap::new();
    for i in 0..files {
        let head = next(i)?;
        if let Some(row) = &head {
            queue.push(Reverse((line_of(row), i)));
        }
        heads.push(head);
    }
    let mut written = 0;
    while let Some(Reverse((_, i))) = queue.pop() {
        let Some(slot) = heads.get_mut(i) else {
            continue;
        };
        if let Some(row) = slot.take() {
            write(&row)?;
            written += 1;
        }
        *slot = next(i)?;
        if let Some(row) = slot {
            queue.push(Reverse((line_of(row), i)));
        }
    }
    Ok(written)
}

fn next_csv(
    reader: &mut csv::Reader<BufReader<File>>,
    path: &Path,
) -> Result<Option<csv::ByteRecord>, Error> {
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => Ok(Some(record)),
        Ok(false) => Ok(None),
        Err(e) => Err(usage(path, &format!("unreadable CSV: {e}"))),
    }
}

/// The row's line number; rows without one sort last.
fn line_of(record: &csv::ByteRecord, at: usize) -> u64 {
    record
        .get(at)
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn merge_jsonl(inputs: &[PathBuf], out: &mut impl Write) -> Result<u64, Error> {
    let mut readers = inputs
        .iter()
        .map(|path| Ok((path, BufReader::new(open(path)?))))
        .collect::<Result<Vec<_>, Error>>()?;
    let written = merge_by_line(
        readers.len(),
        |line: &Vec<u8>| json_line_number(line),
        |i| match readers.get_mut(i) {
            Some((path, reader)) => next_line(reader, path),
            None => Ok(None),
        },
        |line| out.write_all(line).map_err(write_error),
    )?;
    out.flush().map_err(write_error)?;
    Ok(written)
}

/// The next complete line (a torn last line, without its newline, is left out).
fn next_line(reader: &mut BufReader<File>, path: &Path) -> Result<Option<Vec<u8>>, Error> {
    loop {
        let mut line = Vec::new();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Read {
                name: path.display().to_string(),
                source,
            })?;
        if read == 0 || !line.ends_with(b"\n") {
            return Ok(None);
        }
        if !line.trim_ascii().is_empty() {
            return Ok(Some(line));
        }
    }
}

fn json_line_number(line: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("line").and_then(serde_json::Value::as_u64))
        .unwrap_or(u64::MAX)
}

fn usage(path: &Path, why: &str) -> Error {
    Error::Usage(format!("cannot merge '{}': {why}", path.display()))
}

fn csv_error(error: csv::Error) -> Error {
    write_error(io::Error::other(error))
}
