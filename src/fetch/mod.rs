//! Fetch: one attempt at one URL, timed and bounded, turned into an [`Attempt`].
//!
//! This module knows nothing of scheduling; by the time [`Fetcher::fetch`] is called every limit
//! has been passed, so all the time measured here is time spent on the request. One call makes
//! one request: a redirect comes back as the next URL to request, which the scheduler sends
//! through every limit again (a hop to another host obeys that host's limits), while the
//! [`Attempt`] carries the chain's count, timing and time budget from hop to hop. Bodies are
//! streamed and decoded, counted, and offered to a [`BodySink`], which keeps what later stages
//! need.
//!
//! It builds on hyper's connection API with a connector and a pool of its own (see [`connect`]
//! and [`pool`]), because per-phase timing (DNS, connect, TLS) and connection reuse can only be
//! observed from inside the connection, which higher-level clients do not expose.

mod classify;
mod client;
mod connect;
mod decode;
mod pool;
mod proxy;
mod resolve;
mod retry_after;
mod tls;
mod transport;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, COOKIE,
    ETAG, HOST, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
    PROXY_AUTHORIZATION, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use tokio::time::Instant;
use url::{Position, Url};

use crate::error::Error;
use crate::human;
use crate::redact::{basic_auth, into_shown, redact, redact_url, without_credentials};
use crate::row::{Conditions, ErrorKind, Failure, TlsFacts, Validators};

use self::classify::{classify_body, classify_request, is_transient};
use self::connect::Reached;
use self::decode::{DecodedBody, Decoders};
use self::pool::{Lease, Pool};
pub use self::proxy::{NoProxy, Proxies, Proxy, ProxySettings};
pub use self::resolve::{BoundedResolver, lookup_slots};
pub use self::retry_after::parse_retry_after;
pub use self::transport::Transport;

/// A deadline no request reaches, for a timeout too large to add to an instant.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

/// What one attempt at a URL observed. Filled in as the request progresses, so that a request cut
/// short (timeout, cancellation) still reports what it got before. Durations are measured from
/// the moment the attempt started (after all limits), like curl's `-w` times.
#[derive(Debug, Default, Clone)]
pub struct Attempt {
    /// When the request was handed to the HTTP client.
    pub started_at: Option<SystemTime>,
    pub status: Option<u16>,
    /// Start → the name of the final hop's new connection was resolved.
    pub dns: Option<Duration>,
    /// Start → its TCP connection was established.
    pub connect: Option<Duration>,
    /// Start → its TLS handshake finished.
    pub tls: Option<Duration>,
    /// Start → headers of the final response.
    pub ttfb: Option<Duration>,
    /// Start → the end of the final hop, whatever ended it: the last body byte (or the cap), a
    /// failure, the timeout, a stop.
    pub latency: Option<Duration>,
    /// Whether the final response came over a connection that existed before its request.
    pub reused: Option<bool>,
    /// The address the final response came from (the proxy's, through a proxy).
    pub remote_ip: Option<IpAddr>,
    /// Decoded body bytes read from the final response.
    pub bytes: u64,
    pub content_type: Option<String>,
    /// The URL requested last: after redirects, or the hop that failed.
    pub final_url: Option<Url>,
    pub redirects: u32,
    /// The body was longer than `--max-body` and reading stopped there.
    pub truncated: bool,
    /// The final response's `Retry-After`, as a delay from when it arrived.
    pub retry_after: Option<Duration>,
    pub failure: Option<Failure>,
    /// The failure was the connection going away under the request (worth a retry).
    pub transient: bool,
    /// Time spent on the requests of the chain so far (not on waiting between them): what
    /// latency, ttfb and the phase times of a later hop are counted from, and what the timeout
    /// budget is taken from.
    pub elapsed: Duration,
    /// Time spent waiting on limits before the requests of the chain.
    pub waited: Duration,
    /// The chain has left its first origin: credentials stay behind.
    pub left_origin: bool,
    /// `Basic` credentials of the chain's first URL, for its hops on the same origin.
    pub credentials: Option<HeaderValue>,
    /// The HTTP version of the final response, or of its connection when no response came
    /// (known for HTTP/2).
    pub http_version: Option<http::Version>,
    /// `--tls-info`: what the TLS with the site showed (also a handshake that failed on the
    /// certificate).
    pub tls_info: Option<Arc<TlsFacts>>,
    /// The final response's `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// Body bytes received from the final response, before decoding.
    pub wire_bytes: u64,
    /// The `Location` of a 3xx final response, resolved against its URL (as sent when it is
    /// not a URL), a password in it shown as `***`.
    pub location: Option<String>,
    /// The final response's values of each `--header-column` header, joined with `, `.
    pub headers: Vec<Option<String>>,
    /// `--state`: record the final response's validators in `validators`.
    pub track_validators: bool,
    /// `--state`: what makes the request conditional (sent to the hop its URL names).
    pub conditions: Option<Arc<Conditions>>,
    /// The final response's `ETag` and `Last-Modified`, when `track_validators` asks for them.
    pub validators: Option<Box<Validators>>,
    /// When the hop in flight started; `None` between hops.
    pub(crate) hop_start: Option<Instant>,
    /// How far the hop in flight got, as it got there.
    pub(crate) reached: Reached,
}

