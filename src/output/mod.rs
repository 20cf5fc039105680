//! Output: one writer thread owns the destination and drains rows from a bounded channel.
//!
//! Writing happens on its own thread because file and pipe writes block. The channel is bounded,
//! so when the destination is slow, request tasks wait to hand over their rows (holding their
//! concurrency permits) and the whole pipeline slows down instead of queueing rows in memory.
//! When the channel runs dry the writer lingers a moment before parking, so under load it wakes
//! once per batch of rows rather than once per row (a thread wake-up costs more than writing a
//! row). The buffer is flushed when the channel stays dry and at least every [`FLUSH_EVERY`], so
//! a watcher (`tail -f`, a crashed run) sees complete rows soon after they are done, without a
//! write per row under load.

mod columns;
mod csv;
mod file;
mod jsonl;
mod merge;
mod order;
mod resume;
mod writer;
mod xlsx;

pub use self::columns::{
    BUILT_IN, Cell, Column, ColumnSpec, Columns, Presence, is_built_in, is_formula_like,
};
pub use self::file::{Output, ReplacingFile, clobbers_input, follow_symlink, partial_path};
pub use self::merge::merge;
pub use self::order::OrderGate;
pub use self::resume::{Recorded, XLSX_RESUME, cell_key, resume};
pub use self::writer::RowWriter;
pub use self::xlsx::{CELL_CHARS, LINK_BUDGET, SHEET_ROWS};

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use self::file::Destination;
use self::order::Reorder;
use crate::error::Error;
use crate::report::{Summary, Tally};
use crate::row::Row;
use crate::stop::{Stop, StopReason};

/// How often rows are flushed even when they keep coming, so a crashed run loses at most this
/// much and `--resume` finds the rest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How long the writer waits for more rows when the channel runs dry before it flushes and
/// parks. Short enough to be invisible to a watcher, long enough that at thousands of rows a
/// second each wake-up finds a batch.
const LINGER: Duration = Duration::from_millis(2);

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Csv,
    /// JSON Lines: one object per row.
    Jsonl,
    /// A workbook for spreadsheets (typed cells, a summary sheet); written whole at the end.
    Xlsx,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

/// What the user chose of the output: the output stage's settings, from which (with the
/// columns the other stages' options add) the run's [`Layout`] is made.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// `--fields`: the columns to write, in order (a first name with `+` adds to the
    /// defaults); `None` for the defaults.
    pub fields: Option<Vec<String>>,
    /// Write cells as they are, without neutralising spreadsheet formulas.
    pub raw: bool,
    /// Write the CSV header row.
    pub header: bool,
    /// Start the CSV with a UTF-8 byte-order mark.
    pub bom: bool,
    /// `--ordered`: write rows in input order, with this reorder window.
    pub ordered: Option<usize>,
    /// Rows per sheet of a workbook, the header's included: Excel's [`SHEET_ROWS`]; smaller
    /// only to test the roll-over onto the next sheet.
    pub sheet_rows: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Csv,
            fields: None,
            raw: false,
            header: true,
            bom: false,
            ordered: None,
            sheet_rows: SHEET_ROWS,
        }
    }
}

impl Options {
    /// The layout these options give with the columns `spec` makes available.
    pub fn layout(&self, spec: &ColumnSpec) -> Result<Layout, String> {
        let columns = match &self.fields {
            Some(fields) => Columns::select(spec, fields)?,
            None => Columns::new(spec),
        };
        Ok(Layout {
            columns,
            spreadsheet_safe: !self.raw,
            format: self.format,
            header: self.header,
            bom: self.bom,
            sheet_rows: self.sheet_rows,
        })
    }
}

/// How rows are laid out: format, columns, and the CSV niceties.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Columns,
    /// Neutralise text cells a spreadsheet would run as formulas (CSV only).
    pub spreadsheet_safe: bool,
    pub format: Format,
    /// Write the CSV header row.
    pub header: bool,
    /// Start the CSV with a UTF-8 byte-order mark (for Excel).
    pub bom: bool,
    /// Rows per sheet of a workbook, the header's included.
    pub sheet_rows: u32,
}

/// The writer's result: the tally of rows written, and whether writing failed.
pub(crate) type Written = (Tally, Result<(), Error>);

