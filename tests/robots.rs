//! `--robots`: robots.txt fetched once per origin before its first request, its rules obeyed
//! for the user agent's product token (wildcards, `$`, groups), RFC 9309's answers to errors
//! and redirects, Crawl-delay spacing measured at the server, and hosts kept apart.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::support::Table;
use crate::support::site::{Page, Site, Visit};
use crate::support::{fetch_without_stdin as fetch, stderr};

/// Runs fetch with `--robots` and `args` over `paths` of the site (by host name when a path
/// starts with one, else on 127.0.0.1); every host name resolves to the site.
fn crawl(site: &Site, paths: &[&str], args: &[&str]) -> (Output, Table) {
    let dir = tempfile::tempdir().unwrap();
    let port = site.addr.port();
    let lines: Vec<String> = paths
        .iter()
        .map(|p| match p.split_once('/') {
            Some((host, rest)) if !host.is_empty() => format!("http://{host}:{port}/{rest}"),
            _ => format!("http://127.0.0.1:{port}{p}"),
        })
        .collect();
    let list: PathBuf = dir.path().join("urls.txt");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    let mut cmd = fetch();
    cmd.args(["-q", "--robots", "--ordered"]).args(args);
    for host in paths
        .iter()
        .filter_map(|p| p.split_once('/'))
        .map(|(h, _)| h)
    {
        if !host.is_empty() {
            cmd.args(["--resolve", &format!("{host}:127.0.0.1")]);
        }
    }
    let out = cmd.arg(&list).output().unwrap();
    let table = Table::parse(&out.stdout);
    (out, table)
}

fn requested(visits: &[Visit], path: &str) -> usize {
    visits.iter().filter(|v| v.path == path).count()
}

