//! CSV rows, quoted the way the csv crate's writer quotes them (RFC 4180: a field with a comma,
//! a quote, CR or LF is quoted, quotes doubled; a record of one empty field is `""` so it is not
//! read as a blank line), written here without it: its per-byte state machine was a tenth of
//! the CPU of a run of small pages. The `csv_rows` fuzz target and the tests below read every
//! output back with the csv crate's reader. The header (and the BOM, with `--bom`) is written
//! up front, so even a run with no rows leaves a valid file.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use super::{Layout, Sink};
use crate::output::columns::{Cell, is_formula_like};
use crate::row::Row;

/// Rows are gathered in memory and written out in pieces of about this size.
const BUFFER: usize = 64 * 1024;

pub(crate) struct CsvSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    layout: Layout,
    header_pending: bool,
    /// Where cells that are not text already (numbers, addresses) are rendered.
    cell: String,
    times: Timestamps,
    /// Rows in `buf`, and rows written out before them.
    rows_buffered: u64,
    rows_written: u64,
}

impl<W: Write> CsvSink<W> {
    /// Starts a CSV sink; with `--bom`, the byte-order mark is written at once.
    pub(crate) fn new(mut out: W, layout: Layout) -> io::Result<Self> {
        if layout.bom {
            out.write_all(crate::UTF8_BOM)?;
        }
        Ok(CsvSink {
            out,
            buf: Vec::with_capacity(BUFFER + 4096),
            header_pending: true,
            layout,
            cell: String::with_capacity(256),
            times: Timestamps::default(),
            rows_buffered: 0,
            rows_written: 0,
        })
    }

    /// Rows handed to the destination so far, in whole writes.
    pub(crate) fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// Flushes and gives back the destination.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.header_pending) {
            return Ok(());
        }
        if self.layout.header {
            let names: Vec<&str> = self.layout.columns.names().collect();
            for (i, name) in names.iter().enumerate() {
                field(&mut self.buf, i, b"", name.as_bytes());
            }
            end_record(&mut self.buf, names.len());
        }
        Ok(())
    }

    /// Writes out the buffer, which always ends at the end of a row.
    fn drain(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.rows_written += std::mem::take(&mut self.rows_buffered);
        Ok(())
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        self.write_header()?;
        let safe = self.layout.spreadsheet_safe;
        let mut count = 0;
        for (i, column) in self.layout.columns.iter().enumerate() {
            match column.cell(row) {
                // Text is written straight from the row; only the rest is rendered first.
                Cell::Text(text) if safe && is_formula_like(text) => {
                    field(&mut self.buf, i, b"'", text.as_bytes());
                }
                // Words are ours (error kinds, digests), but a library user may set anything.
                Cell::Text(text) | Cell::Word(text) => {
                    field(&mut self.buf, i, b"", text.as_bytes())
                }
                // Ours, never in need of quotes: numbers, addresses, times.
                Cell::Time(time) => plain_field(&mut self.buf, i, self.times.render(time)),
                cell => {
                    cell.render(&mut self.cell, safe);
                    plain_field(&mut self.buf, i, self.cell.as_bytes());
                }
            }
            count = i + 1;
        }
        end_record(&mut self.buf, count);
        self.rows_buffered += 1;
        if self.buf.len() >= BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_header()?;
        self.drain()?;
        self.out.flush()
    }
}

/// Appends the `index`-th field of a record, known to need no quotes.
fn plain_field(buf: &mut Vec<u8>, index: usize, text: &[u8]) {
    if index > 0 {
        buf.push(b',');
    }
    buf.extend_from_slice(text);
}

/// Appends the `index`-th field of a record: `prefix` then `text`, quoted if need be.
fn field(buf: &mut Vec<u8>, index: usize, prefix: &[u8], text: &[u8]) {
    if index > 0 {
        buf.push(b',');
    }
    // All four are below `-`: most bytes are ruled out by one comparison.
    let special = |b: &u8| *b < b'-' && matches!(b, b',' | b'"' | b'\n' | b'\r');
    // A field starting with U+FEFF is quoted too: first in a file, a reader would take it for a
    // byte-order mark and drop it (found by the csv_rows fuzz target).
    let bom = prefix.is_empty() && text.starts_with("\u{feff}".as_bytes());
    if !bom && !prefix.iter().any(special) && !text.iter().any(special) {
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(text);
        return;
    }
    buf.push(b'"');
    for part in [prefix, text] {
        for piece in part.split_inclusive(|&b| b == b'"') {
            buf.extend_from_slice(piece);
            if piece.last() == Some(&b'"') {
                buf.push(b'"');
            }
        }
    }
    buf.push(b'"');
}

/// `started_at` times as RFC 3339 with milliseconds, as `humantime` writes them, with the part
/// up to the second formatted once per second rather than once per row.
#[derive(Default)]
struct Timestamps {
    second: Option<u64>,
    text: Vec<u8>,
    /// Length of the part up to the second, `2026-11-22T08:16:40`.
    whole: usize,
}

