//! `--format xlsx`: a native workbook, for spreadsheets. Cells are typed (numbers as numbers,
//! times as date-times in UTC, `reused` as a boolean, text as strings, so nothing is ever a
//! formula), the header is bold, frozen and filterable, `url` and `final_url` are links, and a
//! `summary` sheet holds the run's figures with two charts.
//!
//! Rows are streamed with rust_xlsxwriter's constant-memory worksheets: each row goes to a
//! temporary file beside the output as soon as the next one starts, so memory does not depend
//! on the number of rows. The one exception is hyperlinks, which rust_xlsxwriter keeps until
//! the workbook is saved (about 1.4 KB each, measured): at most [`LINK_BUDGET`] are written, the
//! rest of the URLs are plain text. A sheet holds [`SHEET_ROWS`] rows; more continue on
//! `rows 2`, `rows 3`… with the same header. The workbook is written whole when the sink
//! closes, so a run's file is either complete or not there.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use rust_xlsxwriter::{Chart, ExcelDateTime, Format, Url, Workbook, Worksheet, XlsxError};
use serde_json::Value;

use super::columns::{Cell, Column, Columns};
use super::{Layout, Sink};
use crate::report::{Summary, bucket_label};
use crate::row::{Row, millis};

/// Rows a worksheet holds, the header's included: Excel's limit.
pub const SHEET_ROWS: u32 = 1_048_576;

/// Hyperlinks written per workbook (`url` and `final_url` of the first 2,500 rows, when both
/// are columns). Excel allows 65,530 per sheet, but rust_xlsxwriter holds each one in memory
/// until the workbook is saved: 65,530 of them took 96 MB here, 5,000 take about 7.
pub const LINK_BUDGET: usize = 5_000;

/// Excel's longest hyperlink, in characters.
const LINK_CHARS: usize = 2_079;

/// Excel's longest cell text, in characters.
pub const CELL_CHARS: usize = 32_767;

/// Zip compression: level 3 saves 1,000,000 rows in about 2.4 s (72 MB) where the default, 6,
/// takes 4.7 s (61 MB) and 1 takes 0.7 s (101 MB).
const ZIP_LEVEL: u8 = 3;

/// The name of the first data sheet; further ones are `rows 2`, `rows 3`…
const ROWS_SHEET: &str = "rows";
const SUMMARY_SHEET: &str = "summary";

/// Days from Excel's epoch (1899-12-30) to the Unix epoch.
const EXCEL_UNIX_EPOCH: f64 = 25_569.0;

struct Formats {
    header: Format,
    millis: Format,
    time: Format,
}

pub(crate) struct XlsxSink<W: Write + Send> {
    out: W,
    book: Workbook,
    columns: Columns,
    formats: Formats,
    /// Data sheets so far. They come first in the workbook (the summary sheet is added at the
    /// end), so the one being written is the last of them.
    sheets: usize,
    /// The next row of the sheet: 1 after the header.
    row: u32,
    /// Data rows per sheet.
    rows_per_sheet: u32,
    links_left: usize,
    rows_written: u64,
}

