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

pub use self::progress::{Progress, RowCount};
pub(crate) use self::summary::bucket_label;
pub use self::summary::{ChangeCounts, Counts, Latency, Resumed, RobotsFigures, Summary};
use crate::row::{ChangeKind, ErrorKind, Row};
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
    /// `--robots`: robots.txt requests made, and what the origins' files turned out to be.
    pub robots_requests: AtomicU64,
    pub robots_found: AtomicU64,
    pub robots_missing: AtomicU64,
    pub robots_unreachable: AtomicU64,
}

/// The figures of a set of rows: this run's, or those an earlier run left in a resumed file.
#[derive(Debug, Clone)]
pub struct Totals {
    rows: u64,
    /// Index 0 holds statuses outside 100..=599; 1..=5 the classes 1xx..5xx.
    by_class: [u64; 6],
    by_error: BTreeMap<ErrorKind, u64>,
    /// Latency of every row that was requested, whatever ended it, in microseconds.
    latency_us: Histogram<u64>,
    /// The rows in `latency_us` that ended with an error, by kind: the summary says so.
    latency_errors: BTreeMap<ErrorKind, u64>,
    /// `--state`: rows by how they compared with the state.
    changes: ChangeCounts,
}

/// Latencies above this are recorded as this; no request should run for an hour.
const LATENCY_CEILING_US: u64 = 3_600_000_000;

impl Default for Totals {
    #[allow(clippy::expect_used)] // Constant bounds: valid, or no test would pass.
    fn default() -> Self {
        Totals {
            rows: 0,
            by_class: [0; 6],
            by_error: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, LATENCY_CEILING_US, 3)
                .expect("static histogram bounds are valid"),
            latency_errors: BTreeMap::new(),
            changes: ChangeCounts::default(),
        }
    }
}

impl Totals {
    /// Counts one row by what the summary looks at.
    pub fn record(
        &mut self,
        status: Option<u16>,
        error: Option<ErrorKind>,
        latency: Option<Duration>,
    ) {
        self.rows += 1;
        if let Some(kind) = error {
            *self.by_error.entry(kind).or_default() += 1;
        }
        if let Some(status) = status {
            let class = usize::from(status / 100);
            let class = if (1..=5).contains(&class) { class } else { 0 };
            if let Some(count) = self.by_class.get_mut(class) {
                *count += 1;
            }
        }
        if let Some(latency) = latency {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_us
                .saturating_record(us.clamp(1, LATENCY_CEILING_US));
            if let Some(kind) = error {
                *self.latency_errors.entry(kind).or_default() += 1;
            }
        }
    }

