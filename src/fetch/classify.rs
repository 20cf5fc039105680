//! Sorting client errors into the stable error kinds, and describing them in one line.

use std::error::Error as StdError;

use crate::row::{ErrorKind, Failure};

/// Sorts a client error into a stable kind, keeping the underlying message as the detail.
pub(crate) fn classify(error: &reqwest::Error) -> Failure {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_dns() {
        ErrorKind::Dns
    } else if is_tls(error) {
        ErrorKind::Tls
    } else if error.is_connect() {
        ErrorKind::Connect
    } else if error.is_body() || error.is_decode() {
        ErrorKind::Body
    } else {
        ErrorKind::Protocol
    };
    Failure::new(kind, describe(error))
}

/// Whether the connection was closed or reset under the request, as opposed to the server
/// saying something broken: the former is worth a retry, the latter is not.
pub(crate) fn is_transient(error: &reqwest::Error) -> bool {
    causes(error).any(|cause| {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message() || hyper.is_canceled();
        }
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
    })
}

fn is_tls(error: &reqwest::Error) -> bool {
    causes(error).any(|cause| cause.is::<rustls::Error>())
}

/// The causes of an error, outermost first. Unlike `source()` alone, this also descends into the
/// error an `io::Error` wraps, which is where connectors put TLS errors (sometimes twice nested).
fn causes(error: &reqwest::Error) -> impl Iterator<Item = &(dyn StdError + 'static)> {
    let first = error.source();
    std::iter::successors(first, |&cause| {
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => io.source(),
            },
            None => cause.source(),
        }
    })
}

/// A one-line account of an error, from its causes, without reqwest's own "error sending request
/// for url (...)" (the URL is already in the row) and without the repeats that wrapping adds.
fn describe(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let message = cause.to_string();
        // hyper-util's wrapper ("client error (Connect)") names its own plumbing, not the cause.
        if message.starts_with("client error (") {
            continue;
        }
        if !parts.iter().any(|p| p.contains(&message)) {
            parts.push(message);
        }
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}
