//! The `fetch` binary: parse options, open inputs and output, run the library, map the outcome
//! to an exit code (`exit.rs`, which only the binary knows).

use std::io::Write;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::CommandFactory;
use fetch::cli::{Action, Args, MergePlan, Plan};
use fetch::{Error, Inputs, Output, Pipeline, Stop, StopReason};

mod allocator;
mod exit;

#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

fn main() -> ExitCode {
    write_errors_not_signals();
    let result = Args::parse_ordered()
        .resolve()
        .and_then(|action| match action {
            Action::Run(plan) => run(*plan),
            Action::Merge(plan) => merge(plan),
            Action::Completions(shell) => {
                print_completions(shell);
                Ok(exit::OK)
            }
            Action::Man => print_man()
                .map(|()| exit::OK)
                .map_err(|source| Error::Write {
                    source,
                    partial: None,
                    rows: None,
                }),
        });
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            say(&format!("fetch: error: {error}"));
            if error.is_usage() {
                exit::USAGE
            } else {
                exit::IO_ERROR
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(plan: Plan) -> Result<i32, Error> {
    allow_enough_sockets(plan.config.limits.concurrency.get());
    // Everything that can fail is checked before the output is touched and before the first
    // request: the client, then the inputs, then the output.
    let shard = plan.config.shard.map(|s| s.to_string());
    let mut pipeline = Pipeline::new(plan.config)?;
    let inputs = Inputs::open(&plan.sources)?;
    // Locked before the output is touched: a state file another run holds changes nothing.
    let mut recorded = None;
    if let Some(state) = pipeline.open_state()? {
        warn_of_another_shard(state, shard)?;
        if let (Some(path), true) = (&plan.output, plan.resume) {
            recorded = state.recorded_rows(path)?;
        }
    }
    // Opened now so an unwritable path fails before any request, written at the end.
    let summary_file = plan
        .summary_json
        .as_deref()
        .map(|path| {
            fetch::output::ReplacingFile::create(path).map_err(|source| Error::SummaryFile {
                path: path.to_path_buf(),
                source,
            })
        })
        .transpose()?;
    let output = match &plan.output {
        Some(path) if plan.resume => fetch::output::resume(path, pipeline.layout(), recorded)?,
        Some(path) => Output::create(path)?,
        None => Output::stdout(),
    };
    let runtime = runtime(plan.threads)?;
    let summary = runtime.block_on(async {
        let stop = Stop::new();
        // A second Ctrl-C or SIGTERM exits at once: the user does not want to wait.
        let exit_now = |reason| std::process::exit(exit::for_stop(reason));
        let signals = fetch::stop::watch_signals(stop.clone(), exit_now).map_err(Error::Thread)?;
        let summary = pipeline.run(inputs, output, stop).await;
        signals.abort();
        summary
    })?;
    let quietly_ended = summary.stopped == Some(StopReason::OutputClosed);
    if !plan.quiet && !quietly_ended {
        say(summary.to_string().trim_end());
    }
    if let (Some(file), Some(path)) = (summary_file, &plan.summary_json) {
        write_summary_json(file, path, &summary)?;
    }
    if let Some(code) = summary
        .stopped
        .map(exit::for_stop)
        .filter(|&c| c != exit::OK)
    {
        return Ok(code);
    }
    if let Some(limit) = plan.fail_on_errors
        && summary.failure_share() > limit
    {
        say(&format!(
            "fetch: {:.1}% of rows failed (errors or 5xx), more than --fail-on-errors {:.1}%",
            summary.failure_share() * 100.0,
            limit * 100.0
        ));
        return Ok(exit::TOO_MANY_ERRORS);
    }
    if plan.exit_on_change && summary.changes.is_some_and(|c| c.changed > 0) {
        return Ok(exit::CHANGED);
    }
    Ok(exit::OK)
}

/// One state file per shard: a state last used for another part of the list would call every
/// URL of this one new, and keep the other part's URLs unchecked.
fn warn_of_another_shard(state: &fetch::State, shard: Option<String>) -> Result<(), Error> {
    let name = |shard: &Option<String>| match shard {
        Some(shard) => format!("shard {shard}"),
        None => "the whole list (no --shard)".to_owned(),
    };
    if let Some(last) = state.last_shard()?
        && last != shard
    {
        say(&format!(
            "fetch: warning: the state file '{}' was last used for {}, and this run takes {}; \
             give each shard a state file of its own",
            state.path().display(),
            name(&last),
            name(&shard)
        ));
    }
    Ok(())
}

/// How many tasks the runtime polls between two looks for socket events (tokio's default is
/// 61). With 50 requests in flight each response wakes a few tasks, so at 61 the loop asked
/// the kernel for events about every dozen responses; at 128 it asks half as often, and W1 and
/// W4b ran 5 to 7 % faster in interleaved runs. Much higher (256 and up) delayed the reading
/// of small responses behind large ones: the mixed list's small-page p90 rose from ×1.3 to
/// ×1.75 of the list alone. See the README's Performance section.
const EVENT_INTERVAL: u32 = 128;

/// The async runtime: by default one event loop on this thread, which drives every connection
/// with about a quarter less CPU per URL than two workers handing tasks to each other (see the
/// README's Performance section); `--threads N` for a pool of N workers.
fn runtime(threads: NonZeroUsize) -> Result<tokio::runtime::Runtime, Error> {
    let mut builder = if threads.get() == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads.get());
        builder
    };
    builder
        .event_interval(EVENT_INTERVAL)
        .enable_all()
        .build()
        .map_err(Error::Thread)
}

