//! Schedule: admits jobs into flight under the run's limits and turns each into exactly one row.
//!
//! The order of limits is the point of this module:
//! 1. a global concurrency permit is taken *before* a task is spawned, so a ten-million-line list
//!    never becomes ten million parked tasks, and input reading stalls while all slots are busy;
//! 2. inside the task, the shared rate limiter is awaited right before the request starts;
//! 3. the request runs (see [`crate::fetch`]), and its row is sent to the writer over a bounded
//!    channel, so a slow writer holds permits and slows admission instead of growing memory.
//!
//! Every wait listens to [`Stop`]: once a run is stopped, nothing new starts and requests in
//! flight end at once as `cancelled` (or `deadline`) rows. Lines whose request had not started
//! (still queued, or waiting on the rate limiter) get no row, exactly like lines not yet read.

use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use url::Url;

use crate::config::{Config, Rate};
use crate::error::Error;
use crate::fetch::{Attempt, Fetcher};
use crate::input::Job;
use crate::row::{ErrorKind, Failure, Row, millis, timestamp};
use crate::stop::{Stop, StopReason};

type DirectLimiter =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// The limits every request passes, shared by all tasks.
struct Limits {
    slots: Arc<Semaphore>,
    rate: Option<RateGate>,
}

/// The rate limiter behind a fair (FIFO) lock: tasks pass the limiter one at a time in the order
/// they arrived, instead of all polling it and racing for each free cell (a thundering herd that
/// also lets a late task overtake an early one).
struct RateGate {
    limiter: DirectLimiter,
    turn: tokio::sync::Mutex<()>,
}

impl RateGate {
    async fn until_ready(&self) {
        let _turn = self.turn.lock().await;
        self.limiter.until_ready().await;
    }
}

impl Limits {
    fn new(config: &Config) -> Limits {
        Limits {
            slots: Arc::new(Semaphore::new(config.concurrency.get())),
            rate: config.rate.map(|rate| RateGate {
                limiter: smooth_limiter(rate),
                turn: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// A limiter that spaces request starts evenly: a burst of one means no second's worth of
/// requests goes out at once when the run starts. Uses the std monotonic clock, not governor's
/// default TSC clock, which has been seen to misbehave across cores.
fn smooth_limiter(rate: Rate) -> DirectLimiter {
    let quota = Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct_with_clock(quota, MonotonicClock)
}

/// What a request task needs, shared by all of them.
struct Shared {
    fetcher: Fetcher,
    limits: Limits,
    rows: mpsc::Sender<Row>,
    stop: Stop,
}

/// Runs every job to a row. Returns when the input is exhausted (or the run stopped) and every
/// task it started has sent its row.
pub(crate) async fn run(
    config: &Config,
    fetcher: Fetcher,
    mut jobs: mpsc::Receiver<Result<Job, Error>>,
    rows: mpsc::Sender<Row>,
    stop: Stop,
) -> Result<(), Error> {
    let shared = Arc::new(Shared {
        fetcher,
        limits: Limits::new(config),
        rows,
        stop,
    });
    let tasks = TaskTracker::new();
    let result = admit(&shared, &mut jobs, &tasks).await;
    if result.is_err() {
        shared.stop.trigger(StopReason::Failed);
    }
    // Dropping the receiver tells the input thread to stop reading.
    drop(jobs);
    tasks.close();
    tasks.wait().await;
    result
}

/// The admission loop: one job at a time, bad lines straight to the writer, good ones into
/// flight once a slot is free.
async fn admit(
    shared: &Arc<Shared>,
    jobs: &mut mpsc::Receiver<Result<Job, Error>>,
    tasks: &TaskTracker,
) -> Result<(), Error> {
    let stop = &shared.stop;
    loop {
        let job = tokio::select! {
            biased;
            () = stop.stopped() => return Ok(()),
            job = jobs.recv() => job,
        };
        let Some(job) = job else { return Ok(()) };
        let Job { line, text, target } = job?;
        let url = match target {
            Ok(url) => url,
            Err(failure) => {
                if shared
                    .rows
                    .send(Row::unrequested(line, text, failure))
                    .await
                    .is_err()
                {
                    return Ok(()); // The writer is gone; it reports why.
                }
                continue;
            }
        };
        let permit = tokio::select! {
            biased;
            () = stop.stopped() => return Ok(()),
            permit = shared.limits.slots.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            return Ok(()); // Closed semaphore: never happens, as nothing closes it.
        };
        tasks.spawn(request(Arc::clone(shared), line, text, url, permit));
    }
}

/// One line in flight: waits for the rate limiter, fetches, sends the row. Holds its concurrency
/// permit until the row is handed to the writer.
async fn request(
    shared: Arc<Shared>,
    line: u64,
    text: String,
    url: Url,
    _permit: OwnedSemaphorePermit,
) {
    let mut attempt = Attempt::default();
    let run = AssertUnwindSafe(limited_fetch(&shared, url, &mut attempt)).catch_unwind();
    let finished = tokio::select! {
        biased;
        () = shared.stop.stopped() => Ok(false),
        result = run => result.map(|()| true),
    };
    let row = match finished {
        Ok(true) => finished_row(line, text, attempt),
        // Stopped while still waiting on the rate limiter: like a line not yet read, it gets no
        // row, so a later run can pick it up.
        Ok(false) if attempt.started_at.is_none() => return,
        Ok(false) => {
            let reason = shared.stop.reason().unwrap_or(StopReason::Interrupted);
            stopped_row(line, text, attempt, reason)
        }
        Err(_panic) => Row::unrequested(
            line,
            text,
            Failure::new(ErrorKind::Internal, "internal error: request task panicked"),
        ),
    };
    // If the writer is gone it has already reported why; the row has nowhere to go.
    let _ = shared.rows.send(row).await;
}

async fn limited_fetch(shared: &Shared, url: Url, attempt: &mut Attempt) {
    if let Some(rate) = &shared.limits.rate {
        rate.until_ready().await;
    }
    shared.fetcher.fetch(url, attempt).await;
}

/// The row for a request that ran to its end, successful or not.
fn finished_row(line: u64, url: String, attempt: Attempt) -> Row {
    // A truncated body is not an error (the status is real, the bytes up to the cap were read),
    // but the row says why `bytes` stops at the cap.
    let note = attempt
        .truncated
        .then(|| format!("body truncated at {} bytes (--max-body)", attempt.bytes));
    Row {
        line,
        url,
        status: attempt.status,
        latency_ms: attempt.latency.map(millis),
        ttfb_ms: attempt.ttfb.map(millis),
        bytes: attempt.status.map(|_| attempt.bytes),
        content_type: attempt.content_type,
        final_url: attempt.final_url.map(String::from),
        redirects: attempt.started_at.map(|_| attempt.redirects),
        attempts: u32::from(attempt.started_at.is_some()),
        started_at: attempt.started_at.map(timestamp),
        error: attempt.failure.as_ref().map(|f| f.kind),
        error_detail: attempt.failure.map(|f| f.detail).or(note),
    }
}

/// The row for a request cut off by a stop: what it got so far, and why it ended.
fn stopped_row(line: u64, url: String, mut attempt: Attempt, reason: StopReason) -> Row {
    let detail = match reason {
        StopReason::Deadline => "--max-time passed before the request finished",
        _ => "the run was stopped before the request finished",
    };
    attempt.failure = Some(Failure::new(reason.row_error(), detail));
    attempt.latency = None;
    attempt.truncated = false;
    finished_row(line, url, attempt)
}