fn xlsx_error(e: XlsxError) -> io::Error {
    match e {
        XlsxError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl<W: Write + Send> XlsxSink<W> {
    /// A workbook whose data sheets hold `layout.sheet_rows` rows each (the header's
    /// included); temporary files go to `tempdir` (beside the output), or the system's.
    pub(crate) fn new(
        out: W,
        layout: Layout,
        tempdir: Option<&std::path::Path>,
    ) -> io::Result<Self> {
        let mut book = Workbook::new();
        if let Some(dir) = tempdir {
            book.set_tempdir(dir).map_err(xlsx_error)?;
        }
        book.set_zip_compression_level(ZIP_LEVEL);
        let mut sink = XlsxSink {
            out,
            book,
            columns: layout.columns,
            formats: Formats {
                header: Format::new().set_bold(),
                millis: Format::new().set_num_format("0.000"),
                time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
            },
            sheets: 0,
            row: 0,
            rows_per_sheet: layout.sheet_rows.clamp(2, SHEET_ROWS) - 1,
            links_left: LINK_BUDGET,
            rows_written: 0,
        };
        sink.start_sheet().map_err(xlsx_error)?;
        Ok(sink)
    }

    /// Rows written so far. A workbook reaches its file only when it is closed, so a row
    /// counts as out once it is in its sheet's temporary file (see `--state`).
    pub(crate) fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// Adds a data sheet with the header row: bold, frozen, filterable, columns sized.
    fn start_sheet(&mut self) -> Result<(), XlsxError> {
        self.sheets += 1;
        let name = match self.sheets {
            1 => ROWS_SHEET.to_owned(),
            n => format!("{ROWS_SHEET} {n}"),
        };
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        sheet.set_freeze_panes(1, 0)?;
        for (i, (column, name)) in self.columns.iter().zip(self.columns.names()).enumerate() {
            let col = col_num(i)?;
            sheet.set_column_width(col, width(column))?;
            sheet.write_string_with_format(0, col, name, &self.formats.header)?;
        }
        self.row = 1;
        Ok(())
    }

    /// The index in the workbook of the data sheet being written.
    fn sheet(&self) -> usize {
        self.sheets.saturating_sub(1)
    }

    /// Sets the filter over the sheet's rows, now that they are all written.
    fn end_sheet(&mut self) -> Result<(), XlsxError> {
        let last_col = col_num(self.columns.iter().count().saturating_sub(1))?;
        let last_row = self.row.saturating_sub(1);
        let sheet = self.book.worksheet_from_index(self.sheet())?;
        sheet.autofilter(0, 0, last_row, last_col)?;
        Ok(())
    }

    /// Writes the next row: `cell(i, column)` is its cell in the i-th column.
    pub(crate) fn write_cells<'a>(
        &mut self,
        cell: impl Fn(usize, Column) -> Cell<'a>,
    ) -> io::Result<()> {
        self.write(cell).map_err(xlsx_error)
    }

    fn write<'a>(&mut self, cell_at: impl Fn(usize, Column) -> Cell<'a>) -> Result<(), XlsxError> {
        if self.row > self.rows_per_sheet {
            self.end_sheet()?;
            self.start_sheet()?;
        }
        let at = self.row;
        let index = self.sheet();
        let XlsxSink {
            book,
            columns,
            formats,
            links_left,
            ..
        } = self;
        let sheet = book.worksheet_from_index(index)?;
        for (i, column) in columns.iter().enumerate() {
            let col = col_num(i)?;
            let cell = cell_at(i, column);
            if *links_left > 0
                && matches!(column, Column::Url | Column::FinalUrl)
                && let Cell::Text(text) = cell
                && link(sheet, at, col, text)
            {
                *links_left -= 1;
                continue;
            }
            put(sheet, at, col, cell, formats)?;
        }
        self.row += 1;
        self.rows_written += 1;
        Ok(())
    }

    /// Closes the last sheet, adds the summary sheet when there is a summary, and writes the
    /// workbook to the destination, which it gives back.
    pub(crate) fn finish(mut self, summary: Option<&Summary>) -> io::Result<W> {
        self.end_sheet().map_err(xlsx_error)?;
        if let Some(summary) = summary {
            summary_sheet(&mut self.book, summary).map_err(xlsx_error)?;
        }
        self.book
            .save_to_writer(&mut self.out)
            .map_err(xlsx_error)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Send> Sink for XlsxSink<W> {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        self.write(|_, column| column.cell(row)).map_err(xlsx_error)
    }

    /// Nothing to flush: the workbook is written whole by [`XlsxSink::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn col_num(i: usize) -> Result<u16, XlsxError> {
    u16::try_from(i).map_err(|_| XlsxError::RowColumnLimitError)
}

/// Writes one typed cell; an empty cell stays empty.
fn put(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    cell: Cell<'_>,
    formats: &Formats,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Empty => {}
        Cell::Text(text) | Cell::Word(text) => {
            sheet.write_string(row, col, cut(text))?;
        }
        Cell::Count(n) => {
            sheet.write_number(row, col, n as f64)?;
        }
        Cell::Int(n) => {
            sheet.write_number(row, col, n as f64)?;
        }
        Cell::Millis(d) => {
            sheet.write_number_with_format(row, col, millis(d), &formats.millis)?;
        }
        Cell::Flag(b) => {
            sheet.write_boolean(row, col, b)?;
        }
        Cell::Ip(ip) => {
            sheet.write_string(row, col, ip.to_string())?;
        }
        Cell::Time(t) => match excel_time(t) {
            Some(time) => {
                sheet.write_datetime_with_format(row, col, time, &formats.time)?;
            }
            // Outside what a spreadsheet's dates hold (before 1900, after 9999): as text.
            None => {
                sheet.write_string(row, col, crate::row::timestamp(t))?;
            }
        },
    }
    Ok(())
}

