//! Pool: keeps connections open between requests to the same origin, and opens new ones.
//!
//! Built on hyper's connection-level API (one `SendRequest` per connection) rather than
//! hyper-util's pooled client, because on a fast server that client's bookkeeping was a large
//! share of the CPU per URL: it spawns a task per request to put the connection back, hashes
//! its keys with SipHash on the way out and in, and boxes a connector call per request. Here the
//! request that took a connection puts it back itself once its body was read to the end, and an
//! origin's idle connections sit in one map keyed by the URL's own `scheme://host:port` text.
//!
//! HTTP/1 connections are lent to one request at a time (most recently parked first, so the
//! warm ones are used and the rest time out). An HTTP/2 connection (negotiated by ALPN) is
//! shared: it stays parked and every request to its origin clones its sender.
//!
//! Parked connections are bounded across all origins as well as per origin: past the global
//! bound the least recently parked one is closed. A list of many hosts, each done within a few
//! requests, would otherwise keep a connection (socket, buffers, task) per host until its idle
//! timeout: 20,000 hosts held 217 MB.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Request;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::classify::{SendError, Unprocessed, connection_lost, unprocessed};
use super::connect::{Conn, ConnInfo, Connector, Reached};

type Body = Empty<Bytes>;

/// Most times one request goes out again after a connection of its own (new, the request its
/// first) failed it in a way that is not the URL's failure (see [`Pool::send`]): a server that
/// refuses every stream, or closes every connection at once, still ends the request.
const MAX_FRUITLESS_RESENDS: u32 = 8;

/// Failures on shared (parked) connections after which a request stops taking them and opens
/// one of its own, where it is the first stream: a server that retires connections every few
/// streams would otherwise fail the same pile of requests again on each new connection.
const SHARED_FAILURES_BEFORE_OWN: u32 = 2;

/// A connection's request half.
enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }
}

/// A connection lent to one request.
pub(super) struct Lease {
    sender: Sender,
    /// What the connection knew when it was made; goes with every response it serves.
    pub info: Arc<ConnInfo>,
    /// The connection goes to a proxy that gets plain-HTTP requests in absolute form.
    pub proxied: bool,
    /// It served requests before this one (a failure to send on it may be retried).
    pooled: bool,
}

impl Lease {
    pub(super) fn is_http1(&self) -> bool {
        matches!(self.sender, Sender::Http1(_))
    }

    /// Sends the request; when the connection turns out to be closed before the request went
    /// out, the request comes back to be sent on another.
    async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<http::Response<Incoming>, (hyper::Error, Option<Request<Body>>)> {
        let result = match &mut self.sender {
            Sender::Http1(s) => s.try_send_request(request).await,
            Sender::Http2(s) => s.try_send_request(request).await,
        };
        result.map_err(|mut e| {
            let unsent = e.take_message();
            (e.into_error(), unsent)
        })
    }
}

struct Parked {
    sender: Sender,
    info: Arc<ConnInfo>,
    proxied: bool,
    since: Instant,
    /// When it was parked, in parking order: its place in [`Idle::order`].
    stamp: u64,
}

#[derive(Default)]
struct Idle {
    by_origin: HashMap<Arc<str>, Vec<Parked>, foldhash::fast::RandomState>,
    /// Parked connections by origin and stamp, least recently parked first; an entry whose
    /// connection is no longer parked is stale and skipped.
    order: VecDeque<(Arc<str>, u64)>,
    /// Connections parked, across origins.
    parked: usize,
    stamps: u64,
    /// When expired connections were last dropped from every origin.
    swept: Option<Instant>,
}

