//! The progress bar on stderr. Hidden unless asked for (stderr a terminal, no `--quiet`); when
//! shown it is redrawn from the counters on a timer, so the request path never touches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Counters;

/// Counts the rows the run will write, for a bar with a total; gives up when its flag is set.
/// Runs on a thread of its own while the run goes on.
pub type RowCount = Box<dyn FnOnce(&AtomicBool) -> std::io::Result<u64> + Send>;

pub struct Progress {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
    done: Arc<AtomicBool>,
}

const TICK: Duration = Duration::from_millis(200);

impl Progress {
    /// Starts drawing when `visible`; with `count`, counts the rows to come in the background
    /// so the bar can show a total.
    pub fn start(visible: bool, counters: Arc<Counters>, count: Option<RowCount>) -> Progress {
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
        if let Some(count) = count {
            count_in_background(count, Arc::clone(&total), Arc::clone(&done));
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

fn count_in_background(count: RowCount, total: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    // A progress nicety: if the thread cannot start or a file cannot be re-read, the bar simply
    // stays a spinner.
    let _ = std::thread::Builder::new()
        .name("fetch-count".into())
        .spawn(move || {
            if let Ok(rows) = count(&done) {
                total.store(rows, Ordering::Relaxed);
            }
        });
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed} {pos} rows · {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed} [{wide_bar}] {pos}/{len} · {msg} · eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
