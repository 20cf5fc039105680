//! One request in flight: fetch, then either write the job's row, or hand the job back to the
//! dispatcher (a redirect to follow, a retry). Also the rules for turning attempts into rows,
//! and the request for a host's robots.txt (`--robots`), whose outcome is its host's rules.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::time::Instant;

use super::hosts::{HostKey, Pending, host_key};
use super::retry::Verdict;
use super::robots::{MAX_ROBOTS_BYTES, MAX_ROBOTS_REDIRECTS, Rules};
use super::{Done, Report, RobotsEvent, Shared};
use crate::extract::{Extracted, keep_up_to};
use crate::fetch::{Attempt, BodySink, Hop, version_name};
use crate::redact::{into_shown, redact_url};
use crate::row::{ErrorKind, Failure, Row};
use crate::stop::{Listener, StopReason};

/// Runs one request of `job` and reports to the dispatcher, giving back the stop listener it
/// was lent.
///
/// The request's future (a few kilobytes of state) is boxed so that the task's own future is
/// small: the runtime copies a task's future whole when it is spawned and when it finishes,
/// and with the request's state inline that copying cost more than the allocation.
pub(super) async fn attempt(
    shared: Arc<Shared>,
    stop: Listener,
    job: Box<Pending>,
    keep_alive: bool,
) {
    let done = if job.robots {
        Box::pin(fetch_rules(&shared, &stop, job, keep_alive)).await
    } else {
        Box::pin(run(&shared, &stop, job, keep_alive)).await
    };
    shared.done.post(Report { stop, done });
}

/// Exactly one of these happens: a row is sent and the job finished; the job goes back to the
/// dispatcher (redirect, retry); or (stopped before the request began) the job ends without a
/// row, like a line never read.
async fn run(shared: &Shared, stop: &Listener, mut job: Box<Pending>, keep_alive: bool) -> Done {
    let ran_on = Arc::clone(&job.key);
    let mut pause_until = None;
    let continuing = job.hop.is_some();
    let (url, mut attempt) = match job.hop.take() {
        Some((url, attempt)) => (url, *attempt),
        None => (job.url.clone(), fresh_attempt(&job)),
    };
    attempt.waited += Instant::now().saturating_duration_since(job.queued_at);
    let mut capture = shared.extract.extractor().capture();
    let fetch = shared
        .fetcher
        .fetch(url, keep_alive, &mut capture, &mut attempt);
    let outcome = tokio::select! {
        biased;
        () = stop.stopped() => Ok(None),
        hop = AssertUnwindSafe(fetch).catch_unwind() => hop.map(Some),
    };
    let started = attempt.started_at.is_some();
    if started && !continuing {
        job.attempts += 1;
    }
    let row = match outcome {
        Ok(Some(Hop::Redirect(next))) => {
            job.key = host_key(&next);
            job.hop = Some((next, Box::new(attempt)));
            job.queued_at = Instant::now();
            return again(ran_on, job, None);
        }
        Ok(Some(Hop::Done)) => {
            let time_left = shared.time_left();
            let verdict = shared.retry.verdict(&attempt, job.attempts, time_left);
            if !matches!(verdict, Verdict::Retry { .. }) {
                pause_until = shared
                    .retry
                    .host_pause(&attempt)
                    .map(|d| Instant::now() + d);
            }
            match verdict {
                Verdict::Done => {
                    let mut extracted = shared.extract.extract(capture.finish()).await;
                    // A digest only for a body read whole: a partial one would read as "the
                    // page changed", and a failed request or HEAD has no body to speak of.
                    if attempt.failure.is_some() || !shared.fetcher.reads_bodies() {
                        extracted.sha256 = None;
                    }
                    finished_row(&mut job, attempt, extracted)
                }
                Verdict::OutOfTime => {
                    let mut row = finished_row(&mut job, attempt, Extracted::default());
                    add_note(&mut row, "not retried: --max-time would pass first");
                    row
                }
                Verdict::Retry { delay, pause_host } => {
                    let until = Instant::now() + delay;
                    job.key = host_key(&job.url);
                    job.not_before = Some(until);
                    job.queued_at = until;
                    job.last = Some(Box::new(attempt));
                    return again(ran_on, job, pause_host.then_some(until));
                }
            }
        }
        // Stopped before this request began: the job is in the same state as before it.
        Ok(None) if !started => match unfinished_row(&mut job) {
            Some(row) => row,
            None => return Done::Finished(ran_on, None),
        },
        Ok(None) => {
            let reason = shared.stop.reason().unwrap_or(StopReason::Interrupted);
            stopped_row(&mut job, attempt, reason)
        }
        Err(_panic) => Row {
            seq: job.seq,
            ..Row::unrequested(
                job.line,
                std::mem::take(&mut job.text),
                Failure::new(ErrorKind::Internal, "internal error: request task panicked"),
            )
        },
    };
    // Sent by the dispatcher, which this task's report wakes.
    shared.rows.put(row);
    Done::Finished(ran_on, pause_until)
}