impl Attempt {
    /// A hop (one request) starts: what it reaches is recorded from here.
    fn begin_hop(&mut self, now: Instant) {
        self.hop_start = Some(now);
        self.reached = Reached::default();
        self.status = None;
        self.ttfb = None;
        self.http_version = None;
        self.content_encoding = None;
        self.location = None;
        self.headers.clear();
        self.tls_info = None;
        self.validators = None;
    }

    /// The hop in flight is over, whatever ended it (a response, a failure, the timeout, a
    /// stop): its time joins the chain's, and how far its connection got becomes the phase
    /// times (counted from the start of the chain), the address and reuse. `latency` is the
    /// chain's time so far. Nothing happens between hops.
    pub fn end_hop(&mut self, now: Instant) {
        let Some(start) = self.hop_start.take() else {
            return;
        };
        let offset = self.elapsed;
        let since = |t: Instant| offset + t.saturating_duration_since(start);
        let reached = std::mem::take(&mut self.reached);
        self.dns = reached.resolved.map(since);
        self.connect = reached.connected.map(since);
        self.tls = reached.secured.map(since);
        self.remote_ip = reached.remote.map(|addr| addr.ip());
        self.reused = reached.reused;
        self.tls_info = reached.tls;
        if self.http_version.is_none() && reached.http2 {
            self.http_version = Some(http::Version::HTTP_2);
        }
        self.elapsed += now.saturating_duration_since(start);
        self.latency = Some(self.elapsed);
    }
}

/// How requests are made: the fetch stage's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// GET or HEAD.
    pub method: Method,
    pub user_agent: HeaderValue,
    /// Extra request headers (`-H`), which win over ours.
    pub headers: HeaderMap,
    /// Whole-request limit: connect, send, headers and body.
    pub timeout: Duration,
    /// Limit on establishing a connection; `None` leaves only `timeout`.
    pub connect_timeout: Option<Duration>,
    /// Body bytes (after decoding) read per response before it is cut off.
    pub max_body: u64,
    /// Follow redirects (`--no-follow` records the 3xx itself).
    pub follow_redirects: bool,
    /// Redirects followed per URL; a longer chain is `too_many_redirects`.
    pub max_redirects: u32,
    /// Proxy for every request; `None` leaves the usual proxy environment variables in charge.
    pub proxy: Option<Url>,
    /// Hosts reached without the proxy (`--noproxy`); `None` leaves `NO_PROXY` in charge.
    pub noproxy: Option<String>,
    /// More CA certificates to trust (`--cacert`), beside the system's.
    pub cacert: Option<PathBuf>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Host names pinned to addresses, skipping DNS (`--resolve`), tried in order.
    pub resolve: Vec<(String, Vec<IpAddr>)>,
    /// `--tls-info`: record the TLS version and the site's certificate.
    pub tls_info: bool,
    /// `--header-column`: response headers to record, each with the name of its column.
    pub header_columns: Vec<(http::HeaderName, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            method: Method::GET,
            user_agent: default_user_agent(),
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: None,
            max_body: 10 * 1024 * 1024,
            follow_redirects: true,
            max_redirects: 10,
            proxy: None,
            noproxy: None,
            cacert: None,
            insecure: false,
            resolve: Vec::new(),
            tls_info: false,
            header_columns: Vec::new(),
        }
    }
}

/// `fetch/<version>`.
pub fn default_user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("fetch/", env!("CARGO_PKG_VERSION")))
}