/// A side feature that must stay in step with what is written (`--state`): it sees each row
/// just before it is written and after, and learns which rows have reached the destination, so
/// what it records never runs ahead of the output. Called on the writer's thread, never on the
/// event loop.
pub trait RowObserver: Send {
    /// Just before `row` is written: may fill in cells.
    fn before_write(&mut self, row: &mut Row);
    /// `row` has been written to the sink (perhaps only to its buffer).
    fn after_write(&mut self, row: Row);
    /// The first `rows` rows this run wrote have reached the destination (the kernel, for a
    /// file). An error stops the run.
    fn reached(&mut self, rows: u64) -> Result<(), Error>;
    /// Whether so many rows wait for [`RowObserver::reached`] that the writer should flush.
    fn wants_flush(&self) -> bool;
    /// Writing is over: `rows` rows reached the destination, and the run ended for `stopped`
    /// (`None`: the input was done). Called before a file output is moved into place.
    fn finish(self: Box<Self>, rows: u64, stopped: Option<StopReason>) -> Result<(), Error>;
}

/// Why writing stopped before its end.
enum Halt {
    Io(io::Error),
    /// The observer failed: its own error, already worded.
    Observer(Error),
}

impl From<io::Error> for Halt {
    fn from(e: io::Error) -> Self {
        Halt::Io(e)
    }
}

/// Starts the writer thread. The returned receiver yields once every sender of `rows` is gone
/// and the last row is flushed. With `order`, rows are written in input order. `started` is
/// when the run started: a workbook's summary sheet times the run by the same clock as the
/// summary the run returns.
#[allow(clippy::too_many_arguments)] // The stages it serves, each wired in by lib.rs.
pub(crate) fn spawn_writer(
    output: Output,
    started: Instant,
    layout: Layout,
    order: Option<Arc<OrderGate>>,
    rows: mpsc::Receiver<Vec<Row>>,
    tally: Tally,
    observer: Option<Box<dyn RowObserver>>,
    stop: Stop,
) -> Result<oneshot::Receiver<Written>, Error> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("fetch-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                reorder: order.map(Reorder::new),
                tally,
                observer,
                started,
            };
            let written = writer.write_all(output, layout, rows, &stop);
            let _ = done_tx.send((writer.tally, written));
        })
        .map_err(Error::Thread)?;
    Ok(done_rx)
}

/// The writer thread's own state besides the sink.
struct Writer {
    /// `--ordered`: rows held until their turn.
    reorder: Option<Reorder>,
    tally: Tally,
    observer: Option<Box<dyn RowObserver>>,
    /// When the run started, for a summary written into the output (a workbook's summary
    /// sheet).
    started: Instant,
}

impl Writer {
    fn write_all(
        &mut self,
        output: Output,
        mut layout: Layout,
        mut rows: mpsc::Receiver<Vec<Row>>,
        stop: &Stop,
    ) -> Result<(), Error> {
        if output.continues {
            layout.header = false;
            layout.bom = false;
        }
        let destination = output.destination;
        // A workbook reaches its file only whole, when it is saved: after a failure the
        // partial file is empty or a broken zip, so the error promises no rows in it.
        let partial = destination
            .partial()
            .filter(|_| layout.format != Format::Xlsx)
            .map(|(path, before)| (PathBuf::from(path), before));
        // Rows whose bytes reached the destination whole, for the message if writing fails.
        let mut rows_out = 0;
        let result = RowSink::new(destination, layout)
            .map_err(Halt::Io)
            .and_then(|mut sink| {
                let drained = self.drain(&mut sink, &mut rows);
                rows_out = sink.rows_written();
                drained?;
                let (started, tally) = (self.started, &self.tally);
                // No rows carried over: only a workbook has a summary here, and a workbook
                // cannot be resumed (refused by the command line and by `resume`).
                let destination =
                    sink.close(|| tally.summary(started.elapsed(), stop.reason(), None))?;
                // What the observer records covers the whole output before it is moved into
                // place: a complete file never stands beside a state that lacks its rows.
                self.finish_observer(rows_out, stop.reason())?;
                destination.finish().map_err(Halt::Io)
            });
        // After a failure the observer still records the rows that did reach the output.
        if let Err(halt) = &result {
            let why = match halt {
                Halt::Io(e) if e.kind() == io::ErrorKind::BrokenPipe => StopReason::OutputClosed,
                _ => StopReason::Failed,
            };
            let _ = self.finish_observer(rows_out, Some(why));
        }
        let result = match result {
            Ok(()) => Ok(()),
            Err(Halt::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                // The reader went away (`| head`): a normal way for a run to end.
                stop.trigger(StopReason::OutputClosed);
                Ok(())
            }
            Err(Halt::Io(source)) => {
                stop.trigger(StopReason::Failed);
                let rows = partial.as_ref().map(|(_, before)| before + rows_out);
                Err(Error::Write {
                    source,
                    partial: partial.map(|(path, _)| path),
                    rows,
                })
            }
            Err(Halt::Observer(error)) => {
                stop.trigger(StopReason::Failed);
                Err(error)
            }
        };
        // Close before dropping so that request tasks blocked on sending see the channel closed.
        rows.close();
        result
    }

