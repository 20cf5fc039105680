//! Output: one writer thread owns the destination and drains rows from a bounded channel.
//!
//! Writing happens on its own thread because file and pipe writes block. The channel is bounded,
//! so when the destination is slow, request tasks wait to hand over their rows (holding their
//! concurrency permits) and the whole pipeline slows down instead of queueing rows in memory.
//! The buffer is flushed whenever the channel runs dry, so a watcher (`tail -f`, a crashed run)
//! sees complete rows soon after they are done, without a write per row under load.

mod columns;
mod csv;
mod file;

pub use self::columns::{BUILT_IN, Cell, Column, Columns, is_built_in, is_formula_like};
pub use self::file::{Output, clobbers_input, partial_path};

/// How rows are laid out: which columns, and whether text cells are made spreadsheet-safe.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Columns,
    pub spreadsheet_safe: bool,
}

use std::io;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::report::Tally;
use crate::row::Row;
use crate::stop::{Stop, StopReason};

/// The writer's result: the tally of rows written, and whether writing failed.
pub(crate) type Written = (Tally, Result<(), Error>);

/// Starts the writer thread. The returned receiver yields once every sender of `rows` is gone
/// and the last row is flushed.
pub(crate) fn spawn_writer(
    output: Output,
    layout: Layout,
    rows: mpsc::Receiver<Row>,
    tally: Tally,
    stop: Stop,
) -> Result<oneshot::Receiver<Written>, Error> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("fetch-writer".into())
        .spawn(move || {
            let written = write_all(output, layout, rows, tally, &stop);
            let _ = done_tx.send(written);
        })
        .map_err(Error::Thread)?;
    Ok(done_rx)
}

fn write_all(
    output: Output,
    layout: Layout,
    mut rows: mpsc::Receiver<Row>,
    mut tally: Tally,
    stop: &Stop,
) -> Written {
    let destination = output.destination;
    let partial = destination.partial().map(PathBuf::from);
    let mut sink = csv::CsvSink::new(destination, layout);
    let result = drain(&mut sink, &mut rows, &mut tally)
        .and_then(|()| sink.into_inner())
        .and_then(|destination| destination.finish());
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader went away (`| head`): a normal way for a run to end.
            stop.trigger(StopReason::OutputClosed);
            Ok(())
        }
        Err(source) => {
            stop.trigger(StopReason::Failed);
            Err(Error::Write { source, partial })
        }
    };
    // Close before dropping so that request tasks blocked on sending see the channel closed.
    rows.close();
    (tally, result)
}

/// A destination for rows in some format.
pub(crate) trait Sink {
    fn write_row(&mut self, row: &Row) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

fn drain(
    sink: &mut impl Sink,
    rows: &mut mpsc::Receiver<Row>,
    tally: &mut Tally,
) -> io::Result<()> {
    sink.flush()?;
    loop {
        let row = match rows.try_recv() {
            Ok(row) => row,
            Err(mpsc::error::TryRecvError::Empty) => {
                sink.flush()?;
                match rows.blocking_recv() {
                    Some(row) => row,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        sink.write_row(&row)?;
        tally.record(&row);
    }
    sink.flush()
}
