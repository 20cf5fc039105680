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

    #[error("error writing output: {0}")]
    Write(#[source] io::Error),

    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),

    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),
}

impl Error {
    /// Whether the error is the user's to fix in the command line rather than an I/O failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}