/// Makes the text cell at `row`, `col` a link to it, when it is an http(s) URL a spreadsheet
/// takes; the cell keeps its text. A password shown as `***` is left out of the link target.
fn link(sheet: &mut Worksheet, row: u32, col: u16, text: &str) -> bool {
    let Ok(mut url) = url::Url::parse(text) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let _ = url.set_password(None);
    let _ = url.set_username("");
    let target = url.as_str();
    if target.chars().count() > LINK_CHARS || text.chars().count() > LINK_CHARS {
        return false;
    }
    sheet
        .write_url_with_text(row, col, Url::new(target), text)
        .is_ok()
}

/// Text cut to what a cell holds, with `…` when it was longer.
fn cut(text: &str) -> Cow<'_, str> {
    if text.len() <= CELL_CHARS || text.chars().count() <= CELL_CHARS {
        return Cow::Borrowed(text);
    }
    let mut kept: String = text.chars().take(CELL_CHARS - 1).collect();
    kept.push('…');
    Cow::Owned(kept)
}

/// A time as a spreadsheet date-time (days since 1899-12-30, UTC), to the millisecond.
fn excel_time(t: SystemTime) -> Option<ExcelDateTime> {
    let unix_ms = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as f64,
        Err(before) => -(before.duration().as_millis() as f64),
    };
    let days = unix_ms / 86_400_000.0 + EXCEL_UNIX_EPOCH;
    ExcelDateTime::from_serial_datetime(days).ok()
}

/// Column widths, in characters, by what the column holds.
fn width(column: Column) -> f64 {
    match column {
        Column::Url | Column::FinalUrl | Column::Location => 50.0,
        Column::Title | Column::ErrorDetail => 40.0,
        Column::CertSubject | Column::CertIssuer => 30.0,
        Column::ContentType => 24.0,
        Column::StartedAt | Column::LastChanged | Column::CertNotAfter => 23.0,
        Column::BodySha256 | Column::ChangedFields | Column::Header(_) | Column::Value(_) => 20.0,
        Column::Error | Column::RemoteIp | Column::Change => 14.0,
        _ => 11.0,
    }
}

