//! An HTTP server for tests, on 127.0.0.1 port 0, running on its own thread and runtime so both
//! async tests and tests of the real binary can use it. It counts requests, the most in flight
//! at once, connections accepted, and records what each request looked like, so limits are
//! checked by counting rather than by timing.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub at: Instant,
}

#[derive(Default)]
pub struct Stats {
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicUsize,
    /// Connections open now, and the most open at once.
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
    seen: Mutex<Vec<Seen>>,
    /// Per-key counters for endpoints that change behaviour over repeated requests.
    counters: Mutex<HashMap<String, usize>>,
}

impl Stats {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
    /// TCP connections accepted.
    /// The most connections open at once.
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn arrivals(&self) -> Vec<Instant> {
        self.seen().iter().map(|s| s.at).collect()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    /// Counts a request for `key` and returns how many came before it.
    fn bump(&self, key: &str) -> usize {
        let mut counters = self.counters.lock().unwrap();
        let count = counters.entry(key.to_owned()).or_default();
        *count += 1;
        *count - 1
    }
}

/// Counts a request as in flight until dropped, so cancelled requests are counted out too.
struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn record(State(stats): State<Arc<Stats>>, request: Request, next: Next) -> Response {
    stats.seen.lock().unwrap().push(Seen {
        method: request.method().clone(),
        uri: request.uri().to_string(),
        version: request.version(),
        headers: request.headers().clone(),
        at: Instant::now(),
    });
    stats.hits.fetch_add(1, Ordering::SeqCst);
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(Arc::clone(&stats));
    next.run(request).await
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_on("127.0.0.1")
    }

    /// On another loopback address (127.0.0.x), to stand for another host.
    pub fn start_on(ip: &str) -> TestServer {
        let stats = Arc::new(Stats::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = routes(Arc::clone(&stats));
        let counted = Arc::clone(&stats);
        let ip = ip.to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind((ip.as_str(), 0)).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let listener = Counting {
                    inner: listener,
                    stats: counted,
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .unwrap();
            });
            // Handlers still parked (e.g. /hang) are dropped with the runtime.
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        TestServer {
            addr: addr_rx.recv().unwrap(),
            stats,
            shutdown: Some(shutdown_tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An accepted connection, counted as open until it is dropped (closed).
pub struct Open {
    stream: TcpStream,
    open: Arc<AtomicUsize>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tokio::io::AsyncRead for Open {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Open {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A listener that counts the connections it accepts.
struct Counting {
    inner: TcpListener,
    stats: Arc<Stats>,
}

impl axum::serve::Listener for Counting {
    type Io = Open;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.inner.accept().await {
                self.stats.connections.fetch_add(1, Ordering::SeqCst);
                let now = self.stats.open.fetch_add(1, Ordering::SeqCst) + 1;
                self.stats.max_open.fetch_max(now, Ordering::SeqCst);
                let (stream, addr) = accepted;
                let accepted = (
                    Open {
                        stream,
                        open: Arc::clone(&self.stats.open),
                    },
                    addr,
                );
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub fn routes(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/ok/{*rest}", get(ok))
        .route("/slow/{ms}/{*rest}", get(slow))
        .route("/hang/{*rest}", get(hang))
        .route("/trickle", get(trickle))
        .route("/endless", get(endless))
        .route("/size/{bytes}", get(sized))
        .route("/redirect/{n}", get(redirect))
        .route("/loop", get(redirect_loop))
        .route("/to-ftp", get(to_ftp))
        .route("/goto", get(goto))
        .route("/raw-location", get(raw_location))
        .route("/awkward", get(awkward))
        .route("/status/{code}", get(status))
        .route("/flaky/{failures}/{id}", get(flaky))
        .route("/limited/{secs}/{*rest}", get(limited))
        .route("/encoded/{coding}", get(encoded))
        .route("/encoded/{coding}/{lines}", get(encoded_lines))
        .route("/bomb", get(bomb))
        .route("/html/{name}", get(html))
        .route("/tagged", get(tagged))
        .layer(middleware::from_fn_with_state(Arc::clone(&stats), record))
        .with_state(stats)
}

async fn ok() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html")], "<title>ok</title>")
}

async fn slow(Path((ms, _)): Path<(u64, String)>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

async fn hang() -> &'static str {
    std::future::pending::<()>().await;
    unreachable!()
}

/// Headers at once, then one byte every 100 ms for about a minute.
async fn trickle() -> Response {
    let stream = futures::stream::unfold(0, |i| async move {
        if i > 600 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), i + 1))
    });
    Body::from_stream(stream).into_response()
}

/// A body with no length that (for all practical purposes) never ends: 64 KiB chunks, 2 GiB.
async fn endless() -> Response {
    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
    let stream =
        futures::stream::iter((0..32 * 1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Body::from_stream(stream).into_response()
}

async fn sized(Path(bytes): Path<usize>) -> Vec<u8> {
    vec![b'a'; bytes]
}

async fn redirect(Path(n): Path<u32>) -> Response {
    if n == 0 {
        return "arrived".into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", n - 1))],
    )
        .into_response()
}

async fn redirect_loop() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response()
}

async fn to_ftp() -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, "ftp://127.0.0.1/file")],
    )
        .into_response()
}

/// `/goto?to=URL`: a redirect anywhere.
async fn goto(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// A redirect whose Location carries raw UTF-8 bytes, as some servers send.
async fn raw_location() -> Response {
    let location = header::HeaderValue::from_bytes("/ok/café".as_bytes()).unwrap();
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A content type full of CSV metacharacters.
async fn awkward() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; note=\"a,b\"; x=\"y\"")],
        "body",
    )
        .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    StatusCode::from_u16(code).unwrap().into_response()
}

