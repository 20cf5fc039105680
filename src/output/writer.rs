//! Rows written in a [`Layout`] to any `Write`, outside a run: for library users who produce
//! rows themselves (converting, replaying), and for the fuzz targets that check that every value
//! survives the trip through CSV or JSON Lines. A run's writer thread uses the same CSV and
//! JSONL sinks, so what this writes is byte for byte what a run writes.

use std::io::{self, Write};

use super::csv::CsvSink;
use super::jsonl::JsonlSink;
use super::xlsx::XlsxSink;
use super::{Format, Layout, Sink};
use crate::row::Row;

/// Writes rows in the layout's format. The CSV header (and BOM) come first, even with no rows;
/// a workbook is written whole by [`RowWriter::finish`] (without a summary sheet: there is no
/// run to sum up). Call it: dropping the writer loses buffered rows silently.
pub struct RowWriter<W: Write + Send> {
    sink: Formatted<W>,
}

/// One per writer: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Formatted<W: Write + Send> {
    Csv(CsvSink<W>),
    Jsonl(JsonlSink<W>),
    Xlsx(XlsxSink<W>),
}

impl<W: Write + Send> RowWriter<W> {
    /// Starts writing to `writer`; with `layout.bom` the byte-order mark is written at once.
    /// A workbook's sheets are buffered in the system's temporary directory until `finish`.
    pub fn new(writer: W, layout: Layout) -> io::Result<RowWriter<W>> {
        let sink = match layout.format {
            Format::Csv => Formatted::Csv(CsvSink::new(writer, layout)?),
            Format::Jsonl => Formatted::Jsonl(JsonlSink::new(writer, layout)),
            Format::Xlsx => Formatted::Xlsx(XlsxSink::new(writer, layout, None)?),
        };
        Ok(RowWriter { sink })
    }

    pub fn write_row(&mut self, row: &Row) -> io::Result<()> {
        match &mut self.sink {
            Formatted::Csv(sink) => sink.write_row(row),
            Formatted::Jsonl(sink) => sink.write_row(row),
            Formatted::Xlsx(sink) => sink.write_row(row),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Formatted::Csv(sink) => sink.flush(),
            Formatted::Jsonl(sink) => sink.flush(),
            Formatted::Xlsx(sink) => sink.flush(),
        }
    }

    /// Writes what is buffered (the header at least) and gives the writer back.
    pub fn finish(self) -> io::Result<W> {
        match self.sink {
            Formatted::Csv(sink) => sink.into_inner(),
            Formatted::Jsonl(sink) => sink.into_inner(),
            Formatted::Xlsx(sink) => sink.finish(None),
        }
    }
}