/// `--robots`: one request for a host's robots.txt (RFC 9309). A 2xx is parsed (off the event
/// loop); a 4xx, or more than five redirects, means no rules; a 5xx or a failure is tried
/// again as `--retries` allows, and then means everything is disallowed for now. Redirect hops
/// and retries come back through the dispatcher under the same host, ahead of its other jobs.
async fn fetch_rules(
    shared: &Shared,
    stop: &Listener,
    mut job: Box<Pending>,
    keep_alive: bool,
) -> Done {
    let key = Arc::clone(&job.key);
    let Some((policy, tally, interned)) = &shared.robots else {
        return Done::Finished(key, None);
    };
    let (url, mut attempt) = match job.hop.take() {
        Some((url, attempt)) => (url, *attempt),
        None => (job.url.clone(), Attempt::default()),
    };
    let mut body = RobotsBody::default();
    let fetch = shared
        .fetcher
        .fetch(url, keep_alive, &mut body, &mut attempt);
    let hop = tokio::select! {
        biased;
        () = stop.stopped() => None,
        hop = AssertUnwindSafe(fetch).catch_unwind() => hop.ok(),
    };
    if attempt.started_at.is_some() {
        tally(RobotsEvent::Requested);
    }
    let source = job.url.clone();
    match hop {
        // Stopped (or the request panicked): no rules.
        None => Done::Rules {
            key,
            rules: None,
            pause_until: None,
        },
        Some(Hop::Redirect(next)) if attempt.redirects <= MAX_ROBOTS_REDIRECTS => {
            job.hop = Some((next, Box::new(attempt)));
            job.queued_at = Instant::now();
            again(key, job, None)
        }
        // Counted as missing, like a chain the fetcher itself gave up on (TooManyRedirects).
        Some(Hop::Redirect(_)) => {
            tally(RobotsEvent::Missing);
            rules_done(key, Rules::allow_all(&source), None)
        }
        Some(Hop::Done) => {
            job.attempts += 1;
            let pause = shared
                .retry
                .host_pause(&attempt)
                .map(|d| Instant::now() + d);
            let found = attempt.failure.is_none()
                && attempt.status.is_some_and(|s| (200..300).contains(&s));
            let missing = attempt.status.is_some_and(|s| (300..500).contains(&s))
                || attempt
                    .failure
                    .as_ref()
                    .is_some_and(|f| f.kind == ErrorKind::TooManyRedirects);
            if found {
                // Named by where the rules came from, after any redirect.
                let source = attempt.final_url.clone().unwrap_or(source);
                let (policy, interned) = (policy.clone(), Arc::clone(interned));
                let parsed = shared
                    .extract
                    .run(move || Rules::parse(&source, &body.bytes, &policy, &interned))
                    .await;
                tally(RobotsEvent::Found);
                let rules = parsed.unwrap_or_else(|| Rules::allow_all(&job.url));
                return rules_done(key, rules, pause);
            }
            if missing {
                tally(RobotsEvent::Missing);
                return rules_done(key, Rules::allow_all(&source), pause);
            }
            let time_left = shared.time_left();
            if let Verdict::Retry { delay, .. } =
                shared.retry.verdict(&attempt, job.attempts, time_left)
            {
                let until = Instant::now() + delay;
                job.not_before = Some(until);
                job.queued_at = until;
                return again(key, job, pause);
            }
            tally(RobotsEvent::Unreachable);
            rules_done(
                key,
                Rules::disallow_all(&source, unreachable(&attempt)),
                pause,
            )
        }
    }
}