/// How many requests the connection pool is sized for: in flight at once, and to one origin
/// (what it keeps idle for an origin, at most). The scheduler's limits, seen from here.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub requests: usize,
    pub per_origin: usize,
}

/// What one request led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Hop {
    /// The attempt is over (with a response or a failure, in the [`Attempt`]).
    Done,
    /// A redirect to follow: request this URL next, with the same attempt.
    Redirect(Url),
}

/// Receives the final response's body as it is read (decoded, at most `--max-body` bytes), so a
/// later stage can keep what it needs and nothing more. Redirect bodies are not offered.
pub trait BodySink: Send {
    /// The final response's `Content-Type`, before any body byte.
    fn begin(&mut self, content_type: Option<&str>);
    fn feed(&mut self, bytes: &[u8]);
}

/// A sink that keeps nothing.
pub struct Discard;

impl BodySink for Discard {
    fn begin(&mut self, _: Option<&str>) {}
    fn feed(&mut self, _: &[u8]) {}
}

/// Makes requests. One per run, shared by all tasks.
pub struct Fetcher {
    pool: Pool,
    method: Method,
    /// Sent with every request: defaults, then the user's `-H`.
    headers: HeaderMap,
    /// Whether any of `headers` must stay on the first origin.
    has_credentials: bool,
    /// The user gave `-H Authorization`, which wins over credentials in URLs.
    has_authorization: bool,
    /// `--header-column`: response headers to keep.
    header_columns: Vec<http::HeaderName>,
    timeout: Duration,
    max_body: u64,
    follow_redirects: bool,
    max_redirects: u32,
    /// Where large compressed bodies are decoded, off the event loop.
    decoders: Decoders,
}

impl Fetcher {
    pub fn new(config: &Settings, capacity: Capacity) -> Result<Fetcher, Error> {
        let mut headers = default_headers(config);
        // For the proxy only: through a tunnel it would reach the site.
        let proxy_authorization = headers.remove(PROXY_AUTHORIZATION);
        let settings = ProxySettings {
            proxy: config.proxy.as_ref(),
            noproxy: config.noproxy.as_deref(),
            authorization: proxy_authorization.as_ref(),
        };
        let proxies = Proxies::new(&settings, |name| std::env::var(name).ok())?;
        let has_credentials = [AUTHORIZATION, COOKIE]
            .iter()
            .any(|h| headers.contains_key(h));
        Ok(Fetcher {
            pool: client::build(config, capacity, proxies.map(Arc::new))?,
            method: config.method.clone(),
            has_authorization: headers.contains_key(AUTHORIZATION),
            header_columns: config
                .header_columns
                .iter()
                .map(|(h, _)| h.clone())
                .collect(),
            headers,
            has_credentials,
            timeout: config.timeout,
            max_body: config.max_body,
            follow_redirects: config.follow_redirects,
            max_redirects: config.max_redirects,
            decoders: Decoders::default(),
        })
    }

    /// Whether responses carry bodies (not for HEAD).
    pub fn reads_bodies(&self) -> bool {
        self.method != Method::HEAD
    }

