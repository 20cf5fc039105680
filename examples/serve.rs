//! A fast local HTTP server to try fetch against without the internet, and to load-test it.
//!
//!     cargo run --release --example serve -- 8080
//!
//! Routes (any path below them works, so lists of unique URLs are easy to make):
//!   /page/...            a small HTML page, with an ETag and a Last-Modified date; a
//!                        conditional request that matches them gets 304 Not Modified
//!                        (what `fetch --state` sends on its second run)
//!   /delay/MS/...        the small page after MS milliseconds
//!   /size/BYTES/...      a body of BYTES bytes
//!   /html/BYTES/...      an HTML page of BYTES bytes with a title at the top
//!   /status/CODE/...     an empty response with that status
//!   /bomb/MIB/...        a gzip body that inflates to MIB MiB of zeros (made once per size)
//!   /gzpage/MIB/...      a gzip HTML page of MIB MiB of numbered paragraphs, about 6:1 on the
//!                        wire, costly to inflate as real pages are (made once per size)
//!   /endless/...         a body with no length that streams 64 KiB chunks for 2 GiB
//!   /stamp/...           the small page, noting when the request arrived
//!   /robots.txt          rules for every crawler (`/private/` and `*.pdf$` disallowed), a file
//!                        of its own for each host name (it says which), counted at
//!                        /robots-count
//!   /stamps              the arrival times noted so far, in microseconds since the server
//!                        started, one per line (and forgets them): what bench/compare.sh
//!                        uses to check `--rate` where it matters, at the server
//!
//! It listens on 127.0.0.1 only. The port defaults to 0 (any free port); the address is printed.
//!
//!     cargo run --release --example serve -- 8443 --tls    (or `-- --tls` for any free port)
//!
//! serves the same routes over HTTPS with a self-signed certificate (so fetch needs `-k`),
//! HTTP/1.1 only, closing the connection after every response: each URL costs the client a
//! full TLS handshake, the most CPU a request can take.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = "<!doctype html><html><head><title>fetch test page</title></head>\
                    <body><p>Hello from 127.0.0.1.</p></body></html>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (flags, ports): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a == "--tls");
    let tls = !flags.is_empty();
    let port: u16 = ports.first().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let scheme = if tls { "https" } else { "http" };
    println!("serving on {scheme}://{}", listener.local_addr()?);
    arrivals(); // Start the clock.
    if tls {
        serve_tls(listener).await?;
    } else {
        axum::serve(listener, app()).await?;
    }
    Ok(())
}

