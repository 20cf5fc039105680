//! CSV rows through the csv crate, which quotes commas, quotes and newlines so every value
//! round-trips. The header is written up front, so even a run with no rows leaves a valid file.

use std::io::{self, Write};

use crate::row::{COLUMNS, Row};

use super::Sink;

pub(crate) struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    header_pending: bool,
}

impl<W: Write> CsvSink<W> {
    pub(crate) fn new(sink: W) -> Self {
        CsvSink {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .buffer_capacity(64 * 1024)
                .from_writer(sink),
            header_pending: true,
        }
    }

    /// Flushes and gives back the destination.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.write_header()?;
        self.writer.into_inner().map_err(|e| e.into_error())
    }

    fn write_header(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.header_pending) {
            self.writer.write_record(COLUMNS).map_err(into_io)?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        self.write_header()?;
        self.writer.serialize(row).map_err(into_io)
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
    use crate::row::{ErrorKind, Failure};

    #[test]
    fn awkward_values_round_trip() {
        let mut row = Row::unrequested(
            7,
            "http://a.test/?q=\"x\",y".into(),
            Failure::new(ErrorKind::Protocol, "line one\nline two, \"quoted\""),
        );
        row.content_type = Some("text/html; charset=\"utf-8\"".into());
        let mut buf = Vec::new();
        {
            let mut sink = CsvSink::new(&mut buf);
            sink.write_row(&row).unwrap();
            sink.flush().unwrap();
        }
        let mut reader = csv::Reader::from_reader(&buf[..]);
        assert_eq!(reader.headers().unwrap(), COLUMNS.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0][1], row.url);
        assert_eq!(&records[0][6], "text/html; charset=\"utf-8\"");
        assert_eq!(&records[0][11], "protocol");
        assert_eq!(&records[0][12], "line one\nline two, \"quoted\"");
    }

    #[test]
    fn header_alone_when_no_rows() {
        let mut buf = Vec::new();
        CsvSink::new(&mut buf).flush().unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            format!("{}\n", COLUMNS.join(","))
        );
    }
}