    /// Requests `url` and, unless it is a redirect to follow, reads the body within what is
    /// left of the timeout, handing it to `sink`. Never fails: a failure is recorded in the
    /// attempt. `keep_alive: false` asks the server to close the connection afterwards (no
    /// further request to this host is queued, so an idle pooled connection would only hold a
    /// socket).
    pub async fn fetch(
        &self,
        url: Url,
        keep_alive: bool,
        sink: &mut dyn BodySink,
        attempt: &mut Attempt,
    ) -> Hop {
        attempt.started_at.get_or_insert_with(SystemTime::now);
        let hop_start = Instant::now();
        attempt.begin_hop(hop_start);
        let budget = self.timeout.saturating_sub(attempt.elapsed);
        // A deadline from the reading just taken: `timeout` would read the clock again.
        let deadline = hop_start
            .checked_add(budget)
            .unwrap_or_else(|| hop_start + FAR_FUTURE);
        // Made in place: the exchange's future is large, and moved it would be copied.
        let result = tokio::time::timeout_at(
            deadline,
            self.exchange(url, keep_alive, hop_start, sink, attempt),
        )
        .await;
        attempt.end_hop(Instant::now());
        match result {
            Ok(Ok(Some(next))) => return Hop::Redirect(next),
            Ok(Ok(None)) => {}
            Ok(Err(failure)) => attempt.failure = Some(failure),
            Err(_) => {
                let phase = if attempt.status.is_some() {
                    "reading the body"
                } else {
                    "waiting for the response"
                };
                attempt.failure = Some(Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "no complete response within {} ({phase})",
                        human::duration(self.timeout)
                    ),
                ));
            }
        }
        Hop::Done
    }

    /// One request; returns the redirect to follow, if any, else reads the body.
    async fn exchange(
        &self,
        url: Url,
        keep_alive: bool,
        hop_start: Instant,
        sink: &mut dyn BodySink,
        attempt: &mut Attempt,
    ) -> Result<Option<Url>, Failure> {
        let left_origin = attempt.left_origin;
        let credentials = hop_credentials(&url, attempt);
        let conditional = conditional_headers(&url, attempt.conditions.as_deref());
        let url = &*attempt.final_url.insert(url);
        let mut target = Target::of(url)?;
        let sent = self
            .pool
            .send(origin(url), &mut attempt.reached, |lease| {
                let mut request = self.request(&mut target, keep_alive, left_origin, lease);
                if let Some(credentials) = &credentials
                    && !self.has_authorization
                {
                    request
                        .headers_mut()
                        .insert(AUTHORIZATION, credentials.clone());
                }
                for (name, value) in &conditional {
                    // The user's own -H wins, as for every header.
                    request
                        .headers_mut()
                        .entry(name)
                        .or_insert_with(|| value.clone());
                }
                request
            })
            .await;
        let (response, lease) = sent.map_err(|e| {
            attempt.transient = is_transient(&e);
            classify_request(&e)
        })?;
        let offset = attempt.elapsed;
        attempt.ttfb = Some(offset + hop_start.elapsed());
        attempt.status = Some(response.status().as_u16());
        attempt.http_version = Some(response.version());
        self.record_headers(&response, attempt);
        if let Some(proxy) = lease.info.proxy.as_deref()
            && lease.proxied
            && let Some((failure, transient)) = proxy::refusal(&response, proxy)
        {
            // The proxy's own answer, not the site's: the row has no status.
            attempt.status = None;
            attempt.transient = transient;
            return Err(failure);
        }
        let Some(next) = self.redirect_target(&response, attempt)? else {
            let whole = self.read_body(response, sink, attempt).await?;
            if let Some(url) = &attempt.final_url
                && whole
            {
                self.pool.put_back(origin(url), lease, keep_alive);
            }
            return Ok(None);
        };
        attempt.redirects += 1;
        if let Some(current) = &attempt.final_url {
            attempt.left_origin |= !same_origin(current, &next);
        }
        Ok(Some(next))
    }

    /// The request for one connection: HTTP/1 wants a `Host` header and the path alone (the
    /// whole URL for a proxy); HTTP/2 takes the whole URL and makes its own `:authority`.
    fn request(
        &self,
        target: &mut Target<'_>,
        keep_alive: bool,
        left_origin: bool,
        lease: &Lease,
    ) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.method_mut() = self.method.clone();
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        if left_origin && self.has_credentials {
            for sensitive in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(sensitive);
            }
        }
        if !keep_alive && lease.is_http1() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if lease.proxied
            && let Some(auth) = lease
                .info
                .proxy
                .as_ref()
                .and_then(|p| p.authorization.clone())
        {
            headers.insert(PROXY_AUTHORIZATION, auth);
        }
        *request.uri_mut() = if lease.is_http1() && !lease.proxied {
            target.path()
        } else {
            target.absolute()
        };
        // A `Host` given with `-H` wins (a virtual host tried on a given address).
        if lease.is_http1()
            && let http::header::Entry::Vacant(entry) = request.headers_mut().entry(HOST)
        {
            entry.insert(target.host());
        }
        request
    }

    /// Keeps what the row shows of the response's headers: `Content-Encoding`, the `Location`
    /// of a 3xx, the `--header-column` headers.
    fn record_headers(&self, response: &http::Response<Incoming>, attempt: &mut Attempt) {
        let headers = response.headers();
        attempt.content_encoding = headers.get(CONTENT_ENCODING).map(header_text);
        if response.status().is_redirection()
            && let (Some(raw), Some(base)) = (headers.get(LOCATION), &attempt.final_url)
        {
            let (text, resolved) = resolve_location(base, raw);
            attempt.location = Some(match resolved {
                Ok(url) => into_shown(url),
                Err(_) => redact(&text).into_owned(),
            });
        }
        if attempt.track_validators {
            attempt.validators = validators(headers);
        }
        attempt
            .headers
            .extend(self.header_columns.iter().map(|name| {
                let mut values = headers.get_all(name).iter().map(header_text);
                let first = values.next()?;
                Some(values.fold(first, |joined, value| joined + ", " + &value))
            }));
    }

    /// Where a redirect response points, if it is one we follow.
    fn redirect_target(
        &self,
        response: &http::Response<Incoming>,
        attempt: &Attempt,
    ) -> Result<Option<Url>, Failure> {
        let followed = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        if !followed || !self.follow_redirects {
            return Ok(None);
        }
        let (Some(location), Some(base)) = (response.headers().get(LOCATION), &attempt.final_url)
        else {
            return Ok(None);
        };
        if attempt.redirects >= self.max_redirects {
            return Err(Failure::new(
                ErrorKind::TooManyRedirects,
                format!(
                    "more than {}",
                    human::count(u64::from(self.max_redirects), "redirect")
                ),
            ));
        }
        let bad = |why: String| Failure::new(ErrorKind::BadRedirect, why);
        let (location, next) = resolve_location(base, location);
        let location = &location;
        let next =
            next.map_err(|e| bad(format!("Location '{}' is not a URL: {e}", redact(location))))?;
        match next.scheme() {
            "http" | "https" => Ok(Some(next)),
            other => Err(bad(format!(
                "redirect to a '{other}' URL is not followed: {}",
                redact(location)
            ))),
        }
    }

    /// Streams the body to its end or to the cap, counting decoded bytes and offering them to
    /// the sink. True when it was read to its end (the connection can serve another request).
    async fn read_body(
        &self,
        response: http::Response<Incoming>,
        sink: &mut dyn BodySink,
        attempt: &mut Attempt,
    ) -> Result<bool, Failure> {
        let (parts, body) = response.into_parts();
        let headers = &parts.headers;
        attempt.content_type = headers.get(CONTENT_TYPE).map(header_text);
        attempt.retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        sink.begin(attempt.content_type.as_deref());
        // `record_headers` has read the coding already: one lookup per response is enough.
        let mut body = DecodedBody::new(body, attempt.content_encoding.as_deref(), &self.decoders);
        // Header values are slices of the connection's read buffer: held while the body is read,
        // they would keep hyper from reusing that buffer for the next response.
        drop(parts);
        let whole = self.stream_body(&mut body, sink, attempt).await;
        attempt.wire_bytes = body.wire_bytes();
        whole
    }

    /// Feeds the decoded body to the sink up to `--max-body`; true when it was read to its end.
    async fn stream_body(
        &self,
        body: &mut DecodedBody<'_>,
        sink: &mut dyn BodySink,
        attempt: &mut Attempt,
    ) -> Result<bool, Failure> {
        while let Some(chunk) = body.next().await.map_err(|e| classify_body(&e))? {
            let room = self.max_body - attempt.bytes;
            if chunk.len() as u64 > room {
                sink.feed(chunk.get(..room as usize).unwrap_or_default());
                attempt.bytes = self.max_body;
                attempt.truncated = true;
                return Ok(false);
            }
            sink.feed(chunk);
            attempt.bytes += chunk.len() as u64;
        }
        Ok(true)
    }
}

