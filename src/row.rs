//! The row: what the run records for one input line, and the stable error kinds.
//!
//! Every non-skipped input line becomes exactly one [`Row`], whatever happened to it. A row holds
//! typed values; how they become cells (order, names, units, formula safety) is the output
//! stage's business (`output::columns`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Why a line has no successful response. The `snake_case` names are the values of the `error`
/// column: scripts match on them, so they are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not a URL.
    InvalidUrl,
    /// A URL, but not http or https.
    UnsupportedScheme,
    /// The line could not be read as text: not UTF-8, or longer than the line limit.
    InvalidInput,
    /// The host name did not resolve.
    Dns,
    /// No TCP connection could be made (refused, reset, unreachable).
    Connect,
    /// The proxy could not be reached, or refused the request itself (never the site's answer).
    Proxy,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// `--timeout` (or `--connect-timeout`) passed before the body was read.
    Timeout,
    /// The redirect chain was longer than allowed.
    TooManyRedirects,
    /// A redirect pointed somewhere that cannot be followed (bad `Location`, not http/https).
    BadRedirect,
    /// The server broke HTTP: garbage status line, bad headers, connection closed early.
    Protocol,
    /// The response body could not be read or decoded.
    Body,
    /// The run was interrupted (Ctrl-C, SIGTERM) while this request was in flight.
    Cancelled,
    /// `--max-time` passed while this request was in flight.
    Deadline,
    /// `--robots`: the host's robots.txt disallows the URL (or could not be fetched, which
    /// disallows everything for now); no request was made.
    Robots,
    /// A bug in fetch: the task handling this line panicked.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order the summary lists them.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::InvalidUrl,
        ErrorKind::UnsupportedScheme,
        ErrorKind::InvalidInput,
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Proxy,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::TooManyRedirects,
        ErrorKind::BadRedirect,
        ErrorKind::Protocol,
        ErrorKind::Body,
        ErrorKind::Cancelled,
        ErrorKind::Deadline,
        ErrorKind::Robots,
        ErrorKind::Internal,
    ];

    /// The kind an `error` cell names, if any.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The value written in the `error` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::UnsupportedScheme => "unsupported_scheme",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::BadRedirect => "bad_redirect",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Body => "body",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Deadline => "deadline",
            ErrorKind::Robots => "robots",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure attached to a row: a stable kind for machines, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

/// One output row. `None` is an empty cell. Durations are measured from the start of the final
/// attempt (see `fetch::Attempt`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Position among the lines that get rows (from 0, no gaps): what `--ordered` sorts by.
    pub seq: u64,
    /// Physical line number in the input, from 1, running on across several inputs.
    pub line: u64,
    /// The input line, trimmed, a password in it shown as `***`.
    pub url: String,
    pub status: Option<u16>,
    pub latency: Option<Duration>,
    pub ttfb: Option<Duration>,
    /// Body bytes read, after content decoding.
    pub bytes: Option<u64>,
    pub content_type: Option<String>,
    pub final_url: Option<String>,
    pub redirects: Option<u32>,
    /// Requests made for this line (0 when the line was never requested).
    pub attempts: u32,
    /// When the final attempt was handed to the HTTP client.
    pub started_at: Option<SystemTime>,
    pub error: Option<ErrorKind>,
    pub error_detail: Option<String>,
    pub title: Option<String>,
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    /// Time the final attempt waited on limits before it started.
    pub queue: Option<Duration>,
    pub reused: Option<bool>,
    pub remote_ip: Option<IpAddr>,
    pub body_sha256: Option<String>,
    /// `HTTP/1.1`, `HTTP/2`…: of the final response, or of its connection when none came.
    pub http_version: Option<&'static str>,
    /// `--tls-info`: the TLS of the connection to the site.
    pub tls_info: Option<Arc<TlsFacts>>,
    /// The final response's `Content-Encoding`, as sent.
    pub content_encoding: Option<String>,
    /// Body bytes as received, before content decoding.
    pub wire_bytes: Option<u64>,
    /// The `Location` of a 3xx final response, resolved against its URL.
    pub location: Option<String>,
    /// One per `--header-column`, in the order given: the final response's values, joined.
    pub headers: Vec<Option<String>>,
    /// One per `--select`/`--regex`, in the order given.
    pub values: Vec<Option<String>>,
    /// `--state`: the URL's key in the state and what the state knew of it.
    pub tracked: Option<Box<Tracked>>,
    /// `--state`: the final response's validators (`ETag`, `Last-Modified`).
    pub validators: Option<Box<Validators>>,
    /// `--state`: how the row compares with what the state knew; `None` for rows that are not
    /// an observation of their URL (bad input, a request cut off by a stop).
    pub change: Option<Box<Change>>,
}

/// `--state`: what a run tracks of a line's URL.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tracked {
    /// The URL as parsed and written back (normalised), a password in it as `***`: its key in
    /// the state, the same for every spelling of the URL `--dedupe` treats as one.
    pub key: String,
    /// What the state held for the URL before this run; `None` for a URL it has never seen.
    pub known: Option<Known>,
    /// The validators to send with the request (a conditional request), if any.
    pub conditions: Option<Arc<Conditions>>,
}

