//! Stopping a run early: one shared signal that every await in the pipeline listens to, and the
//! reason it was raised.
//!
//! The first reason wins and is never overwritten, so a Ctrl-C after the deadline still reports
//! the deadline. Raising the signal never kills anything by itself: each stage notices it, ends
//! its work, and the rows already produced are still written.

use std::sync::{Arc, OnceLock};

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
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop. Only the first reason is kept.
    pub fn trigger(&self, reason: StopReason) {
        if self.reason.set(reason).is_ok() {
            self.token.cancel();
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
}

/// Listens for SIGINT and SIGTERM for the life of the process: the first stops the run
/// gracefully; a second one (of either) exits at once with the matching code, for when the user
/// does not want to wait for in-flight requests to be recorded.
#[cfg(unix)]
pub fn watch_signals(stop: Stop) -> std::io::Result<tokio::task::JoinHandle<()>> {
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
                std::process::exit(crate::exit::for_stop(reason));
            }
            seen = true;
            stop.trigger(reason);
        }
    }))
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
pub fn watch_signals(stop: Stop) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.trigger(StopReason::Interrupted);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(crate::exit::INTERRUPTED);
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
}
