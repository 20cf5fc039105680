//! The `fetch` binary: parse options, open inputs and output, run the library, map the outcome
//! to an exit code (see `fetch::exit`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use fetch::cli::{Args, Plan};
use fetch::{Error, Inputs, Output, Pipeline, Stop, StopReason, exit};

fn main() -> ExitCode {
    let args = Args::parse();
    let code = match args.resolve().and_then(run) {
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
    allow_enough_sockets(plan.config.concurrency.get());
    // Everything that can fail is checked before the output is touched and before the first
    // request: the client, then the inputs, then the output.
    let pipeline = Pipeline::new(plan.config)?;
    let inputs = Inputs::open(&plan.sources)?;
    let output = match &plan.output {
        Some(path) => Output::create(path)?,
        None => Output::stdout(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Thread)?;
    let summary = runtime.block_on(async {
        let stop = Stop::new();
        let signals = fetch::stop::watch_signals(stop.clone()).map_err(Error::Thread)?;
        let summary = pipeline.run(inputs, output, stop).await;
        signals.abort();
        summary
    })?;
    let quietly_ended = summary.stopped == Some(StopReason::OutputClosed);
    if !plan.quiet && !quietly_ended {
        say(summary.to_string().trim_end());
    }
    Ok(summary.stopped.map_or(exit::OK, exit::for_stop))
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

/// One line on stderr. A closed stderr is not worth crashing over.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
