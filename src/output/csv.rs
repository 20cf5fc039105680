//! CSV rows through the csv crate, which quotes commas, quotes and newlines so every value
//! round-trips. The header (and the BOM, with `--bom`) is written up front, so even a run with
//! no rows leaves a valid file. Cells are rendered by `columns` into one reused buffer: no
//! allocation per cell.

use std::io::{self, Write};

use super::{Layout, Sink};
use crate::row::Row;

pub(crate) struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    layout: Layout,
    header_pending: bool,
    cell: String,
}

impl<W: Write> CsvSink<W> {
    /// Starts a CSV sink; with `--bom`, the byte-order mark is written at once.
    pub(crate) fn new(mut sink: W, layout: Layout) -> io::Result<Self> {
        if layout.bom {
            sink.write_all(b"\xEF\xBB\xBF")?;
        }
        Ok(CsvSink {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .buffer_capacity(64 * 1024)
                .from_writer(sink),
            header_pending: true,
            layout,
            cell: String::with_capacity(256),
        })
    }

    /// Flushes and gives back the destination.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.write_header()?;
        self.writer.into_inner().map_err(|e| e.into_error())
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.header_pending) {
            return Ok(());
        }
        if self.layout.header {
            self.writer
                .write_record(self.layout.columns.names())
                .map_err(into_io)?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        self.write_header()?;
        for column in self.layout.columns.iter() {
            column
                .cell(row)
                .render(&mut self.cell, self.layout.spreadsheet_safe);
            self.writer.write_field(&self.cell).map_err(into_io)?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(into_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_header()?;
        self.writer.flush()
    }
}

fn into_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Columns;
    use crate::row::{ErrorKind, Failure};

    fn layout(safe: bool) -> Layout {
        Layout {
            columns: Columns::new(false, &[]),
            spreadsheet_safe: safe,
            format: crate::output::Format::Csv,
            header: true,
            bom: false,
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
    fn header_alone_when_no_rows() {
        let buf = write(&[], true);
        let header = String::from_utf8(buf).unwrap();
        assert!(header.starts_with("line,url,status,latency_ms,ttfb_ms,bytes,"));
        assert_eq!(header.lines().count(), 1);
    }
}
