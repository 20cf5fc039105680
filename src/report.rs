//! Report: the progress bar while a run goes on and the summary at its end, both fed from the rows
//! the writer has written (never from the request path).
//!
//! The writer owns a [`Tally`] and records each row in it: plain counters and a latency histogram,
//! no locks. The only shared state is two relaxed atomic counters that the progress bar reads on
//! a timer, so drawing costs nothing per row.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::human;
use crate::input;
use crate::row::{ErrorKind, Row};
use crate::stop::StopReason;

/// Rows written so far, readable from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    rows: AtomicU64,
    errors: AtomicU64,
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
            self.by_class[if (1..=5).contains(&class) { class } else { 0 }] += 1;
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
            wall,
            stopped,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// The figures of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: u64,
    pub by_class: [u64; 6],
    pub by_error: BTreeMap<ErrorKind, u64>,
    /// Percentiles over rows that read a whole response; `None` when there were none.
    pub latency: Option<Latency>,
    pub wall: Duration,
    pub stopped: Option<StopReason>,
}

impl Summary {
    pub fn errors(&self) -> u64 {
        self.by_error.values().sum()
    }

    pub fn rows_per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.rows as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fetch: {} rows in {} ({:.1} URLs/s)",
            self.rows,
            human::duration(self.wall),
            self.rows_per_second()
        )?;
        let classes: Vec<String> = self
            .by_class
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(class, n)| match class {
                0 => format!("other {n}"),
                c => format!("{c}xx {n}"),
            })
            .collect();
        if !classes.is_empty() {
            writeln!(f, "  status:  {}", classes.join(" · "))?;
        }
        if !self.by_error.is_empty() {
            let errors: Vec<String> = self
                .by_error
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            writeln!(f, "  errors:  {}", errors.join(" · "))?;
        }
        if let Some(l) = &self.latency {
            writeln!(
                f,
                "  latency: p50 {} · p90 {} · p99 {} · max {}",
                human::duration(l.p50),
                human::duration(l.p90),
                human::duration(l.p99),
                human::duration(l.max)
            )?;
        }
        if let Some(reason) = self.stopped {
            writeln!(f, "  stopped early: {}", reason.describe())?;
        }
        Ok(())
    }
}

/// The progress bar on stderr. Hidden unless asked for; when shown it is redrawn from the
/// counters on a timer, so the request path never touches it.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
    done: Arc<AtomicBool>,
}

const TICK: Duration = Duration::from_millis(200);

impl Progress {
    /// Starts drawing when `visible`; with `files`, counts their rows in the background so the
    /// bar can show a total.
    pub fn start(visible: bool, counters: Arc<Counters>, files: Option<Vec<PathBuf>>) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if !visible {
            return Progress {
                bar: ProgressBar::hidden(),
                ticker: None,
                done,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(spinner_style());
        let total = Arc::new(AtomicU64::new(u64::MAX));
        if let Some(files) = files {
            count_in_background(files, Arc::clone(&total), Arc::clone(&done));
        }
        let ticker = tokio::spawn(tick(bar.clone(), counters, total, Arc::clone(&done)));
        Progress {
            bar,
            ticker: Some(ticker),
            done,
        }
    }

    /// Stops drawing and removes the bar, so the summary prints on a clean line.
    pub async fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker {
            ticker.abort();
            let _ = ticker.await;
        }
        self.bar.finish_and_clear();
    }
}

async fn tick(
    bar: ProgressBar,
    counters: Arc<Counters>,
    total: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) {
    let mut interval = tokio::time::interval(TICK);
    let mut has_length = false;
    while !done.load(Ordering::Relaxed) {
        interval.tick().await;
        let total = total.load(Ordering::Relaxed);
        if total != u64::MAX && !has_length {
            bar.set_length(total);
            bar.set_style(bar_style());
            has_length = true;
        }
        let rows = counters.rows.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let per_second = rows as f64 / bar.elapsed().as_secs_f64().max(0.001);
        // Message first: the position update is what triggers the (rate-limited) redraw.
        bar.set_message(format!(
            "{per_second:.0}/s · ok {} · errors {errors}",
            rows - errors
        ));
        bar.set_position(rows);
    }
}

fn count_in_background(files: Vec<PathBuf>, total: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    // A progress nicety: if the thread cannot start or a file cannot be re-read, the bar simply
    // stays a spinner.
    let _ = std::thread::Builder::new()
        .name("fetch-count".into())
        .spawn(move || {
            if let Ok(rows) = input::count_rows(&files, &done) {
                total.store(rows, Ordering::Relaxed);
            }
        });
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed} {pos} rows · {msg}")
        .expect("static template is valid")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed} [{wide_bar}] {pos}/{len} · {msg} · eta {eta}")
        .expect("static template is valid")
        .progress_chars("=> ")
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
