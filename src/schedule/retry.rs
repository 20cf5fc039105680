//! Retry policy: which outcomes are worth another attempt, and how long to wait first.
//!
//! Only transient trouble is retried: connection failures, timeouts, and the statuses servers use
//! for "not now" (408, 425, 429, 500, 502, 503, 504). A name that does not resolve, a bad
//! certificate or any other 4xx will not change by asking again. The wait is the server's
//! `Retry-After` when it sent one (capped), otherwise exponential backoff with jitter. This module
//! only decides; the scheduler carries the decision out, so a retry passes every limit again.

use std::time::Duration;

use crate::fetch::Attempt;
use crate::row::ErrorKind;

/// The longest backoff between two attempts when the server gave no `Retry-After`.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// Backoff before the first retry; doubled for each further one, up to [`BACKOFF_CAP`].
    pub base: Duration,
    /// The longest `Retry-After` honoured; longer ones are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Record this attempt's outcome as the row.
    Done,
    /// Try again after `delay`; with `pause_host`, the server asked the whole host to slow down
    /// (429/503 with `Retry-After`), so no request to it starts before then.
    Retry { delay: Duration, pause_host: bool },
    /// Worth a retry, but the run's deadline would pass before it could start: record this
    /// attempt.
    OutOfTime,
}

impl RetryPolicy {
    /// Decides after attempt number `attempts` (from 1). `time_left` is what remains before the
    /// run's deadline: a retry that could not start before it is not scheduled.
    pub fn verdict(
        &self,
        attempt: &Attempt,
        attempts: u32,
        time_left: Option<Duration>,
    ) -> Verdict {
        if attempts > self.retries || !is_retryable(attempt) {
            return Verdict::Done;
        }
        let retry_after = attempt.retry_after.map(|d| d.min(self.max_retry_after));
        let delay = retry_after.unwrap_or_else(|| self.backoff(attempts));
        if time_left.is_some_and(|left| delay >= left) {
            return Verdict::OutOfTime;
        }
        let pause_host = self.host_pause(attempt).is_some();
        Verdict::Retry { delay, pause_host }
    }

    /// How long the server asked its whole host to wait (`Retry-After` on a 429 or 503,
    /// capped): honoured whether or not this URL is tried again, so the host's next URLs wait
    /// too.
    pub fn host_pause(&self, attempt: &Attempt) -> Option<Duration> {
        let asked = attempt.retry_after?;
        matches!(attempt.status, Some(429 | 503)).then(|| asked.min(self.max_retry_after))
    }

