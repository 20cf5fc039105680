//! The end-of-run summary: for people on stderr (with a small latency histogram), and as JSON
//! for monitoring (`--summary-json`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::human;
use crate::row::ErrorKind;
use crate::stop::StopReason;

/// Latency percentiles over every requested row, whatever ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Rows counted.
    pub rows: u64,
    /// Of those, rows that ended with an error (a timeout at the time it took), by kind.
    pub failed: BTreeMap<ErrorKind, u64>,
}

/// Row counts of part of a resumed file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub rows: u64,
    /// Index 0 holds statuses outside 100..=599; 1..=5 the classes 1xx..5xx.
    pub by_class: [u64; 6],
    pub by_error: BTreeMap<ErrorKind, u64>,
}

impl Counts {
    /// Rows with an error or a 5xx status.
    pub fn failures(&self) -> u64 {
        self.by_error.values().sum::<u64>() + self.by_class[5]
    }

    fn json(&self) -> Value {
        json!({
            "rows": self.rows,
            "status_classes": classes_json(&self.by_class),
            "errors": errors_json(&self.by_error),
            "failure_share": share(self.failures(), self.rows),
        })
    }
}

/// `--state`: rows by how they compared with what the state knew of their URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeCounts {
    pub new: u64,
    pub same: u64,
    pub changed: u64,
    pub not_modified: u64,
}

impl ChangeCounts {
    pub(super) fn add(&mut self, other: ChangeCounts) {
        self.new += other.new;
        self.same += other.same;
        self.changed += other.changed;
        self.not_modified += other.not_modified;
    }

    fn json(&self) -> Value {
        json!({
            "new": self.new,
            "same": self.same,
            "changed": self.changed,
            "not_modified": self.not_modified,
        })
    }
}

/// `--robots`: what robots.txt did in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RobotsFigures {
    /// robots.txt requests made (retries and redirect hops included).
    pub requests: u64,
    /// Origins whose robots.txt was found and obeyed.
    pub found: u64,
    /// Origins without one (4xx, too many redirects): everything allowed.
    pub missing: u64,
    /// Origins whose robots.txt could not be had: everything disallowed for now.
    pub unreachable: u64,
    /// Rows refused (error `robots`).
    pub disallowed: u64,
}

impl RobotsFigures {
    fn json(&self) -> Value {
        json!({
            "requests": self.requests,
            "found": self.found,
            "missing": self.missing,
            "unreachable": self.unreachable,
            "disallowed_rows": self.disallowed,
        })
    }
}

/// A resumed run: how many rows of the file earlier runs left, and what this run added.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    pub carried_over: u64,
    pub this_run: Counts,
}

/// The figures of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: u64,
    /// Index 0 holds statuses outside 100..=599; 1..=5 the classes 1xx..5xx.
    pub by_class: [u64; 6],
    pub by_error: BTreeMap<ErrorKind, u64>,
    /// Percentiles over every requested row; `None` when there were none.
    pub latency: Option<Latency>,
    /// Latency counts per bucket: (upper bound, rows), buckets from the first to the last used.
    pub histogram: Vec<(Duration, u64)>,
    pub wall: Duration,
    pub stopped: Option<StopReason>,
    /// Lines left out because an earlier run recorded them (`--resume`).
    pub skipped_recorded: u64,
    /// Lines left out as repeats of a URL (`--dedupe`).
    pub skipped_duplicates: u64,
    /// `--resume`: the figures above are the whole file's; this says what came from where.
    pub resumed: Option<Resumed>,
    /// `--state`: rows by how they compared with the state (the whole file's, with `--resume`).
    pub changes: Option<ChangeCounts>,
    /// `--robots`: what robots.txt did.
    pub robots: Option<RobotsFigures>,
}

/// Upper bounds of the histogram's buckets: 1-2-5 steps, as on a log-scale axis.
const BUCKETS_MS: [u64; 16] = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    60_000,
    u64::MAX,
];

/// Counts per bucket, trimmed to the buckets between the first and last one used.
pub(super) fn buckets(latency_us: &Histogram<u64>) -> Vec<(Duration, u64)> {
    if latency_us.is_empty() {
        return Vec::new();
    }
    let mut lower = 0u64;
    let counts: Vec<(Duration, u64)> = BUCKETS_MS
        .iter()
        .map(|&upper_ms| {
            let upper_us = upper_ms.saturating_mul(1000);
            let below = |us: u64| latency_us.count_between(0, us.saturating_sub(1));
            let count = if upper_ms == u64::MAX {
                latency_us.len() - below(lower)
            } else {
                below(upper_us) - below(lower)
            };
            lower = upper_us;
            (Duration::from_millis(upper_ms.min(u64::MAX / 2)), count)
        })
        .collect();
    let first = counts.iter().position(|(_, n)| *n > 0).unwrap_or(0);
    let last = counts.iter().rposition(|(_, n)| *n > 0).unwrap_or(0);
    counts
        .get(first..=last)
        .map(<[_]>::to_vec)
        .unwrap_or_default()
}

impl Summary {
    pub fn errors(&self) -> u64 {
        self.by_error.values().sum()
    }

    /// Rows with an error or a 5xx status: what `--fail-on-errors` measures.
    pub fn failures(&self) -> u64 {
        self.errors() + self.by_class[5]
    }

    /// [`Summary::failures`] as a share of rows (0 for no rows).
    pub fn failure_share(&self) -> f64 {
        share(self.failures(), self.rows)
    }

    /// Rows this run wrote (without those a resumed run carried over).
    pub fn rows_this_run(&self) -> u64 {
        self.resumed
            .as_ref()
            .map_or(self.rows, |resumed| resumed.this_run.rows)
    }