/// The headers every request carries: ours first, then the user's `-H` (which win).
fn default_headers(config: &Settings) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, config.user_agent.clone());
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    if config.method != Method::HEAD {
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static(decode::ACCEPT_ENCODING),
        );
    }
    for name in config.headers.keys() {
        headers.remove(name);
    }
    for (name, value) in &config.headers {
        headers.append(name, value.clone());
    }
    headers
}

/// The headers that make a request conditional (RFC 9110 §13.1): the state's validators, for
/// the hop whose URL they came from only, sent as the server gave them (a weak ETag keeps its
/// `W/`). A validator no longer valid as a header value is left out.
fn conditional_headers(
    url: &Url,
    conditions: Option<&Conditions>,
) -> Vec<(http::HeaderName, HeaderValue)> {
    let Some(conditions) = conditions else {
        return Vec::new();
    };
    if redact_url(url) != conditions.url.as_str() {
        return Vec::new();
    }
    let v = &conditions.validators;
    [
        (IF_NONE_MATCH, v.etag.as_deref()),
        (IF_MODIFIED_SINCE, v.last_modified.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, HeaderValue::from_str(value?).ok()?)))
    .collect()
}

/// A response's `ETag` and `Last-Modified`, when it has either.
fn validators(headers: &HeaderMap) -> Option<Box<Validators>> {
    let found = Validators {
        etag: headers.get(ETAG).map(header_text),
        last_modified: headers.get(LAST_MODIFIED).map(header_text),
    };
    (!found.is_empty()).then(|| Box::new(found))
}

