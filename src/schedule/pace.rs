//! The global request rate (`--rate`): a hard ceiling that is also met on average.
//!
//! A GCRA limiter with a burst of one (what governor gives) measures each start from the one
//! before it. The dispatcher's timer wakes it up to a millisecond late, and that lateness is
//! lost every time: at `--rate 1000/s` it achieved under half the rate. So starts go on a fixed
//! grid instead, one interval apart from the first: a late wake-up starts the slots it missed at
//! once and the average stays exact. Three things keep that honest:
//! - the ceiling is what the *server* sees, and a request reaches it some time after this
//!   decision, more or less late as the machine is busy: so the grid runs [`HEADROOM`] under the
//!   rate, and no [`WINDOW`] (one second plus the jitter it absorbs) holds more starts than the
//!   rate allows in a second;
//! - a stall (every slot busy on a slow server) does not bank starts: the grid never lags `now`
//!   by more than two intervals (and at least [`SLACK`]), so the catch-up after it is a few
//!   starts, not a burst;
//! - a window guard remembers the last starts and enforces that WINDOW bound whatever the grid
//!   did.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::rate::Rate;

/// How far the grid may fall behind before the missed slots are forgiven, at the least: a timer
/// that wakes a few milliseconds late on a busy machine must not cost starts at high rates.
const SLACK: Duration = Duration::from_millis(3);

/// The window no `rate × 1 s` starts may fall into: a second, plus the spread of the delay
/// between this decision and the request reaching the server that the guard absorbs. Measured at
/// the server on a busy 2-core machine, that spread reached 3 ms and more; 10 ms covers it.
const WINDOW: Duration = Duration::from_millis(1_010);

/// How much slower than the rate the grid runs, so that it fits the [`WINDOW`] bound on its own
/// and the guard rarely has to step in (when it does, the starts after it bunch up).
const HEADROOM: f64 = 1.01;

/// Most starts remembered for the window guard. Above this many per second, the guard checks a
/// proportionally shorter window (still the same rate), so memory stays small.
const MOST_REMEMBERED: usize = 10_000;

#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    /// The next slot on the grid.
    next: Option<Instant>,
    /// The last starts, oldest first, at most `per_window` of them.
    recent: VecDeque<Instant>,
    per_window: usize,
    window: Duration,
}

impl Pacer {
    pub(super) fn new(rate: Rate) -> Pacer {
        let per_second =
            (Duration::from_secs(1).as_secs_f64() / rate.interval().as_secs_f64()).floor();
        // Starts allowed in one WINDOW: the rate's per-second count (at least one).
        let per_window = (per_second as usize).clamp(1, MOST_REMEMBERED);
        let interval = rate.interval().mul_f64(HEADROOM);
        let window = if per_second < 1.0 {
            interval
        } else {
            WINDOW.mul_f64(per_window as f64 / per_second)
        };
        Pacer {
            interval,
            next: None,
            recent: VecDeque::with_capacity(per_window),
            per_window,
            window,
        }
    }

    /// Takes a start at `now` if the rate allows one; otherwise says when to ask again.
    pub(super) fn try_start(&mut self, now: Instant) -> Result<(), Instant> {
        let slot = match self.next {
            None => now,
            // A grid that fell more than two intervals (at least SLACK) behind forgets the slots
            // it missed.
            Some(next) => {
                let slack = (self.interval * 2).max(SLACK);
                next.max(now.checked_sub(slack).unwrap_or(now))
            }
        };
        if now < slot {
            return Err(slot);
        }
        if self.recent.len() >= self.per_window
            && let Some(&oldest) = self.recent.front()
            && now < oldest + self.window
        {
            return Err(oldest + self.window);
        }
        if self.recent.len() >= self.per_window {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.next = Some(slot + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(rate: &str) -> Pacer {
        Pacer::new(rate.parse().expect("a rate"))
    }

    /// Asks at every `tick` for `span` and returns the start times.
    fn run(pacer: &mut Pacer, start: Instant, tick: Duration, span: Duration) -> Vec<Instant> {
        let mut starts = Vec::new();
        let mut now = start;
        while now < start + span {
            while pacer.try_start(now).is_ok() {
                starts.push(now);
            }
            now += tick;
        }
        starts
    }

    fn most_in(starts: &[Instant], window: Duration) -> usize {
        let mut most = 0;
        let mut from = 0;
        for (to, &at) in starts.iter().enumerate() {
            while at >= starts[from] + window {
                from += 1;
            }
            most = most.max(to - from + 1);
        }
        most
    }

    #[test]
    fn late_wake_ups_do_not_lose_the_rate() {
        let mut pacer = pacer("1000/s");
        // Woken every 1.3 ms, later than every slot: the grid still gives ~1000 a second.
        let starts = run(
            &mut pacer,
            Instant::now(),
            Duration::from_micros(1_300),
            Duration::from_secs(10),
        );
        let achieved = starts.len() as f64 / 10.0;
        assert!((980.0..=1000.0).contains(&achieved), "{achieved}/s");
        // Room for the requests to reach the server up to 10 ms apart from when they started.
        assert!(most_in(&starts, WINDOW) <= 1000);
    }

    #[test]
    fn no_initial_burst_and_no_banked_starts_after_a_stall() {
        let mut pacer = pacer("100/s");
        let t0 = Instant::now();
        assert!(pacer.try_start(t0).is_ok());
        assert!(pacer.try_start(t0).is_err(), "a second start at once");
        // Nothing asked for 5 s: afterwards two intervals' worth of catch-up, not 500 starts.
        let later = t0 + Duration::from_secs(5);
        let burst = std::iter::from_fn(|| pacer.try_start(later).ok()).count();
        assert!(burst <= 3, "{burst} starts at once");
    }

    #[test]
    fn the_window_guard_holds_at_any_tick() {
        for (rate, tick_us) in [
            ("1000/s", 700),
            ("1000/s", 2_500),
            ("50/s", 15_000),
            ("3/s", 100),
        ] {
            let mut pacer = pacer(rate);
            let starts = run(
                &mut pacer,
                Instant::now(),
                Duration::from_micros(tick_us),
                Duration::from_secs(5),
            );
            let limit = rate.parse::<Rate>().expect("rate").per_second() as usize;
            assert!(
                most_in(&starts, WINDOW) <= limit,
                "{rate} every {tick_us} µs"
            );
            let achieved = starts.len() as f64 / 5.0;
            assert!(achieved >= limit as f64 * 0.95, "{rate}: {achieved}/s");
        }
    }

    #[test]
    fn slow_rates_space_starts_by_their_interval() {
        let mut pacer = pacer("30/m");
        let t0 = Instant::now();
        assert!(pacer.try_start(t0).is_ok());
        let next = t0 + Duration::from_secs(2).mul_f64(HEADROOM);
        assert_eq!(pacer.try_start(t0 + Duration::from_secs(1)), Err(next));
        assert!(pacer.try_start(next).is_ok());
    }
}
