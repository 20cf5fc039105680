//! Report: the progress bar while a run goes on and the summary at its end, both fed from the rows
//! the writer has written (never from the request path).
//!
//! The writer owns a [`Tally`] and records each row in it: plain counters and a latency histogram,
//! no locks. The only shared state is a few relaxed atomic counters that the progress bar reads on
//! a timer, so drawing costs nothing per row.

mod progress;
mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use self::progress::Progress;
pub use self::summary::{Latency, Summary};
use crate::row::{ErrorKind, Row};
use crate::stop::StopReason;

/// Counts readable from any thread: rows written so far (by the writer), lines left out (by the
/// input reader).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) rows: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// `--resume`: lines recorded by an earlier run.
    pub skipped_recorded: AtomicU64,
    /// `--dedupe`: repeats of a URL already seen.
    pub skipped_duplicates: AtomicU64,
}

/// Everything the summary needs, accumulated row by row on the writer's thread.
#[derive(Debug, Clone)]
pub struct Tally {
    counters: Arc<Counters>,
    rows: u64,
    /// Index 0 holds statuses outside 100..=599; 1..=5 the classes 1xx..5xx.
    by_class: [u64; 6],
    by_error: BTreeMap<ErrorKind, u64>,
    /// Latency of rows that read a whole response, in microseconds.
    latency_us: Histogram<u64>,
}

/// Latencies above this are recorded as this; no request should run for an hour.
const LATENCY_CEILING_US: u64 = 3_600_000_000;

impl Tally {
    #[allow(clippy::expect_used)] // Constant bounds: valid, or no test would pass.
    pub fn new(counters: Arc<Counters>) -> Tally {
        Tally {
            counters,
            rows: 0,
            by_class: [0; 6],
            by_error: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, LATENCY_CEILING_US, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    pub fn record(&mut self, row: &Row) {
        self.rows += 1;
        self.counters.rows.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = row.error {
            *self.by_error.entry(kind).or_default() += 1;
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(status) = row.status {
            let class = usize::from(status / 100);
            let class = if (1..=5).contains(&class) { class } else { 0 };
            if let Some(count) = self.by_class.get_mut(class) {
                *count += 1;
            }
        }
        if let Some(latency) = row.latency {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_us
                .saturating_record(us.clamp(1, LATENCY_CEILING_US));
        }
    }

    /// Freezes the tally into the end-of-run summary.
    pub fn summary(&self, wall: Duration, stopped: Option<StopReason>) -> Summary {
        let pct = |q: f64| Duration::from_micros(self.latency_us.value_at_quantile(q));
        let latency = (!self.latency_us.is_empty()).then(|| Latency {
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: Duration::from_micros(self.latency_us.max()),
        });
        Summary {
            rows: self.rows,
            by_class: self.by_class,
            by_error: self.by_error.clone(),
            latency,
            histogram: summary::buckets(&self.latency_us),
            wall,
            stopped,
            skipped_recorded: self.counters.skipped_recorded.load(Ordering::Relaxed),
            skipped_duplicates: self.counters.skipped_duplicates.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Failure;

    fn row(status: Option<u16>, latency_ms: Option<u64>, error: Option<ErrorKind>) -> Row {
        let mut row = Row::unrequested(1, "u".into(), Failure::new(ErrorKind::Dns, ""));
        row.status = status;
        row.latency = latency_ms.map(Duration::from_millis);
        row.error = error;
        row
    }

    #[test]
    fn tallies_classes_errors_and_latency() {
        let mut tally = Tally::new(Arc::default());
        tally.record(&row(Some(200), Some(10), None));
        tally.record(&row(Some(204), Some(30), None));
        tally.record(&row(Some(503), Some(20), None));
        tally.record(&row(None, None, Some(ErrorKind::Timeout)));
        tally.record(&row(Some(999), None, None));
        let s = tally.summary(Duration::from_secs(2), None);
        assert_eq!(s.rows, 5);
        assert_eq!(s.by_class, [1, 0, 2, 0, 0, 1]);
        assert_eq!(s.errors(), 1);
        let l = s.latency.unwrap();
        assert!(l.p50.as_millis() == 20 && l.max.as_millis() == 30, "{l:?}");
        assert_eq!(s.rows_per_second(), 2.5);
        let text = s.to_string();
        assert!(
            text.contains("2xx 2") && text.contains("timeout 1"),
            "{text}"
        );
    }
}