impl Idle {
    /// Parks `parked` under `origin`, unless the origin has its fill; then closes the least
    /// recently parked connections beyond `most`.
    fn park(&mut self, origin: &str, mut parked: Parked, per_origin: usize, most: usize) {
        let list = match self.by_origin.get_mut(origin) {
            Some(list) if list.len() >= per_origin => return,
            Some(list) => list,
            None => self.by_origin.entry(Arc::from(origin)).or_default(),
        };
        self.stamps += 1;
        parked.stamp = self.stamps;
        list.push(parked);
        self.parked += 1;
        if let Some((key, _)) = self.by_origin.get_key_value(origin) {
            self.order.push_back((Arc::clone(key), self.stamps));
        }
        while self.parked > most {
            let Some((origin, stamp)) = self.order.pop_front() else {
                break;
            };
            self.remove(&origin, |p| p.stamp == stamp);
        }
        if self.order.len() > 2 * self.parked + 64 {
            let by_origin = &self.by_origin;
            self.order.retain(|(origin, stamp)| {
                by_origin
                    .get(origin)
                    .is_some_and(|list| list.iter().any(|p| p.stamp == *stamp))
            });
        }
    }

    /// Takes out (and closes, when dropped) the origin's parked connections that `which` picks.
    fn remove(&mut self, origin: &str, which: impl Fn(&Parked) -> bool) {
        let Some(list) = self.by_origin.get_mut(origin) else {
            return;
        };
        let before = list.len();
        list.retain(|p| !which(p));
        self.parked -= before - list.len();
        if list.is_empty() {
            self.by_origin.remove(origin);
        }
    }
}

pub(super) struct Pool {
    connector: Connector,
    idle: Mutex<Idle>,
    max_idle_per_origin: usize,
    /// Most connections parked across all origins.
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(super) fn new(
        connector: Connector,
        max_idle_per_origin: usize,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Pool {
            connector,
            idle: Mutex::default(),
            max_idle_per_origin,
            max_idle: max_idle.max(max_idle_per_origin),
            idle_timeout,
        }
    }

    /// Sends `request` to `origin` (the URL's `scheme://host:port` text) on a parked connection
    /// if one is alive, else on a new one.
    ///
    /// Some failures are not the URL's, and the request goes out again, which is neither a new
    /// attempt nor an error:
    /// - A server may close an idle connection just as a request goes out on it (many close idle
    ///   connections after a few seconds, or after each response without saying so): when a
    ///   parked connection closes or resets before any response, the request goes out on the
    ///   next parked one or a new one, as browsers and curl do. Safe, because fetch only sends
    ///   GET and HEAD; the same failure on a new connection is final.
    /// - An HTTP/2 server says it did not process a stream (GOAWAY, REFUSED_STREAM; see
    ///   [`Unprocessed`]), on any connection. After a GOAWAY the connection is forgotten, so
    ///   no new stream is opened on it; after a refused stream the connection (which by then
    ///   knows the server's stream limit, and queues requests within it) may be used again.
    ///
    /// After [`SHARED_FAILURES_BEFORE_OWN`] failures on shared connections the request opens a
    /// connection of its own, and after [`MAX_FRUITLESS_RESENDS`] failures there it ends.
    /// `reached` tells, as it happens, how far the connection that carries the request got.
    pub(super) async fn send(
        &self,
        origin: &str,
        keep_alive: bool,
        reached: &mut Reached,
        request: impl Fn(&Lease) -> Request<Body>,
    ) -> Result<(http::Response<Incoming>, Lease), SendError> {
        let (mut shared_failures, mut fruitless) = (0, 0);
        // A connection that refused a stream, to send it on again: what `reached` says of it
        // stays as it is.
        let mut same: Option<Lease> = None;
        loop {
            let mut lease = match same.take() {
                Some(lease) => lease,
                None => match self
                    .next_lease(origin, keep_alive, shared_failures, reached)
                    .await?
                {
                    Some(lease) => lease,
                    None => continue,
                },
            };
            let (error, unsent) = match lease.send(request(&lease)).await {
                Ok(response) => return Ok((response, lease)),
                Err(failed) => failed,
            };
            let Some(again) = resend(&error, unsent.is_some(), &lease) else {
                return Err(error.into());
            };
            if lease.pooled {
                shared_failures += 1;
            } else {
                fruitless += 1;
                if fruitless > MAX_FRUITLESS_RESENDS {
                    return Err(error.into());
                }
            }
            match again {
                Unprocessed::Refused
                    if !lease.pooled || shared_failures < SHARED_FAILURES_BEFORE_OWN =>
                {
                    same = Some(lease);
                }
                Unprocessed::Refused => {}
                // A shared HTTP/2 connection is still parked: it must not be found again.
                Unprocessed::GoingAway => self.discard(origin, &lease),
            }
        }
    }

