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
//! shared: it stays parked and every request to its origin clones its sender, up to as many at
//! once as the server allows streams (at most [`MAX_STREAMS`]); past that, the origin gets
//! another connection.
//!
//! A request to an `https` origin that finds a connection to it being made waits for that one
//! rather than making its own, when the origin may turn out to speak HTTP/2 (as curl's
//! PIPEWAIT does): fifty requests starting at once to a new HTTP/2 origin make one TLS
//! handshake, not fifty. An origin known to speak HTTP/1.1 is not waited for.
//!
//! Parked connections are bounded across all origins as well as per origin: past the global
//! bound the least recently parked one is closed. A list of many hosts, each done within a few
//! requests, would otherwise keep a connection (socket, buffers, task) per host until its idle
//! timeout: 20,000 hosts held 217 MB.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Request;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::watch;
use tokio::time::Instant;

use super::classify::{SendError, Unprocessed, connection_lost, unprocessed};
use super::connect::{Conn, ConnInfo, ConnIo, Connector, Reached};

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

/// Streams one HTTP/2 connection carries at once before its origin gets another, at most: RFC
/// 9113 §6.5.2 asks servers to allow at least 100 (nginx allows 128). A server that allows fewer
/// says so in its SETTINGS, and its connections carry that many (see [`Streams::full`]).
const MAX_STREAMS: usize = 100;

/// Origins remembered to speak HTTP/1.1 (not worth waiting for), at most; forgotten all at once
/// past it.
const MAX_KNOWN_HTTP1: usize = 4096;

/// How often parked connections are checked for their idle timeout (or the timeout itself, when
/// shorter): a connection lives at most this much past it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A connection lent to one request.
pub(super) struct Lease {
    sender: Sender,
    /// What the connection knew when it was made; goes with every response it serves.
    pub info: Arc<ConnInfo>,
    /// The connection goes to a proxy that gets plain-HTTP requests in absolute form.
    pub proxied: bool,
    /// It served requests before this one (a failure to send on it may be retried).
    pooled: bool,
    /// HTTP/2: the stream this lease holds on its connection, given back when it is dropped.
    _stream: Option<Stream>,
}

