//! Per-host limits without head-of-line blocking, and retries that pass every limit again.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use fetch::schedule::RetryPolicy;
use fetch::{Stop, StopReason};

use crate::support::server::TestServer;
use crate::support::{config, run_list, run_list_with_stop, urls};

fn n(v: usize) -> Option<NonZeroUsize> {
    NonZeroUsize::new(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_does_not_block_a_fast_one() {
    let slow = TestServer::start();
    let fast = TestServer::start_on("127.0.0.2");
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(20).unwrap();
    config.limits.per_host_concurrency = n(2);
    // 300 slow URLs at 2 at a time would take 45 s; the deadline ends the run long before.
    config.limits.max_time = Some(Duration::from_secs(3));
    let list = urls(&slow.url("/slow/300"), 300) + &urls(&fast.url("/ok"), 50);
    let (summary, table) = run_list(config, list).await;
    assert_eq!(summary.stopped, Some(StopReason::Deadline));

    let fast_rows: Vec<_> = (301..=350).map(|line| table.line(line)).collect();
    assert!(
        fast_rows.iter().all(|r| r.get("status") == "200"),
        "every fast URL finished behind the slow host's backlog"
    );
    assert_eq!(fast.stats.hits(), 50);
    assert!(
        slow.stats.max_in_flight() <= 2,
        "{}",
        slow.stats.max_in_flight()
    );
    assert!(
        fast.stats.max_in_flight() <= 2,
        "{}",
        fast.stats.max_in_flight()
    );
    // The slow host got through about 2 per 300 ms, nowhere near its 300.
    assert!(slow.stats.hits() < 40, "{}", slow.stats.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_rate_spaces_each_host_independently() {
    let a = TestServer::start();
    let b = TestServer::start_on("127.0.0.3");
    let mut config = config();
    config.limits.per_host_rate = Some("5/s".parse().unwrap());
    let list = urls(&a.url("/ok"), 6) + &urls(&b.url("/ok"), 6);
    let started = Instant::now();
    let (_, table) = run_list(config, list).await;
    let elapsed = started.elapsed();
    assert_eq!(table.len(), 12);
    for server in [&a, &b] {
        let arrivals = server.stats.arrivals();
        assert_eq!(arrivals.len(), 6);
        // 200 ms apart: any 3 starts span about 400 ms (allowing for a loaded machine).
        for window in arrivals.windows(3) {
            let width = window[2] - window[0];
            assert!(
                width >= Duration::from_millis(280),
                "burst: 3 starts in {width:?}"
            );
        }
    }
    // The hosts ran side by side: about 1 s, not the 2.2 s of one after the other.
    assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
}

fn retrying(retries: u32) -> fetch::Config {
    let mut config = config();
    config.limits.retry = RetryPolicy {
        retries,
        base: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_transient_statuses_and_records_attempts() {
    let server = TestServer::start();
    let list = format!(
        "{}\n{}\n{}\n",
        server.url("/flaky/2/a"),
        server.url("/flaky/5/b"),
        server.url("/status/404")
    );
    let (_, table) = run_list(retrying(3), list).await;
    let recovered = table.line(1);
    assert_eq!(recovered.get("status"), "200");
    assert_eq!(recovered.get("attempts"), "3");
    let gave_up = table.line(2);
    assert_eq!(
        gave_up.get("status"),
        "503",
        "the row shows the last attempt"
    );
    assert_eq!(gave_up.get("attempts"), "4");
    assert_eq!(gave_up.get("error"), "");
    let not_found = table.line(3);
    assert_eq!(
        not_found.get("attempts"),
        "1",
        "4xx other than 408/425/429 is final"
    );
    assert_eq!(server.stats.hits(), 3 + 4 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_connection_failures() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, table) = run_list(retrying(2), format!("http://127.0.0.1:{port}/\n")).await;
    assert_eq!(table.line(1).get("error"), "connect");
    assert_eq!(table.line(1).get("attempts"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_the_whole_host_but_not_others() {
    let limited = TestServer::start();
    let other = TestServer::start_on("127.0.0.4");
    let mut config = retrying(2);
    config.limits.per_host_concurrency = n(1);
    let list = urls(&limited.url("/limited/1"), 4) + &urls(&other.url("/slow/100"), 4);
    let started = Instant::now();
    let (_, table) = run_list(config, list).await;
    assert_eq!(table.len(), 8);
    assert!(table.column("status").iter().all(|s| *s == "200"));
    assert_eq!(table.line(1).get("attempts"), "2");

    let arrivals = limited.stats.arrivals();
    assert_eq!(arrivals.len(), 5, "one 429, then the four URLs");
    let pause = arrivals[1] - arrivals[0];
    assert!(
        pause >= Duration::from_millis(900),
        "host resumed after {pause:?}"
    );
    // The other host went on during the pause: its 4 × 100 ms were done before the pause ended.
    let other_last = *other.stats.arrivals().last().unwrap();
    assert!(
        other_last < arrivals[1],
        "the other host waited for the pause"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The pause is the host's, not the URL's: it holds even when the 429 is not retried (no
/// `--retries`, or the last attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_the_host_without_retries() {
    let limited = TestServer::start();
    let mut config = retrying(0);
    config.limits.per_host_concurrency = n(1);
    let (_, table) = run_list(config, urls(&limited.url("/limited/1"), 3)).await;
    assert_eq!(table.line(1).get("status"), "429");
    assert_eq!(table.line(1).get("attempts"), "1");
    let arrivals = limited.stats.arrivals();
    assert_eq!(arrivals.len(), 3);
    let pause = arrivals[1] - arrivals[0];
    assert!(
        pause >= Duration::from_millis(900),
        "the host's next URL started {pause:?} after the 429"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_url_retried_after_retry_after_finishes() {
    // Regression: the host's ended pause used to re-arm a timer in the past forever.
    let server = TestServer::start();
    let started = Instant::now();
    let (summary, table) = run_list(retrying(1), server.url("/limited/1/x")).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(summary.stopped, None);
    assert_eq!(table.line(1).get("status"), "200");
    assert_eq!(table.line(1).get("attempts"), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_never_outlive_the_deadline() {
    let server = TestServer::start();
    let mut config = retrying(3);
    config.limits.max_time = Some(Duration::from_secs(2));
    let started = Instant::now();
    // Retry-After: 30 is capped at --max-retry-after (60 s) but is past the deadline either way.
    let (summary, table) = run_list(config, server.url("/limited/30/x")).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited for a hopeless retry"
    );
    assert_eq!(summary.stopped, None);
    assert_eq!(table.line(1).get("status"), "429");
    assert_eq!(table.line(1).get("attempts"), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_rate_bounds_retries_too() {
    let server = TestServer::start();
    let mut config = retrying(3);
    config.limits.rate = Some("10/s".parse().unwrap());
    // Each URL fails twice: 5 URLs make 15 request starts.
    let list: String = (0..5)
        .map(|i| server.url(&format!("/flaky/2/r{i}")) + "\n")
        .collect();
    let (_, table) = run_list(config, list).await;
    assert!(table.column("status").iter().all(|s| *s == "200"));
    let arrivals = server.stats.arrivals();
    assert_eq!(arrivals.len(), 15);
    for window in arrivals.windows(4) {
        let width = window[3] - window[0];
        assert!(
            width >= Duration::from_millis(220),
            "4 starts within {width:?} at 10/s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_backoff_writes_the_last_outcome() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.retry = RetryPolicy {
        retries: 3,
        base: Duration::from_secs(20),
        ..RetryPolicy::default()
    };
    let stop = Stop::new();
    let trigger = stop.clone();
    let stats = std::sync::Arc::clone(&server.stats);
    tokio::spawn(async move {
        while stats.hits() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.trigger(StopReason::Interrupted);
    });
    let started = Instant::now();
    let (summary, table) = run_list_with_stop(config, server.url("/flaky/9/z"), stop).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited out the backoff"
    );
    assert_eq!(summary.stopped, Some(StopReason::Interrupted));
    let row = table.line(1);
    assert_eq!(row.get("status"), "503");
    assert_eq!(row.get("attempts"), "1");
    assert!(
        row.get("error_detail").contains("not retried"),
        "{}",
        row.get("error_detail")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_for_a_busy_host_and_closed_for_a_lone_one() {
    let busy = TestServer::start();
    let lone = TestServer::start_on("127.0.0.5");
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(4).unwrap();
    // The lone host's URL sits in the middle, with a full look-ahead of other work after it.
    let list =
        urls(&busy.url("/ok"), 100) + &lone.url("/ok/only\n") + &urls(&busy.url("/ok/b"), 100);
    let (_, table) = run_list(config, list).await;
    assert_eq!(table.len(), 201);
    // Reused: one connection per slot at most. A request puts its connection back before its
    // slot goes to the next one, so a slot never finds the pool empty for want of waiting.
    assert!(
        busy.stats.connections() <= 4,
        "{} connections",
        busy.stats.connections()
    );
    let lone_request = &lone.stats.seen()[0];
    assert_eq!(
        lone_request
            .headers
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close"),
        "no other request for the host is queued, so the connection is not kept"
    );
}

/// The `Connection` header of each request the server saw, in arrival order.
fn connection_headers(server: &TestServer) -> Vec<String> {
    server
        .stats
        .seen()
        .iter()
        .map(|seen| {
            seen.headers
                .get("connection")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// A list of one-URL hosts leaves no connection open to wait for another request: each asks
/// the server to close, from the first (the first requests wait a moment for the input, so
/// they see that their hosts have nothing more queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_to_a_one_url_host_asks_to_close() {
    let server = TestServer::start();
    let names: Vec<String> = (0..40).map(|i| format!("h{i}.test")).collect();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(10).unwrap();
    pinned(
        &mut config,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let list: String = names
        .iter()
        .map(|name| format!("http://{name}:{}/ok/x\n", server.addr.port()))
        .collect();
    let (_, table) = run_list(config, list).await;
    assert_eq!(table.len(), 40);
    assert_eq!(connection_headers(&server), vec!["close"; 40]);
}

/// A host's requests keep their connections while more of its URLs are queued; the last one
/// started asks to close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_last_request_asks_to_close() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(10).unwrap();
    let (_, table) = run_list(config, urls(&server.url("/ok"), 40)).await;
    assert_eq!(table.len(), 40);
    let closing = connection_headers(&server)
        .iter()
        .filter(|c| *c == "close")
        .count();
    assert_eq!(closing, 1, "requests that asked to close");
    assert!(server.stats.connections() <= 10);
}

/// `names` pinned to 127.0.0.1, so one test server stands for several hosts.
fn pinned(config: &mut fetch::Config, names: &[&str]) {
    config.fetch.resolve = names
        .iter()
        .map(|n| ((*n).to_owned(), vec!["127.0.0.1".parse().unwrap()]))
        .collect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_hops_obey_the_target_hosts_limits() {
    let origin = TestServer::start();
    let target = TestServer::start_on("127.0.0.7");
    let names: Vec<String> = (0..8).map(|i| format!("origin{i}.test")).collect();
    let mut config = config();
    config.limits.per_host_concurrency = n(1);
    pinned(
        &mut config,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let hop = target.url("/slow/200/x");
    let list: String = names
        .iter()
        .map(|name| format!("http://{name}:{}/goto?to={hop}\n", origin.addr.port()))
        .collect();
    let (_, table) = run_list(config, list).await;
    assert!(table.column("status").iter().all(|s| *s == "200"));
    assert!(table.column("redirects").iter().all(|r| *r == "1"));
    assert_eq!(target.stats.hits(), 8);
    assert_eq!(target.stats.max_in_flight(), 1, "the hop's host limit held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_between_hops_is_not_request_time_and_holds_no_slot() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(1).unwrap();
    config.limits.per_host_rate = Some("1/s".parse().unwrap());
    config.fetch.timeout = Duration::from_millis(800);
    pinned(
        &mut config,
        &["chain.test", "y1.test", "y2.test", "y3.test"],
    );
    let port = server.addr.port();
    // Line 1 redirects to its own host, which must then wait a second for its rate; lines 2-4
    // are other hosts and should not wait behind it.
    let list = format!(
        "http://chain.test:{port}/goto?to=/ok/end\nhttp://y1.test:{port}/ok/a\n\
         http://y2.test:{port}/ok/b\nhttp://y3.test:{port}/ok/c\n"
    );
    let (_, table) = run_list(config, list).await;
    let chain = table.line(1);
    assert_eq!(chain.get("status"), "200", "{}", chain.get("error_detail"));
    assert_eq!(chain.get("redirects"), "1");
    let latency: f64 = chain.get("latency_ms").parse().unwrap();
    assert!(
        latency < 500.0,
        "the wait for the rate counted as latency: {latency} ms"
    );
    let queue: f64 = chain.get("queue_ms").parse().unwrap();
    assert!(queue >= 700.0, "the wait belongs in queue_ms: {queue} ms");

    let seen = server.stats.seen();
    let hop_at = seen.iter().find(|s| s.uri == "/ok/end").unwrap().at;
    let others = seen
        .iter()
        .filter(|s| s.uri.starts_with("/ok/") && s.uri != "/ok/end");
    assert!(others.clone().count() == 3 && others.into_iter().all(|s| s.at < hop_at));
}

/// A list of many hosts, each done within two requests: connections left parked (a host's
/// first request finishing after its second had opened a connection of its own) are bounded
/// across hosts by `-c`, the least recently parked closed first, instead of one per host
/// staying open until its idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_connections_are_bounded_across_hosts() {
    let server = TestServer::start();
    let names: Vec<String> = (0..120).map(|i| format!("many{i}.test")).collect();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(8).unwrap();
    pinned(
        &mut config,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let port = server.addr.port();
    // A host's first request is slow: its second often starts, on a connection of its own,
    // before the first is done, and the first's connection is parked with nothing to come.
    let list: String = names
        .iter()
        .map(|name| format!("http://{name}:{port}/slow/100/a\nhttp://{name}:{port}/ok/b\n"))
        .collect();
    let (_, table) = run_list(config, list).await;
    assert_eq!(table.len(), 240);
    assert!(table.column("status").iter().all(|s| *s == "200"));
    // At most 8 in flight and 8 parked, and some being closed (more on a loaded machine);
    // without the bound, most hosts leave one open (about 90 here).
    assert!(
        server.stats.max_open() <= 40,
        "{} connections open at once ({} made)",
        server.stats.max_open(),
        server.stats.connections()
    );
}
