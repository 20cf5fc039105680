//! Sorting request and body errors into the stable error kinds, and describing them in one line.

use std::error::Error as StdError;
use std::io;

use super::connect::ConnectError;
use crate::row::{ErrorKind, Failure};

/// An error from sending a request and waiting for its response headers.
pub(super) fn classify_request(error: &(dyn StdError + 'static)) -> Failure {
    let kind = match causes(error).find_map(|c| c.downcast_ref::<ConnectError>()) {
        Some(ConnectError::Dns { .. } | ConnectError::NoAddresses(_)) => ErrorKind::Dns,
        Some(ConnectError::Timeout(_)) => ErrorKind::Timeout,
        Some(ConnectError::Tls(_)) => ErrorKind::Tls,
        Some(ConnectError::Tcp(e)) if e.kind() == io::ErrorKind::TimedOut => ErrorKind::Timeout,
        Some(ConnectError::Tcp(_) | ConnectError::Proxy(_) | ConnectError::NoHost) => {
            ErrorKind::Connect
        }
        None => ErrorKind::Protocol,
    };
    let detail = match causes(error).find_map(|c| c.downcast_ref::<rustls::Error>()) {
        Some(tls) => format!("TLS handshake failed: {}", explain_tls(tls)),
        None => describe(error),
    };
    Failure::new(kind, detail)
}

/// rustls's errors in words: certificate problems are what people meet, and their debug-style
/// names ("Other(OtherError(CaUsedAsEndEntity))") say little.
fn explain_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(certificate) = error else {
        return error.to_string();
    };
    match certificate {
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the certificate is not valid for this host name".into()
        }
        C::UnknownIssuer => "the certificate is not signed by a trusted authority".into(),
        C::Revoked => "the certificate has been revoked".into(),
        C::BadSignature => "the certificate's signature is invalid".into(),
        other => {
            let name = format!("{other:?}");
            if name.contains("CaUsedAsEndEntity") {
                "the server presents a CA certificate as its own (self-signed?)".into()
            } else {
                format!("the certificate was rejected ({name})")
            }
        }
    }
}

/// An error while reading (or decoding) a response body.
pub(super) fn classify_body(error: &io::Error) -> Failure {
    Failure::new(ErrorKind::Body, describe(error))
}

/// Whether the connection was closed or reset under the request, as opposed to the server
/// saying something broken: the former is worth a retry, the latter is not.
pub(super) fn is_transient(error: &(dyn StdError + 'static)) -> bool {
    causes(error).any(|cause| {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message() || hyper.is_canceled();
        }
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

/// A one-line account of an error from its causes, without the repeats wrapping adds.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let message = cause.to_string();
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