#[test]
fn disallowed_paths_get_a_row_and_no_request() {
    let site = Site::start();
    site.put(
        "/robots.txt",
        Page::text(
            "User-agent: *\nDisallow: /private\nAllow: /private/open\nDisallow: /*.pdf$\n\
             Disallow: /tmp/*/cache\n",
        ),
    );
    for path in [
        "/private/x",
        "/private/open/y",
        "/doc.pdf",
        "/doc.pdf",
        "/public",
        "/tmp/a/cache",
        "/tmp/a/b",
    ] {
        site.put(path, Page::new("page", path));
    }
    let paths = [
        "/private/x",
        "/private/open/y",
        "/doc.pdf",
        "/doc.pdf?page=2",
        "/public",
        "/tmp/a/cache",
        "/tmp/a/b",
    ];
    let (out, table) = crawl(&site, &paths, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let errors = table.column("error");
    assert_eq!(
        errors,
        ["robots", "", "robots", "", "", "robots", ""],
        "{:?}",
        table.column("error_detail")
    );
    let detail = table.line(1).get("error_detail").to_owned();
    assert!(
        detail.contains("robots.txt") && detail.ends_with("Disallow: /private"),
        "{detail}"
    );
    assert!(
        table
            .line(3)
            .get("error_detail")
            .ends_with("Disallow: /*.pdf$")
    );
    assert_eq!(table.line(1).get("attempts"), "0");
    assert_eq!(table.line(1).get("status"), "");
    let visits = site.take_visits();
    assert_eq!(requested(&visits, "/robots.txt"), 1, "asked once");
    assert_eq!(visits[0].path, "/robots.txt", "before anything else");
    for refused in ["/private/x", "/tmp/a/cache"] {
        assert_eq!(requested(&visits, refused), 0, "{refused} never requested");
    }
    assert_eq!(
        visits.iter().filter(|v| v.path == "/doc.pdf").count(),
        1,
        "only /doc.pdf?page=2"
    );
}

#[test]
fn the_user_agents_group_applies_else_the_catch_all() {
    let site = Site::start();
    site.put(
        "/robots.txt",
        Page::text(
            "User-agent: acme-monitor\nUser-agent: other\nDisallow: /a\n\n\
             User-agent: *\nDisallow: /b\n",
        ),
    );
    site.put("/a", Page::new("a", "a"));
    site.put("/b", Page::new("b", "b"));
    let (_, ours) = crawl(
        &site,
        &["/a", "/b"],
        &["-A", "ACME-Monitor/1.0 (ops@acme.test)"],
    );
    assert_eq!(ours.column("error"), ["robots", ""]);
    let (_, default) = crawl(&site, &["/a", "/b"], &[]);
    assert_eq!(default.column("error"), ["", "robots"]);
    // The User-Agent actually sent decides: -H wins over -A, as for the request itself.
    let (_, header) = crawl(
        &site,
        &["/a", "/b"],
        &["-A", "x", "-H", "User-Agent: other/2"],
    );
    assert_eq!(header.column("error"), ["robots", ""]);
}

#[test]
fn missing_errors_and_timeouts_follow_rfc_9309() {
    let site = Site::start();
    for host in ["missing", "broken", "slow", "gone"] {
        site.put(&format!("{host}.test/page"), Page::new("page", host));
    }
    site.put("missing.test/robots.txt", Page::status(404));
    site.put("gone.test/robots.txt", Page::status(410));
    site.put("broken.test/robots.txt", Page::status(503));
    site.put(
        "slow.test/robots.txt",
        Page {
            delay: Some(Duration::from_secs(5)),
            ..Page::text("Disallow: /")
        },
    );
    let paths = [
        "missing.test/page",
        "gone.test/page",
        "broken.test/page",
        "slow.test/page",
    ];
    let summary = tempfile::NamedTempFile::new().unwrap();
    let (out, table) = crawl(
        &site,
        &paths,
        &[
            "-t",
            "1s",
            "--retries",
            "2",
            "--retry-base",
            "50ms",
            "--summary-json",
            summary.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(table.column("status"), ["200", "200", "", ""]);
    assert_eq!(table.column("error"), ["", "", "robots", "robots"]);
    let broken = table.line(3).get("error_detail").to_owned();
    assert!(
        broken.contains("could not be fetched (status 503 Service Unavailable)")
            && broken.contains("everything is disallowed"),
        "{broken}"
    );
    assert!(table.line(4).get("error_detail").contains("timeout"));
    let visits = site.take_visits();
    let robots = |host: &str| {
        visits
            .iter()
            .filter(|v| v.host == host && v.path == "/robots.txt")
            .count()
    };
    assert_eq!(robots("missing.test"), 1);
    assert_eq!(robots("broken.test"), 3, "tried again as --retries allows");
    assert_eq!(
        visits
            .iter()
            .filter(|v| v.path == "/page" && v.host == "broken.test")
            .count(),
        0
    );
    let json = crate::support::read_json(summary.path());
    assert_eq!(
        json["robots"],
        serde_json::json!({"requests": 8, "found": 0, "missing": 2, "unreachable": 2,
                           "disallowed_rows": 2}),
        "robots.txt requests are counted, not rows"
    );
    assert_eq!(json["rows"], 4);
}

#[test]
fn redirects_are_followed_five_at_most() {
    let site = Site::start();
    site.put("moved.test/robots.txt", Page::redirect("/real-robots.txt"));
    site.put("moved.test/real-robots.txt", Page::text("Disallow: /no"));
    for hop in 0..7 {
        site.put(
            &format!("far.test/r{hop}"),
            Page::redirect(&format!("/r{}", hop + 1)),
        );
    }
    site.put("far.test/robots.txt", Page::redirect("/r0"));
    site.put("far.test/r7", Page::text("Disallow: /"));
    for host in ["moved.test", "far.test"] {
        site.put(&format!("{host}/no"), Page::new("no", host));
        site.put(&format!("{host}/yes"), Page::new("yes", host));
    }
    let summary = tempfile::NamedTempFile::new().unwrap();
    let (out, table) = crawl(
        &site,
        &["moved.test/no", "moved.test/yes", "far.test/no"],
        &["--summary-json", summary.path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(table.column("error"), ["robots", "", ""]);
    assert!(
        table
            .line(1)
            .get("error_detail")
            .contains("/real-robots.txt"),
        "the rules name where they came from"
    );
    let visits = site.take_visits();
    let far: Vec<&str> = visits
        .iter()
        .filter(|v| v.host == "far.test" && v.path != "/no")
        .map(|v| v.path.as_str())
        .collect();
    assert_eq!(
        far,
        ["/robots.txt", "/r0", "/r1", "/r2", "/r3", "/r4"],
        "five redirects followed, then no rules"
    );
    let json = crate::support::read_json(summary.path());
    assert_eq!(
        json["robots"],
        serde_json::json!({"requests": 8, "found": 1, "missing": 1, "unreachable": 0,
                           "disallowed_rows": 1}),
        "a chain cut off after five redirects counts as missing"
    );
}

#[test]
fn crawl_delay_spaces_a_hosts_requests_and_is_capped() {
    let site = Site::start();
    site.put("/robots.txt", Page::text("User-agent: *\nCrawl-delay: 1\n"));
    for i in 0..4 {
        site.put(&format!("/p{i}"), Page::new("p", "p"));
    }
    let paths = ["/p0", "/p1", "/p2", "/p3"];
    let (out, _) = crawl(&site, &paths, &["-c", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let visits = site.take_visits();
    assert_eq!(visits.len(), 5);
    let gaps: Vec<f64> = visits
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= 0.9),
        "request starts at least the Crawl-delay apart: {gaps:?}"
    );
    let (out, _) = crawl(&site, &paths, &["-c", "10", "--max-crawl-delay", "200ms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let visits = site.take_visits();
    let gaps: Vec<f64> = visits
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= 0.15 && *gap < 0.8),
        "capped at --max-crawl-delay: {gaps:?}"
    );
}

#[test]
fn one_hosts_crawl_delay_does_not_slow_the_others() {
    let site = Site::start();
    site.put("slow.test/robots.txt", Page::text("Crawl-delay: 2\n"));
    let mut paths: Vec<String> = (0..3).map(|i| format!("slow.test/s{i}")).collect();
    for host in 0..8 {
        for i in 0..3 {
            paths.push(format!("fast{host}.test/f{i}"));
        }
    }
    for path in &paths {
        let (_, rest) = path.split_once('/').unwrap();
        site.put(&format!("/{rest}"), Page::new("p", "p"));
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let (out, table) = crawl(&site, &refs, &["-c", "4", "--per-host-concurrency", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(table.column("status").iter().all(|s| *s == "200"));
    let visits = site.take_visits();
    let last_fast = visits
        .iter()
        .filter(|v| v.host.starts_with("fast"))
        .map(|v| v.at)
        .max()
        .unwrap();
    let slow: Vec<std::time::Instant> = visits
        .iter()
        .filter(|v| v.host == "slow.test")
        .map(|v| v.at)
        .collect();
    assert_eq!(slow.len(), 4, "robots.txt and three pages");
    assert!(
        (slow[3] - slow[0]).as_secs_f64() >= 5.5,
        "the slow host keeps its Crawl-delay"
    );
    assert!(
        last_fast < slow[2],
        "every other host was done while the slow one waited ({:?} after the start)",
        last_fast - started
    );
}

#[test]
fn robots_txt_requests_count_as_request_starts_for_the_rate() {
    let site = Site::start();
    site.put("/robots.txt", Page::text("User-agent: *\nAllow: /\n"));
    for i in 0..3 {
        site.put(&format!("/p{i}"), Page::new("p", "p"));
    }
    let (out, _) = crawl(
        &site,
        &["/p0", "/p1", "/p2"],
        &["-c", "10", "--rate", "5/s"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let visits = site.take_visits();
    assert_eq!(visits.len(), 4);
    assert_eq!(visits[0].path, "/robots.txt");
    let gaps: Vec<f64> = visits
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= 0.15),
        "every start, robots.txt's included, spaced by the rate: {gaps:?}"
    );
}