/// An HTTP/2 connection's streams: how many requests it carries now, and how many at once its
/// server allows.
struct Streams {
    open: AtomicUsize,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` (100 until its SETTINGS arrive), which
    /// only the connection knows: [`drive_http2`] copies it here.
    allowed: AtomicUsize,
}

impl Streams {
    fn new() -> Arc<Streams> {
        Arc::new(Streams {
            open: AtomicUsize::new(0),
            allowed: AtomicUsize::new(MAX_STREAMS),
        })
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether the connection carries as many requests as it should: as many as the server
    /// allows streams, up to [`MAX_STREAMS`]. More would wait inside the connection for a free
    /// stream, that wait counted as their latency, when the origin could have another
    /// connection for them. A server that says 0 for a moment still gets one, rather than a new
    /// connection per request.
    fn full(&self) -> bool {
        let allowed = self.allowed.load(Ordering::Relaxed).clamp(1, MAX_STREAMS);
        self.open() >= allowed
    }
}

/// One stream of an HTTP/2 connection in use, counted while it lives.
struct Stream(Arc<Streams>);

impl Stream {
    fn open(streams: &Arc<Streams>) -> Stream {
        streams.open.fetch_add(1, Ordering::Relaxed);
        Stream(Arc::clone(streams))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives an HTTP/2 connection to its end, keeping `streams.allowed` up to date with what the
/// server allows (its SETTINGS can come at any time, and change).
async fn drive_http2(connection: Http2Connection, streams: Arc<Streams>) {
    let mut connection = std::pin::pin!(connection);
    // The connection's own error reaches its requests; nothing is left to tell here.
    let _ = std::future::poll_fn(|cx| {
        let done = connection.as_mut().poll(cx);
        let allowed = connection.current_max_send_streams();
        streams.allowed.store(allowed, Ordering::Relaxed);
        done
    })
    .await;
}

type Http2Connection = http2::Connection<ConnIo, Body, TokioExecutor>;

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
    /// HTTP/2: its streams (none for HTTP/1, which carries one request at a time).
    streams: Option<Arc<Streams>>,
}

impl Parked {
    fn open_streams(&self) -> usize {
        self.streams.as_ref().map_or(0, |s| s.open())
    }
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
    /// A task closes expired connections while any are parked (see [`Pool::keep_swept`]).
    sweeping: bool,
    /// Origins with a connection being made that may turn out HTTP/2: requests wait for it.
    dialing: HashMap<Arc<str>, watch::Receiver<bool>, foldhash::fast::RandomState>,
    /// Origins whose last connection made turned out HTTP/1.1.
    http1: HashSet<Arc<str>, foldhash::fast::RandomState>,
}

impl Idle {
    /// Parks `parked` under `origin`, unless the origin has its fill; then closes the least
    /// recently parked connections beyond `most`.
    fn park(&mut self, origin: &str, mut parked: Parked, per_origin: usize, most: usize) {
        let key = match self.by_origin.get_key_value(origin) {
            Some((_, list)) if list.len() >= per_origin => return,
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(origin),
        };
        self.stamps += 1;
        parked.stamp = self.stamps;
        self.order.push_back((Arc::clone(&key), parked.stamp));
        self.by_origin.entry(key).or_default().push(parked);
        self.parked += 1;
        self.sweep_order();
        while self.parked > most {
            let Some((origin, stamp)) = self.order.pop_front() else {
                break;
            };
            // An HTTP/2 connection with streams open is in use, not idle: it stays.
            self.remove(&origin, |p| p.stamp == stamp && p.open_streams() == 0);
        }
    }

    /// Marks the origin's last parked connection as the most recently used: a new stamp, and
    /// its place at the end of [`Idle::order`]. Entries of earlier stamps go stale, and are
    /// swept once they outnumber the connections (an HTTP/2 connection gets a new stamp per
    /// request it carries).
    fn restamp_last(&mut self, origin: &str) {
        let stamp = self.stamps + 1;
        let Some(last) = self.by_origin.get_mut(origin).and_then(|l| l.last_mut()) else {
            return;
        };
        last.stamp = stamp;
        self.stamps = stamp;
        if let Some((key, _)) = self.by_origin.get_key_value(origin) {
            self.order.push_back((Arc::clone(key), stamp));
        }
        self.sweep_order();
    }

    /// Whether `entries` of a table kept beside the parked connections (stale places in
    /// [`Idle::order`], origins with nothing parked) outnumber the connections enough to be
    /// swept: sweeping then costs a constant amount per entry added.
    fn outnumbered_by(&self, entries: usize) -> bool {
        entries > 2 * self.parked + 64
    }

    /// Drops the stale entries of [`Idle::order`] once they outnumber the connections.
    fn sweep_order(&mut self) {
        if self.outnumbered_by(self.order.len()) {
            let by_origin = &self.by_origin;
            self.order.retain(|(origin, stamp)| {
                by_origin
                    .get(origin)
                    .is_some_and(|list| list.iter().any(|p| p.stamp == *stamp))
            });
        }
    }

    /// Forgets origins with no connection parked, once they outnumber the connections. An
    /// origin whose connections are all lent out keeps its entry meanwhile, so that giving one
    /// back finds it (making and dropping the entry for every request cost two allocations).
    fn forget_empty_origins(&mut self) {
        if self.outnumbered_by(self.by_origin.len()) {
            self.by_origin.retain(|_, list| !list.is_empty());
        }
    }

    /// Closes every origin's connections parked for `timeout` or more (but HTTP/2 ones with
    /// streams open: in use), and those closed by now.
    fn drop_expired(&mut self, now: Instant, timeout: Duration) {
        let mut dropped = 0;
        self.by_origin.retain(|_, list| {
            let before = list.len();
            list.retain(|p| {
                !p.sender.is_closed()
                    && (now.duration_since(p.since) < timeout || p.open_streams() > 0)
            });
            dropped += before - list.len();
            !list.is_empty()
        });
        self.parked -= dropped;
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
    /// Shared with the task that closes expired connections, which holds it weakly.
    idle: Arc<Mutex<Idle>>,
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
            idle: Arc::default(),
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
        reached: &mut Reached,
        mut request: impl FnMut(&Lease) -> Request<Body>,
    ) -> Result<(http::Response<Incoming>, Lease), SendError> {
        let (mut shared_failures, mut fruitless) = (0, 0);
        // The connection this request waited for failed: it makes its own.
        let mut dial_alone = false;
        // A connection that refused a stream, to send it on again: what `reached` says of it
        // stays as it is.
        let mut same: Option<Lease> = None;
        loop {
            let mut lease = match same.take() {
                Some(lease) => lease,
                None => match self
                    .next_lease(origin, shared_failures, &mut dial_alone, reached)
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
        shared_failures: u32,
        dial_alone: &mut bool,
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
        let dialing = match self.dial(origin, shared_failures, *dial_alone) {
            Dial::Wait(mut done) => {
                // Woken when that connection is made or failed: the caller looks again. After
                // a failure each waiter makes its own connection, at once, rather than one
                // after another (a host that never answers would take each a connect timeout).
                let _ = done.changed().await;
                *dial_alone = *done.borrow();
                return Ok(None);
            }
            Dial::Mine(ticket) => Some(ticket),
            Dial::Alone => None,
        };
        *reached = Reached {
            reused: Some(false),
            ..Reached::default()
        };
        // Boxed: connecting (DNS, TCP, TLS, HTTP/2 handshake) is most of this future's state,
        // and every request's future would otherwise carry (and be copied with) room for it,
        // though most requests go out on a parked connection.
        let lease = Box::pin(self.connect(origin, reached)).await;
        // Told how the connecting went (an HTTP/2 connection is parked by then): whoever
        // waited for it looks again.
        if let Some(ticket) = dialing {
            ticket.done(lease.is_ok());
        }
        lease.map(Some)
    }

    /// Whether this request makes a new connection to `origin` itself, and whether others
    /// should wait for it: an `https` origin may speak HTTP/2, and one connection being made
    /// to it is waited for by the requests that come meanwhile (but for a request that failed
    /// on shared connections, which wants one of its own).
    fn dial(&self, origin: &str, shared_failures: u32, alone: bool) -> Dial<'_> {
        if alone || !origin.starts_with("https:") || shared_failures >= SHARED_FAILURES_BEFORE_OWN {
            return Dial::Alone;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.http1.contains(origin) {
            return Dial::Alone;
        }
        if let Some(done) = idle.dialing.get(origin) {
            return Dial::Wait(done.clone());
        }
        let (sender, done) = watch::channel(false);
        let origin: Arc<str> = Arc::from(origin);
        idle.dialing.insert(Arc::clone(&origin), done);
        Dial::Mine(Ticket {
            pool: self,
            origin,
            done: sender,
        })
    }

    /// Parks an HTTP/1 connection whose response was read to its end, for the origin's next
    /// request, if it is to be kept (`keep`). An HTTP/2 connection stays parked from the start;
    /// one not to be kept is closed when this was its last stream in flight.
    pub(super) fn put_back(&self, origin: &str, lease: Lease, keep: bool) {
        if !lease.is_http1() {
            if !keep {
                self.retire(origin, &lease);
            }
            return;
        }
        if !keep || lease.sender.is_closed() {
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
            streams: None,
        };
        idle.park(origin, parked, self.max_idle_per_origin, self.max_idle);
        self.keep_swept(&mut idle);
    }

    /// The most recently parked live connection of `origin`, if any: taken for HTTP/1, shared
    /// for HTTP/2 (one with a stream to spare).
    fn take_parked(&self, origin: &str) -> Option<Lease> {
        let now = Instant::now();
        let mut guard = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = &mut *guard;
        let list = idle.by_origin.get_mut(origin)?;
        let mut at = list.len();
        let mut dropped = 0;
        let mut lease = None;
        while at > 0 {
            at -= 1;
            let Some(parked) = list.get(at) else {
                break;
            };
            if parked.sender.is_closed() || now.duration_since(parked.since) >= self.idle_timeout {
                list.remove(at);
                dropped += 1;
                continue;
            }
            match &parked.sender {
                Sender::Http1(_) => {
                    let parked = list.remove(at);
                    dropped += 1;
                    lease = Some(Lease {
                        sender: parked.sender,
                        info: parked.info,
                        proxied: parked.proxied,
                        pooled: true,
                        _stream: None,
                    });
                }
                Sender::Http2(_) if parked.streams.as_ref().is_some_and(|s| s.full()) => {
                    continue;
                }
                // Shared: it stays parked, and is now the most recently used.
                Sender::Http2(shared) => {
                    lease = Some(Lease {
                        sender: Sender::Http2(shared.clone()),
                        info: Arc::clone(&parked.info),
                        proxied: parked.proxied,
                        pooled: true,
                        _stream: parked.streams.as_ref().map(Stream::open),
                    });
                    let mut parked = list.remove(at);
                    parked.since = now;
                    list.push(parked);
                    idle.restamp_last(origin);
                }
            }
            break;
        }
        idle.parked -= dropped;
        idle.forget_empty_origins();
        lease
    }

    /// Closes the shared HTTP/2 connection of `lease` (no other request of its origin is
    /// coming) unless other streams are open on it.
    fn retire(&self, origin: &str, lease: &Lease) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.remove(origin, |p| {
            Arc::ptr_eq(&p.info, &lease.info) && p.open_streams() <= 1
        });
    }

    /// Forgets the connection of `lease` if it is parked (a shared HTTP/2 one that failed).
    fn discard(&self, origin: &str, lease: &Lease) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.remove(origin, |p| Arc::ptr_eq(&p.info, &lease.info));
    }

    /// Closes parked connections once their idle timeout has passed, whether or not requests
    /// come to look (a run may wait out a long Crawl-delay or Retry-After, and a list of a
    /// million distinct hosts must not keep a socket per host it has done with): a task that
    /// runs while any connection is parked, and ends when none is or the pool is gone.
    fn keep_swept(&self, idle: &mut Idle) {
        if idle.sweeping {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        idle.sweeping = true;
        let shared = Arc::downgrade(&self.idle);
        let timeout = self.idle_timeout;
        // Never a busy loop, whatever timeout the pool was given.
        let every = SWEEP_EVERY.min(timeout).max(Duration::from_millis(10));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let mut idle = shared.lock().unwrap_or_else(PoisonError::into_inner);
                idle.drop_expired(Instant::now(), timeout);
                if idle.parked == 0 {
                    idle.sweeping = false;
                    return;
                }
            }
        });
    }

    /// Opens a connection to `origin` and starts the task that drives it. The task ends by
    /// itself when the connection closes or its last sender is dropped (the request's, or the
    /// pool's when it expires), so nothing needs to wait for it. An HTTP/2 connection is parked
    /// for sharing at once; an HTTP/1 origin is remembered as such.
    async fn connect(&self, origin: &str, reached: &mut Reached) -> Result<Lease, SendError> {
        let Conn {
            io,
            info,
            h2,
            proxied,
        } = self.connector.connect(origin, reached).await?;
        reached.http2 = h2;
        let mut streams = None;
        let sender = if h2 {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await?;
            let shared = Streams::new();
            tokio::spawn(drive_http2(connection, Arc::clone(&shared)));
            streams = Some(shared);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        let mut lease = Lease {
            sender,
            info,
            proxied,
            pooled: false,
            _stream: None,
        };
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        match &lease.sender {
            // Shared at once, also with the requests waiting for it.
            Sender::Http2(sender) => {
                idle.http1.remove(origin);
                lease._stream = streams.as_ref().map(Stream::open);
                let shared = Parked {
                    sender: Sender::Http2(sender.clone()),
                    info: Arc::clone(&lease.info),
                    proxied,
                    since: Instant::now(),
                    stamp: 0,
                    streams,
                };
                idle.park(origin, shared, usize::MAX, self.max_idle);
                self.keep_swept(&mut idle);
            }
            // Only `https` origins are ever waited for (see [`Pool::dial`]).
            Sender::Http1(_) if origin.starts_with("https:") && !idle.http1.contains(origin) => {
                if idle.http1.len() >= MAX_KNOWN_HTTP1 {
                    idle.http1.clear();
                }
                idle.http1.insert(Arc::from(origin));
            }
            Sender::Http1(_) => {}
        }
        Ok(lease)
    }
}

/// What a request needing a new connection does: makes it (telling others, or not), or waits
/// for the one being made.
enum Dial<'a> {
    Mine(Ticket<'a>),
    Alone,
    Wait(watch::Receiver<bool>),
}

/// A connection being made that others wait for; dropping it wakes them.
struct Ticket<'a> {
    pool: &'a Pool,
    origin: Arc<str>,
    /// Sends `true` when the connecting failed.
    done: watch::Sender<bool>,
}

impl Ticket<'_> {
    /// Tells the waiters how the connecting went, and wakes them.
    fn done(self, connected: bool) {
        self.done.send_replace(!connected);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.dialing.remove(&self.origin);
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

    /// A connection is full at the server's stream limit, never past 100, and a server allowing
    /// none for a moment still gets one request rather than none.
    #[test]
    fn a_connection_is_full_at_what_its_server_allows() {
        let streams = Streams::new();
        let open = |n: usize| (0..n).map(|_| Stream::open(&streams)).collect::<Vec<_>>();
        let held = open(99);
        assert!(!streams.full(), "before SETTINGS: 100");
        let last = open(1);
        assert!(streams.full());
        streams.allowed.store(1_000, Ordering::Relaxed);
        assert!(streams.full(), "at most 100 whatever the server allows");
        drop((held, last));
        assert_eq!(streams.open(), 0);

        streams.allowed.store(8, Ordering::Relaxed);
        let held = open(7);
        assert!(!streams.full());
        let eighth = open(1);
        assert!(streams.full());
        drop((held, eighth));

        streams.allowed.store(0, Ordering::Relaxed);
        assert!(!streams.full(), "a server saying 0 still gets one");
        let one = open(1);
        assert!(streams.full());
        drop(one);
    }

    /// A local server answering every request with a small body: the port it is on, and how
    /// many connections it has seen closed.
    async fn server() -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&closed);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"ok")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (port, closed)
    }

    /// A plain-HTTP connector with these names pinned.
    fn connector(names: &[(String, Vec<std::net::IpAddr>)]) -> Connector {
        Connector::new(
            BoundedResolver::new(4, names),
            super::super::tls::client_config(false, None).unwrap(),
            None,
            None,
            false,
        )
    }

    /// `n` names, `h0.test` on, all pinned to 127.0.0.1.
    fn local_names(n: usize) -> Vec<(String, Vec<std::net::IpAddr>)> {
        (0..n)
            .map(|i| (format!("h{i}.test"), vec!["127.0.0.1".parse().unwrap()]))
            .collect()
    }

    /// Gets `/` from the virtual host `name` at `origin` and reads the body: the lease it came on.
    async fn get_from(pool: &Pool, origin: &str, name: &str) -> Lease {
        let (response, lease) = pool
            .send(origin, &mut Reached::default(), |_| {
                let mut request = get("/");
                let host = name.parse().unwrap();
                request.headers_mut().insert(http::header::HOST, host);
                request
            })
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
        lease
    }

    fn get(path: &str) -> Request<Body> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = path.parse().unwrap();
        request
    }

    /// Makes one request to the local server on `port` and parks its connection: the origin.
    async fn park_one(pool: &Pool, port: u16) -> String {
        let origin = format!("http://127.0.0.1:{port}");
        let lease = get_from(pool, &origin, "127.0.0.1").await;
        pool.put_back(&origin, lease, true);
        origin
    }

    /// A parked connection is closed once its idle timeout has passed although no request
    /// comes to look, and the pool stops watching when nothing is parked.
    #[tokio::test]
    async fn idle_connections_close_at_their_timeout_without_requests() {
        let (port, closed) = server().await;
        let pool = Pool::new(connector(&[]), 2, 4, Duration::from_millis(200));
        park_one(&pool, port).await;
        assert_eq!(pool.idle.lock().unwrap().parked, 1);
        // Generous: the connection should go 200 to 400 ms after it was parked.
        for _ in 0..100 {
            if closed.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(closed.load(Ordering::SeqCst), 1, "the server saw it closed");
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.parked, 0);
        assert!(!idle.sweeping, "nothing parked, nothing to watch");
    }

    /// A shared HTTP/2 connection is marked most recently used by every request it carries:
    /// the order of use keeps no more stale entries than the bound, however many requests.
    #[tokio::test]
    async fn marking_a_connection_used_keeps_the_order_bounded() {
        let (port, _) = server().await;
        let pool = Pool::new(connector(&[]), 2, 4, Duration::from_secs(10));
        let origin = park_one(&pool, port).await;
        let mut idle = pool.idle.lock().unwrap();
        for _ in 0..10_000 {
            idle.restamp_last(&origin);
        }
        assert_eq!(idle.parked, 1);
        assert!(
            idle.order.len() <= 2 + 64 + 1,
            "{} entries",
            idle.order.len()
        );
        let last = idle.by_origin.get(origin.as_str()).unwrap().last().unwrap();
        assert_eq!(
            last.stamp, idle.stamps,
            "the connection carries the newest stamp"
        );
    }

    /// Connections parked across origins stay within the pool's bound: past it, the least
    /// recently parked one is closed, whatever its origin.
    #[tokio::test]
    async fn parked_connections_are_bounded_across_origins() {
        let (port, _) = server().await;
        let names = local_names(10);
        let pool = Pool::new(connector(&names), 2, 3, Duration::from_secs(10));
        for (name, _) in &names {
            let origin = format!("http://{name}:{port}");
            let lease = get_from(&pool, &origin, name).await;
            pool.put_back(&origin, lease, true);
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

    /// An origin whose connection is lent out keeps its (empty) entry for the connection to
    /// come back to, but origins done with do not pile up.
    #[tokio::test]
    async fn origins_with_nothing_parked_are_forgotten() {
        let (port, _) = server().await;
        let names = local_names(150);
        let pool = Pool::new(connector(&names), 2, 1000, Duration::from_secs(10));
        for (name, _) in &names {
            let origin = format!("http://{name}:{port}");
            for first in [true, false] {
                let lease = get_from(&pool, &origin, name).await;
                // Parked after the first request; the second takes it and keeps it.
                pool.put_back(&origin, lease, first);
            }
        }
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.parked, 0);
        assert!(
            idle.by_origin.len() <= 64,
            "{} origins kept",
            idle.by_origin.len()
        );
    }
}