/// The `Basic` credentials for the hop to `url`: its own, else (still on the chain's first
/// origin) those of the chain's first URL, as curl keeps them for redirects on the same host.
fn hop_credentials(url: &Url, attempt: &mut Attempt) -> Option<HeaderValue> {
    let own = basic_auth(url);
    if attempt.redirects == 0 {
        attempt.credentials.clone_from(&own);
    }
    own.or_else(|| {
        (!attempt.left_origin)
            .then(|| attempt.credentials.clone())
            .flatten()
    })
}

/// How the `http_version` column names a version.
pub fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

/// A header's value as text (bytes that are not UTF-8 replaced).
fn header_text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
    }
}

/// A `Location` value as text (see [`encode_raw_bytes`]) and resolved against `base`.
fn resolve_location(base: &Url, raw: &HeaderValue) -> (String, Result<Url, url::ParseError>) {
    let text = encode_raw_bytes(raw.as_bytes());
    let resolved = base.join(&text);
    (text, resolved)
}

/// A hop's request target, made once. Most requests go out on the first connection they are
/// given, and take its parts as they are: cloning a `Uri` or `HeaderValue` made from text
/// allocates, and HTTP/1 to an origin server (the common case) needs only the path, which is
/// cheaper to check than the whole URL. A request sent again (on another connection) makes
/// them anew.
struct Target<'a> {
    url: &'a Url,
    /// The path and query, the request target HTTP/1 sends to an origin server.
    path: Option<Uri>,
    /// The URL without credentials, for HTTP/2 and proxies: made when first wanted.
    absolute: Option<Uri>,
    host: Option<HeaderValue>,
}

impl<'a> Target<'a> {
    /// Checks that `url` makes a request: a valid path, `Host` and (what HTTP/2 and proxies
    /// send) whole URI.
    fn of(url: &'a Url) -> Result<Target<'a>, Failure> {
        let path = path_uri(url)?;
        let host = host_header(url)?;
        // The path and host being valid, the whole URI almost always is: checking it here
        // costs a parse that plain HTTP/1 never needs, so it is checked when first needed,
        // unless the URL has a host http's URI parser is stricter about than the url crate.
        let absolute = match url.host_str() {
            Some(h)
                if h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b)) =>
            {
                None
            }
            _ => Some(absolute_uri(url)?),
        };
        Ok(Target {
            url,
            path: Some(path),
            absolute,
            host: Some(host),
        })
    }

    fn path(&mut self) -> Uri {
        self.path
            .take()
            .unwrap_or_else(|| path_uri(self.url).unwrap_or_else(|_| Uri::from_static("/")))
    }

    fn absolute(&mut self) -> Uri {
        self.absolute.take().unwrap_or_else(|| {
            // `of` checked the path and that the host is one http takes: this parse does not
            // fail (were it to, the path alone makes the request fail clearly in hyper).
            absolute_uri(self.url).unwrap_or_else(|_| self.path())
        })
    }

    fn host(&mut self) -> HeaderValue {
        self.host.take().unwrap_or_else(|| {
            host_header(self.url).unwrap_or_else(|_| HeaderValue::from_static(""))
        })
    }
}

/// The request target HTTP/1 sends to an origin server: the path and query.
fn path_uri(url: &Url) -> Result<Uri, Failure> {
    to_uri(&url[Position::BeforePath..Position::AfterQuery])
}

/// The URL without credentials: what HTTP/2 and proxies are sent.
fn absolute_uri(url: &Url) -> Result<Uri, Failure> {
    to_uri(without_credentials(url).as_str())
}

/// The `Host` header for `url`: its host, and its port unless that is the scheme's default.
fn host_header(url: &Url) -> Result<HeaderValue, Failure> {
    // The URL's own text from host to port: the url crate leaves out a default port already.
    HeaderValue::from_str(&url[Position::BeforeHost..Position::AfterPort])
        .map_err(|_| Failure::new(ErrorKind::InvalidUrl, "the host is not a valid Host header"))
}