    /// Exponential backoff with "equal jitter": half the step fixed, half random, so retries of
    /// many URLs that failed together do not come back together.
    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(20);
        let step = self.base.saturating_mul(1 << exponent).min(BACKOFF_CAP);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

fn is_retryable(attempt: &Attempt) -> bool {
    match &attempt.failure {
        Some(failure) => match failure.kind {
            ErrorKind::Connect | ErrorKind::Timeout => true,
            // The connection was closed or reset before any response: nothing was said, so
            // asking again is safe and often works.
            ErrorKind::Protocol => attempt.transient && attempt.status.is_none(),
            // The proxy could not be reached, or could not reach the site (502, 503, 504).
            ErrorKind::Proxy => attempt.transient,
            _ => false,
        },
        None => matches!(
            attempt.status,
            Some(408 | 425 | 429 | 500 | 502 | 503 | 504)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::fetch::parse_retry_after;
    use crate::row::Failure;

    fn status(code: u16) -> Attempt {
        Attempt {
            status: Some(code),
            ..Attempt::default()
        }
    }

    fn failed(kind: ErrorKind) -> Attempt {
        Attempt {
            failure: Some(Failure::new(kind, "")),
            ..Attempt::default()
        }
    }

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn retries_only_transient_outcomes() {
        let p = policy(3);
        for code in [408, 425, 429, 500, 502, 503, 504] {
            assert!(
                matches!(p.verdict(&status(code), 1, None), Verdict::Retry { .. }),
                "{code}"
            );
        }
        for code in [200, 301, 400, 401, 403, 404, 410, 501] {
            assert_eq!(p.verdict(&status(code), 1, None), Verdict::Done, "{code}");
        }
        for kind in [ErrorKind::Connect, ErrorKind::Timeout] {
            assert!(matches!(
                p.verdict(&failed(kind), 1, None),
                Verdict::Retry { .. }
            ));
        }
        for kind in [
            ErrorKind::Dns,
            ErrorKind::Tls,
            ErrorKind::Body,
            ErrorKind::Protocol,
        ] {
            assert_eq!(p.verdict(&failed(kind), 1, None), Verdict::Done, "{kind}");
        }
        let mut reset = failed(ErrorKind::Protocol);
        reset.transient = true;
        assert!(matches!(p.verdict(&reset, 1, None), Verdict::Retry { .. }));
    }

    #[test]
    fn stops_after_the_last_retry() {
        let p = policy(2);
        assert!(matches!(
            p.verdict(&status(503), 2, None),
            Verdict::Retry { .. }
        ));
        assert_eq!(p.verdict(&status(503), 3, None), Verdict::Done);
        assert_eq!(policy(0).verdict(&status(503), 1, None), Verdict::Done);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let p = policy(50);
        for attempts in 1..40 {
            let Verdict::Retry { delay, pause_host } = p.verdict(&status(500), attempts, None)
            else {
                panic!("expected a retry");
            };
            assert!(!pause_host);
            let step = (p.base * 2u32.pow((attempts - 1).min(20))).min(BACKOFF_CAP);
            assert!(
                delay >= step / 2 && delay <= step,
                "{attempts}: {delay:?} vs {step:?}"
            );
        }
    }

    #[test]
    fn honours_retry_after_capped_and_pauses_the_host() {
        let p = policy(3);
        let mut limited = status(429);
        limited.retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            p.verdict(&limited, 1, None),
            Verdict::Retry {
                delay: Duration::from_secs(7),
                pause_host: true
            }
        );
        limited.retry_after = Some(Duration::from_secs(3600));
        assert_eq!(
            p.verdict(&limited, 1, None),
            Verdict::Retry {
                delay: Duration::from_secs(60),
                pause_host: true
            }
        );
        let mut unavailable = status(500);
        unavailable.retry_after = Some(Duration::from_secs(2));
        assert!(matches!(
            p.verdict(&unavailable, 1, None),
            Verdict::Retry {
                pause_host: false,
                ..
            }
        ));
    }

    #[test]
    fn a_host_pause_needs_a_429_or_503_and_is_capped() {
        let p = policy(0);
        let mut limited = status(429);
        assert_eq!(p.host_pause(&limited), None, "no Retry-After");
        limited.retry_after = Some(Duration::from_secs(7));
        assert_eq!(p.host_pause(&limited), Some(Duration::from_secs(7)));
        limited.retry_after = Some(Duration::from_secs(7200));
        assert_eq!(p.host_pause(&limited), Some(p.max_retry_after));
        let mut other = status(500);
        other.retry_after = Some(Duration::from_secs(7));
        assert_eq!(p.host_pause(&other), None);
    }

    #[test]
    fn never_retries_past_the_deadline() {
        let mut limited = status(429);
        limited.retry_after = Some(Duration::from_secs(5));
        let p = policy(3);
        assert_eq!(
            p.verdict(&limited, 1, Some(Duration::from_secs(4))),
            Verdict::OutOfTime
        );
        assert!(matches!(
            p.verdict(&limited, 1, Some(Duration::from_secs(6))),
            Verdict::Retry { .. }
        ));
    }

    /// Found by the `retry_after` fuzz target: a delay past `u64::MAX` seconds was ignored, so
    /// the request was retried after the short backoff instead of the longest allowed wait.
    #[test]
    fn a_huge_retry_after_is_a_long_wait_not_none() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            parse_retry_after("   18446744073709844674", now),
            Some(Duration::MAX)
        );
        let mut limited = status(503);
        limited.retry_after = parse_retry_after("99999999999999999999999", now);
        assert_eq!(
            policy(1).verdict(&limited, 1, None),
            Verdict::Retry {
                delay: RetryPolicy::default().max_retry_after,
                pause_host: true
            }
        );
    }
}
