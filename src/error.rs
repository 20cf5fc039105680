//! Errors of the run itself, as opposed to per-URL failures (which are rows, see
//! [`crate::row::Failure`]). Each of these stops the run; the binary maps them to exit codes.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options or arguments make no sense together.
    #[error("{0}")]
    Usage(String),

    #[error("cannot read input file '{}': {source}", path.display())]
    Input { path: PathBuf, source: io::Error },

    #[error("error reading {name}: {source}")]
    Read { name: String, source: io::Error },

    #[error("cannot write output file '{}': {source}", path.display())]
    OutputOpen { path: PathBuf, source: io::Error },

    #[error("error writing output: {source}{}", partial_note(partial.as_deref(), *rows))]
    Write {
        source: io::Error,
        /// Where the rows written before the error are, when writing to a file.
        partial: Option<PathBuf>,
        /// How many complete rows that file holds, when known.
        rows: Option<u64>,
    },

    #[error("cannot write summary file '{}': {source}", path.display())]
    SummaryFile { path: PathBuf, source: io::Error },

    /// `--state`: the state file cannot be used (locked by another run, not a state file, a
    /// failed write).
    #[error("state file '{}': {why}", path.display())]
    State { path: PathBuf, why: String },

    #[error("cannot use the CA certificates in '{}': {why}", path.display())]
    CaFile { path: PathBuf, why: String },

    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),

    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),

    /// A bug: a part of the pipeline panicked. The rows written so far are kept.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

fn partial_note(partial: Option<&std::path::Path>, rows: Option<u64>) -> String {
    match (partial, rows) {
        (Some(p), Some(0)) => format!("; '{}' holds no row yet", p.display()),
        (Some(p), Some(rows)) => format!(
            "; '{}' holds the {} written before it, each complete",
            p.display(),
            crate::human::count(rows, "row")
        ),
        (Some(p), None) => format!(" (the rows written so far are in '{}')", p.display()),
        (None, _) => String::new(),
    }
}

impl Error {
    /// Whether the error is the user's to fix in the command line rather than an I/O failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}
