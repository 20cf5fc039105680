//! fetch: fetch very many URLs concurrently, politely and with bounded memory, one row per URL.
//!
//! The pipeline flows one way, one module per stage:
//!
//! ```text
//!            Job (line, text, URL or why not)     Attempt (timings, status, failure)
//! input ───────────────────────────────▶ schedule ──────────▶ fetch (one request)
//! (thread)   bounded channel              (limits,  ◀──────────   │ body bytes, as they come
//!                                          retries,   Hop          ▼
//!                                          stop)               extract (title, values, hash;
//!                                            │                 a thread pool, never the loop)
//!                                            │ Row (one per line)
//!                                            ▼
//!                                          output (CSV/JSONL; a thread) ──▶ report (tally)
//!                                            bounded channel                  summary, progress
//! ```
//!
//! This file puts the stages together, and wires the side features that touch several of
//! them: the skip filter (`--shard`, `--resume`, `--dedupe`) handed to input as a closure, the
//! row count the progress bar shows, the extraction pool the scheduler's tasks use. Channels
//! between stages are bounded and a concurrency permit is taken before a task is spawned, so
//! memory depends on `--concurrency` and the channel sizes, never on the length of the list.
//! Every non-skipped input line becomes exactly one row, whatever happens to it.
//!
//! The binary is a thin layer over [`run`]; tests, examples and benchmarks drive the same
//! function:
//!
//! ```no_run
//! # async fn demo() -> Result<(), fetch::Error> {
//! use fetch::{Config, Inputs, Output, Stop};
//! let inputs = Inputs::from_reader("list", &b"http://127.0.0.1:8080/\n"[..]);
//! let summary = fetch::run(Config::default(), inputs, Output::stdout(), Stop::new()).await?;
//! eprintln!("{summary}");
//! # Ok(()) }
//! ```

// What the input, the network or the file system hands the library must never make it panic:
// no unwrap/expect, no unchecked indexing, no panic! outside tests. The few that cannot fail
// carry an #[allow] with the reason.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod human;
pub mod input;
pub mod output;
pub mod redact;
pub mod report;
pub mod row;
pub mod schedule;
mod skip;
pub mod state;
pub mod stop;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::mpsc;

pub use crate::config::Config;
pub use crate::error::Error;
pub use crate::input::{Inputs, Source};
pub use crate::output::Output;
pub use crate::report::Summary;
pub use crate::state::State;
pub use crate::stop::{Stop, StopReason};

use crate::extract::{ExtractPool, Extractor};
use crate::fetch::{Fetcher, Transport};
use crate::input::Dedupe;
use crate::output::{ColumnSpec, Layout, OrderGate};
use crate::report::{Counters, Progress, Tally, Totals};
use crate::schedule::Work;
use crate::skip::Skip;
use crate::state::{Figures, Recorder, RunStart, Tracking};

/// The UTF-8 byte-order mark: skipped at the start of an input, written with `--bom`, skipped
/// again when a resumed or merged file starts with it.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Jobs read ahead of admission. Small: reading is far faster than fetching.
const JOB_QUEUE: usize = 1024;
/// Rows waiting for the writer, at most (in batches of up to [`schedule::ROW_BATCH`]). When
/// full, the dispatcher waits, and starts no request: that is the back-pressure.
const ROW_QUEUE: usize = 1024;

/// A configured pipeline, ready to run. Building it checks everything that can be checked before
/// a file is touched (the HTTP client, TLS setup), so a caller can fail before opening outputs.
pub struct Pipeline {
    config: Config,
    fetcher: Arc<dyn Transport>,
    layout: Layout,
    /// `--state`, once opened.
    state: Option<State>,
}

impl Pipeline {
    pub fn new(mut config: Config) -> Result<Pipeline, Error> {
        // The state compares bodies by their digest.
        config.extract.hash |= config.state.is_some();
        let layout = layout(&config)?;
        let capacity = fetch::Capacity {
            requests: config.limits.concurrency.get(),
            per_origin: config.limits.per_origin().get(),
        };
        let fetcher = Fetcher::new(&config.fetch, capacity)?;
        Ok(Pipeline {
            config,
            fetcher: Arc::new(fetcher),
            layout,
            state: None,
        })
    }