/// Headers for header columns: one repeated, one a spreadsheet would run.
async fn tagged() -> Response {
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [
        ("x-tag", "first"),
        ("x-tag", "second"),
        ("x-formula", "=HYPERLINK(\"http://evil.test\")"),
        ("x-cache", "HIT"),
    ] {
        headers.append(name, value.parse().unwrap());
    }
    (headers, "tagged").into_response()
}

/// 503 for the first `failures` requests of `id`, then 200.
async fn flaky(
    State(stats): State<Arc<Stats>>,
    Path((failures, id)): Path<(usize, String)>,
) -> Response {
    if stats.bump(&format!("flaky/{id}")) < failures {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else {
        "recovered".into_response()
    }
}

/// The first request to any /limited URL gets 429 with `Retry-After: secs`; the rest get 200.
async fn limited(
    State(stats): State<Arc<Stats>>,
    Path((secs, _)): Path<(u64, String)>,
) -> Response {
    if stats.bump("limited") == 0 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
        )
            .into_response()
    } else {
        "welcome back".into_response()
    }
}

pub const ENCODED_TEXT: &str = "hello, compressed world\n";
pub const ENCODED_REPEAT: usize = 1000;

/// `ENCODED_TEXT` × `ENCODED_REPEAT`, compressed with the named coding.
async fn encoded(Path(coding): Path<String>) -> Response {
    encode(&coding, ENCODED_TEXT.repeat(ENCODED_REPEAT).into_bytes())
}

/// [`numbered_text`] of `lines` lines, compressed with the named coding: a body that does not
/// shrink to nothing, so it comes in many frames.
async fn encoded_lines(Path((coding, lines)): Path<(String, usize)>) -> Response {
    encode(&coding, numbered_text(lines).into_bytes())
}

/// Lines that differ: `line 0: hello, compressed world`, …
pub fn numbered_text(lines: usize) -> String {
    (0..lines)
        .map(|i| format!("line {i}: {ENCODED_TEXT}"))
        .collect()
}