impl Timestamps {
    fn render(&mut self, time: SystemTime) -> &[u8] {
        let since = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if self.second != Some(since.as_secs()) {
            let second = SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs());
            self.text.clear();
            // `...T08:16:40Z`: keep all but the `Z`.
            let _ = write!(self.text, "{}", humantime::format_rfc3339_seconds(second));
            self.whole = self.text.len().saturating_sub(1);
            self.second = Some(since.as_secs());
        }
        self.text.truncate(self.whole);
        let millis = since.subsec_millis();
        self.text.push(b'.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            self.text.push(b'0' + u8::try_from(digit).unwrap_or(0));
        }
        self.text.push(b'Z');
        &self.text
    }
}

/// Ends a record of `fields` fields. A record that is one empty field reads as a blank line
/// (which readers skip) unless it is quoted.
fn end_record(buf: &mut Vec<u8>, fields: usize) {
    if fields == 1 && buf.last().is_none_or(|&b| b == b'\n') {
        buf.extend_from_slice(b"\"\"");
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ColumnSpec;
    use crate::output::Columns;
    use crate::row::{ErrorKind, Failure};

    fn layout(safe: bool) -> Layout {
        Layout {
            columns: Columns::new(&ColumnSpec::default()),
            spreadsheet_safe: safe,
            format: crate::output::Format::Csv,
            header: true,
            bom: false,
            sheet_rows: crate::output::SHEET_ROWS,
        }
    }

    fn write(rows: &[Row], safe: bool) -> Vec<u8> {
        let mut buf = Vec::new();
        {
            let mut sink = CsvSink::new(&mut buf, layout(safe)).unwrap();
            for row in rows {
                sink.write_row(row).unwrap();
            }
            sink.flush().unwrap();
        }
        buf
    }

    #[test]
    fn awkward_values_round_trip() {
        let mut row = Row::unrequested(
            7,
            "http://a.test/?q=\"x\",y".into(),
            Failure::new(ErrorKind::Protocol, "line one\nline two, \"quoted\""),
        );
        row.content_type = Some("text/html; charset=\"utf-8\"".into());
        row.title = Some("=HYPERLINK(\"http://evil\")".into());
        let buf = write(&[row.clone()], false);
        let mut reader = csv::Reader::from_reader(&buf[..]);
        let headers = reader.headers().unwrap().clone();
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        let get = |name: &str| &records[0][headers.iter().position(|h| h == name).unwrap()];
        assert_eq!(get("url"), row.url);
        assert_eq!(get("content_type"), "text/html; charset=\"utf-8\"");
        assert_eq!(get("error"), "protocol");
        assert_eq!(get("error_detail"), "line one\nline two, \"quoted\"");
        assert_eq!(
            get("title"),
            "=HYPERLINK(\"http://evil\")",
            "--raw keeps it"
        );

        let safe = write(&[row], true);
        let mut reader = csv::Reader::from_reader(&safe[..]);
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[13], "'=HYPERLINK(\"http://evil\")");
    }

    #[test]
    fn bom_and_no_header() {
        let mut with_bom = layout(true);
        with_bom.bom = true;
        let mut buf = Vec::new();
        CsvSink::new(&mut buf, with_bom).unwrap().flush().unwrap();
        assert!(buf.starts_with(b"\xEF\xBB\xBFline,url,"));
        let mut bare = layout(true);
        bare.header = false;
        let mut buf = Vec::new();
        {
            let mut sink = CsvSink::new(&mut buf, bare).unwrap();
            sink.write_row(&Row::unrequested(
                1,
                "x".into(),
                Failure::new(ErrorKind::InvalidUrl, "d"),
            ))
            .unwrap();
            sink.flush().unwrap();
        }
        assert!(buf.starts_with(b"1,x,"));
    }

    #[test]
    fn times_print_as_humantime_prints_them() {
        let mut times = Timestamps::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_000);
        for step in (0..5_000u64).chain([86_399_999, 86_400_000, 31_000_000_123]) {
            let time = start + Duration::from_micros(step * 997);
            let want = humantime::format_rfc3339_millis(time).to_string();
            assert_eq!(times.render(time), want.as_bytes(), "{step}");
        }
        assert_eq!(
            times.render(SystemTime::UNIX_EPOCH),
            b"1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_cell_starting_with_a_bom_keeps_it() {
        let mut bare = layout(false);
        bare.header = false;
        bare.columns = Columns::select(&ColumnSpec::default(), &["url".into()]).unwrap();
        let mut buf = Vec::new();
        {
            let mut sink = CsvSink::new(&mut buf, bare).unwrap();
            let failure = Failure::new(ErrorKind::InvalidUrl, "d");
            sink.write_row(&Row::unrequested(1, "\u{feff}x".into(), failure))
                .unwrap();
            sink.flush().unwrap();
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&buf[..]);
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], "\u{feff}x");
    }

    #[test]
    fn header_alone_when_no_rows() {
        let buf = write(&[], true);
        let header = String::from_utf8(buf).unwrap();
        assert!(header.starts_with("line,url,status,latency_ms,ttfb_ms,bytes,"));
        assert_eq!(header.lines().count(), 1);
    }
}