/// The `summary` sheet: every figure of `--summary-json`, the status classes and the latency
/// histogram as small tables, and a chart of each.
fn summary_sheet(book: &mut Workbook, summary: &Summary) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet();
    sheet.set_name(SUMMARY_SHEET)?;
    sheet.set_column_width(0, 34)?;
    sheet.set_column_width(1, 16)?;
    sheet.set_column_width(3, 14)?;
    sheet.set_column_width(6, 14)?;
    sheet.write_string_with_format(0, 0, "fetch summary", &bold)?;
    sheet.write_string_with_format(1, 0, "figure", &bold)?;
    sheet.write_string_with_format(1, 1, "value", &bold)?;
    let mut figures = Vec::new();
    let mut json = summary.to_json();
    if summary.wall.is_zero()
        && let Some(object) = json.as_object_mut()
    {
        // Rows merged from files, not a run: no time to speak of.
        object.remove("wall_seconds");
        object.remove("urls_per_second");
    }
    for key in FIGURE_ORDER {
        if let Some(value) = json.get(key) {
            flatten(key, value, &mut figures);
        }
    }
    if let Value::Object(all) = &json {
        for (key, value) in all
            .iter()
            .filter(|(k, _)| !FIGURE_ORDER.contains(&k.as_str()))
        {
            flatten(key, value, &mut figures);
        }
    }
    for (i, (name, value)) in figures.iter().enumerate() {
        let row = u32::try_from(i + 2).map_err(|_| XlsxError::RowColumnLimitError)?;
        sheet.write_string(row, 0, name.as_str())?;
        match value {
            Value::Number(n) => {
                sheet.write_number(row, 1, n.as_f64().unwrap_or_default())?;
            }
            Value::String(s) => {
                sheet.write_string(row, 1, s.as_str())?;
            }
            Value::Bool(b) => {
                sheet.write_boolean(row, 1, *b)?;
            }
            _ => {}
        }
    }

    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
    sheet.write_string_with_format(1, 3, "status class", &bold)?;
    sheet.write_string_with_format(1, 4, "rows", &bold)?;
    for (i, class) in classes.iter().enumerate() {
        let row = 2 + i as u32;
        let index = if *class == "other" { 0 } else { i + 1 };
        sheet.write_string(row, 3, *class)?;
        sheet.write_number(
            row,
            4,
            summary.by_class.get(index).copied().unwrap_or(0) as f64,
        )?;
    }
    let last_class = 1 + classes.len() as u32;
    sheet.write_string_with_format(1, 6, "latency", &bold)?;
    sheet.write_string_with_format(1, 7, "rows", &bold)?;
    for (i, (upper, rows)) in summary.histogram.iter().enumerate() {
        let row = 2 + u32::try_from(i).map_err(|_| XlsxError::RowColumnLimitError)?;
        sheet.write_string(row, 6, bucket_label(*upper))?;
        sheet.write_number(row, 7, *rows as f64)?;
    }

    let mut status = Chart::new_column();
    status.title().set_name("Rows by status class");
    status.legend().set_hidden();
    status
        .add_series()
        .set_name("rows")
        .set_categories((SUMMARY_SHEET, 2, 3, last_class, 3))
        .set_values((SUMMARY_SHEET, 2, 4, last_class, 4));
    sheet.insert_chart(10, 3, &status)?;
    if !summary.histogram.is_empty() {
        let last = 1 + u32::try_from(summary.histogram.len()).unwrap_or(1);
        let mut latency = Chart::new_column();
        latency.title().set_name("Rows by latency");
        latency.legend().set_hidden();
        latency
            .add_series()
            .set_name("rows")
            .set_categories((SUMMARY_SHEET, 2, 6, last, 6))
            .set_values((SUMMARY_SHEET, 2, 7, last, 7));
        sheet.insert_chart(27, 3, &latency)?;
    }
    Ok(())
}

/// The summary's figures in the order a reader wants them: how much, how fast, what came back.
const FIGURE_ORDER: [&str; 13] = [
    "rows",
    "wall_seconds",
    "urls_per_second",
    "stopped",
    "status_classes",
    "errors",
    "error_rows",
    "failure_share",
    "latency_ms",
    "changes",
    "skipped",
    "carried_over",
    "this_run",
];

/// The JSON summary as (dotted name, value) pairs; arrays (the histogram, in a table of its
/// own) are left out.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, out);
            }
        }
        Value::Array(_) => {}
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_text_is_cut_to_a_cell() {
        let long = "é".repeat(CELL_CHARS + 10);
        let kept = cut(&long);
        assert_eq!(kept.chars().count(), CELL_CHARS);
        assert!(kept.ends_with('…'));
        let fits = "x".repeat(CELL_CHARS);
        assert_eq!(cut(&fits), fits);
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn times_are_excel_serial_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_900_000_123);
        let serial = excel_time(t).unwrap().to_excel();
        // 2025-12-05T02:00:00.123Z
        let expected = 1_764_900_000_123.0 / 86_400_000.0 + EXCEL_UNIX_EPOCH;
        assert!((serial - expected).abs() < 1e-9, "{serial}");
        assert!(excel_time(UNIX_EPOCH - Duration::from_secs(200 * 365 * 86_400)).is_none());
    }

    #[test]
    fn the_summary_flattens_to_named_figures() {
        let json = serde_json::json!({"latency_ms": {"p50": 1.5, "failed": {}},
            "latency_histogram": [{"below_ms": 1}], "stopped": null});
        let mut out = Vec::new();
        for (key, value) in json.as_object().unwrap() {
            flatten(key, value, &mut out);
        }
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["latency_ms.p50", "stopped"]);
    }
}
