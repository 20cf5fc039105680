//! An HTTP server for tests, on 127.0.0.1 port 0, running on its own thread and runtime so both
//! async tests and tests of the real binary can use it. It counts requests, the most in flight
//! at once, and arrival times, so limits are checked by counting rather than by timing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

#[derive(Default)]
pub struct Stats {
    pub hits: AtomicUsize,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    arrivals: Mutex<Vec<Instant>>,
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
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// Counts a request as in flight until dropped, so cancelled requests are counted out too.
struct InFlight(Arc<Stats>);

impl InFlight {
    fn enter(stats: &Arc<Stats>) -> InFlight {
        stats.hits.fetch_add(1, Ordering::SeqCst);
        stats.arrivals.lock().unwrap().push(Instant::now());
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(stats))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let stats = Arc::new(Stats::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = routes(Arc::clone(&stats));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
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
            thread: Some(thread),
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
        // Don't join: a graceful shutdown waits for open connections, which a test may hold.
        drop(self.thread.take());
    }
}

fn routes(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/ok/{*rest}", get(ok))
        .route("/slow/{ms}/{*rest}", get(slow))
        .route("/hang/{*rest}", get(hang))
        .route("/trickle", get(trickle))
        .route("/size/{bytes}", get(sized))
        .route("/redirect/{n}", get(redirect))
        .route("/loop", get(redirect_loop))
        .route("/to-ftp", get(to_ftp))
        .route("/awkward", get(awkward))
        .route("/status/{code}", get(status))
        .with_state(stats)
}

async fn ok(State(stats): State<Arc<Stats>>) -> impl IntoResponse {
    let _guard = InFlight::enter(&stats);
    ([(header::CONTENT_TYPE, "text/html")], "<title>ok</title>")
}

async fn slow(State(stats): State<Arc<Stats>>, Path((ms, _)): Path<(u64, String)>) -> &'static str {
    let _guard = InFlight::enter(&stats);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

async fn hang(State(stats): State<Arc<Stats>>) -> &'static str {
    let _guard = InFlight::enter(&stats);
    std::future::pending::<()>().await;
    unreachable!()
}

/// Headers at once, then one byte every 100 ms for about a minute.
async fn trickle(State(stats): State<Arc<Stats>>) -> Response {
    let guard = InFlight::enter(&stats);
    let stream = futures::stream::unfold((0, guard), |(i, guard)| async move {
        if i > 600 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from_static(b"x")),
            (i + 1, guard),
        ))
    });
    Body::from_stream(stream).into_response()
}

async fn sized(State(stats): State<Arc<Stats>>, Path(bytes): Path<usize>) -> Vec<u8> {
    let _guard = InFlight::enter(&stats);
    vec![b'a'; bytes]
}

async fn redirect(State(stats): State<Arc<Stats>>, Path(n): Path<u32>) -> Response {
    let _guard = InFlight::enter(&stats);
    if n == 0 {
        return "arrived".into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", n - 1))],
    )
        .into_response()
}

async fn redirect_loop(State(stats): State<Arc<Stats>>) -> Response {
    let _guard = InFlight::enter(&stats);
    (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response()
}

async fn to_ftp(State(stats): State<Arc<Stats>>) -> Response {
    let _guard = InFlight::enter(&stats);
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, "ftp://127.0.0.1/file")],
    )
        .into_response()
}

/// A content type full of CSV metacharacters.
async fn awkward(State(stats): State<Arc<Stats>>) -> Response {
    let _guard = InFlight::enter(&stats);
    (
        [(header::CONTENT_TYPE, "text/plain; note=\"a,b\"; x=\"y\"")],
        "body",
    )
        .into_response()
}

async fn status(State(stats): State<Arc<Stats>>, Path(code): Path<u16>) -> Response {
    let _guard = InFlight::enter(&stats);
    StatusCode::from_u16(code).unwrap().into_response()
}

/// A listener that accepts connections and never answers: for timeouts.
pub struct Silent {
    pub addr: SocketAddr,
    held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Silent { addr, held }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}