    /// A pipeline whose requests go through `transport` instead of the HTTP client `config`
    /// describes: everything else (limits, retries, extraction, ordering, output) is the same.
    /// How tests drive the whole pipeline without a network.
    pub fn with_transport(
        mut config: Config,
        transport: Arc<dyn Transport>,
    ) -> Result<Pipeline, Error> {
        config.extract.hash |= config.state.is_some();
        let layout = layout(&config)?;
        Ok(Pipeline {
            config,
            fetcher: transport,
            layout,
            state: None,
        })
    }

    /// How this pipeline writes rows (format, columns).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Opens and locks the state file the configuration names (`--state`), unless it is open
    /// already. [`Pipeline::run`] does it if the caller has not; the binary does it before
    /// opening the output, so that a state file in use fails the run before anything changes.
    pub fn open_state(&mut self) -> Result<Option<&State>, Error> {
        if self.state.is_none()
            && let Some(settings) = &self.config.state
        {
            self.state = Some(State::open(settings)?);
        }
        Ok(self.state.as_ref())
    }

    /// Runs the whole pipeline: reads `inputs`, fetches under the configured limits, writes one
    /// row per non-skipped line to `output`. Returns when the input is done or `stop` was
    /// triggered (by a signal, the `max_time` deadline, a closed output) and every row produced
    /// has been written.
    ///
    /// The summary's `stopped` field tells whether the run was cut short. An error means the run
    /// could not go on (unreadable input mid-way, failed write); rows written before it are kept.
    pub async fn run(
        mut self,
        inputs: Inputs,
        mut output: Output,
        stop: Stop,
    ) -> Result<Summary, Error> {
        let state = match (self.state.take(), self.config.state.clone()) {
            (Some(state), _) => Some(state),
            (None, Some(settings)) => Some(off_the_loop(move || State::open(&settings)).await?),
            (None, None) => None,
        };
        let Pipeline {
            config,
            fetcher,
            layout,
            ..
        } = self;
        let extractor = Arc::new(Extractor::new(config.extract.clone()));
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let total = inputs.countable_files().map(|files| {
            Box::new(move |abandon: &AtomicBool| input::count_rows(&files, abandon))
                as report::RowCount
        });
        let progress = Progress::start(config.progress, Arc::clone(&counters), total);

        let (row_tx, row_rx) = mpsc::channel(ROW_QUEUE / schedule::ROW_BATCH);
        let order = config.output.ordered.map(OrderGate::new);
        let carried = output.carried.take();
        let memory = match state {
            Some(state) => {
                let start = run_start(&config, state.conditional(), &output, carried.as_ref());
                let tracking = Arc::new(Tracking::new(&config.extract));
                Some(off_the_loop(move || remember(state, &start, tracking)).await?)
            }
            None => None,
        };
        let mut tally = Tally::new(Arc::clone(&counters));
        if memory.is_some() {
            tally = tally.with_changes();
        }
        if config.limits.robots.is_some() {
            tally = tally.with_robots();
        }
        let mut skip = Skip {
            shard: config.shard,
            recorded: output.recorded.take(),
            dedupe: config.dedupe.then(Dedupe::default),
            counters: Arc::clone(&counters),
        };
        let (recall, recorder) = match memory {
            Some((recall, recorder)) => (Some(recall), Some(recorder)),
            None => (None, None),
        };
        let written = output::spawn_writer(
            output,
            started,
            layout,
            order.clone(),
            row_rx,
            tally,
            recorder.map(|r| Box::new(r) as Box<dyn output::RowObserver>),
            stop.clone(),
        )?;
        let mut jobs = inputs
            .spawn_reader(JOB_QUEUE, move |job| skip.keep(job))
            .map_err(Error::Thread)?;
        if let Some(recall) = recall {
            jobs = state::spawn_recall(recall, jobs, JOB_QUEUE).map_err(Error::Thread)?;
        }
        let deadline = config
            .limits
            .max_time
            .map(|limit| tokio::time::Instant::now() + limit);
        let deadline_watch = deadline.map(|at| {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => stop.trigger(StopReason::Deadline),
                    () = stop.stopped() => {}
                }
            })
        });

        let work = Work {
            fetcher,
            extract: ExtractPool::start(extractor, workers::cores()).map_err(Error::Thread)?,
        };
        let scheduled = schedule::run(
            &config.limits,
            work,
            order,
            jobs,
            row_tx,
            stop.clone(),
            deadline,
            robots_tally(Arc::clone(&counters)),
        )
        .await;
        if let Some(watch) = deadline_watch {
            watch.abort();
        }
        let (tally, write_result) = written.await.map_err(|_| Error::Write {
            source: std::io::Error::other("the writer thread panicked"),
            partial: None,
            rows: None,
        })?;
        progress.finish().await;
        write_result?;
        scheduled?;
        Ok(tally.summary(started.elapsed(), stop.reason(), carried.as_ref()))
    }
}