    /// The connection for the next try: a parked one (until the request has failed on shared
    /// connections [`SHARED_FAILURES_BEFORE_OWN`] times), else a new one. `None` when a parked
    /// one turned out to be closed (the caller tries again).
    async fn next_lease(
        &self,
        origin: &str,
        keep_alive: bool,
        shared_failures: u32,
        reached: &mut Reached,
    ) -> Result<Option<Lease>, SendError> {
        let parked = (shared_failures < SHARED_FAILURES_BEFORE_OWN)
            .then(|| self.take_parked(origin))
            .flatten();
        if let Some(mut lease) = parked {
            if !lease.ready().await {
                self.discard(origin, &lease);
                return Ok(None);
            }
            *reached = Reached {
                remote: Some(lease.info.remote),
                reused: Some(true),
                http2: !lease.is_http1(),
                tls: lease.info.tls.clone(),
                ..Reached::default()
            };
            return Ok(Some(lease));
        }
        *reached = Reached {
            reused: Some(false),
            ..Reached::default()
        };
        // Boxed: connecting (DNS, TCP, TLS, HTTP/2 handshake) is most of this future's state,
        // and every request's future would otherwise carry (and be copied with) room for it,
        // though most requests go out on a parked connection.
        Box::pin(self.connect(origin, keep_alive, reached))
            .await
            .map(Some)
    }

    /// Parks an HTTP/1 connection whose response was read to its end, for the origin's next
    /// request. (An HTTP/2 connection stays parked from the start.)
    pub(super) fn put_back(&self, origin: &str, lease: Lease) {
        if !lease.is_http1() || lease.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let parked = Parked {
            sender: lease.sender,
            info: lease.info,
            proxied: lease.proxied,
            since: now,
            stamp: 0,
        };
        idle.park(origin, parked, self.max_idle_per_origin, self.max_idle);
    }

    /// The most recently parked live connection of `origin`, if any: taken for HTTP/1, shared
    /// for HTTP/2.
    fn take_parked(&self, origin: &str) -> Option<Lease> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        self.sweep(&mut idle, now);
        let list = idle.by_origin.get_mut(origin)?;
        let mut taken = 0;
        let lease = loop {
            let Some(parked) = list.pop() else {
                break None;
            };
            if parked.sender.is_closed() || now.duration_since(parked.since) >= self.idle_timeout {
                taken += 1;
                continue;
            }
            let (info, proxied) = (Arc::clone(&parked.info), parked.proxied);
            let sender = match &parked.sender {
                Sender::Http1(_) => {
                    taken += 1;
                    parked.sender
                }
                // Shared: it stays parked, in its place.
                Sender::Http2(shared) => {
                    let sender = Sender::Http2(shared.clone());
                    list.push(Parked {
                        since: now,
                        ..parked
                    });
                    sender
                }
            };
            break Some(Lease {
                sender,
                info,
                proxied,
                pooled: true,
            });
        };
        if list.is_empty() {
            idle.by_origin.remove(origin);
        }
        idle.parked -= taken;
        // A shared connection just used is the most recently used: last to be closed.
        if let Some(Lease {
            sender: Sender::Http2(_),
            ..
        }) = &lease
        {
            let idle = &mut *idle;
            if let Some((key, list)) = idle.by_origin.get_key_value(origin)
                && list.last().is_some()
            {
                let key = Arc::clone(key);
                idle.stamps += 1;
                let stamp = idle.stamps;
                if let Some(last) = idle.by_origin.get_mut(origin).and_then(|l| l.last_mut()) {
                    last.stamp = stamp;
                }
                idle.order.push_back((key, stamp));
            }
        }
        lease
    }

    /// Forgets the connection of `lease` if it is parked (a shared HTTP/2 one that failed).
    fn discard(&self, origin: &str, lease: &Lease) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.remove(origin, |p| Arc::ptr_eq(&p.info, &lease.info));
    }

    /// Drops every origin's expired connections, at most once a second: a list of a million
    /// distinct hosts must not keep a socket open per host it has done with.
    fn sweep(&self, idle: &mut Idle, now: Instant) {
        if idle
            .swept
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        idle.swept = Some(now);
        let timeout = self.idle_timeout;
        let mut dropped = 0;
        idle.by_origin.retain(|_, list| {
            let before = list.len();
            list.retain(|p| !p.sender.is_closed() && now.duration_since(p.since) < timeout);
            dropped += before - list.len();
            !list.is_empty()
        });
        idle.parked -= dropped;
    }

    /// Opens a connection to `origin` and starts the task that drives it. The task ends by
    /// itself when the connection closes or its last sender is dropped (the request's, or the
    /// pool's when it expires), so nothing needs to wait for it. An HTTP/2 connection is parked
    /// for sharing at once, unless no other request to its origin is coming (`keep_alive`).
    async fn connect(
        &self,
        origin: &str,
        keep_alive: bool,
        reached: &mut Reached,
    ) -> Result<Lease, SendError> {
        let Conn {
            io,
            info,
            h2,
            proxied,
        } = self.connector.connect(origin, reached).await?;
        reached.http2 = h2;
        let sender = if h2 {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        let lease = Lease {
            sender,
            info,
            proxied,
            pooled: false,
        };
        if let Sender::Http2(sender) = &lease.sender
            && keep_alive
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let shared = Parked {
                sender: Sender::Http2(sender.clone()),
                info: Arc::clone(&lease.info),
                proxied,
                since: Instant::now(),
                stamp: 0,
            };
            idle.park(origin, shared, usize::MAX, self.max_idle);
        }
        Ok(lease)
    }
}