fn encode(coding: &str, plain: Vec<u8>) -> Response {
    let coding = coding.to_owned();
    let body = match coding.as_str() {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        }
        // What some servers send as "deflate": no zlib wrapper.
        "raw-deflate" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            let body = e.finish().unwrap();
            return ([(header::CONTENT_ENCODING, "deflate")], body).into_response();
        }
        "corrupt-gzip" => {
            let mut body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec();
            body.extend_from_slice(b"this is not deflate data at all");
            return ([(header::CONTENT_ENCODING, "gzip")], body).into_response();
        }
        "br" => {
            let mut out = Vec::new();
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            e.write_all(&plain).unwrap();
            drop(e);
            out
        }
        "zstd" => zstd::encode_all(&plain[..], 3).unwrap(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_ENCODING, coding)], body).into_response()
}

/// Pages with tricky titles and things to select: (content type, body).
fn page(name: &str) -> Option<(&'static str, Vec<u8>)> {
    let html = "text/html";
    Some(match name {
        "entities" => (html, b"<title>Tom &amp; Jerry&#39;s &lt;Caf&eacute;&gt; &#x263A;</title>".to_vec()),
        "newlines" => (html, b"<title>\n  Line one\r\n\t line   two \n</title>".to_vec()),
        "formula" => (html, b"<title>=HYPERLINK(\"http://x.test\",\"click\")</title>".to_vec()),
        "latin1-header" => ("text/html; charset=ISO-8859-1", b"<title>Caf\xe9 cr\xe8me br\xfbl\xe9e</title>".to_vec()),
        "latin1-meta" => (
            html,
            b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"><title>Caf\xe9 cr\xe8me</title></head></html>".to_vec(),
        ),
        "latin1-bare" => (
            html,
            b"<html><head><title>Le caf\xe9 de la gare, o\xf9 l'on d\xe9jeune tr\xe8s bien</title></head><body>Ici on mange bien, \xe0 c\xf4t\xe9 de la for\xeat.</body></html>".to_vec(),
        ),
        "huge-title" => (html, format!("<title>{}</title>", "long ".repeat(20_000)).into_bytes()),
        "no-title" => (html, b"<html><body><p>nothing here</p></body></html>".to_vec()),
        "json" => ("application/json", br#"{"title": "not html", "price": "$12.50"}"#.to_vec()),
        "product" => (
            html,
            br#"<html><head><title>Widget</title>
            <meta property="og:title" content="The Widget">
            <link rel="canonical" href="https://shop.test/widget"></head>
            <body><h1>
               Widget   Deluxe
            </h1><ul class="tags"><li>blue</li><li> small </li><li>new</li></ul>
            <p class="price">Now only $12.50 (was $20.00)</p></body></html>"#
                .to_vec(),
        ),
        _ => return None,
    })
}

async fn html(Path(name): Path<String>) -> Response {
    match page(&name) {
        Some((content_type, body)) => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Bytes the gzip bomb inflates to.
pub const BOMB_INFLATED: usize = 64 * 1024 * 1024;

/// A small gzip body that inflates to [`BOMB_INFLATED`] bytes of zeros.
async fn bomb() -> Response {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    let body = BOMB.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..BOMB_INFLATED / zeros.len() {
            e.write_all(&zeros).unwrap();
        }
        Bytes::from(e.finish().unwrap())
    });
    ([(header::CONTENT_ENCODING, "gzip")], body.clone()).into_response()
}

/// A raw TCP server on 127.0.0.1 that runs `behave` on each connection, for misbehaviour a
/// well-behaved HTTP server cannot produce. Stops accepting when dropped.
pub struct RawServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    pub fn start(behave: fn(std::net::TcpStream)) -> RawServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        std::thread::spawn(move || behave(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RawServer { addr, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head (up to the blank line), so a response does not race the request.
pub fn read_head(stream: &mut std::net::TcpStream) {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
}

/// Closes with RST instead of FIN.
pub fn reset(stream: std::net::TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// A listener that accepts connections and never answers: for timeouts.
pub fn silent(stream: std::net::TcpStream) {
    std::thread::sleep(Duration::from_secs(60));
    drop(stream);
}