/// HTTPS, one request per connection.
async fn serve_tls(listener: tokio::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let app = app();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: wait for some to close, as axum::serve does.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let (acceptor, service) = (acceptor.clone(), TowerToHyperService::new(app.clone()));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn app() -> Router {
    Router::new()
        .route("/page/{*rest}", get(page))
        .route("/delay/{ms}/{*rest}", get(delay))
        .route("/size/{bytes}/{*rest}", get(size))
        .route("/html/{bytes}/{*rest}", get(html))
        .route("/status/{code}/{*rest}", get(status))
        .route("/bomb/{mib}/{*rest}", get(bomb))
        .route("/gzpage/{mib}/{*rest}", get(gzpage))
        .route("/endless/{*rest}", get(endless))
        .route("/stamp/{*rest}", get(stamp))
        .route("/stamps", get(stamps))
        .route("/robots.txt", get(robots))
        .route("/robots-count", get(robots_count))
}

/// The page's validators: it never changes.
const PAGE_ETAG: &str = "\"page-1\"";
const PAGE_MODIFIED: &str = "Sun, 01 Nov 2026 00:00:00 GMT";

async fn page(request: HeaderMap) -> Response {
    let validators = [
        (header::ETAG, PAGE_ETAG),
        (header::LAST_MODIFIED, PAGE_MODIFIED),
    ];
    if not_modified(&request) {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    let html = (header::CONTENT_TYPE, "text/html; charset=utf-8");
    (validators, [html], PAGE).into_response()
}

/// RFC 9110 §13.1: If-None-Match (weak comparison, `*` matches any) decides when present;
/// otherwise If-Modified-Since, against the page's date.
fn not_modified(request: &HeaderMap) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if let Some(tags) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags
            .split(',')
            .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(PAGE_ETAG));
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let modified = httpdate::parse_http_date(PAGE_MODIFIED).ok();
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

async fn delay(Path((ms, _)): Path<(u64, String)>, request: HeaderMap) -> impl IntoResponse {
    precise_sleep(Duration::from_millis(ms)).await;
    page(request).await
}

/// Sleeps for `wait`, to within a fraction of a millisecond. tokio's timer ticks in whole
/// milliseconds and fires up to two late, which would make "delayed 100 ms" mean 101-102 ms and
/// every client look slower than it is; the last stretch is slept on a blocking thread, where
/// the OS's high-resolution timer is precise.
async fn precise_sleep(wait: Duration) {
    let until = Instant::now() + wait;
    let coarse = wait.saturating_sub(Duration::from_millis(3));
    tokio::time::sleep(coarse).await;
    let _ = tokio::task::spawn_blocking(move || {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    })
    .await;
}

async fn size(Path((bytes, _)): Path<(usize, String)>) -> impl IntoResponse {
    let body = Bytes::from(vec![b'x'; bytes.min(1 << 30)]);
    ([(header::CONTENT_TYPE, "application/octet-stream")], body)
}

async fn html(Path((bytes, _)): Path<(usize, String)>) -> impl IntoResponse {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>A page of some size</title>\
         </head><body>",
    );
    let paragraph = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
                     tempor incididunt ut labore et dolore magna aliqua.</p>\n";
    while page.len() + paragraph.len() < bytes.min(64 << 20) {
        page.push_str(paragraph);
    }
    page.push_str("</body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

/// robots.txt requests served.
static ROBOTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn robots(request: HeaderMap) -> impl IntoResponse {
    ROBOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = request
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain")],
        format!(
            "# robots.txt of {host}\nUser-agent: *\nDisallow: /private/\nDisallow: /*.pdf$\n\n\
             User-agent: badbot\nDisallow: /\n"
        ),
    )
}

async fn robots_count() -> String {
    format!("{}\n", ROBOTS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Arrival times of `/stamp/` requests, in microseconds since the server started.
fn arrivals() -> &'static Mutex<(Instant, Vec<u64>)> {
    static ARRIVALS: OnceLock<Mutex<(Instant, Vec<u64>)>> = OnceLock::new();
    ARRIVALS.get_or_init(|| Mutex::new((Instant::now(), Vec::new())))
}

async fn stamp(request: HeaderMap) -> impl IntoResponse {
    if let Ok(mut arrivals) = arrivals().lock() {
        let micros = arrivals.0.elapsed().as_micros() as u64;
        arrivals.1.push(micros);
    }
    page(request).await
}

async fn stamps() -> String {
    let taken = arrivals()
        .lock()
        .map(|mut arrivals| std::mem::take(&mut arrivals.1))
        .unwrap_or_default();
    taken.iter().map(|t| format!("{t}\n")).collect()
}

async fn status(Path((code, _)): Path<(u16, String)>) -> impl IntoResponse {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

async fn bomb(Path((mib, _)): Path<(usize, String)>) -> impl IntoResponse {
    static MADE: OnceLock<Mutex<HashMap<usize, Bytes>>> = OnceLock::new();
    let body = made_once(&MADE, mib.min(16 * 1024), gzip_zeros).await;
    ([(header::CONTENT_ENCODING, "gzip")], body)
}

async fn gzpage(Path((mib, _)): Path<(usize, String)>) -> impl IntoResponse {
    static MADE: OnceLock<Mutex<HashMap<usize, Bytes>>> = OnceLock::new();
    let body = made_once(&MADE, mib.min(1024), gzip_page).await;
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "text/html"),
        ],
        body,
    )
}

/// The body `make(mib)` makes, made once per size (off the server's event loop).
async fn made_once(
    made: &'static OnceLock<Mutex<HashMap<usize, Bytes>>>,
    mib: usize,
    make: fn(usize) -> Bytes,
) -> Bytes {
    let made = made.get_or_init(Mutex::default);
    if let Some(body) = made.lock().ok().and_then(|m| m.get(&mib).cloned()) {
        return body;
    }
    let body = tokio::task::spawn_blocking(move || make(mib))
        .await
        .unwrap_or_default();
    if let Ok(mut m) = made.lock() {
        m.insert(mib, body.clone());
    }
    body
}

fn gzip_page(mib: usize) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut page =
        String::from("<!doctype html><html><head><title>A long page</title></head><body>\n");
    let mut i = 0u64;
    while page.len() < mib << 20 {
        // Varied enough that it compresses like text, not like a run of zeros.
        let x = i.wrapping_mul(2_654_435_761) % 1_000_003;
        page.push_str(&format!(
            "<p id=\"p{i}\">Paragraph {i} of the page, item {x}, total {}.</p>\n",
            x * 7 + i
        ));
        i += 1;
    }
    page.truncate(mib << 20);
    if encoder.write_all(page.as_bytes()).is_err() {
        return Bytes::new();
    }
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn gzip_zeros(mib: usize) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        if encoder.write_all(&zeros).is_err() {
            break;
        }
    }
    Bytes::from(encoder.finish().unwrap_or_default())
}

async fn endless() -> impl IntoResponse {
    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
    let chunks = (0..32 * 1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    Body::from_stream(futures::stream::iter(chunks))
}