/// Where the scheduler tells what robots.txt requests did: the report's counters.
fn robots_tally(counters: Arc<Counters>) -> schedule::RobotsTally {
    use schedule::RobotsEvent;
    use std::sync::atomic::Ordering::Relaxed;
    Arc::new(move |event| {
        let counter = match event {
            RobotsEvent::Requested => &counters.robots_requests,
            RobotsEvent::Found => &counters.robots_found,
            RobotsEvent::Missing => &counters.robots_missing,
            RobotsEvent::Unreachable => &counters.robots_unreachable,
        };
        counter.fetch_add(1, Relaxed);
    })
}

/// Runs a blocking call (SQLite, here) on tokio's blocking pool, never on the event loop.
async fn off_the_loop<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|_| Err(Error::Internal("a state call panicked")))
}

/// `--state`: what the run's record starts from.
fn run_start(
    config: &Config,
    conditional: bool,
    output: &Output,
    carried: Option<&Totals>,
) -> RunStart {
    let carried = carried.map_or_else(Figures::default, |totals| {
        let changes = totals.changes();
        Figures {
            rows: totals.rows(),
            errors: totals.errors(),
            new: changes.new,
            same: changes.same,
            changed: changes.changed,
            not_modified: changes.not_modified,
        }
    });
    RunStart {
        output: output.target().map(Into::into),
        resumed: output.continues(),
        carried,
        options: options_json(config, conditional),
    }
}

/// `--state`: begins the run's record, and sets up both ends of the state stage: the recall
/// stage after the input, and the recorder beside the writer.
fn remember(
    mut state: State,
    start: &RunStart,
    tracking: Arc<Tracking>,
) -> Result<(state::Recall, Recorder), Error> {
    let run = state.begin(start)?;
    let (conn, lock) = state.reader()?;
    let recall = state::Recall {
        conn,
        lock,
        path: state.path().to_path_buf(),
        tracking: Arc::clone(&tracking),
        conditional: state.conditional(),
    };
    Ok((
        recall,
        Recorder::start(state, run, tracking, start.carried)?,
    ))
}

/// What the `runs` table keeps of a run's options: those that decide what its rows mean.
fn options_json(config: &Config, conditional: bool) -> serde_json::Value {
    let values: Vec<serde_json::Value> = config
        .extract
        .values
        .iter()
        .map(|v| serde_json::json!({"name": v.name(), "extracts": v.describe()}))
        .collect();
    serde_json::json!({
        "method": config.fetch.method.as_str(),
        "user_agent": String::from_utf8_lossy(config.fetch.user_agent.as_bytes()),
        "follow_redirects": config.fetch.follow_redirects,
        "max_body": config.fetch.max_body,
        "conditional": conditional,
        "title": config.extract.title,
        "values": values,
        "dedupe": config.dedupe,
        "shard": config.shard.map(|s| s.to_string()),
    })
}

/// The layout `config` asks for: the output options, with the columns the other stages' options
/// add (the hash, the TLS columns, the change columns, header columns, selector and regex
/// values).
fn layout(config: &Config) -> Result<Layout, Error> {
    let spec = ColumnSpec {
        hash: config.extract.hash,
        tls_info: config.fetch.tls_info,
        changes: config.state.is_some(),
        headers: config
            .fetch
            .header_columns
            .iter()
            .map(|(_, c)| c.clone())
            .collect(),
        values: config.extract.value_names().map(String::from).collect(),
    };
    config.output.layout(&spec).map_err(Error::Usage)
}

/// Builds a [`Pipeline`] from `config` and runs it; see [`Pipeline::run`].
pub async fn run(
    config: Config,
    inputs: Inputs,
    output: Output,
    stop: Stop,
) -> Result<Summary, Error> {
    Pipeline::new(config)?.run(inputs, output, stop).await
}