    /// Writes rows as they come (or as their turn comes, with a reorder window), flushing
    /// whenever the channel runs dry and at least every [`FLUSH_EVERY`].
    fn drain(
        &mut self,
        sink: &mut RowSink,
        rows: &mut mpsc::Receiver<Vec<Row>>,
    ) -> Result<(), Halt> {
        sink.flush()?;
        let mut flushed = Instant::now();
        let mut ready = Vec::new();
        loop {
            let batch = match next_batch(rows) {
                Next::Batch(batch) => batch,
                Next::Closed => break,
                Next::Dry => {
                    sink.flush()?;
                    self.reached(sink)?;
                    flushed = Instant::now();
                    match rows.blocking_recv() {
                        Some(batch) => batch,
                        None => break,
                    }
                }
            };
            for row in batch {
                match self.reorder.as_mut() {
                    Some(reorder) => reorder.push(row, &mut ready),
                    None => ready.push(row),
                }
                for row in ready.drain(..) {
                    self.write_row(sink, row)?;
                }
            }
            let observer_waits = self.observer.as_ref().is_some_and(|o| o.wants_flush());
            if observer_waits || flushed.elapsed() >= FLUSH_EVERY {
                sink.flush()?;
                flushed = Instant::now();
            }
            self.reached(sink)?;
        }
        if let Some(mut reorder) = self.reorder.take() {
            for row in reorder.rest() {
                self.write_row(sink, row)?;
            }
        }
        sink.flush()?;
        self.reached(sink)
    }

    fn write_row(&mut self, sink: &mut RowSink, mut row: Row) -> Result<(), Halt> {
        if let Some(observer) = self.observer.as_mut() {
            observer.before_write(&mut row);
        }
        sink.write_row(&row)?;
        self.tally.record(&row);
        if let Some(observer) = self.observer.as_mut() {
            observer.after_write(row);
        }
        Ok(())
    }

    /// Tells the observer how many rows have reached the destination.
    fn reached(&mut self, sink: &RowSink) -> Result<(), Halt> {
        match self.observer.as_mut() {
            Some(observer) => observer
                .reached(sink.rows_written())
                .map_err(Halt::Observer),
            None => Ok(()),
        }
    }

    fn finish_observer(&mut self, rows: u64, stopped: Option<StopReason>) -> Result<(), Halt> {
        match self.observer.take() {
            Some(observer) => observer.finish(rows, stopped).map_err(Halt::Observer),
            None => Ok(()),
        }
    }
}

enum Next {
    Batch(Vec<Row>),
    /// Nothing came within [`LINGER`].
    Dry,
    Closed,
}

/// The next batch of rows if one is queued or comes within [`LINGER`].
fn next_batch(rows: &mut mpsc::Receiver<Vec<Row>>) -> Next {
    let queued = |rows: &mut mpsc::Receiver<Vec<Row>>| match rows.try_recv() {
        Ok(batch) => Some(Next::Batch(batch)),
        Err(mpsc::error::TryRecvError::Empty) => None,
        Err(mpsc::error::TryRecvError::Disconnected) => Some(Next::Closed),
    };
    if let Some(next) = queued(rows) {
        return next;
    }
    std::thread::sleep(LINGER);
    queued(rows).unwrap_or(Next::Dry)
}

/// Skips a UTF-8 byte-order mark at the start of `file` (a CSV written with `--bom`); says
/// whether there was one. Otherwise the file is read from its start.
pub(super) fn skip_bom(file: &mut std::fs::File) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 3];
    let read = file.read(&mut head)?;
    if read == 3 && head == crate::UTF8_BOM {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(false)
}

