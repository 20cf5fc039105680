//! A self-contained demo: starts a small HTTP server on 127.0.0.1, then fetches a list of URLs
//! from it through the library API, exactly as the `fetch` binary does, and prints the CSV.
//!
//!     cargo run --example demo
//!
//! No internet needed. The list mixes good pages, a slow one, a redirect chain, an error status,
//! and lines that are not URLs, to show one row per line whatever happens.

use std::num::NonZeroUsize;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use fetch::{Config, Inputs, Output, Stop};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app()).await });

    let list = format!(
        "# a demo list: comments and blank lines are skipped\n\
         {base}/\n\
         {base}/slow\n\
         \n\
         {base}/old-home\n\
         {base}/missing\n\
         ftp://example.org/file\n\
         not a url\n"
    );
    // Each stage has its part of the configuration: limits for the scheduler, fetch for requests.
    let mut config = Config::default();
    config.limits.concurrency = NonZeroUsize::new(4).expect("4 is not zero");
    config.limits.rate = Some("20/s".parse()?);
    config.fetch.timeout = Duration::from_secs(2);
    let inputs = Inputs::from_reader("demo list", std::io::Cursor::new(list.into_bytes()));
    let summary = fetch::run(config, inputs, Output::stdout(), Stop::new()).await?;
    eprint!("{summary}");
    Ok(())
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "<title>Home</title>" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "<title>Slow</title>"
            }),
        )
        .route(
            "/old-home",
            get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/")]) }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such page").into_response() }),
        )
}
