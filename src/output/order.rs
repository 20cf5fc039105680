//! `--ordered`: rows written in input order through a bounded reorder window.
//!
//! Every row carries the sequence number of its input line (counting only lines that get rows),
//! and rows arrive in completion order. A row that comes early waits here until the rows before
//! it are written. The window bounds how far ahead of the oldest unwritten row the pipeline may
//! read at all (the dispatcher checks [`OrderGate`]), so at most `window` rows ever wait here: a
//! slow URL holds the window (and reading) until it finishes or times out, but memory never
//! grows past it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::row::Row;

/// Shared by the writer (which advances it) and the dispatcher (which reads no further than
/// `window` past it).
#[derive(Debug)]
pub struct OrderGate {
    pub window: usize,
    /// Sequence number of the oldest row not written yet.
    next: AtomicU64,
    /// Wakes a dispatcher waiting for the window to move.
    moved: Notify,
}

impl OrderGate {
    pub fn new(window: usize) -> Arc<OrderGate> {
        Arc::new(OrderGate {
            window: window.max(1),
            next: AtomicU64::new(0),
            moved: Notify::new(),
        })
    }

    /// Resolves once the window has moved since the last call (or at once if it has).
    pub async fn moved(&self) {
        self.moved.notified().await;
    }

    /// Whether the line with sequence number `seq` may be read now.
    pub fn admits(&self, seq: u64) -> bool {
        seq < self.next.load(Ordering::Acquire) + self.window as u64
    }
}

pub(crate) struct Reorder {
    gate: Arc<OrderGate>,
    next: u64,
    waiting: VecDeque<Option<Row>>,
}

impl Reorder {
    pub(crate) fn new(gate: Arc<OrderGate>) -> Reorder {
        Reorder {
            next: gate.next.load(Ordering::Acquire),
            gate,
            waiting: VecDeque::new(),
        }
    }

    /// Takes a row; returns the rows now ready to write, in order.
    pub(crate) fn push(&mut self, row: Row, ready: &mut Vec<Row>) {
        let Some(offset) = row.seq.checked_sub(self.next) else {
            ready.push(row); // Older than the window: can only be a bug; never lose it.
            return;
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if offset >= self.waiting.len() {
            self.waiting.resize_with(offset.saturating_add(1), || None);
        }
        match self.waiting.get_mut(offset) {
            Some(slot) => *slot = Some(row),
            None => ready.push(row), // Just made room: cannot happen; never lose a row.
        }
        while let Some(Some(_)) = self.waiting.front() {
            if let Some(Some(row)) = self.waiting.pop_front() {
                ready.push(row);
            }
            self.next += 1;
        }
        if self.gate.next.swap(self.next, Ordering::AcqRel) != self.next {
            self.gate.moved.notify_one();
        }
    }

    /// The rows still waiting (the run stopped, leaving gaps), in order.
    pub(crate) fn rest(&mut self) -> impl Iterator<Item = Row> + '_ {
        self.waiting.drain(..).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64) -> Row {
        Row {
            seq,
            line: seq + 1,
            ..Row::default()
        }
    }

    #[test]
    fn releases_rows_in_order() {
        let gate = OrderGate::new(10);
        let mut order = Reorder::new(Arc::clone(&gate));
        let mut ready = Vec::new();
        for seq in [2, 0, 3, 1, 5] {
            order.push(row(seq), &mut ready);
        }
        let seqs: Vec<u64> = ready.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert!(gate.admits(13) && !gate.admits(14));
        let rest: Vec<u64> = order.rest().map(|r| r.seq).collect();
        assert_eq!(rest, [5]);
    }
}
