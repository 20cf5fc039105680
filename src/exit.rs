//! Exit codes: the contract with cron wrappers and scripts. Documented in the README; never
//! renumber.

use fetch::StopReason;

/// The run completed: every line has a row, whatever the HTTP statuses.
pub const OK: i32 = 0;
/// A fatal I/O error: unreadable input, unwritable output, a write that failed mid-run.
pub const IO_ERROR: i32 = 1;
/// Bad options or arguments (also what clap uses for its own usage errors).
pub const USAGE: i32 = 2;
/// The run completed, but more rows failed (an error or a 5xx) than `--fail-on-errors` allows.
pub const TOO_MANY_ERRORS: i32 = 3;
/// `--exit-on-change`: the run completed and at least one row changed since the state's last
/// run (and no more rows failed than `--fail-on-errors` allows, which 3 would say first).
pub const CHANGED: i32 = 4;
/// `--max-time` passed before the list was done; the output holds the rows done so far. The same
/// code as coreutils' `timeout`.
pub const DEADLINE: i32 = 124;
/// Stopped by SIGINT (128 + 2).
pub const INTERRUPTED: i32 = 130;
/// Stopped by SIGTERM (128 + 15).
pub const TERMINATED: i32 = 143;

/// The exit code for a run that ended early for `reason`.
pub fn for_stop(reason: StopReason) -> i32 {
    match reason {
        StopReason::Interrupted => INTERRUPTED,
        StopReason::Terminated => TERMINATED,
        StopReason::Deadline => DEADLINE,
        // `fetch ... | head` is a normal way to end; `Failed` carries its own error.
        StopReason::OutputClosed => OK,
        StopReason::Failed => IO_ERROR,
    }
}