fn rules_done(key: HostKey, rules: Rules, pause_until: Option<Instant>) -> Done {
    Done::Rules {
        key,
        rules: Some(Arc::new(rules)),
        pause_until,
    }
}

/// Why a robots.txt could not be had: its status, or the failure.
fn unreachable(attempt: &Attempt) -> String {
    match (&attempt.failure, attempt.status) {
        (Some(failure), _) => format!("{}: {}", failure.kind, failure.detail),
        (None, Some(status)) => format!(
            "status {status}{}",
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map(|reason| format!(" {reason}"))
                .unwrap_or_default()
        ),
        (None, None) => "no answer".to_owned(),
    }
}

/// The start of a robots.txt body: what RFC 9309 asks to be parsed, at most.
#[derive(Default)]
struct RobotsBody {
    bytes: Vec<u8>,
}

impl BodySink for RobotsBody {
    fn begin(&mut self, _: Option<&str>) {}

    fn feed(&mut self, bytes: &[u8]) {
        keep_up_to(&mut self.bytes, bytes, MAX_ROBOTS_BYTES);
    }
}

/// The row of a job its host's robots.txt refuses: no request was made for it (or, for a
/// redirect hop, none to where the redirect pointed: the row shows the redirect).
pub(super) fn refused_row(job: &mut Pending, why: String) -> Row {
    if let Some((_, attempt)) = job.hop.take() {
        let mut row = finished_row(job, *attempt, Extracted::default());
        row.error = Some(ErrorKind::Robots);
        row.error_detail = Some(why);
        return row;
    }
    Row {
        seq: job.seq,
        attempts: job.attempts,
        ..Row::unrequested(
            job.line,
            std::mem::take(&mut job.text),
            Failure::new(ErrorKind::Robots, why),
        )
    }
}

/// A new attempt at `job`'s URL: with `--state`, it records the validators of the final
/// response, and sends the state's own, if any, as a conditional request.
fn fresh_attempt(job: &Pending) -> Attempt {
    Attempt {
        track_validators: job.tracked.is_some(),
        conditions: job.tracked.as_ref().and_then(|t| t.conditions.clone()),
        ..Attempt::default()
    }
}

fn again(ran_on: HostKey, job: Box<Pending>, pause_until: Option<Instant>) -> Done {
    Done::Again {
        ran_on,
        job,
        pause_until,
    }
}

/// The row for the attempt that ended a job, successful or not.
pub(super) fn finished_row(job: &mut Pending, attempt: Attempt, extracted: Extracted) -> Row {
    // A truncated body is not an error (the status is real, the bytes up to the cap were read),
    // but the row says why `bytes` stops at the cap.
    let note = attempt
        .truncated
        .then(|| format!("body truncated at {} bytes (--max-body)", attempt.bytes));
    let started = attempt.started_at.is_some();
    Row {
        seq: job.seq,
        line: job.line,
        url: std::mem::take(&mut job.text),
        status: attempt.status,
        latency: attempt.latency,
        ttfb: attempt.ttfb,
        bytes: attempt.status.map(|_| attempt.bytes),
        content_type: attempt.content_type,
        final_url: attempt.final_url.map(into_shown),
        redirects: started.then_some(attempt.redirects),
        attempts: job.attempts,
        started_at: attempt.started_at,
        error: attempt.failure.as_ref().map(|f| f.kind),
        error_detail: attempt.failure.map(|f| f.detail).or(note),
        title: extracted.title,
        dns: attempt.dns,
        connect: attempt.connect,
        tls: attempt.tls,
        queue: started.then_some(attempt.waited),
        reused: attempt.reused,
        remote_ip: attempt.remote_ip,
        body_sha256: extracted.sha256,
        http_version: attempt.http_version.map(version_name),
        tls_info: attempt.tls_info,
        content_encoding: attempt.content_encoding,
        wire_bytes: attempt.status.map(|_| attempt.wire_bytes),
        location: attempt.location,
        headers: attempt.headers,
        values: extracted.values,
        tracked: job.tracked.take(),
        validators: attempt.validators,
        change: None,
    }
}

