//! Request shaping: method, headers, user agent, proxy, TLS verification, HTTP/2.

use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fetch::config::{parse_header, parse_proxy};
use http::Method;
use http::header::HeaderMap;

use crate::support::server::TestServer;
use crate::support::tls::{RefusingH2Server, TlsServer};
use crate::support::{config, run_list, urls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_user_agent_and_get() {
    let server = TestServer::start();
    run_list(config(), server.url("/ok/x")).await;
    let seen = &server.stats.seen()[0];
    assert_eq!(seen.method, Method::GET);
    let agent = seen.headers["user-agent"].to_str().unwrap();
    assert_eq!(agent, format!("fetch/{}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_have_no_body() {
    let server = TestServer::start();
    let mut config = config();
    config.fetch.method = Method::HEAD;
    let (_, table) = run_list(config, server.url("/size/5000")).await;
    assert_eq!(server.stats.seen()[0].method, Method::HEAD);
    assert_eq!(table.line(1).get("status"), "200");
    assert_eq!(table.line(1).get("bytes"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_the_urls_unless_given() {
    let server = TestServer::start();
    let (_, _) = run_list(config(), server.url("/ok/plain")).await;
    let expected = server.url("").trim_start_matches("http://").to_owned();
    assert_eq!(server.stats.seen()[0].headers["host"], expected.as_str());

    let mut config = config();
    let (name, value) = parse_header("Host: vhost.test").unwrap();
    config.fetch.headers.append(name, value);
    let (_, table) = run_list(config, server.url("/ok/vhost")).await;
    assert_eq!(table.line(1).get("status"), "200");
    let seen = server.stats.seen();
    let host: Vec<_> = seen[1].headers.get_all("host").iter().collect();
    assert_eq!(host, ["vhost.test"], "one Host header, the user's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_sent_and_credentials_stay_on_their_origin() {
    let first = TestServer::start();
    let other = TestServer::start_on("127.0.0.6");
    let mut headers = HeaderMap::new();
    for h in [
        "Authorization: Bearer secret",
        "X-Team: ops",
        "User-Agent: custom/1",
    ] {
        let (name, value) = parse_header(h).unwrap();
        headers.append(name, value);
    }
    let mut config = config();
    config.fetch.headers = headers;
    let same = first.url("/goto?to=/ok/same");
    let away = first.url(&format!("/goto?to={}", other.url("/ok/away")));
    let (_, table) = run_list(config, format!("{same}\n{away}\n")).await;
    assert_eq!(table.line(1).get("redirects"), "1");
    assert_eq!(table.line(2).get("final_url"), other.url("/ok/away"));

    for seen in first.stats.seen() {
        assert_eq!(seen.headers["authorization"], "Bearer secret");
        assert_eq!(seen.headers["x-team"], "ops");
        assert_eq!(seen.headers["user-agent"], "custom/1", "-H overrides -A");
    }
    let away_seen = &other.stats.seen()[0];
    assert!(
        away_seen.headers.get("authorization").is_none(),
        "credentials leaked"
    );
    assert_eq!(away_seen.headers["x-team"], "ops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_receives_absolute_form_requests() {
    let proxy = TestServer::start();
    let mut config = config();
    config.fetch.proxy = Some(parse_proxy(&proxy.url("")).unwrap());
    // The origin's name is never resolved: the proxy is asked for it.
    let (_, table) = run_list(config, "http://origin.invalid/ok/via-proxy\n").await;
    assert_eq!(table.line(1).get("status"), "200");
    let seen = &proxy.stats.seen()[0];
    assert_eq!(seen.uri, "http://origin.invalid/ok/via-proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_unless_insecure_and_http2_is_used() {
    let server = TlsServer::start();
    let url = server.url("/ok/tls");
    let (_, table) = run_list(config(), &url).await;
    assert_eq!(
        table.line(1).get("error"),
        "tls",
        "{}",
        table.line(1).get("error_detail")
    );
    assert_eq!(server.stats.hits(), 0);

    let mut insecure = config();
    insecure.fetch.insecure = true;
    let (_, table) = run_list(insecure, &url).await;
    assert_eq!(table.line(1).get("status"), "200");
    assert_eq!(
        server.stats.seen()[0].version,
        http::Version::HTTP_2,
        "ALPN chose h2"
    );
}

/// RST_STREAM(REFUSED_STREAM) says the server did not process the request (RFC 9113 §8.7): it
/// goes out again on the connection, which is neither a new attempt nor an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_http2_streams_are_sent_again_transparently() {
    let server = RefusingH2Server::start(3);
    let mut insecure = config();
    insecure.fetch.insecure = true;
    insecure.limits.concurrency = NonZeroUsize::new(4).unwrap();
    let (_, table) = run_list(insecure, urls(&server.url("/x"), 20)).await;
    assert_eq!(table.column("status"), ["200"; 20]);
    assert_eq!(table.column("error"), [""; 20]);
    assert_eq!(table.column("attempts"), ["1"; 20]);
    assert_eq!(server.answered.load(Ordering::SeqCst), 20);
    assert!(server.refused.load(Ordering::SeqCst) >= 3);
}

/// A server that refuses every stream does not keep a request going round: it ends as a
/// `protocol` row after a few resends, and `--retries` may try it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_every_stream_ends_the_request() {
    let server = RefusingH2Server::start(usize::MAX);
    let mut insecure = config();
    insecure.fetch.insecure = true;
    insecure.limits.retry.retries = 1;
    insecure.limits.retry.base = Duration::from_millis(10);
    let (_, table) = run_list(insecure, server.url("/x")).await;
    let row = table.line(1);
    assert_eq!(row.get("error"), "protocol", "{}", row.get("error_detail"));
    assert!(
        row.get("error_detail").contains("refused"),
        "{}",
        row.get("error_detail")
    );
    assert_eq!(row.get("attempts"), "2", "transient, so retried");
    let refused = server.refused.load(Ordering::SeqCst);
    // At most eleven tries per attempt: two on shared connections, nine on its own.
    assert!((2..=22).contains(&refused), "{refused} streams refused");
}
