//! Fetch: one request for one URL, timed and bounded, turned into an [`Attempt`].
//!
//! This module knows nothing of limits or scheduling; by the time [`Fetcher::fetch`] is called
//! every limit has been passed, so all the time measured here is time spent on the request.
//! Redirects are followed here, by hand, so the chain can be counted and bounded and every hop
//! checked. Bodies are streamed, counted and dropped: nothing of a body is kept.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Client, Response};
use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::row::{ErrorKind, Failure};

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
    pub failure: Option<Failure>,
}

/// Makes requests. Cheap to share: one per run, behind an `Arc`.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    timeout: Duration,
    max_body: u64,
    max_redirects: u32,
}

impl Fetcher {
    pub fn new(config: &Config) -> Result<Fetcher, Error> {
        Ok(Fetcher {
            client: build_client(config)?,
            timeout: config.timeout,
            max_body: config.max_body,
            max_redirects: config.max_redirects,
        })
    }

    /// Requests `url`, following redirects, and reads the body within the timeout. Never fails:
    /// a failure is recorded in the attempt.
    pub async fn fetch(&self, url: Url, attempt: &mut Attempt) {
        attempt.started_at = Some(SystemTime::now());
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.exchange(url, start, attempt)).await;
        match result {
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
                        humantime::format_duration(self.timeout)
                    ),
                ));
            }
        }
    }

    async fn exchange(
        &self,
        mut url: Url,
        start: Instant,
        attempt: &mut Attempt,
    ) -> Result<(), Failure> {
        loop {
            let response = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            attempt.ttfb = Some(start.elapsed());
            attempt.status = Some(response.status().as_u16());
            attempt.final_url = Some(url);
            match self.redirect_target(&response, attempt.redirects)? {
                Some(next) => {
                    attempt.redirects += 1;
                    url = next;
                }
                None => return self.read_body(response, attempt).await,
            }
        }
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
                format!("more than {} redirects", self.max_redirects),
            ));
        }
        let bad = |why: String| Failure::new(ErrorKind::BadRedirect, why);
        let location = location
            .to_str()
            .map_err(|_| bad("Location header is not text".into()))?;
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
        attempt.content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
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

fn build_client(config: &Config) -> Result<Client, Error> {
    // reqwest is built without a default crypto provider so that ring (pure Rust + asm, no
    // cmake) is used; installing fails harmlessly when another part of the process already did.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .user_agent(&config.user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .tcp_nodelay(true)
        // Enough idle connections to keep a single busy host at full concurrency without
        // reconnecting; idle ones are closed soon so a list of many hosts does not pile them up.
        .pool_max_idle_per_host(config.concurrency.get())
        .pool_idle_timeout(Duration::from_secs(15));
    if let Some(connect_timeout) = config.connect_timeout {
        builder = builder.connect_timeout(connect_timeout);
    }
    builder.build().map_err(Error::Client)
}

/// Sorts a client error into a stable kind, keeping the underlying message as the detail.
fn classify(error: &reqwest::Error) -> Failure {
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