/// The row for an attempt cut off by a stop: what it got so far (its time included), and why
/// it ended.
fn stopped_row(job: &mut Pending, mut attempt: Attempt, reason: StopReason) -> Row {
    let detail = match reason {
        StopReason::Deadline => "--max-time passed before the request finished",
        _ => "the run was stopped before the request finished",
    };
    attempt.end_hop(Instant::now());
    attempt.failure = Some(Failure::new(reason.row_error(), detail));
    attempt.truncated = false;
    finished_row(job, attempt, Extracted::default())
}

/// The row for a job the run stopped between two requests: a redirect not yet followed, or a
/// retry not yet made. It shows the last response, with a note. `None` when the job was never
/// attempted (it gets no row, like an unread line).
pub(super) fn unfinished_row(job: &mut Pending) -> Option<Row> {
    if job.robots {
        return None; // A request of the host's, not a line.
    }
    if let Some((next, attempt)) = job.hop.take() {
        let mut row = finished_row(job, *attempt, Extracted::default());
        add_note(
            &mut row,
            &format!(
                "redirect to {} not followed: the run stopped",
                redact_url(&next)
            ),
        );
        return Some(row);
    }
    let last = job.last.take()?;
    let mut row = finished_row(job, *last, Extracted::default());
    add_note(&mut row, "not retried: the run stopped");
    Some(row)
}

fn add_note(row: &mut Row, note: &str) {
    row.error_detail = Some(match row.error_detail.take() {
        Some(detail) => format!("{detail}; {note}"),
        None => note.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;
    use crate::extract::{ExtractPool, ExtractSpec, Extractor};
    use crate::fetch::Transport;
    use crate::schedule::outbox::Outbox;
    use crate::schedule::reports::Reports;
    use crate::stop::Stop;

    /// Never answers: the test only looks at a task's future, never runs it.
    struct Silent;

    impl Transport for Silent {
        fn fetch<'a>(
            &'a self,
            _url: url::Url,
            _keep_alive: bool,
            _sink: &'a mut dyn BodySink,
            _attempt: &'a mut Attempt,
        ) -> BoxFuture<'a, Hop> {
            Box::pin(std::future::pending())
        }

        fn reads_bodies(&self) -> bool {
            true
        }
    }

    /// The runtime copies a task's future when it spawns it: the request's kilobytes of state
    /// must stay behind the box, not beside it (a local holding the unboxed future across the
    /// await would put its 1,360 bytes back in the task's state).
    #[test]
    fn a_request_tasks_own_future_is_small() {
        let stop = Stop::new();
        let extractor = Arc::new(Extractor::new(ExtractSpec::default()));
        let shared = Arc::new(Shared {
            fetcher: Arc::new(Silent),
            extract: ExtractPool::start(extractor, 1).unwrap(),
            retry: Default::default(),
            deadline: None,
            rows: Outbox::new(tokio::sync::mpsc::channel(1).0),
            done: Reports::new(),
            stop: stop.clone(),
            robots: None,
        });
        let url = url::Url::parse("http://example.test/").unwrap();
        let key = host_key(&url);
        let job = Pending::new(1, 0, url.to_string(), url, key, Instant::now(), None);
        let task = attempt(shared, stop.listener(), Box::new(job), true);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 256, "a request task's future takes {size} bytes");
    }
}
