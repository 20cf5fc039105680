//! A fast local HTTP server to try fetch against without the internet, and to load-test it.
//!
//!     cargo run --release --example serve -- 8080
//!
//! Routes (any path below them works, so lists of unique URLs are easy to make):
//!   /page/...            a small HTML page
//!   /delay/MS/...        the small page after MS milliseconds
//!   /size/BYTES/...      a body of BYTES bytes
//!   /status/CODE/...     an empty response with that status
//!
//! It listens on 127.0.0.1 only. The port defaults to 0 (any free port); the address is printed.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

const PAGE: &str = "<!doctype html><html><head><title>fetch test page</title></head>\
                    <body><p>Hello from 127.0.0.1.</p></body></html>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app()).await?;
    Ok(())
}

fn app() -> Router {
    Router::new()
        .route("/page/{*rest}", get(page))
        .route("/delay/{ms}/{*rest}", get(delay))
        .route("/size/{bytes}/{*rest}", get(size))
        .route("/status/{code}/{*rest}", get(status))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn delay(Path((ms, _)): Path<(u64, String)>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    page().await
}

async fn size(Path((bytes, _)): Path<(usize, String)>) -> impl IntoResponse {
    let body = Bytes::from(vec![b'x'; bytes.min(1 << 30)]);
    ([(header::CONTENT_TYPE, "application/octet-stream")], body)
}

async fn status(Path((code, _)): Path<(u16, String)>) -> impl IntoResponse {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}