/// A destination for rows in some format.
pub(crate) trait Sink {
    fn write_row(&mut self, row: &Row) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// The sink of the configured format. One per run: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum RowSink {
    Csv(csv::CsvSink<Destination>),
    Jsonl(jsonl::JsonlSink<Destination>),
    Xlsx(xlsx::XlsxSink<Destination>),
}

impl RowSink {
    fn new(destination: Destination, layout: Layout) -> io::Result<RowSink> {
        Ok(match layout.format {
            Format::Csv => RowSink::Csv(csv::CsvSink::new(destination, layout)?),
            Format::Jsonl => RowSink::Jsonl(jsonl::JsonlSink::new(destination, layout)),
            Format::Xlsx => {
                // The sheets' temporary files go beside the output: the same disk it needs
                // room on anyway, not a /tmp that may be small or in memory.
                let beside = destination
                    .partial()
                    .and_then(|(partial, _)| partial.parent())
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .map(Path::to_path_buf);
                RowSink::Xlsx(xlsx::XlsxSink::new(destination, layout, beside.as_deref())?)
            }
        })
    }

    /// Writes what is buffered (for a workbook: the whole workbook, with a summary sheet made
    /// by `summary`) and gives the destination back.
    fn close(self, summary: impl FnOnce() -> Summary) -> io::Result<Destination> {
        match self {
            RowSink::Csv(sink) => sink.into_inner(),
            RowSink::Jsonl(sink) => sink.into_inner(),
            RowSink::Xlsx(sink) => sink.finish(Some(&summary())),
        }
    }

    /// Rows whose bytes were handed to the destination in whole writes (for a workbook, rows
    /// in its sheets: it reaches the destination only whole, at the end).
    fn rows_written(&self) -> u64 {
        match self {
            RowSink::Csv(sink) => sink.rows_written(),
            RowSink::Jsonl(sink) => sink.rows_written(),
            RowSink::Xlsx(sink) => sink.rows_written(),
        }
    }
}

impl Sink for RowSink {
    fn write_row(&mut self, row: &Row) -> io::Result<()> {
        match self {
            RowSink::Csv(sink) => sink.write_row(row),
            RowSink::Jsonl(sink) => sink.write_row(row),
            RowSink::Xlsx(sink) => sink.write_row(row),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            RowSink::Csv(sink) => sink.flush(),
            RowSink::Jsonl(sink) => sink.flush(),
            RowSink::Xlsx(sink) => sink.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Counters;
    use crate::row::{ErrorKind, Failure};

    /// Runs two rows through the writer thread into a partial file opened read-only, so that
    /// every write to it fails, and gives back the error.
    fn failed_write(format: Format) -> Error {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let partial = partial_path(&target);
        std::fs::write(&partial, b"").unwrap();
        let file = std::fs::File::open(&partial).unwrap();
        let output = Output {
            destination: Destination::file(file, partial, target, 0),
            recorded: None,
            carried: None,
            continues: false,
        };
        let layout = Options {
            format,
            ..Options::default()
        }
        .layout(&ColumnSpec::default())
        .unwrap();
        let (rows, received) = mpsc::channel(4);
        for line in 1..=2 {
            let failure = Failure::new(ErrorKind::InvalidUrl, "not a URL");
            rows.try_send(vec![Row::unrequested(line, format!("x{line}"), failure)])
                .unwrap();
        }
        drop(rows);
        let tally = Tally::new(Arc::new(Counters::default()));
        let done = spawn_writer(
            output,
            Instant::now(),
            layout,
            None,
            received,
            tally,
            None,
            Stop::new(),
        )
        .unwrap();
        let (_, written) = done.blocking_recv().unwrap();
        written.unwrap_err()
    }

    #[test]
    fn a_failed_workbook_promises_no_rows_in_its_partial_file() {
        let error = failed_write(Format::Xlsx);
        assert!(
            matches!(
                error,
                Error::Write {
                    partial: None,
                    rows: None,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.to_string().contains("partial"), "{error}");
        // The same failure for a CSV names the partial file and the rows it holds: the
        // workbook's silence is not for want of a failed write to a file.
        let error = failed_write(Format::Csv);
        assert!(
            matches!(
                &error,
                Error::Write {
                    partial: Some(_),
                    rows: Some(0),
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