/// `--merge`: shard outputs into one file, header once, rows by line.
fn merge(plan: MergePlan) -> Result<i32, Error> {
    let output = match &plan.output {
        Some(path) => Output::create(path)?,
        None => Output::stdout(),
    };
    let rows = fetch::output::merge(&plan.files, plan.format, output)?;
    if !plan.quiet {
        say(&format!(
            "fetch: merged {} from {}",
            fetch::human::count(rows, "row"),
            fetch::human::count(plan.files.len() as u64, "file")
        ));
    }
    Ok(exit::OK)
}

fn write_summary_json(
    file: fetch::output::ReplacingFile,
    path: &std::path::Path,
    summary: &fetch::Summary,
) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default() + "\n";
    file.commit(text.as_bytes())
        .map_err(|source| Error::SummaryFile {
            path: path.to_path_buf(),
            source,
        })
}

fn print_completions(shell: clap_complete::Shell) {
    let mut command = Args::command();
    clap_complete::generate(shell, &mut command, "fetch", &mut std::io::stdout());
}

fn print_man() -> std::io::Result<()> {
    clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout())
}

/// Raises the open-file limit as far as allowed (each request in flight holds a socket), and
/// warns when even that is too low for the concurrency asked for.
fn allow_enough_sockets(concurrency: usize) {
    // Sockets in flight, plus idle pooled connections, files and the runtime's own.
    let wanted = concurrency as u64 * 2 + 64;
    let limit = rlimit::increase_nofile_limit(wanted).unwrap_or(wanted);
    if limit < wanted {
        say(&format!(
            "fetch: warning: the open-file limit is {limit}, too low for --concurrency \
             {concurrency}; requests may fail with 'Too many open files' (raise it with \
             'ulimit -n {wanted}' or lower --concurrency)"
        ));
    }
}

/// A file size limit (`ulimit -f`) makes the kernel kill a writer with SIGXFSZ, which would
/// leave no message and a partial file cut anywhere. Ignored, it is a write error (EFBIG) like
/// a full disk: reported, with the partial file cut back to its last complete row.
fn write_errors_not_signals() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to ignore, before any thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// One line on stderr. A closed stderr is not worth crashing over.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
