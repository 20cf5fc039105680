//! Servers that misbehave, and bodies that would exhaust memory: every case ends as a row with an
//! error kind (or a capped body), never a hang or a crash.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::server::{
    BOMB_INFLATED, ENCODED_REPEAT, ENCODED_TEXT, RawServer, TestServer, numbered_text, read_head,
    reset,
};
use crate::support::{config, run_list};

fn reset_before_headers(mut s: TcpStream) {
    read_head(&mut s);
    reset(s);
}

fn reset_after_headers(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    let _ = s.write_all(&[b'x'; 1000]);
    let _ = s.flush();
    std::thread::sleep(Duration::from_millis(50));
    reset(s);
}

fn short_body(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b");
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn garbage_status(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HELLO THERE\r\n\r\n");
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn endless_headers(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
    for i in 0..20_000 {
        if s.write_all(format!("X-Pad-{i}: aaaaaaaaaaaaaaaa\r\n").as_bytes())
            .is_err()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn huge_header(mut s: TcpStream) {
    read_head(&mut s);
    let mut response = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    response.extend(std::iter::repeat_n(b'a', 100 * 1024));
    response.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nok");
    let _ = s.write_all(&response);
    std::thread::sleep(Duration::from_millis(200));
}

/// Answers one request and closes, without saying so (no `Connection: close`).
fn one_response_per_connection(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    reset(s);
}

fn silent(stream: TcpStream) {
    crate::support::server::silent(stream)
}

/// Runs one URL of a misbehaving server and returns (error kind, error detail, status).
async fn outcome(behave: fn(TcpStream)) -> (String, String, String) {
    let server = RawServer::start(behave);
    let mut config = config();
    config.fetch.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let (_, table) = run_list(config, server.url("/x")).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let row = table.line(1);
    (
        row.get("error").into(),
        row.get("error_detail").into(),
        row.get("status").into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_headers_is_a_row() {
    let (kind, detail, status) = outcome(reset_before_headers).await;
    assert!(
        ["protocol", "connect"].contains(&kind.as_str()),
        "{kind}: {detail}"
    );
    assert_eq!(status, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_headers_is_a_body_error() {
    let (kind, detail, status) = outcome(reset_after_headers).await;
    assert_eq!(kind, "body", "{detail}");
    assert_eq!(status, "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_shorter_than_its_length_is_a_body_error() {
    let (kind, detail, status) = outcome(short_body).await;
    assert_eq!(kind, "body", "{detail}");
    assert_eq!(status, "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_status_line_is_a_protocol_error() {
    let (kind, detail, _) = outcome(garbage_status).await;
    assert_eq!(kind, "protocol", "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_end_are_cut_off() {
    let (kind, detail, status) = outcome(endless_headers).await;
    assert!(
        ["protocol", "timeout"].contains(&kind.as_str()),
        "{kind}: {detail}"
    );
    assert_eq!(status, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_header_is_handled() {
    let (kind, detail, status) = outcome(huge_header).await;
    // Either accepted or refused as too large, but a row either way.
    assert!(
        (kind.is_empty() && status == "200") || kind == "protocol",
        "{kind}: {detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let (kind, _, _) = outcome(silent).await;
    assert_eq!(kind, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_content_coding_is_decoded() {
    let server = TestServer::start();
    let list: String = ["gzip", "deflate", "br", "zstd", "raw-deflate"]
        .iter()
        .map(|c| server.url(&format!("/encoded/{c}")) + "\n")
        .collect();
    let (_, table) = run_list(config(), list).await;
    let decoded = (ENCODED_TEXT.len() * ENCODED_REPEAT).to_string();
    for line in 1..=5 {
        let row = table.line(line);
        assert_eq!(row.get("error"), "", "{}", row.get("error_detail"));
        assert_eq!(row.get("bytes"), decoded, "line {line}");
    }
}

/// Bodies that decode to megabytes are decoded on worker threads past their first 256 KiB,
/// a batch at a time while frames keep coming: every coding comes out whole (the digest of the
/// decoded bytes), and a cap that falls inside a batch cuts at its byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_decode_whole_off_the_event_loop() {
    use sha2::Digest;
    let server = TestServer::start();
    let lines = 100_000;
    let plain = numbered_text(lines);
    let codings = ["gzip", "deflate", "br", "zstd", "raw-deflate"];
    let list: String = codings
        .iter()
        .map(|c| server.url(&format!("/encoded/{c}/{lines}")) + "\n")
        .collect();
    let mut config = config();
    config.extract.hash = true;
    config.output.fields = Some(vec!["+wire_bytes".into()]);
    let (_, table) = run_list(config.clone(), list.clone()).await;
    let digest = hex(&sha2::Sha256::digest(plain.as_bytes()));
    for line in 1..=5 {
        let row = table.line(line);
        assert_eq!(row.get("error"), "", "{}", row.get("error_detail"));
        assert_eq!(row.get("bytes"), plain.len().to_string(), "line {line}");
        assert_eq!(row.get("body_sha256"), digest, "line {line}");
        let wire: usize = row.get("wire_bytes").parse().unwrap();
        assert!(
            wire > 16 * 1024 && wire < plain.len(),
            "line {line}: {wire}"
        );
    }
    config.fetch.max_body = 1_000_003;
    let (_, table) = run_list(config, list).await;
    let digest = hex(&sha2::Sha256::digest(&plain.as_bytes()[..1_000_003]));
    for line in 1..=5 {
        let row = table.line(line);
        assert_eq!(row.get("bytes"), "1000003", "line {line}");
        assert!(row.get("error_detail").contains("truncated"));
        assert_eq!(row.get("body_sha256"), digest, "line {line}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_body_says_which_coding() {
    let server = TestServer::start();
    let (_, table) = run_list(config(), server.url("/encoded/corrupt-gzip")).await;
    let row = table.line(1);
    assert_eq!(row.get("status"), "200");
    assert_eq!(row.get("error"), "body");
    assert!(
        row.get("error_detail").contains("corrupt gzip data"),
        "{}",
        row.get("error_detail")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_cap_counts_decoded_bytes() {
    let server = TestServer::start();
    let mut config = config();
    config.fetch.max_body = 1024 * 1024;
    let (_, table) = run_list(
        config,
        format!("{}\n{}\n", server.url("/bomb"), server.url("/endless")),
    )
    .await;
    for line in [1, 2] {
        let row = table.line(line);
        assert_eq!(row.get("status"), "200");
        assert_eq!(row.get("bytes"), "1048576", "line {line}");
        assert!(row.get("error_detail").contains("truncated"));
    }
    const { assert!(BOMB_INFLATED > 1024 * 1024) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_ends_at_the_timeout() {
    let server = TestServer::start();
    let mut config = config();
    config.fetch.timeout = Duration::from_millis(700);
    let (_, table) = run_list(config, server.url("/trickle")).await;
    assert_eq!(table.line(1).get("error"), "timeout");
}

/// A kept-alive connection the server closes as the next request goes out is the connection's
/// failure, not the URL's: the request goes out again on a new connection.
#[tokio::test]
async fn a_connection_closed_under_a_request_is_not_the_urls_failure() {
    let server = RawServer::start(one_response_per_connection);
    let mut config = config();
    config.limits.concurrency = std::num::NonZeroUsize::MIN;
    let list: String = (0..100)
        .map(|i| format!("{}\n", server.url(&format!("/r{i}"))))
        .collect();
    let (_, table) = run_list(config, list).await;
    assert_eq!(table.len(), 100);
    assert!(
        table.column("status").iter().all(|s| *s == "200"),
        "errors: {:?}",
        table.column("error_detail")
    );
    assert!(table.column("attempts").iter().all(|a| *a == "1"));
}
