//! One attempt in flight: fetch, decide whether to retry, and either hand the job back to the
//! dispatcher or write its row. Also the rules for turning attempts into rows.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use super::hosts::{HostKey, Pending};
use super::{Done, Shared};
use crate::extract::Extracted;
use crate::fetch::Attempt;
use crate::retry::Verdict;
use crate::row::{ErrorKind, Failure, Row};
use crate::stop::StopReason;

/// Runs one attempt of `job`. Exactly one of these happens: a row is sent and the dispatcher is
/// told the job finished; the job goes back to the dispatcher for a retry; or (stopped before the
/// request began) the job is given back unattempted.
pub(super) async fn attempt(shared: Arc<Shared>, mut job: Pending, keep_alive: bool) {
    let queue = Instant::now().saturating_duration_since(job.queued_at);
    let mut attempt = Attempt::default();
    let mut capture = shared.extractor.capture();
    let url = job.url.clone();
    let fetch = shared.fetcher.fetch(
        url,
        keep_alive,
        &shared.limiters,
        &mut capture,
        &mut attempt,
    );
    let finished = tokio::select! {
        biased;
        () = shared.stop.stopped() => Ok(false),
        result = AssertUnwindSafe(fetch).catch_unwind() => result.map(|()| true),
    };
    let started = attempt.started_at.is_some();
    if started {
        job.attempts += 1;
    }
    let row = match finished {
        Ok(true) => match shared
            .retry
            .verdict(&attempt, job.attempts, shared.time_left())
        {
            Verdict::Done => {
                let extracted = shared.extract(capture).await;
                finished_row(&mut job, attempt, Some(queue), extracted)
            }
            Verdict::Retry { delay, pause_host } => {
                let until = Instant::now() + delay;
                job.not_before = Some(until);
                job.queued_at = until;
                job.last = Some(Box::new(attempt));
                let pause_until = pause_host.then_some(until);
                let _ = shared.done.send(Done::Retry { job, pause_until }).await;
                return;
            }
        },
        // Stopped before this attempt began: the job is in the same state as before it.
        Ok(false) if !started => match unfinished_row(&mut job) {
            Some(row) => row,
            None => return report_finished(&shared, job.key).await,
        },
        Ok(false) => {
            let reason = shared.stop.reason().unwrap_or(StopReason::Interrupted);
            stopped_row(&mut job, attempt, queue, reason)
        }
        Err(_panic) => Row::unrequested(
            job.line,
            std::mem::take(&mut job.text),
            Failure::new(ErrorKind::Internal, "internal error: request task panicked"),
        ),
    };
    // If the writer is gone it has already reported why; the row has nowhere to go.
    let _ = shared.rows.send(row).await;
    report_finished(&shared, job.key).await;
}

async fn report_finished(shared: &Shared, key: HostKey) {
    let _ = shared.done.send(Done::Finished(key)).await;
}

/// The row for the attempt that ended a job, successful or not.
pub(super) fn finished_row(
    job: &mut Pending,
    attempt: Attempt,
    queue: Option<Duration>,
    extracted: Extracted,
) -> Row {
    // A truncated body is not an error (the status is real, the bytes up to the cap were read),
    // but the row says why `bytes` stops at the cap.
    let note = attempt
        .truncated
        .then(|| format!("body truncated at {} bytes (--max-body)", attempt.bytes));
    let started = attempt.started_at.is_some();
    Row {
        line: job.line,
        url: std::mem::take(&mut job.text),
        status: attempt.status,
        latency: attempt.latency,
        ttfb: attempt.ttfb,
        bytes: attempt.status.map(|_| attempt.bytes),
        content_type: attempt.content_type,
        final_url: attempt.final_url.map(String::from),
        redirects: started.then_some(attempt.redirects),
        attempts: job.attempts,
        started_at: attempt.started_at,
        error: attempt.failure.as_ref().map(|f| f.kind),
        error_detail: attempt.failure.map(|f| f.detail).or(note),
        title: extracted.title,
        dns: attempt.dns,
        connect: attempt.connect,
        tls: attempt.tls,
        queue: queue.filter(|_| started),
        reused: attempt.reused,
        remote_ip: attempt.remote_ip,
        body_sha256: extracted.sha256,
        values: extracted.values,
    }
}

/// The row for an attempt cut off by a stop: what it got so far, and why it ended.
fn stopped_row(
    job: &mut Pending,
    mut attempt: Attempt,
    queue: Duration,
    reason: StopReason,
) -> Row {
    let detail = match reason {
        StopReason::Deadline => "--max-time passed before the request finished",
        _ => "the run was stopped before the request finished",
    };
    attempt.failure = Some(Failure::new(reason.row_error(), detail));
    attempt.latency = None;
    attempt.truncated = false;
    finished_row(job, attempt, Some(queue), Extracted::default())
}

/// The row for a job whose retry never ran because the run stopped: its last attempt's outcome,
/// with a note. `None` when it was never attempted (it gets no row, like an unread line).
pub(super) fn unfinished_row(job: &mut Pending) -> Option<Row> {
    let last = job.last.take()?;
    let mut row = finished_row(job, *last, None, Extracted::default());
    let note = "not retried: the run stopped";
    row.error_detail = Some(match row.error_detail {
        Some(detail) => format!("{detail}; {note}"),
        None => note.to_owned(),
    });
    Some(row)
}