/// What connections are pooled by: the URL's own `scheme://host:port` text (with any
/// credentials, which keeps connections made for different users apart).
fn origin(url: &Url) -> &str {
    &url[..Position::BeforePath]
}

/// A URL's text (or its path and query) as the HTTP layer's URI. The url crate and http agree
/// on almost everything; what http refuses (a few characters url leaves as they are) is
/// percent-encoded.
fn to_uri(text: &str) -> Result<Uri, Failure> {
    text.parse()
        .or_else(|_| encode_raw_bytes(text.as_bytes()).parse())
        .or_else(|_| {
            let strict: String = text
                .bytes()
                .map(|b| match b {
                    b'|' | b'^' | b'`' | b'{' | b'}' | b'"' | b'<' | b'>' | b'\\' => {
                        format!("%{b:02X}")
                    }
                    _ => char::from(b).to_string(),
                })
                .collect();
            strict.parse()
        })
        .map_err(|e: http::uri::InvalidUri| {
            Failure::new(
                ErrorKind::InvalidUrl,
                format!("not a valid request URI: {e}"),
            )
        })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A `Location` value as text: servers send raw UTF-8 (or Latin-1) in it, which browsers and curl
/// follow by percent-encoding the bytes that are not printable ASCII. So do we.
fn encode_raw_bytes(value: &[u8]) -> String {
    let mut text = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_graphic() || b == b' ' {
            text.push(char::from(b));
        } else {
            text.push_str(&format!("%{b:02X}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_is_host_and_any_port_but_the_default() {
        for (url, host) in [
            ("http://example.com/x", "example.com"),
            ("https://example.com:443/", "example.com"),
            ("http://example.com:8080/", "example.com:8080"),
            ("http://user:pw@h.example:81/p?q", "h.example:81"),
            ("http://[::1]:8080/", "[::1]:8080"),
            ("http://[::1]/", "[::1]"),
            ("http://EXAMPLE.com./", "example.com."),
        ] {
            let url = Url::parse(url).unwrap();
            assert_eq!(host_header(&url).unwrap(), host, "{url}");
        }
    }

    #[test]
    fn raw_location_bytes_are_percent_encoded() {
        assert_eq!(encode_raw_bytes("/café".as_bytes()), "/caf%C3%A9");
        assert_eq!(encode_raw_bytes(b"/caf\xe9?q=1"), "/caf%E9?q=1");
        assert_eq!(encode_raw_bytes(b"/plain/path?x=1"), "/plain/path?x=1");
    }

    #[test]
    fn every_url_becomes_a_uri() {
        for text in [
            "http://a.test/",
            "http://a.test/a|b^c`d{e}",
            "https://[::1]:8443/x?y=\"z\"",
            "http://a.test/caf%C3%A9?q=a b",
        ] {
            let url = Url::parse(text).unwrap();
            assert!(Target::of(&url).is_ok(), "{text}");
        }
    }

    #[test]
    fn a_target_is_the_path_the_host_and_the_url_without_credentials() {
        let url = Url::parse("http://u:pw@h.test:8080/a/b?c=d#frag").unwrap();
        let mut target = Target::of(&url).unwrap();
        for _ in 0..2 {
            // The second time, as for a request sent again, each is made anew.
            assert_eq!(target.path(), "/a/b?c=d");
            assert_eq!(target.host(), "h.test:8080");
            assert_eq!(target.absolute(), "http://h.test:8080/a/b?c=d");
        }
        // A host the url crate takes and http's URI does not is refused up front, whatever
        // connection the request would have gone out on.
        let url = Url::parse("http://a{b}.test/").unwrap();
        let refused = Target::of(&url).err().unwrap();
        assert_eq!(refused.kind, ErrorKind::InvalidUrl);
    }

    #[test]
    fn user_headers_replace_defaults() {
        let mut config = Settings::default();
        config
            .headers
            .append(USER_AGENT, HeaderValue::from_static("mine"));
        let headers = default_headers(&config);
        assert_eq!(headers.get_all(USER_AGENT).iter().count(), 1);
        assert_eq!(headers[USER_AGENT], "mine");
        assert_eq!(headers[ACCEPT_ENCODING], decode::ACCEPT_ENCODING);
    }
}
