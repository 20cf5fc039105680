//! `--merge`: the outputs of several shards, as one.
//!
//! Every shard writes rows for its own lines, numbered as in the whole list. Merging writes the
//! header once and interleaves the rows by `line`: when each shard ran with `--ordered` (its
//! rows sorted by line), the result is in input order, exactly as one process would have
//! written it with `--ordered`. Unsorted shards are merged completely all the same, just not in
//! order. Rows are copied as they are, streamed: memory does not depend on the files' size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Format, Output};
use crate::error::Error;

/// Merges `inputs` into `output`; returns the number of rows written.
pub fn merge(inputs: &[PathBuf], format: Format, output: Output) -> Result<u64, Error> {
    let partial = output.destination.partial().map(|(p, _)| p.to_path_buf());
    let mut destination = output.destination;
    let written = match format {
        Format::Csv => merge_csv(inputs, &mut destination),
        Format::Jsonl => merge_jsonl(inputs, &mut destination),
    }?;
    destination.finish().map_err(|source| Error::Write {
        source,
        partial,
        rows: None,
    })?;
    Ok(written)
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
    let mut readers = Vec::with_capacity(inputs.len());
    let mut header: Option<csv::ByteRecord> = None;
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
                if bom {
                    out.write_all(b"\xEF\xBB\xBF").map_err(write_error)?;
                }
                header = Some(this);
            }
        }
        readers.push((path, reader));
    }
    let (Some(header), Some(first)) = (header, inputs.first()) else {
        return Ok(0);
    };
    let line_at = header
        .iter()
        .position(|h| h == b"line")
        .ok_or_else(|| usage(first, "it has no 'line' column to merge by"))?;
    let mut writer = csv::Writer::from_writer(out);
    writer.write_byte_record(&header).map_err(csv_error)?;

    // Each file with the record it has read next; the queue holds (line, file) for each.
    let mut files = Vec::with_capacity(readers.len());
    let mut queue = BinaryHeap::new();
    for (i, (path, mut reader)) in readers.into_iter().enumerate() {
        let head = next_csv(&mut reader, path)?;
        if let Some(record) = &head {
            queue.push(Reverse((line_of(record, line_at), i)));
        }
        files.push((path, reader, head));
    }
    let mut written = 0;
    while let Some(Reverse((_, i))) = queue.pop() {
        let Some((path, reader, head)) = files.get_mut(i) else {
            continue;
        };
        if let Some(record) = head.take() {
            writer.write_byte_record(&record).map_err(csv_error)?;
            written += 1;
        }
        *head = next_csv(reader, path)?;
        if let Some(record) = head {
            queue.push(Reverse((line_of(record, line_at), i)));
        }
    }
    writer.flush().map_err(write_error)?;
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
    // Each file with the line it has read next; the queue holds (line number, file) for each.
    let mut files = Vec::with_capacity(inputs.len());
    let mut queue = BinaryHeap::new();
    for (i, path) in inputs.iter().enumerate() {
        let mut reader = BufReader::new(open(path)?);
        let head = next_line(&mut reader, path)?;
        if let Some(line) = &head {
            queue.push(Reverse((json_line_number(line), i)));
        }
        files.push((path, reader, head));
    }
    let mut written = 0;
    while let Some(Reverse((_, i))) = queue.pop() {
        let Some((path, reader, head)) = files.get_mut(i) else {
            continue;
        };
        if let Some(line) = head.take() {
            out.write_all(&line).map_err(write_error)?;
            written += 1;
        }
        *head = next_line(reader, path)?;
        if let Some(line) = head {
            queue.push(Reverse((json_line_number(line), i)));
        }
    }
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

fn skip_bom(file: &mut File) -> io::Result<bool> {
    let mut head = [0u8; 3];
    let read = file.read(&mut head)?;
    if read == 3 && head == *b"\xEF\xBB\xBF" {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(false)
}

fn usage(path: &Path, why: &str) -> Error {
    Error::Usage(format!("cannot merge '{}': {why}", path.display()))
}

fn csv_error(error: csv::Error) -> Error {
    write_error(io::Error::other(error))
}