    /// Counts a row's `change` (`--state`).
    pub fn record_change(&mut self, kind: ChangeKind) {
        let c = &mut self.changes;
        *match kind {
            ChangeKind::New => &mut c.new,
            ChangeKind::Same => &mut c.same,
            ChangeKind::Changed => &mut c.changed,
            ChangeKind::NotModified => &mut c.not_modified,
        } += 1;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows with an error.
    pub fn errors(&self) -> u64 {
        self.by_error.values().sum()
    }

    pub fn changes(&self) -> ChangeCounts {
        self.changes
    }

    /// The summary of these rows alone, outside a run (merged files): no wall time, nothing
    /// skipped. With `changes`, it counts them by their `change`.
    pub fn summary(&self, changes: bool) -> Summary {
        let tally = Tally {
            counters: Arc::default(),
            totals: self.clone(),
            changes,
            robots: false,
        };
        tally.summary(Duration::ZERO, None, None)
    }

    fn add(&mut self, other: &Totals) {
        self.rows += other.rows;
        for (mine, theirs) in self.by_class.iter_mut().zip(other.by_class) {
            *mine += theirs;
        }
        for (kind, n) in &other.by_error {
            *self.by_error.entry(*kind).or_default() += n;
        }
        for (kind, n) in &other.latency_errors {
            *self.latency_errors.entry(*kind).or_default() += n;
        }
        self.changes.add(other.changes);
        // Same bounds on both sides, so this cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }

    fn counts(&self) -> Counts {
        Counts {
            rows: self.rows,
            by_class: self.by_class,
            by_error: self.by_error.clone(),
        }
    }
}

/// Everything the summary needs, accumulated row by row on the writer's thread.
#[derive(Debug, Clone)]
pub struct Tally {
    counters: Arc<Counters>,
    totals: Totals,
    /// `--state`: the summary counts rows by how they compared with the state.
    changes: bool,
    /// `--robots`: the summary says what robots.txt did.
    robots: bool,
}

impl Tally {
    pub fn new(counters: Arc<Counters>) -> Tally {
        Tally {
            counters,
            totals: Totals::default(),
            changes: false,
            robots: false,
        }
    }

    /// A tally whose summary says what robots.txt did (`--robots`).
    pub fn with_robots(mut self) -> Tally {
        self.robots = true;
        self
    }

    /// A tally whose summary counts rows by their `change` (`--state`).
    pub fn with_changes(mut self) -> Tally {
        self.changes = true;
        self
    }

    pub fn record(&mut self, row: &Row) {
        self.counters.rows.fetch_add(1, Ordering::Relaxed);
        if row.error.is_some() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.totals.record(row.status, row.error, row.latency);
        if let Some(change) = &row.change {
            self.totals.record_change(change.kind);
        }
    }

    /// Freezes the tally into the end-of-run summary. With `carried` (the rows a resumed run
    /// kept from earlier runs), the figures are the whole file's, and this run's are given too.
    pub fn summary(
        &self,
        wall: Duration,
        stopped: Option<StopReason>,
        carried: Option<&Totals>,
    ) -> Summary {
        let mut whole = self.totals.clone();
        if let Some(carried) = carried {
            whole.add(carried);
        }
        let hist = &whole.latency_us;
        let pct = |q: f64| Duration::from_micros(hist.value_at_quantile(q));
        let latency = (!hist.is_empty()).then(|| Latency {
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: Duration::from_micros(hist.max()),
            rows: hist.len(),
            failed: whole.latency_errors.clone(),
        });
        let counts = whole.counts();
        Summary {
            rows: counts.rows,
            by_class: counts.by_class,
            by_error: counts.by_error,
            latency,
            histogram: summary::buckets(hist),
            wall,
            stopped,
            skipped_recorded: self.counters.skipped_recorded.load(Ordering::Relaxed),
            skipped_duplicates: self.counters.skipped_duplicates.load(Ordering::Relaxed),
            resumed: carried.map(|c| Resumed {
                carried_over: c.rows,
                this_run: self.totals.counts(),
            }),
            changes: self.changes.then_some(whole.changes),
            robots: self.robots.then(|| {
                let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
                let c = &self.counters;
                RobotsFigures {
                    requests: count(&c.robots_requests),
                    found: count(&c.robots_found),
                    missing: count(&c.robots_missing),
                    unreachable: count(&c.robots_unreachable),
                    disallowed: whole.by_error.get(&ErrorKind::Robots).copied().unwrap_or(0),
                }
            }),
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
        let s = tally.summary(Duration::from_secs(2), None, None);
        assert_eq!(s.rows, 5);
        assert_eq!(s.by_class, [1, 0, 2, 0, 0, 1]);
        assert_eq!(s.errors(), 1);
        let l = s.latency.as_ref().unwrap();
        assert!(l.p50.as_millis() == 20 && l.max.as_millis() == 30, "{l:?}");
        assert_eq!(s.rows_per_second(), 2.5);
        let text = s.to_string();
        assert!(
            text.contains("2xx 2") && text.contains("timeout 1"),
            "{text}"
        );
    }

    /// Ten 1-second timeouts among 90 fast rows: the summary's max is the timeouts', and the
    /// line says they are in it.
    #[test]
    fn failed_rows_count_in_the_latency_and_say_so() {
        let mut tally = Tally::new(Arc::default());
        for _ in 0..90 {
            tally.record(&row(Some(200), Some(2), None));
        }
        for _ in 0..10 {
            tally.record(&row(None, Some(1000), Some(ErrorKind::Timeout)));
        }
        tally.record(&row(None, None, Some(ErrorKind::InvalidUrl)));
        let s = tally.summary(Duration::from_secs(1), None, None);
        let l = s.latency.as_ref().unwrap();
        assert_eq!(l.rows, 100);
        assert_eq!(l.max.as_millis(), 1000);
        assert_eq!(l.p99.as_millis(), 1000);
        let text = s.to_string();
        assert!(
            text.contains("max 1.0 s (100 requested rows, incl. timeout 10)"),
            "{text}"
        );
        let json = s.to_json();
        assert_eq!(json["latency_ms"]["rows"], 100);
        assert_eq!(json["latency_ms"]["failed_rows"]["timeout"], 10);
    }

    /// A resumed run's summary covers the whole file, and says what came from where.
    #[test]
    fn a_resumed_summary_covers_the_file() {
        let mut carried = Totals::default();
        for _ in 0..3 {
            carried.record(
                None,
                Some(ErrorKind::Connect),
                Some(Duration::from_millis(5)),
            );
        }
        carried.record(Some(200), None, Some(Duration::from_millis(5)));
        let mut tally = Tally::new(Arc::default());
        tally.record(&row(Some(200), Some(1), None));
        let s = tally.summary(Duration::from_secs(1), None, Some(&carried));
        assert_eq!(s.rows, 5);
        assert_eq!(s.failures(), 3);
        assert!((s.failure_share() - 0.6).abs() < 1e-9);
        assert_eq!(s.rows_this_run(), 1);
        let text = s.to_string();
        assert!(text.starts_with("fetch: 1 row in"), "{text}");
        assert!(text.contains("4 rows carried over"), "{text}");
        let json = s.to_json();
        assert_eq!(json["rows"], 5);
        assert_eq!(json["carried_over"], 4);
        assert_eq!(json["this_run"]["rows"], 1);
        assert_eq!(json["this_run"]["failure_share"], 0.0);
    }
}
