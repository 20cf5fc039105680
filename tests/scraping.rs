//! Titles, selectors, regexes, hashes, timing columns and spreadsheet-safe cells.

use std::num::NonZeroUsize;

use fetch::config::Rate;
use fetch::extract::{parse_pattern, parse_select};

use crate::support::server::TestServer;
use crate::support::tls::TlsServer;
use crate::support::{Table, config, run_list};

async fn titles(names: &[&str]) -> (TestServer, Table) {
    let server = TestServer::start();
    let list: String = names
        .iter()
        .map(|n| server.url(&format!("/html/{n}")) + "\n")
        .collect();
    let (_, table) = run_list(config(), list).await;
    (server, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_titles() {
    let names = [
        "entities",
        "newlines",
        "latin1-header",
        "latin1-meta",
        "latin1-bare",
        "no-title",
        "json",
        "huge-title",
    ];
    let (_, table) = titles(&names).await;
    let title = |line: u64| table.line(line).get("title").to_owned();
    assert_eq!(title(1), "Tom & Jerry's <Café> ☺");
    assert_eq!(title(2), "Line one line two", "newlines never break a row");
    assert_eq!(title(3), "Café crème brûlée");
    assert_eq!(title(4), "Café crème");
    assert!(
        title(5).starts_with("Le café de la gare, où"),
        "{}",
        title(5)
    );
    assert_eq!(title(6), "");
    assert_eq!(title(7), "", "not HTML");
    let huge = title(8);
    assert_eq!(huge.chars().count(), fetch::extract::TITLE_LIMIT + 1);
    assert!(huge.starts_with("long long") && huge.ends_with('…'));
    assert_eq!(table.len(), names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formulas_are_neutralised_unless_raw() {
    let server = TestServer::start();
    let url = server.url("/html/formula");
    let (_, table) = run_list(config(), format!("{url}\n=1+2\n")).await;
    assert_eq!(
        table.line(1).get("title"),
        "'=HYPERLINK(\"http://x.test\",\"click\")"
    );
    assert_eq!(table.line(2).get("url"), "'=1+2");
    assert_eq!(table.line(2).get("attempts"), "0", "numbers are untouched");

    let mut raw = config();
    raw.output.raw = true;
    let (_, table) = run_list(raw, format!("{url}\n")).await;
    assert_eq!(
        table.line(1).get("title"),
        "=HYPERLINK(\"http://x.test\",\"click\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_regexes_and_hash_fill_their_columns() {
    let server = TestServer::start();
    let mut config = config();
    config.extract.values = vec![
        parse_select("h1=h1", false).unwrap().into(),
        parse_select("og=meta[property=\"og:title\"]@content", false)
            .unwrap()
            .into(),
        parse_select("canonical=link[rel=canonical]@href", false)
            .unwrap()
            .into(),
        parse_select("tags=ul.tags li", true).unwrap().into(),
        parse_select("missing=.nothing-matches", false)
            .unwrap()
            .into(),
        parse_pattern(r"price=\$(\d+\.\d\d)").unwrap().into(),
        parse_pattern(r"whole=was \$\d+").unwrap().into(),
        parse_pattern(r"absent=zzz(\d+)").unwrap().into(),
    ];
    config.extract.hash = true;
    let list = format!(
        "{}\n{}\n",
        server.url("/html/product"),
        server.url("/html/json")
    );
    let (_, table) = run_list(config, list).await;
    let page = table.line(1);
    assert_eq!(page.get("title"), "Widget");
    assert_eq!(page.get("h1"), "Widget Deluxe");
    assert_eq!(page.get("og"), "The Widget");
    assert_eq!(page.get("canonical"), "https://shop.test/widget");
    assert_eq!(page.get("tags"), "blue | small | new");
    assert_eq!(page.get("missing"), "");
    assert_eq!(page.get("price"), "12.50");
    assert_eq!(page.get("whole"), "was $20");
    assert_eq!(page.get("absent"), "");
    assert_eq!(page.get("body_sha256").len(), 64);
    // JSON is not HTML: no selectors, but regexes run on any text.
    let json = table.line(2);
    assert_eq!(json.get("h1"), "");
    assert_eq!(json.get("price"), "12.50");
    assert_ne!(json.get("body_sha256"), page.get("body_sha256"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_columns_are_filled_in_order() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(1).unwrap();
    // Spaced out, so the first connection is back in the pool when the second request starts.
    config.limits.rate = Some("10/s".parse::<Rate>().unwrap());
    config.fetch.resolve = vec![("pages.test".into(), vec!["127.0.0.1".parse().unwrap()])];
    let by_ip = server.url("/ok/1");
    let by_name = format!("http://localhost:{}/ok/2", server.addr.port());
    let again = format!("http://localhost:{}/ok/3", server.addr.port());
    let (_, table) = run_list(config, format!("{by_ip}\n{by_name}\n{again}\n")).await;
    let num = |line: u64, col: &str| -> Option<f64> { table.line(line).get(col).parse().ok() };

    // A new connection by IP address: no lookup, a connect time, no TLS.
    assert_eq!(num(1, "dns_ms"), None);
    assert!(num(1, "connect_ms").is_some());
    assert_eq!(num(1, "tls_ms"), None);
    assert_eq!(table.line(1).get("reused"), "false");
    assert_eq!(table.line(1).get("remote_ip"), "127.0.0.1");

    // By name: a lookup, then connect ≤ ttfb ≤ latency.
    let dns = num(2, "dns_ms").expect("a lookup was made");
    let connect = num(2, "connect_ms").unwrap();
    let ttfb = num(2, "ttfb_ms").unwrap();
    let latency = num(2, "latency_ms").unwrap();
    assert!(
        dns <= connect && connect <= ttfb && ttfb <= latency,
        "{dns} {connect} {ttfb} {latency}"
    );
    assert!(num(2, "queue_ms").is_some());

    // The same host again with keep-alive: the pooled connection serves it.
    assert_eq!(table.line(3).get("reused"), "true");
    assert_eq!(num(3, "dns_ms"), None);
    assert_eq!(num(3, "connect_ms"), None);
    assert!(num(3, "ttfb_ms").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_time_falls_between_connect_and_first_byte() {
    let server = TlsServer::start();
    let mut config = config();
    config.fetch.insecure = true;
    let (_, table) = run_list(config, server.url("/ok/tls")).await;
    let row = table.line(1);
    let num = |col: &str| -> f64 { row.get(col).parse().unwrap() };
    assert!(num("connect_ms") <= num("tls_ms") && num("tls_ms") <= num("ttfb_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_time_counts_waiting_for_a_slot() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(2).unwrap();
    config.output.ordered = Some(100);
    let (_, table) = run_list(config, crate::support::urls(&server.url("/slow/100"), 10)).await;
    let queued: Vec<f64> = table
        .column("queue_ms")
        .iter()
        .map(|q| q.parse().unwrap())
        .collect();
    // Two at a time, 100 ms each: the last pair waited about 400 ms for a slot.
    assert!(queued[9] >= 300.0, "{queued:?}");
    assert!(queued[0] < 100.0, "{queued:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_time_counts_waiting_on_limits() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.rate = Some("10/s".parse::<Rate>().unwrap());
    let list: String = (0..4)
        .map(|i| server.url(&format!("/ok/{i}")) + "\n")
        .collect();
    let (_, table) = run_list(config, list).await;
    let mut queued: Vec<f64> = table
        .column("queue_ms")
        .iter()
        .map(|q| q.parse().unwrap())
        .collect();
    queued.sort_by(f64::total_cmp);
    // Starts 100 ms apart: the last one waited about 300 ms for its turn.
    assert!(queued[3] >= 200.0, "{queued:?}");
    assert!(queued[0] < 100.0, "{queued:?}");
}
