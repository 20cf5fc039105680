//! Fetch: one attempt at one URL, timed and bounded, turned into an [`Attempt`].
//!
//! This module knows nothing of scheduling; by the time [`Fetcher::fetch`] is called every limit
//! has been passed, so all the time measured here is time spent on the request. Redirects are
//! followed here, by hand, so the chain can be counted and bounded, every hop checked, and each
//! further hop paced by the caller's [`Pace`] like any other request start. Bodies are streamed,
//! counted and dropped: nothing of a body is kept.

mod classify;
mod client;
mod resolve;

use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use reqwest::header::{
    AUTHORIZATION, CONNECTION, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, PROXY_AUTHORIZATION,
    RETRY_AFTER,
};
use reqwest::{Client, Method, Response};
use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::human;
use crate::retry::parse_retry_after;
use crate::row::{ErrorKind, Failure};

use self::classify::{classify, is_transient};
pub use self::resolve::{BoundedResolver, lookup_slots};

/// What one attempt at a URL observed. Filled in as the request progresses, so that a request cut
/// short (timeout, cancellation) still reports what it got before.
#[derive(Debug, Default, Clone)]
pub struct Attempt {
    /// When the request was handed to the HTTP client (after all limits).
    pub started_at: Option<SystemTime>,
    pub status: Option<u16>,
    /// Start → headers of the final response.
    pub ttfb: Option<Duration>,
    /// Start → last body byte; only set when the body was read to its end or to the cap.
    pub latency: Option<Duration>,
    /// Decoded body bytes read from the final response.
    pub bytes: u64,
    pub content_type: Option<String>,
    pub final_url: Option<Url>,
    pub redirects: u32,
    /// The body was longer than `--max-body` and reading stopped there.
    pub truncated: bool,
    /// The final response's `Retry-After`, as a delay from when it arrived.
    pub retry_after: Option<Duration>,
    pub failure: Option<Failure>,
    /// The failure was the connection going away under the request (worth a retry).
    pub transient: bool,
}

/// Paces request starts that happen inside an attempt (redirect hops), so they obey the same
/// rate limits as first requests. Implemented by the scheduler.
pub trait Pace: Send + Sync {
    fn before_hop<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, ()>;
}

/// Makes requests. One per run, shared by all tasks.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    method: Method,
    headers: HeaderMap,
    timeout: Duration,
    connect_timeout: Option<Duration>,
    max_body: u64,
    max_redirects: u32,
}

impl Fetcher {
    pub fn new(config: &Config) -> Result<Fetcher, Error> {
        Ok(Fetcher {
            client: client::build(config)?,
            method: config.method.clone(),
            headers: config.headers.clone(),
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            max_body: config.max_body,
            max_redirects: config.max_redirects,
        })
    }

    /// Requests `url`, following redirects, and reads the body within the timeout. Never fails:
    /// a failure is recorded in the attempt. `keep_alive: false` asks the server to close the
    /// connection afterwards (no further request to this host is queued, so an idle pooled
    /// connection would only hold a socket).
    pub async fn fetch(&self, url: Url, keep_alive: bool, pace: &dyn Pace, attempt: &mut Attempt) {
        attempt.started_at = Some(SystemTime::now());
        let start = Instant::now();
        let exchange = self.exchange(url, keep_alive, start, pace, attempt);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(())) => attempt.latency = Some(start.elapsed()),
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
    }

    async fn exchange(
        &self,
        mut url: Url,
        keep_alive: bool,
        start: Instant,
        pace: &dyn Pace,
        attempt: &mut Attempt,
    ) -> Result<(), Failure> {
        // Once a chain leaves the first origin, credentials stay behind for the rest of it.
        let mut left_origin = false;
        loop {
            // What the row shows is about the URL requested last: a failed hop leaves no status.
            attempt.status = None;
            attempt.ttfb = None;
            attempt.final_url = Some(url.clone());
            let mut request = self.client.request(self.method.clone(), url.clone());
            if !self.headers.is_empty() {
                request = request.headers(self.headers_for(left_origin));
            }
            if !keep_alive {
                request = request.header(CONNECTION, "close");
            }
            let response = request.send().await.map_err(|e| {
                attempt.transient = is_transient(&e);
                self.explain(classify(&e))
            })?;
            attempt.ttfb = Some(start.elapsed());
            attempt.status = Some(response.status().as_u16());
            match self.redirect_target(&response, attempt.redirects)? {
                Some(next) => {
                    attempt.redirects += 1;
                    left_origin |= !same_origin(&url, &next);
                    drop(response);
                    pace.before_hop(&next).await;
                    url = next;
                }
                None => return self.read_body(response, attempt).await,
            }
        }
    }

    /// A connect timeout is the user's `--connect-timeout`, not the library's wording.
    fn explain(&self, failure: Failure) -> Failure {
        match (failure.kind, self.connect_timeout) {
            (ErrorKind::Timeout, Some(limit)) => Failure::new(
                ErrorKind::Timeout,
                format!(
                    "no connection within {} (--connect-timeout)",
                    human::duration(limit)
                ),
            ),
            _ => failure,
        }
    }

    /// The user's headers, without credentials once a redirect chain has left the first origin
    /// (as browsers and curl do).
    fn headers_for(&self, left_origin: bool) -> HeaderMap {
        let mut headers = self.headers.clone();
        if left_origin {
            for sensitive in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(sensitive);
            }
        }
        headers
    }

    /// Where a redirect response points, if it is one we follow. `hops` is the number of
    /// redirects already followed.
    fn redirect_target(&self, response: &Response, hops: u32) -> Result<Option<Url>, Failure> {
        let followed = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        if !followed || self.max_redirects == 0 {
            return Ok(None);
        }
        let Some(location) = response.headers().get(LOCATION) else {
            return Ok(None);
        };
        if hops >= self.max_redirects {
            return Err(Failure::new(
                ErrorKind::TooManyRedirects,
                format!(
                    "more than {}",
                    human::count(u64::from(self.max_redirects), "redirect")
                ),
            ));
        }
        let bad = |why: String| Failure::new(ErrorKind::BadRedirect, why);
        let location = &encode_raw_bytes(location.as_bytes());
        let next = response
            .url()
            .join(location)
            .map_err(|e| bad(format!("Location '{location}' is not a URL: {e}")))?;
        match next.scheme() {
            "http" | "https" => Ok(Some(next)),
            other => Err(bad(format!(
                "redirect to a '{other}' URL is not followed: {location}"
            ))),
        }
    }

    /// Streams the body to its end or to the cap, counting decoded bytes and keeping none.
    async fn read_body(
        &self,
        mut response: Response,
        attempt: &mut Attempt,
    ) -> Result<(), Failure> {
        let headers = response.headers();
        attempt.content_type = headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        attempt.retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            let room = self.max_body - attempt.bytes;
            if chunk.len() as u64 > room {
                attempt.bytes = self.max_body;
                attempt.truncated = true;
                break;
            }
            attempt.bytes += chunk.len() as u64;
        }
        Ok(())
    }
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
    fn raw_location_bytes_are_percent_encoded() {
        assert_eq!(encode_raw_bytes("/café".as_bytes()), "/caf%C3%A9");
        assert_eq!(encode_raw_bytes(b"/caf\xe9?q=1"), "/caf%E9?q=1");
        assert_eq!(encode_raw_bytes(b"/plain/path?x=1"), "/plain/path?x=1");
    }
}