/// Whether a request that failed on `lease` may go out again, and whether its connection may
/// take it (`Refused`) or is done (`GoingAway`).
fn resend(error: &hyper::Error, unsent: bool, lease: &Lease) -> Option<Unprocessed> {
    if !lease.is_http1() {
        if let Some(reason) = unprocessed(error) {
            return Some(reason);
        }
        if unsent {
            return Some(Unprocessed::GoingAway);
        }
    }
    (lease.pooled && (unsent || connection_lost(error))).then_some(Unprocessed::GoingAway)
}

impl Lease {
    /// Waits until the connection can take a request (an HTTP/1 connection whose last response
    /// was just read may still be finishing it); false when it closed instead.
    async fn ready(&mut self) -> bool {
        match &mut self.sender {
            Sender::Http1(s) => s.ready().await.is_ok(),
            Sender::Http2(s) => s.ready().await.is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::resolve::BoundedResolver;
    use http_body_util::BodyExt;

    /// A local server answering every request with a small body, and the port it is on.
    async fn server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"ok")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        port
    }

    /// Connections parked across origins stay within the pool's bound: past it, the least
    /// recently parked one is closed, whatever its origin.
    #[tokio::test]
    async fn parked_connections_are_bounded_across_origins() {
        let port = server().await;
        let names: Vec<(String, Vec<std::net::IpAddr>)> = (0..10)
            .map(|i| (format!("h{i}.test"), vec!["127.0.0.1".parse().unwrap()]))
            .collect();
        let connector = Connector::new(
            BoundedResolver::new(4, &names),
            super::super::tls::client_config(false, None).unwrap(),
            None,
            None,
            false,
        );
        let pool = Pool::new(connector, 2, 3, Duration::from_secs(10));
        for (name, _) in &names {
            let origin = format!("http://{name}:{port}");
            let mut reached = Reached::default();
            let (response, lease) = pool
                .send(&origin, true, &mut reached, |_| {
                    let mut request = Request::new(Empty::new());
                    *request.uri_mut() = "/".parse().unwrap();
                    request
                        .headers_mut()
                        .insert(http::header::HOST, name.parse().unwrap());
                    request
                })
                .await
                .unwrap();
            response.into_body().collect().await.unwrap();
            pool.put_back(&origin, lease);
        }
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.parked, 3);
        let mut kept: Vec<&str> = idle.by_origin.keys().map(|k| &**k).collect();
        kept.sort_unstable();
        let last: Vec<String> = (7..10)
            .map(|i| format!("http://h{i}.test:{port}"))
            .collect();
        assert_eq!(kept, last, "the most recently parked stay");
    }
}
