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

use super::file::Destination;
use super::resume::Cells;
use super::xlsx::{SHEET_ROWS, XlsxSink};
use super::{Columns, Format, Layout, Output, skip_bom};
use crate::error::Error;
use crate::report::Totals;

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

/// CSV inputs with the same header, opened: each file's reader past the header.
struct CsvInputs<'a> {
    header: csv::ByteRecord,
    /// Where the `line` cell is in every record.
    line_at: usize,
    readers: Vec<(&'a Path, csv::Reader<BufReader<File>>)>,
    /// Whether the first file started with a byte-order mark.
    bom: bool,
}

impl<'a> CsvInputs<'a> {
    /// Opens `inputs` (`None` when there are none). They must share the first file's header,
    /// and it must have a `line` column to merge by: both are checked before anything is
    /// written.
    fn open(inputs: &'a [PathBuf]) -> Result<Option<CsvInputs<'a>>, Error> {
        let mut readers = Vec::with_capacity(inputs.len());
        let mut first: Option<(csv::ByteRecord, bool)> = None;
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
            match &first {
                Some((header, _)) if *header != this => {
                    return Err(usage(path, "its columns differ from the first file's"));
                }
                Some(_) => {}
                None => first = Some((this, bom)),
            }
            readers.push((path.as_path(), reader));
        }
        let (Some((header, bom)), Some(first_path)) = (first, inputs.first()) else {
            return Ok(None);
        };
        let line_at = header
            .iter()
            .position(|h| h == b"line")
            .ok_or_else(|| usage(first_path, "it has no 'line' column to merge by"))?;
        Ok(Some(CsvInputs {
            header,
            line_at,
            readers,
            bom,
        }))
    }

    /// The header's names, as text.
    fn names(&self) -> Vec<String> {
        self.header
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect()
    }

    /// Hands every row of every file to `write`, smallest line first (see [`merge_by_line`]);
    /// returns the number of rows written.
    fn merge(
        mut self,
        write: impl FnMut(&csv::ByteRecord) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let line_at = self.line_at;
        let readers = &mut self.readers;
        merge_by_line(
            readers.len(),
            |record| line_of(record, line_at),
            |i| match readers.get_mut(i) {
                Some((path, reader)) => next_csv(reader, path),
                None => Ok(None),
            },
            write,
        )
    }
}

/// Merges CSV inputs into a workbook written to `out`, with the summary sheet of the rows.
fn merge_into_workbook(
    inputs: &[PathBuf],
    out: Destination,
    tempdir: Option<&Path>,
) -> Result<(u64, Destination), Error> {
    let Some(shards) = CsvInputs::open(inputs)? else {
        return Ok((0, out));
    };
    let names = shards.names();
    let cells = Cells::of(&names);
    let changes = names.iter().any(|n| n == "change");
    let layout = Layout {
        columns: Columns::from_names(names.iter().map(String::as_str)),
        spreadsheet_safe: true,
        format: Format::Xlsx,
        header: true,
        bom: false,
        sheet_rows: SHEET_ROWS,
    };
    let mut sink = XlsxSink::new(out, layout, tempdir).map_err(write_error)?;
    let mut totals = Totals::default();
    // Each row's cells as text, in buffers kept from row to row: no allocation per row once
    // they have grown to the longest cells.
    let mut text: Vec<String> = Vec::new();
    let written = shards.merge(|record| {
        text.resize_with(record.len(), String::new);
        for (into, cell) in text.iter_mut().zip(record) {
            into.clear();
            into.push_str(&String::from_utf8_lossy(cell));
        }
        sink.write_cells(|i, column| column.read_cell(text.get(i).map_or("", String::as_str)))
            .map_err(write_error)?;
        cells.count(record, &mut totals);
        Ok(())
    })?;
    let summary = totals.summary(changes);
    let out = sink.finish(Some(&summary)).map_err(write_error)?;
    Ok((written, out))
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
    let Some(shards) = CsvInputs::open(inputs)? else {
        return Ok(0);
    };
    if shards.bom {
        out.write_all(crate::UTF8_BOM).map_err(write_error)?;
    }
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_byte_record(&shards.header)
        .map_err(csv_error)?;
    let written = shards.merge(|record| writer.write_byte_record(record).map_err(csv_error))?;
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
