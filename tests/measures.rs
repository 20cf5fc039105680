//! Every row tells all it measured: a failed request keeps the time it took and how far its
//! connection got; the HTTP version; certificates (also of a rejected handshake); response
//! headers as columns; a summary that counts every row.

use std::time::{Duration, Instant};

use fetch::{Stop, StopReason};

use crate::support::server::{RawServer, TestServer, read_head, reset};
use crate::support::tls::TlsServer;
use crate::support::{Row, config, run_list, run_list_with_stop, urls};

fn millis(row: &Row<'_>, column: &str) -> f64 {
    let cell = row.get(column);
    cell.parse()
        .unwrap_or_else(|_| panic!("{column} is '{cell}', not milliseconds"))
}

/// Accepts, reads the request, then resets the connection.
fn reset_after_request(mut stream: std::net::TcpStream) {
    read_head(&mut stream);
    reset(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_connecting_keeps_the_connection_times() {
    let server = RawServer::start(reset_after_request);
    let (_, table) = run_list(config(), server.url("/x")).await;
    let row = table.line(1);
    assert_eq!(row.get("error"), "protocol", "{}", row.get("error_detail"));
    let connect = millis(&row, "connect_ms");
    assert!(millis(&row, "latency_ms") >= connect);
    assert_eq!(row.get("remote_ip"), "127.0.0.1");
    assert_eq!(row.get("reused"), "false");
    assert_eq!(row.get("dns_ms"), "", "an address: no lookup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_certificate_keeps_the_connection_times() {
    let server = TlsServer::start();
    let (_, table) = run_list(config(), server.url("/ok/x")).await;
    let row = table.line(1);
    assert_eq!(row.get("error"), "tls", "{}", row.get("error_detail"));
    let connect = millis(&row, "connect_ms");
    assert!(millis(&row, "latency_ms") >= connect);
    assert_eq!(row.get("tls_ms"), "", "the handshake did not finish");
    assert_eq!(row.get("remote_ip"), "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_failures_have_a_latency() {
    let server = TestServer::start();
    let mut config = config();
    config.fetch.max_redirects = 3;
    let list = format!("{}\n{}\n", server.url("/loop"), server.url("/to-ftp"));
    let (_, table) = run_list(config, list).await;
    for (line, error) in [(1, "too_many_redirects"), (2, "bad_redirect")] {
        let row = table.line(line);
        assert_eq!(row.get("error"), error);
        assert!(millis(&row, "latency_ms") >= millis(&row, "ttfb_ms"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_rows_keep_the_time_they_ran() {
    let server = TestServer::start();
    let stop = Stop::new();
    let trigger = stop.clone();
    let stats = std::sync::Arc::clone(&server.stats);
    tokio::spawn(async move {
        while stats.in_flight() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.trigger(StopReason::Interrupted);
    });
    let started = Instant::now();
    let (_, table) = run_list_with_stop(config(), urls(&server.url("/hang"), 2), stop).await;
    let ran = started.elapsed().as_secs_f64() * 1000.0;
    for line in 1..=2 {
        let row = table.line(line);
        assert_eq!(row.get("error"), "cancelled");
        let latency = millis(&row, "latency_ms");
        assert!((150.0..=ran).contains(&latency), "{latency} ms of {ran}");
        assert_eq!(row.get("remote_ip"), "127.0.0.1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_version_is_a_column() {
    let plain = TestServer::start();
    let tls = TlsServer::start();
    let mut insecure = config();
    insecure.fetch.insecure = true;
    let list = format!("{}\n{}\n", plain.url("/ok/1"), tls.url("/ok/2"));
    let (_, table) = run_list(insecure, list).await;
    assert_eq!(
        table.headers.last().map(String::as_str),
        Some("http_version")
    );
    assert_eq!(table.line(1).get("http_version"), "HTTP/1.1");
    assert_eq!(table.line(2).get("http_version"), "HTTP/2");
}

/// `--tls-info`: the certificate of the connection, also when the handshake rejected it (a
/// cron job watching expiry must see the date).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_info_shows_the_certificate_accepted_or_not() {
    let server = TlsServer::start();
    let mut watch = config();
    watch.fetch.tls_info = true;
    let list = urls(&server.url("/ok"), 2);
    let (_, rejected) = run_list(watch.clone(), &list).await;
    watch.fetch.insecure = true;
    let (_, accepted) = run_list(watch, &list).await;
    for (table, version) in [(&rejected, ""), (&accepted, "TLSv1.3")] {
        for line in 1..=2 {
            let row = table.line(line);
            assert_eq!(row.get("tls_version"), version);
            assert_eq!(row.get("cert_subject"), "CN=rcgen self signed cert");
            assert_eq!(row.get("cert_issuer"), "CN=rcgen self signed cert");
            assert_eq!(row.get("cert_not_after"), "4096-01-01T00:00:00.000Z");
            let days: i64 = row.get("cert_days_left").parse().unwrap();
            assert!(days > 700_000, "{days}");
        }
    }
    assert_eq!(rejected.line(1).get("error"), "tls");
    // Without the option, none of these columns.
    let (_, plain) = run_list(config(), server.url("/ok/x")).await;
    assert!(!plain.headers.iter().any(|h| h.starts_with("cert_")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_headers_as_columns() {
    let server = TestServer::start();
    let mut config = config();
    for (name, column) in [
        ("x-tag", "x-tag"),
        ("X-Formula", "formula"),
        ("x-cache", "cache"),
    ] {
        config
            .fetch
            .header_columns
            .push((name.parse().unwrap(), column.to_owned()));
    }
    config
        .fetch
        .header_columns
        .push(("x-missing".parse().unwrap(), "missing".into()));
    let list = format!("{}\n{}\n", server.url("/tagged"), server.url("/ok/x"));
    let (_, table) = run_list(config, list).await;
    let tagged = table.line(1);
    assert_eq!(tagged.get("x-tag"), "first, second");
    assert_eq!(tagged.get("formula"), "'=HYPERLINK(\"http://evil.test\")");
    assert_eq!(tagged.get("cache"), "HIT");
    assert_eq!(tagged.get("missing"), "");
    assert_eq!(table.line(2).get("x-tag"), "");
}

/// `--fields +…` adds the optional columns to the defaults: the wire size of a compressed
/// body, its coding, and where a redirect that was not followed points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_columns_for_redirect_audits_and_wire_sizes() {
    let server = TestServer::start();
    let mut config = config();
    config.fetch.follow_redirects = false;
    config.output.fields = Some(vec![
        "+location".into(),
        "content_encoding".into(),
        "wire_bytes".into(),
    ]);
    let list = format!(
        "{}\n{}\n",
        server.url("/redirect/2"),
        server.url("/encoded/gzip")
    );
    let (_, table) = run_list(config, list).await;
    assert_eq!(&table.headers[..3], ["line", "url", "status"]);
    let redirect = table.line(1);
    assert_eq!(redirect.get("status"), "302");
    assert_eq!(redirect.get("location"), server.url("/redirect/1"));
    let gzip = table.line(2);
    assert_eq!(gzip.get("content_encoding"), "gzip");
    assert_eq!(gzip.get("location"), "");
    let wire: u64 = gzip.get("wire_bytes").parse().unwrap();
    let bytes: u64 = gzip.get("bytes").parse().unwrap();
    assert!(
        wire > 0 && wire < bytes / 10,
        "{wire} on the wire for {bytes}"
    );
}
