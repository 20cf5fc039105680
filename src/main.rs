//! The `fetch` binary: parse options, open inputs and output, run the library, map the outcome
//! to an exit code (see `fetch::exit`).

use std::process::ExitCode;

use clap::Parser;
use fetch::cli::{Args, Plan};
use fetch::{Error, Inputs, Output, Stop, StopReason, exit};

fn main() -> ExitCode {
    let args = Args::parse();
    let code = match args.resolve().and_then(run) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fetch: error: {error}");
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
    // Open everything before the first request: a bad path is an error with nothing sent.
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
        let summary = fetch::run(plan.config, inputs, output, stop).await;
        signals.abort();
        summary
    })?;
    let quietly_ended = summary.stopped == Some(StopReason::OutputClosed);
    if !plan.quiet && !quietly_ended {
        eprint!("{summary}");
    }
    Ok(summary.stopped.map_or(exit::OK, exit::for_stop))
}