/// A URL's record in the state, as an earlier run left it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Known {
    /// The record's id in the state.
    pub id: i64,
    /// The status of the last response received.
    pub status: Option<u16>,
    /// The error kind of the last check, by name.
    pub error: Option<String>,
    pub final_url: Option<String>,
    /// The title of the last good response: `Some("")` for a page without one, `None` when no
    /// title was extracted.
    pub title: Option<String>,
    /// The body digest of the last good response; `None` before the first one.
    pub body_sha256: Option<String>,
    /// The `--select`/`--regex` values of the last good response, by column name.
    pub values: Vec<(String, Option<String>)>,
    /// The validators of the last good 200 response, for `final_url`.
    pub validators: Validators,
    pub last_changed: Option<SystemTime>,
    /// A fingerprint of the extraction options the title and values came from.
    pub spec: i64,
}

/// Validators of a response (RFC 9110 §8.8), as the server sent them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A conditional request: the validators to send (`If-None-Match`, `If-Modified-Since`), and
/// the URL they belong to (sent only to that hop of a redirect chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditions {
    /// The URL as a row shows it (a password as `***`).
    pub url: String,
    pub validators: Validators,
}

/// How a row compares with the state's record of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The state had no record of the URL.
    New,
    /// Fetched, and nothing compared has changed.
    Same,
    /// At least one field compared has changed (`changed_fields` says which).
    Changed,
    /// The server answered 304 Not Modified to a conditional request.
    NotModified,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 4] = [
        ChangeKind::New,
        ChangeKind::Same,
        ChangeKind::Changed,
        ChangeKind::NotModified,
    ];

    /// The value written in the `change` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Same => "same",
            ChangeKind::Changed => "changed",
            ChangeKind::NotModified => "not_modified",
        }
    }

    /// The kind a `change` cell names, if any.
    pub fn from_name(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The change columns of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// The fields that changed, comma-separated, in column order; empty when none did.
    pub fields: String,
    /// When the URL last changed (or was first seen).
    pub last_changed: Option<SystemTime>,
}

/// What a TLS connection (or a handshake that failed on its certificate) showed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFacts {
    /// `TLSv1.2`, `TLSv1.3`; `None` when the handshake did not finish.
    pub version: Option<&'static str>,
    /// The leaf certificate the server presented.
    pub certificate: Option<Certificate>,
}

/// The parts of a certificate a row shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// RFC 4514 text, e.g. `CN=shop.example, O=Shop`.
    pub subject: String,
    pub issuer: String,
    pub not_after: Option<SystemTime>,
}

impl Certificate {
    /// Whole days from `at` until the certificate expires; negative once it has.
    pub fn days_left(&self, at: SystemTime) -> Option<i64> {
        let not_after = self.not_after?;
        let seconds = match not_after.duration_since(at) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).ok()?,
            Err(past) => -i64::try_from(past.duration().as_secs()).ok()?,
        };
        Some(seconds.div_euclid(86_400))
    }
}

impl Row {
    /// A row for a line that was never requested (bad input).
    pub fn unrequested(line: u64, url: String, failure: Failure) -> Row {
        Row {
            seq: 0,
            line,
            url,
            error: Some(failure.kind),
            error_detail: Some(failure.detail),
            ..Row::default()
        }
    }

    /// Whether the row has an error (HTTP 4xx/5xx are results, not errors).
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
}

/// Milliseconds with microsecond resolution: short in CSV (`12.345`) and exact enough for latency.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T08:15:02.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_names_match_serde() {
        for kind in ErrorKind::ALL {
            let json = serde_json_like(kind);
            assert_eq!(json, kind.as_str());
        }
    }

    /// What serde's `rename_all` produces, via the csv serializer (no JSON dependency here).
    fn serde_json_like(kind: ErrorKind) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.serialize(kind).unwrap();
        String::from_utf8(w.into_inner().unwrap())
            .unwrap()
            .trim_end()
            .to_owned()
    }

    #[test]
    fn days_left_are_whole_and_negative_once_expired() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let cert = |delta: i64| Certificate {
            subject: String::new(),
            issuer: String::new(),
            not_after: Some(if delta >= 0 {
                at + Duration::from_secs(delta.unsigned_abs())
            } else {
                at - Duration::from_secs(delta.unsigned_abs())
            }),
        };
        assert_eq!(cert(10 * 86_400 + 3_600).days_left(at), Some(10));
        assert_eq!(cert(3_600).days_left(at), Some(0));
        assert_eq!(cert(-3_600).days_left(at), Some(-1));
        assert_eq!(cert(-2 * 86_400).days_left(at), Some(-2));
    }

    #[test]
    fn millis_keeps_microseconds() {
        assert_eq!(millis(Duration::from_micros(12_345)), 12.345);
        assert_eq!(millis(Duration::from_secs(2)), 2000.0);
    }
}
