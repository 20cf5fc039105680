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
pub mod stop;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::mpsc;

pub use crate::config::Config;
pub use crate::error::Error;
pub use crate::input::{Inputs, Source};
pub use crate::output::Output;
pub use crate::report::Summary;
pub use crate::stop::{Stop, StopReason};

use crate::extract::{ExtractPool, Extractor};
use crate::fetch::{Fetcher, Transport};
use crate::input::Dedupe;
use crate::output::{ColumnSpec, Layout, OrderGate};
use crate::report::{Counters, Progress, Tally};
use crate::schedule::Work;
use crate::skip::Skip;

/// The UTF-8 byte-order mark: skipped at the start of an input, written with `--bom`, skipped
/// again when a resumed or merged file starts with it.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Jobs read ahead of admission. Small: reading is far faster than fetching.
const JOB_QUEUE: usize = 1024;
/// Rows waiting for the writer. When full, request tasks wait: that is the back-pressure.
const ROW_QUEUE: usize = 1024;

/// A configured pipeline, ready to run. Building it checks everything that can be checked before
/// a file is touched (the HTTP client, TLS setup), so a caller can fail before opening outputs.
pub struct Pipeline {
    config: Config,
    fetcher: Arc<dyn Transport>,
    layout: Layout,
}

impl Pipeline {
    pub fn new(config: Config) -> Result<Pipeline, Error> {
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
        })
    }

    /// A pipeline whose requests go through `transport` instead of the HTTP client `config`
    /// describes: everything else (limits, retries, extraction, ordering, output) is the same.
    /// How tests drive the whole pipeline without a network.
    pub fn with_transport(
        config: Config,
        transport: Arc<dyn Transport>,
    ) -> Result<Pipeline, Error> {
        let layout = layout(&config)?;
        Ok(Pipeline {
            config,
            fetcher: transport,
            layout,
        })
    }

    /// How this pipeline writes rows (format, columns).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Runs the whole pipeline: reads `inputs`, fetches under the configured limits, writes one
    /// row per non-skipped line to `output`. Returns when the input is done or `stop` was
    /// triggered (by a signal, the `max_time` deadline, a closed output) and every row produced
    /// has been written.
    ///
    /// The summary's `stopped` field tells whether the run was cut short. An error means the run
    /// could not go on (unreadable input mid-way, failed write); rows written before it are kept.
    pub async fn run(
        self,
        inputs: Inputs,
        mut output: Output,
        stop: Stop,
    ) -> Result<Summary, Error> {
        let Pipeline {
            config,
            fetcher,
            layout,
        } = self;
        let extractor = Arc::new(Extractor::new(config.extract.clone()));
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let total = inputs.countable_files().map(|files| {
            Box::new(move |abandon: &AtomicBool| input::count_rows(&files, abandon))
                as report::RowCount
        });
        let progress = Progress::start(config.progress, Arc::clone(&counters), total);

        let (row_tx, row_rx) = mpsc::channel(ROW_QUEUE);
        let order = config.output.ordered.map(OrderGate::new);
        let carried = output.carried.take();
        let mut skip = Skip {
            shard: config.shard,
            recorded: output.recorded.take(),
            dedupe: config.dedupe.then(Dedupe::default),
            counters: Arc::clone(&counters),
        };
        let written = output::spawn_writer(
            output,
            layout,
            order.clone(),
            row_rx,
            Tally::new(Arc::clone(&counters)),
            stop.clone(),
        )?;
        let jobs = inputs
            .spawn_reader(JOB_QUEUE, move |job| skip.keep(job))
            .map_err(Error::Thread)?;
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
            extract: ExtractPool::start(extractor, cores()).map_err(Error::Thread)?,
        };
        let scheduled = schedule::run(
            &config.limits,
            work,
            order,
            jobs,
            row_tx,
            stop.clone(),
            deadline,
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

/// The layout `config` asks for: the output options, with the columns the other stages' options
/// add (the hash, the TLS columns, header columns, selector and regex values).
fn layout(config: &Config) -> Result<Layout, Error> {
    let spec = ColumnSpec {
        hash: config.extract.hash,
        tls_info: config.fetch.tls_info,
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

/// Threads for HTML parsing: one per core.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
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
