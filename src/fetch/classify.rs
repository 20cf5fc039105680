//! Sorting request and body errors into the stable error kinds, and describing them in one line.

use std::error::Error as StdError;
use std::io;

use super::connect::ConnectError;
use super::tls::Rejected;
use crate::row::{ErrorKind, Failure};

/// Why a request got no response: no connection, or HTTP failed on it.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// An error from sending a request and waiting for its response headers.
pub(super) fn classify_request(error: &SendError) -> Failure {
    let kind = match error {
        SendError::Connect(ConnectError::Dns { .. } | ConnectError::NoAddresses(_)) => {
            ErrorKind::Dns
        }
        SendError::Connect(ConnectError::Timeout(_)) => ErrorKind::Timeout,
        SendError::Connect(ConnectError::Tls(_)) => ErrorKind::Tls,
        SendError::Connect(ConnectError::Tcp(e)) if e.kind() == io::ErrorKind::TimedOut => {
            ErrorKind::Timeout
        }
        SendError::Connect(ConnectError::Tcp(_) | ConnectError::NoHost) => ErrorKind::Connect,
        SendError::Connect(
            ConnectError::ProxyUnreachable { .. }
            | ConnectError::ProxyRefused { .. }
            | ConnectError::ProxyBroken { .. },
        ) => ErrorKind::Proxy,
        SendError::Http(_) => ErrorKind::Protocol,
    };
    Failure::new(kind, describe(error))
}

/// rustls's errors in words: certificate problems are what people meet (the verifier in
/// [`super::tls`] has put them in words already), and the rest read like Rust enums.
fn explain_tls(error: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match error {
        E::InvalidCertificate(C::Other(other)) => match other.0.downcast_ref::<Rejected>() {
            Some(rejected) => rejected.words.clone(),
            None => format!("certificate rejected: {}", other.0),
        },
        E::InvalidCertificate(other) => format!("certificate rejected ({other:?})"),
        E::InvalidMessage(_) => {
            "the server did not answer with TLS (is the port plain HTTP?)".into()
        }
        E::AlertReceived(alert) => {
            format!("the server refused the handshake (TLS alert {alert:?})")
        }
        E::PeerIncompatible(why) => format!("the server's TLS is incompatible with ours ({why:?})"),
        other => other.to_string(),
    }
}

/// An error while reading (or decoding) a response body.
pub(super) fn classify_body(error: &io::Error) -> Failure {
    Failure::new(ErrorKind::Body, describe(error))
}

/// How an HTTP/2 server said that it did not process a request, which may therefore go out
/// again as if it had never been sent (RFC 9113 §8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unprocessed {
    /// RST_STREAM with REFUSED_STREAM: typically a stream opened beyond the server's limit
    /// before its SETTINGS arrived. The connection itself is fine.
    Refused,
    /// GOAWAY: the stream was above the last one the server will process (§6.8), or was not
    /// yet handed to the connection when it shut down. The connection takes no new streams.
    GoingAway,
}

/// Whether `error`, from a request on an HTTP/2 connection, says the request was not processed.
pub(super) fn unprocessed(error: &hyper::Error) -> Option<Unprocessed> {
    for cause in causes(error) {
        let Some(h2) = cause.downcast_ref::<h2::Error>() else {
            continue;
        };
        if h2.is_remote() && h2.is_go_away() {
            return Some(Unprocessed::GoingAway);
        }
        if h2.is_remote() && h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
            return Some(Unprocessed::Refused);
        }
    }
    // hyper's HTTP/2 dispatcher holds a request that waits for a free stream outside h2; when
    // the connection shuts down after a GOAWAY it drops that request unsent, and this is all
    // its caller hears (hyper has no predicate for it).
    (error.is_user() && error.to_string() == "dispatch task is gone")
        .then_some(Unprocessed::GoingAway)
}

/// Whether a request that got no response is worth a retry: the connection went away under
/// it (see [`connection_lost`]), the proxy could not be reached, or it could not reach the site
/// (502, 503, 504). A name that does not resolve or a certificate that is refused will not
/// change by asking again.
pub(super) fn is_transient(error: &SendError) -> bool {
    match error {
        SendError::Connect(ConnectError::ProxyUnreachable { source, .. }) => {
            !matches!(**source, ConnectError::Tls(_))
        }
        SendError::Connect(ConnectError::ProxyRefused { status, .. }) => {
            matches!(status, 502..=504)
        }
        SendError::Connect(_) => false,
        SendError::Http(error) => connection_lost(error),
    }
}

/// Whether the connection was closed or reset under the request, or the server said it did
/// not process it, as opposed to the server saying something broken.
pub(super) fn connection_lost(error: &hyper::Error) -> bool {
    error.is_incomplete_message()
        || error.is_canceled()
        || unprocessed(error).is_some()
        || causes(error).any(|cause| {
            cause.downcast_ref::<io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                )
            })
        })
}

/// An error and its causes, outermost first. Unlike `source()` alone, this also descends into
/// the error an `io::Error` wraps (where TLS and body errors travel).
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&cause| {
        match cause.downcast_ref::<io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => io.source(),
            },
            None => cause.source(),
        }
    })
}

/// A one-line account of an error from its causes, without the repeats wrapping adds. A TLS
/// error is put in words and ends the account (what it wraps is rustls's business).
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            parts.push(explain_tls(tls));
            break;
        }
        let message = match cause.downcast_ref::<io::Error>() {
            // Says what the error it wraps says, which comes next.
            Some(io) if io.get_ref().is_some() => continue,
            Some(io)
                if io.kind() == io::ErrorKind::UnexpectedEof && parts.ends_with(&[TLS.into()]) =>
            {
                "the server closed the connection during the handshake".to_owned()
            }
            _ => cause.to_string(),
        };
        if message.is_empty() {
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

/// How [`ConnectError::Tls`] introduces what went wrong.
const TLS: &str = "TLS handshake failed";
