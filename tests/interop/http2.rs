//! HTTP/2 against nginx: GOAWAY after `keepalive_requests` streams and REFUSED_STREAM beyond
//! `http2_max_concurrent_streams` mean the request was not processed (RFC 9113 §6.8, §8.7); it
//! is sent again on a connection that can take it, and the row never shows it.

use super::not_ok;
use std::collections::HashSet;

use super::servers::{Env, Nginx, fetch, run};
use crate::support::Table;

/// nginx serving `ok` over TLS with HTTP/2 on one port, with `settings` in its server block.
fn nginx_h2(env: &Env, settings: &str) -> Option<Nginx> {
    let pair = env.pki.good.clone();
    let settings = settings.to_owned();
    Nginx::start(env, 1, move |ports| {
        format!(
            "server {{\n listen 127.0.0.1:{port} ssl http2;\n\
             ssl_certificate {cert};\n ssl_certificate_key {key};\n{settings}\n\
             location / {{ return 200 \"ok\\n\"; }}\n}}",
            port = ports[0],
            cert = pair.cert.display(),
            key = pair.key.display(),
        )
    })
}

/// `n` distinct URLs on the nginx port.
fn urls(nginx: &Nginx, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://localhost:{}/item/{i}", nginx.ports[0]))
        .collect()
}

/// Every row a 200 in one attempt, and nginx saw each URL exactly once over HTTP/2: the rows,
/// and the number of connections the requests came on.
fn every_row_ok(env: &Env, nginx: &Nginx, n: usize, concurrency: &str) -> (Table, usize) {
    let list = env.list("urls.txt", &urls(nginx, n));
    let run = run(
        fetch()
            .args(["-c", concurrency])
            .env("SSL_CERT_FILE", &env.pki.ca),
        &list,
    );
    let table = &run.table;
    assert_eq!(table.len(), n);
    assert_eq!(not_ok(table), Vec::<String>::new(), "rows that are not 200");
    assert!(table.column("attempts").iter().all(|a| *a == "1"));
    assert!(table.column("http_version").iter().all(|v| *v == "HTTP/2"));
    let log = nginx.log();
    assert_eq!(log.len(), n, "nginx answered each URL once");
    assert!(
        log.iter()
            .all(|l| l.protocol == "HTTP/2.0" && l.status == 200)
    );
    let connections: HashSet<u64> = log.iter().map(|l| l.connection).collect();
    (run.table, connections.len())
}

/// Fifty requests starting at once to a new HTTP/2 origin wait for the one handshake under way
/// (as curl's PIPEWAIT) instead of making fifty, and one connection carries them all: nginx
/// allows 128 streams at once.
#[test]
fn one_connection_carries_fifty_requests_at_once() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "") else {
        return;
    };
    let (table, connections) = every_row_ok(&env, &nginx, 500, "50");
    assert_eq!(connections, 1, "connections nginx accepted");
    let handshakes = table
        .column("tls_ms")
        .iter()
        .filter(|t| !t.is_empty())
        .count();
    assert_eq!(handshakes, 1, "rows that made a TLS handshake");
}

/// A connection retired by GOAWAY every 100 streams is replaced by one connection, not by one
/// per request that was waiting.
#[test]
fn a_retired_connection_is_replaced_once() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "keepalive_requests 100;") else {
        return;
    };
    let (_, connections) = every_row_ok(&env, &nginx, 1000, "50");
    // Ten are needed; a request refused by the GOAWAY of one connection while the next is
    // being made may make one of its own.
    assert!(
        (10..=20).contains(&connections),
        "{connections} connections"
    );
}

#[test]
fn stock_nginx_goaway_after_1000_streams_loses_no_row_at_50() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "") else {
        return;
    };
    every_row_ok(&env, &nginx, 3000, "50");
}

#[test]
fn stock_nginx_goaway_after_1000_streams_loses_no_row_at_200() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "") else {
        return;
    };
    every_row_ok(&env, &nginx, 3000, "200");
}

/// A GOAWAY every 10 streams: hundreds of connections retired under load.
#[test]
fn frequent_goaway_loses_no_row() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "keepalive_requests 10;") else {
        return;
    };
    every_row_ok(&env, &nginx, 1500, "50");
}

/// nginx refuses streams beyond its limit that a client opens before it has read the
/// server's SETTINGS (here on every new connection, as GOAWAY retires one every 50 streams):
/// they are sent again, and later ones wait for a free stream.
#[test]
fn refused_streams_are_sent_again_and_queue_for_the_limit() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(
        &env,
        "http2_max_concurrent_streams 4;\nkeepalive_requests 50;",
    ) else {
        return;
    };
    every_row_ok(&env, &nginx, 1000, "50");
}

/// A server that allows 8 streams at once on a connection gets the connections `-c 48` needs
/// (learned from its SETTINGS), rather than one connection with 40 requests queued inside it.
#[test]
fn a_low_stream_limit_gets_the_connections_concurrency_needs() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "http2_max_concurrent_streams 8;") else {
        return;
    };
    let (_, connections) = every_row_ok(&env, &nginx, 2000, "48");
    // Six carry 48 streams (six here every time); requests that find the first connection
    // before its SETTINGS have arrived take it as allowing 100 and wait there for a free stream,
    // so a few more may open meanwhile.
    assert!((6..=12).contains(&connections), "{connections} connections");
}

/// A GOAWAY after every stream: each connection serves one request.
#[test]
fn goaway_after_every_stream_loses_no_row() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(&env, "keepalive_requests 1;") else {
        return;
    };
    every_row_ok(&env, &nginx, 600, "50");
}

/// Both at once: one stream at a time, and a GOAWAY after three.
#[test]
fn one_stream_per_connection_and_goaway_after_three() {
    let env = Env::new();
    let Some(nginx) = nginx_h2(
        &env,
        "http2_max_concurrent_streams 1;\nkeepalive_requests 3;",
    ) else {
        return;
    };
    every_row_ok(&env, &nginx, 300, "20");
}
