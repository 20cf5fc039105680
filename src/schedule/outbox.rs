//! Rows on their way to the writer thread, sent in batches.
//!
//! A finished request leaves its row here and then reports to the dispatcher, which sends what
//! has gathered as one message before it does anything else. Sent one by one, each row cost a
//! channel send (a semaphore permit, a slot, a wake-up of the writer thread) on the event loop
//! and a receive on the writer, more than the making of the row itself. Nothing waits here
//! unseen: every row put in is followed by a report that wakes the dispatcher (or, for its own
//! rows, by the dispatcher's next turn), and the dispatcher sends the rest before it returns.

use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::row::Row;

/// Rows in one message to the writer, at most. With the writer's queue of a few such
/// messages, this bounds the rows waiting for it as the old row-by-row queue did.
pub(crate) const BATCH: usize = 64;

pub(super) struct Outbox {
    gathered: Mutex<Vec<Row>>,
    writer: mpsc::Sender<Vec<Row>>,
}

impl Outbox {
    pub(super) fn new(writer: mpsc::Sender<Vec<Row>>) -> Outbox {
        Outbox {
            gathered: Mutex::new(Vec::with_capacity(BATCH)),
            writer,
        }
    }

    /// Leaves a row to be sent on the dispatcher's next turn.
    pub(super) fn put(&self, row: Row) {
        self.gathered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(row);
    }

    /// Sends the rows gathered so far, waiting while the writer's queue is full: that wait holds
    /// up the dispatcher, and so new requests, which is the back-pressure of a slow output.
    /// If the writer has gone, it has already reported why, and the rows have nowhere to go.
    pub(super) async fn send(&self) {
        let mut rows = {
            let mut gathered = self.gathered.lock().unwrap_or_else(PoisonError::into_inner);
            if gathered.is_empty() {
                return;
            }
            // Room for a whole batch at once: a vector grown row by row copies its rows again
            // at each step, which cost more than the channel sends this replaces.
            std::mem::replace(&mut *gathered, Vec::with_capacity(BATCH))
        };
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(BATCH));
            if self.writer.send(rows).await.is_err() {
                return;
            }
            rows = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{ErrorKind, Failure};

    fn row(line: u64) -> Row {
        Row::unrequested(
            line,
            format!("x{line}"),
            Failure::new(ErrorKind::InvalidUrl, "bad"),
        )
    }

    /// Rows go out in the order they were put, in messages of at most [`BATCH`], and only when
    /// sent.
    #[tokio::test]
    async fn rows_go_out_in_order_in_bounded_batches() {
        let (tx, mut rx) = mpsc::channel(16);
        let outbox = Outbox::new(tx);
        for line in 1..=150 {
            outbox.put(row(line));
        }
        assert!(rx.try_recv().is_err(), "nothing sent before send()");
        outbox.send().await;
        outbox.send().await; // Nothing left: no empty message.
        drop(outbox);
        let mut sizes = Vec::new();
        let mut lines = Vec::new();
        while let Some(batch) = rx.recv().await {
            sizes.push(batch.len());
            lines.extend(batch.iter().map(|r| r.line));
        }
        assert_eq!(sizes, [64, 64, 22]);
        assert_eq!(lines, (1..=150).collect::<Vec<_>>());
    }

    /// A writer that has gone takes nothing and holds nothing up.
    #[tokio::test]
    async fn a_closed_writer_does_not_block_the_dispatcher() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let outbox = Outbox::new(tx);
        for line in 1..=200 {
            outbox.put(row(line));
        }
        outbox.send().await;
    }
}
