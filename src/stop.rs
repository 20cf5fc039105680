//! Stopping a run early: one shared signal that every await in the pipeline listens to, and the
//! reason it was raised.
//!
//! The first reason wins and is never overwritten, so a Ctrl-C after the deadline still reports
//! the deadline. Raising the signal never kills anything by itself: each stage notices it, ends
//! its work, and the rows already produced are still written.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::Poll;

use futures::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

use crate::row::ErrorKind;

/// Why a run ended before its input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT (Ctrl-C).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// `--max-time` passed.
    Deadline,
    /// The reader of our output went away (`fetch ... | head`).
    OutputClosed,
    /// A fatal error elsewhere in the pipeline (input read error, output write error).
    Failed,
}

impl StopReason {
    /// The error kind recorded for requests that were in flight when the run stopped.
    pub fn row_error(self) -> ErrorKind {
        match self {
            StopReason::Deadline => ErrorKind::Deadline,
            _ => ErrorKind::Cancelled,
        }
    }

    /// A stable name, for machines (`--summary-json`).
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Interrupted => "interrupted",
            StopReason::Terminated => "terminated",
            StopReason::Deadline => "deadline",
            StopReason::OutputClosed => "output_closed",
            StopReason::Failed => "failed",
        }
    }

    /// A short phrase for the summary.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Interrupted => "interrupted (SIGINT)",
            StopReason::Terminated => "terminated (SIGTERM)",
            StopReason::Deadline => "stopped at --max-time",
            StopReason::OutputClosed => "output closed",
            StopReason::Failed => "stopped by an error",
        }
    }
}

/// A cloneable handle to stop a run and to wait for it being stopped.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
    /// The wake-up slots of [`Listener`]s; dead ones are pruned as new ones come.
    listeners: Arc<Mutex<Vec<Weak<AtomicWaker>>>>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop. Only the first reason is kept.
    pub fn trigger(&self, reason: StopReason) {
        if self.reason.set(reason).is_ok() {
            self.token.cancel();
            let listeners = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for slot in listeners.iter().filter_map(Weak::upgrade) {
                slot.wake();
            }
        }
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once [`Stop::trigger`] has been called.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// A waiter of its own, for waits made again and again: the dispatcher's loop, and request
    /// tasks, which are lent one from a set of one per slot. [`Stop::stopped`] takes a lock
    /// that every waiter contends for, twice per wait; a listener's wait is two atomic
    /// operations on a slot no one else uses.
    pub fn listener(&self) -> Listener {
        let slot = Arc::new(AtomicWaker::new());
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listeners.len() == listeners.capacity() {
            listeners.retain(|slot| slot.strong_count() > 0);
        }
        listeners.push(Arc::downgrade(&slot));
        Listener {
            reason: Arc::clone(&self.reason),
            slot,
        }
    }
}

/// Waits for a [`Stop`] cheaply and any number of times; see [`Stop::listener`].
#[derive(Debug)]
pub struct Listener {
    reason: Arc<OnceLock<StopReason>>,
    slot: Arc<AtomicWaker>,
}

impl Listener {
    /// Resolves once the run has been stopped (at once if it already has).
    pub fn stopped(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            // Register before looking, so a trigger in between still wakes this waiter.
            self.slot.register(cx.waker());
            match self.reason.get() {
                Some(_) => Poll::Ready(()),
                None => Poll::Pending,
            }
        })
    }
}

/// Listens for SIGINT and SIGTERM for the life of the process: the first stops the run
/// gracefully; a second one (of either) goes to `again`, for when the user does not want to
/// wait for in-flight requests to be recorded. What to do then (the binary exits at once) is
/// the caller's business: the library never ends the process.
#[cfg(unix)]
pub fn watch_signals(
    stop: Stop,
    again: impl FnOnce(StopReason) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let mut seen = false;
        loop {
            let reason = tokio::select! {
                Some(()) = interrupt.recv() => StopReason::Interrupted,
                Some(()) = terminate.recv() => StopReason::Terminated,
                else => return,
            };
            if seen {
                again(reason);
                return;
            }
            seen = true;
            stop.trigger(reason);
        }
    }))
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
pub fn watch_signals(
    stop: Stop,
    again: impl FnOnce(StopReason) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.trigger(StopReason::Interrupted);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            again(StopReason::Interrupted);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins() {
        let stop = Stop::new();
        assert_eq!(stop.reason(), None);
        stop.trigger(StopReason::Deadline);
        stop.trigger(StopReason::Interrupted);
        assert_eq!(stop.reason(), Some(StopReason::Deadline));
        assert!(stop.is_stopped());
    }

    #[tokio::test]
    async fn a_listener_wakes_on_a_later_trigger_and_sees_an_earlier_one() {
        let stop = Stop::new();
        let listener = stop.listener();
        let waiter = tokio::spawn(async move { listener.stopped().await });
        tokio::task::yield_now().await;
        stop.trigger(StopReason::Interrupted);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the listener woke")
            .expect("the waiter ran");
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stop.listener().stopped(),
        )
        .await
        .expect("a listener made after the stop is ready at once");
    }

    #[test]
    fn dead_listeners_do_not_pile_up() {
        let stop = Stop::new();
        for _ in 0..10_000 {
            drop(stop.listener());
        }
        let kept = stop.listeners.lock().map(|l| l.len()).unwrap_or(usize::MAX);
        assert!(kept < 100, "{kept} listener slots kept");
    }
}