    pub fn rows_per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.rows_this_run() as f64 / secs
        } else {
            0.0
        }
    }

    /// The same figures as the text summary, for machines.
    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        json!({
            "rows": self.rows,
            "status_classes": classes_json(&self.by_class),
            "errors": errors_json(&self.by_error),
            "error_rows": self.errors(),
            "failure_share": self.failure_share(),
            "latency_ms": self.latency.as_ref().map(|l| json!({
                "p50": ms(l.p50), "p90": ms(l.p90), "p99": ms(l.p99), "max": ms(l.max),
                "rows": l.rows,
                "failed_rows": errors_json(&l.failed),
            })),
            "latency_histogram": self.histogram.iter().map(|(upper, n)| json!({
                "below_ms": if *upper >= Duration::from_secs(3600) { Value::Null } else { json!(ms(*upper)) },
                "rows": n,
            })).collect::<Vec<_>>(),
            "wall_seconds": self.wall.as_secs_f64(),
            "urls_per_second": self.rows_per_second(),
            "stopped": self.stopped.map(StopReason::name),
            "skipped": {
                "recorded": self.skipped_recorded,
                "duplicates": self.skipped_duplicates,
            },
            "carried_over": self.resumed.as_ref().map(|r| r.carried_over),
            "this_run": self.resumed.as_ref().map(|r| r.this_run.json()),
            "changes": self.changes.as_ref().map(ChangeCounts::json),
            "robots": self.robots.as_ref().map(RobotsFigures::json),
        })
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn classes_json(by_class: &[u64; 6]) -> Value {
    let classes: serde_json::Map<String, Value> = by_class
        .iter()
        .enumerate()
        .map(|(class, &n)| {
            let name = if class == 0 {
                "other".to_owned()
            } else {
                format!("{class}xx")
            };
            (name, json!(n))
        })
        .collect();
    Value::Object(classes)
}

fn errors_json(by_error: &BTreeMap<ErrorKind, u64>) -> Value {
    let errors: serde_json::Map<String, Value> = by_error
        .iter()
        .map(|(kind, &n)| (kind.as_str().to_owned(), json!(n)))
        .collect();
    Value::Object(errors)
}

/// Widest bar in the histogram, in characters.
const BAR_WIDTH: u64 = 30;

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this_run = self.rows_this_run();
        writeln!(
            f,
            "fetch: {} in {} ({:.1} URLs/s)",
            human::count(this_run, "row"),
            human::duration(self.wall),
            self.rows_per_second()
        )?;
        if let Some(resumed) = &self.resumed {
            writeln!(
                f,
                "  resumed: {} carried over from earlier runs; the file holds {}, counted below",
                human::count(resumed.carried_over, "row"),
                human::count(self.rows, "row"),
            )?;
        }
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
                "  latency: p50 {} · p90 {} · p99 {} · max {} ({})",
                human::duration(l.p50),
                human::duration(l.p90),
                human::duration(l.p99),
                human::duration(l.max),
                coverage(l)
            )?;
            self.draw_histogram(f)?;
        }
        if let Some(c) = &self.changes {
            writeln!(
                f,
                "  changes: {} changed · {} same · {} not modified · {} new",
                c.changed, c.same, c.not_modified, c.new
            )?;
        }
        if let Some(r) = &self.robots {
            writeln!(
                f,
                "  robots:  {} · {} found · {} missing · {} unreachable · {} disallowed",
                human::count(r.requests, "robots.txt request"),
                r.found,
                r.missing,
                r.unreachable,
                human::count(r.disallowed, "row"),
            )?;
        }
        if self.skipped_recorded > 0 || self.skipped_duplicates > 0 {
            writeln!(
                f,
                "  skipped: {} already recorded · {} duplicate URLs",
                self.skipped_recorded, self.skipped_duplicates
            )?;
        }
        if let Some(reason) = self.stopped {
            writeln!(f, "  stopped early: {}", reason.describe())?;
        }
        Ok(())
    }
}

/// What the latency figures cover: `100 requested rows, incl. timeout 10` (the rows that
/// failed count at the time they took).
fn coverage(latency: &Latency) -> String {
    let rows = if latency.rows == 1 { "row" } else { "rows" };
    let mut text = format!("{} requested {rows}", latency.rows);
    if !latency.failed.is_empty() {
        let failed: Vec<String> = latency
            .failed
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        text.push_str(&format!(", incl. {}", failed.join(", ")));
    }
    text
}

impl Summary {
    fn draw_histogram(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let most = self.histogram.iter().map(|(_, n)| *n).max().unwrap_or(0);
        if most == 0 {
            return Ok(());
        }
        for (upper, n) in &self.histogram {
            let label = bucket_label(*upper);
            let width = (n * BAR_WIDTH).div_ceil(most);
            writeln!(f, "  {label:>9} {:<30} {n}", "█".repeat(width as usize))?;
        }
        Ok(())
    }
}

/// A latency histogram bucket by its upper bound: `< 5 ms`, `< 2 s`, `longer` (the last
/// bucket, an hour and up). The text summary and a workbook's summary sheet label it alike.
pub(crate) fn bucket_label(upper: Duration) -> String {
    let ms = upper.as_millis();
    match ms {
        3_600_000.. => "longer".to_owned(),
        1000.. => format!("< {} s", ms / 1000),
        _ => format!("< {ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(ms: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for m in ms {
            h.record(m * 1000).unwrap();
        }
        h
    }

    #[test]
    fn buckets_cover_the_range_used() {
        let got = buckets(&histogram(&[3, 4, 7, 150]));
        let bounds: Vec<u64> = got.iter().map(|(d, _)| d.as_millis() as u64).collect();
        assert_eq!(bounds, [5, 10, 20, 50, 100, 200]);
        let counts: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 1, 0, 0, 0, 1]);
    }
}
