//! JSON Lines: one object per row, keys in column order, numbers as numbers, empty cells as
//! `null`. Text is written exactly as it is (JSON has no formulas to fear).

use std::io::{self, Write};

use super::{Cell, Column, Layout, Sink};
use crate::row::{Row, millis};

/// Rows are gathered in memory and written out in pieces of about this size, each ending with
/// a row, so a failed write never leaves half a row behind (see `output::file`).
const BUFFER: usize = 64 * 1024;

pub(crate) struct JsonlSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    columns: Vec<Column>,
    /// The keys, JSON-quoted once.
    keys: Vec<String>,
    cell: String,
    /// Rows in `buf`, and rows written out before them.
    rows_buffered: u64,
    rows_written: u64,
}

impl<W: Write> JsonlSink<W> {
    pub(crate) fn new(sink: W, layout: Layout) -> Self {
        let keys = layout
            .columns
            .names()
            .map(|name| serde_json::to_string(name).unwrap_or_else(|_| "\"?\"".into()))
            .collect();
        JsonlSink {
            out: sink,
            buf: Vec::with_capacity(BUFFER + 4096),
            columns: layout.columns.iter().collect(),
            keys,
            cell: String::with_capacity(256),
            rows_buffered: 0,
            rows_written: 0,
        }
    }

    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// Rows handed to the destination so far, in whole writes.
    pub(crate) fn rows_written(&self) -> u64 {
        self.rows_written
    }

    fn drain(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.rows_written += std::mem::take(&mut self.rows_buffered);
        Ok(())
    }

    fn write_value(&mut self, cell: Cell<'_>) -> io::Result<()> {
        let out = &mut self.buf;
        match cell {
            Cell::Empty => out.write_all(b"null"),
            Cell::Count(n) => write!(out, "{n}"),
            Cell::Int(n) => write!(out, "{n}"),
            Cell::Millis(d) => write!(out, "{}", millis(d)),
            Cell::Flag(b) => out.write_all(if b { b"true" } else { b"false" }),
            Cell::Text(text) | Cell::Word(text) => json_string(out, text),
            Cell::Ip(_) | Cell::Time(_) => {
                cell.render(&mut self.cell, false);
                json_string(out, &self.cell)
            }
        }
    }
}

fn json_string(out: &mut impl Write, text: &str) -> io::Result<()> {
    serde_json::to_writer(out, text).map_err(io::Error::from)
}

impl<W: Write> Sink for JsonlSink<W> {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        self.buf.push(b'{');
        for i in 0..self.columns.len() {
            // One key per column, built together in `new`.
            let (Some(key), Some(column)) = (self.keys.get(i), self.columns.get(i)) else {
                break;
            };
            let cell = column.cell(row);
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(key.as_bytes());
            self.buf.push(b':');
            self.write_value(cell)?;
        }
        self.buf.extend_from_slice(b"}\n");
        self.rows_buffered += 1;
        if self.buf.len() >= BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{ColumnSpec, Columns, Format};
    use crate::row::{ErrorKind, Failure};
    use std::time::Duration;

    #[test]
    fn rows_are_objects_with_typed_values() {
        let layout = Layout {
            columns: Columns::new(&ColumnSpec {
                values: vec!["price".into()],
                ..ColumnSpec::default()
            }),
            spreadsheet_safe: true,
            format: Format::Jsonl,
            header: true,
            bom: false,
            sheet_rows: crate::output::SHEET_ROWS,
        };
        let mut row = Row::unrequested(3, "=x\n\"y\"".into(), Failure::new(ErrorKind::Dns, "no"));
        row.status = Some(200);
        row.latency = Some(Duration::from_micros(1500));
        row.reused = Some(true);
        row.values = vec![Some("12.50".into())];
        let mut buf = Vec::new();
        {
            let mut sink = JsonlSink::new(&mut buf, layout);
            sink.write_row(&row).unwrap();
            sink.flush().unwrap();
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["line"], 3);
        assert_eq!(value["url"], "=x\n\"y\"", "no formula neutralising in JSON");
        assert_eq!(value["status"], 200);
        assert_eq!(value["latency_ms"], 1.5);
        assert_eq!(value["ttfb_ms"], serde_json::Value::Null);
        assert_eq!(value["reused"], true);
        assert_eq!(value["error"], "dns");
        assert_eq!(value["price"], "12.50");
        assert!(
            text.starts_with("{\"line\":3,\"url\":"),
            "keys in column order: {text}"
        );
    }
}
