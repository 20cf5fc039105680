//! The pipeline's contract, as properties over generated lists, with a fake network.
//!
//! For any list (good URLs, blanks, comments, junk, other schemes, bad UTF-8, control
//! characters, over-long lines, duplicates; LF or CRLF; a BOM or not) and any completion order,
//! retries and redirects included: every non-skipped line gets exactly one row, with its own
//! line number and text, and nothing else does; with `--ordered` the rows come in input order;
//! and when the run is stopped at any point, what was written is valid CSV made of complete
//! rows of distinct, expected lines.
//!
//! The fake transport finishes requests after pseudo-random delays on tokio's paused clock, so
//! completion order is shuffled without any real waiting and no assertion depends on timing
//! (a generous watchdog only turns a hang into a failure). These run in `cargo test` (and so in
//! CI) as part of the one integration-test binary: `cargo test --test tests contract`.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fetch::fetch::{Attempt, BodySink, Hop, Transport};
use fetch::input::MAX_LINE_BYTES;
use fetch::row::{ErrorKind, Failure};
use fetch::schedule::RetryPolicy;
use fetch::{Config, Inputs, Output, Pipeline, Stop, StopReason, Summary};
use futures::future::BoxFuture;
use proptest::prelude::*;
use url::Url;

use crate::support::{SharedBuf, Table};

/// Cases per property: enough to cover the shapes, few enough to keep CI quick.
const CASES: u32 = 128;

/// When a run is taken to be stuck rather than slow. Not a timing check: a case takes
/// milliseconds, and a stuck run (as `--ordered` once was) would otherwise hang the suite. Real
/// time, as the paused clock jumps ahead whenever the runtime waits on the pipeline's threads.
const STUCK: Duration = Duration::from_secs(120);

/// One generated input line.
#[derive(Debug, Clone)]
enum Line {
    /// A good URL to host `host`, optionally redirecting, optionally failing transiently first.
    Good {
        host: u8,
        redirect: bool,
        flaky: bool,
    },
    /// The same URL as an earlier good, steady line (the n-th one, wrapping).
    Repeat(usize),
    Blank(&'static str),
    Comment,
    NotAUrl,
    OtherScheme,
    NotUtf8,
    Control,
    TooLong,
}

fn line_strategy() -> impl Strategy<Value = Line> {
    prop_oneof![
        6 => (0u8..4, any::<bool>(), any::<bool>())
            .prop_map(|(host, redirect, flaky)| Line::Good { host, redirect, flaky }),
        1 => (0usize..64).prop_map(Line::Repeat),
        1 => prop::sample::select(vec!["", "   ", "\t \u{a0}", "\r"]).prop_map(Line::Blank),
        1 => Just(Line::Comment),
        1 => Just(Line::NotAUrl),
        1 => Just(Line::OtherScheme),
        1 => Just(Line::NotUtf8),
        1 => Just(Line::Control),
        1 => Just(Line::TooLong),
    ]
}

/// A whole list: its lines, how they end, whether it starts with a BOM.
#[derive(Debug, Clone)]
struct List {
    lines: Vec<Line>,
    crlf: bool,
    bom: bool,
}

fn list_strategy() -> impl Strategy<Value = List> {
    (
        prop::collection::vec(line_strategy(), 0..200),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, bom)| List { lines, crlf, bom })
}

/// What a line must become: no row (`None`), or a row with this `url` cell and outcome.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    url: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Requested: the fake's page for this URL once `failures` transient failures are retried
    /// away, else the last failure.
    Fetched {
        failures: u32,
    },
    Invalid(ErrorKind),
}

impl List {
    /// The list's bytes, and what each line (by number) must give.
    fn render(&self) -> (Vec<u8>, BTreeMap<u64, Expected>) {
        let mut bytes = Vec::new();
        if self.bom {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let mut good_urls = Vec::new();
        let mut expected = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let number = i as u64 + 1;
            let (raw, want): (Vec<u8>, Option<Expected>) = match line {
                Line::Good {
                    host,
                    redirect,
                    flaky,
                } => {
                    let url = good_url(*host, *redirect, *flaky, number);
                    // A flaky URL fails its first request whichever line makes it: not one to
                    // repeat, or which line gets the failure would depend on timing.
                    if !flaky {
                        good_urls.push(url.clone());
                    }
                    // A flaky URL fails once, and so does the target of its redirect.
                    let failures = u32::from(*flaky) * (1 + u32::from(*redirect));
                    (
                        format!("  {url} ").into_bytes(),
                        Some(fetched(&url, failures)),
                    )
                }
                Line::Repeat(n) if !good_urls.is_empty() => {
                    let url = good_urls[n % good_urls.len()].clone();
                    (url.clone().into_bytes(), Some(fetched(&url, 0)))
                }
                Line::Repeat(_) | Line::Comment => (b"# a comment".to_vec(), None),
                Line::Blank(ws) => (ws.as_bytes().to_vec(), None),
                Line::NotAUrl => invalid("not a url", ErrorKind::InvalidUrl),
                Line::OtherScheme => invalid("ftp://h0.test/file", ErrorKind::UnsupportedScheme),
                Line::NotUtf8 => (
                    b"http://h0.test/\xff\xfe".to_vec(),
                    Some(Expected {
                        url: "http://h0.test/\u{fffd}\u{fffd}".into(),
                        outcome: Outcome::Invalid(ErrorKind::InvalidInput),
                    }),
                ),
                Line::Control => (
                    b"http://h0.test/a\x00b".to_vec(),
                    Some(Expected {
                        url: "http://h0.test/a\u{fffd}b".into(),
                        outcome: Outcome::Invalid(ErrorKind::InvalidInput),
                    }),
                ),
                Line::TooLong => {
                    let long = format!("http://h0.test/{}", "x".repeat(MAX_LINE_BYTES));
                    let preview: String = long.chars().take(200).chain(['…']).collect();
                    (
                        long.into_bytes(),
                        Some(Expected {
                            url: preview,
                            outcome: Outcome::Invalid(ErrorKind::InvalidInput),
                        }),
                    )
                }
            };
            bytes.extend_from_slice(&raw);
            bytes.extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
            if let Some(want) = want {
                expected.insert(number, want);
            }
        }
        (bytes, expected)
    }
}

fn good_url(host: u8, redirect: bool, flaky: bool, line: u64) -> String {
    let kind = if redirect { "redirect" } else { "page" };
    let flaky = if flaky { "?flaky" } else { "" };
    format!("http://h{host}.test/{kind}/{line}{flaky}")
}

fn fetched(url: &str, failures: u32) -> Expected {
    Expected {
        url: url.to_owned(),
        outcome: Outcome::Fetched { failures },
    }
}

fn invalid(text: &str, kind: ErrorKind) -> (Vec<u8>, Option<Expected>) {
    let want = Expected {
        url: text.to_owned(),
        outcome: Outcome::Invalid(kind),
    };
    (text.as_bytes().to_vec(), Some(want))
}

/// The title the fake serves for a requested URL: its path and query, so a row whose title does
/// not match its `url` cell was mixed up with another line's.
fn title_for(url: &str) -> String {
    let path = url.split_once(".test").map_or(url, |(_, path)| path);
    format!("page {}", path.replace("/redirect/", "/page/"))
}

/// A network in memory: every request succeeds after a pseudo-random delay on tokio's clock;
/// `/redirect/N` answers 301 to `/page/N` on the next host; `?flaky` URLs fail their first
/// attempt with a connection error; and it can stop the run when the n-th request starts.
struct FakeNet {
    rng: Mutex<fastrand::Rng>,
    started: AtomicUsize,
    flaky_seen: Mutex<HashSet<String>>,
    stop_at: Option<(usize, Stop)>,
}

impl FakeNet {
    fn new(seed: u64, stop_at: Option<(usize, Stop)>) -> FakeNet {
        FakeNet {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            started: AtomicUsize::new(0),
            flaky_seen: Mutex::default(),
            stop_at,
        }
    }

    fn delay(&self) -> Duration {
        let micros = self.rng.lock().map_or(0, |mut rng| rng.u64(0..5_000));
        Duration::from_micros(micros)
    }

    /// Whether this request of a `?flaky` URL is its first (and so fails). Each line has its
    /// own URL (repeats are of steady ones), so which request fails does not depend on timing.
    fn first_of_flaky(&self, url: &Url) -> bool {
        url.query() == Some("flaky")
            && self
                .flaky_seen
                .lock()
                .is_ok_and(|mut seen| seen.insert(url.to_string()))
    }

    async fn exchange(&self, url: Url, sink: &mut dyn BodySink, attempt: &mut Attempt) -> Hop {
        // What Fetcher does: the start time once per chain, a fresh status per hop.
        attempt.started_at.get_or_insert_with(SystemTime::now);
        attempt.status = None;
        attempt.ttfb = None;
        attempt.final_url = Some(url.clone());
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        if let Some((at, stop)) = &self.stop_at
            && n == *at
        {
            stop.trigger(StopReason::Interrupted);
        }
        let delay = self.delay();
        tokio::time::sleep(delay).await;
        attempt.elapsed += delay;
        if self.first_of_flaky(&url) {
            attempt.failure = Some(Failure::new(ErrorKind::Connect, "connection refused"));
            return Hop::Done;
        }
        attempt.ttfb = Some(attempt.elapsed);
        attempt.remote_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        attempt.reused = Some(false);
        if url.path().starts_with("/redirect/") {
            attempt.status = Some(301);
            attempt.redirects += 1;
            let next =
                url.as_str()
                    .replace("/redirect/", "/page/")
                    .replacen("://h", "://next-h", 1);
            return match Url::parse(&next) {
                Ok(next) => Hop::Redirect(next),
                Err(e) => {
                    attempt.failure = Some(Failure::new(ErrorKind::BadRedirect, e.to_string()));
                    Hop::Done
                }
            };
        }
        attempt.status = Some(200);
        attempt.retry_after = None;
        attempt.failure = None;
        let page = format!("<title>{}</title>", title_for(url.as_str()));
        attempt.content_type = Some("text/html; charset=utf-8".into());
        sink.begin(attempt.content_type.as_deref());
        sink.feed(page.as_bytes());
        attempt.bytes = page.len() as u64;
        attempt.latency = Some(attempt.elapsed);
        Hop::Done
    }
}

impl Transport for FakeNet {
    fn fetch<'a>(
        &'a self,
        url: Url,
        _keep_alive: bool,
        sink: &'a mut dyn BodySink,
        attempt: &'a mut Attempt,
    ) -> BoxFuture<'a, Hop> {
        Box::pin(self.exchange(url, sink, attempt))
    }

    fn reads_bodies(&self) -> bool {
        true
    }
}

/// Limits and options for a run; each case picks its own.
#[derive(Debug, Clone)]
struct Knobs {
    concurrency: usize,
    per_host: Option<usize>,
    retries: u32,
    window: usize,
    seed: u64,
}

fn knobs_strategy() -> impl Strategy<Value = Knobs> {
    (
        1usize..12,
        prop::option::of(1usize..4),
        0u32..3,
        1usize..20,
        any::<u64>(),
    )
        .prop_map(|(concurrency, per_host, retries, window, seed)| Knobs {
            concurrency,
            per_host,
            retries,
            window,
            seed,
        })
}

fn config(knobs: &Knobs, ordered: bool) -> Config {
    let mut config = Config::default();
    config.limits.concurrency = NonZeroUsize::new(knobs.concurrency).unwrap_or(NonZeroUsize::MIN);
    config.limits.per_host_concurrency = knobs.per_host.and_then(NonZeroUsize::new);
    config.limits.retry = RetryPolicy {
        retries: knobs.retries,
        ..config.limits.retry
    };
    config.output.ordered = ordered.then_some(knobs.window);
    config
}

/// Runs the pipeline over `list` with the fake network on a paused clock; returns the summary
/// and the raw output.
fn run(config: Config, list: Vec<u8>, net: FakeNet, stop: Stop) -> (Summary, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let out = SharedBuf::default();
    let inputs = Inputs::from_reader("generated list", std::io::Cursor::new(list));
    let output = Output::to_writer(out.clone());
    let (done, summary) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let summary = runtime.block_on(async {
            let pipeline = Pipeline::with_transport(config, Arc::new(net)).expect("valid config");
            pipeline.run(inputs, output, stop).await.expect("run ends")
        });
        let _ = done.send(summary);
    });
    let summary = summary.recv_timeout(STUCK).expect("the run never ends");
    (summary, out.contents())
}

/// Checks a row against what its line must give; `stopped` allows what a stopped run leaves
/// (a request cut off, a retry or redirect not made).
fn check_row(table: &Table, index: usize, want: &Expected, stopped: bool, retries: u32) {
    let row = &table.rows[index];
    let get = |name: &str| {
        let i = table.headers.iter().position(|h| h == name).expect(name);
        row[i].as_str()
    };
    let line = get("line");
    let detail = get("error_detail");
    assert_eq!(get("url"), want.url, "line {line}");
    let attempts: u32 = get("attempts").parse().expect("a count");
    let failures = match want.outcome {
        Outcome::Invalid(kind) => {
            assert_eq!(get("error"), kind.as_str(), "line {line}");
            assert_eq!(attempts, 0, "line {line}");
            return;
        }
        Outcome::Fetched { failures } => failures,
    };
    if get("status") == "200" {
        assert_eq!(get("error"), "", "line {line}: {detail}");
        assert_eq!(get("title"), title_for(&want.url), "line {line}");
        let redirected = want.url.contains("/redirect/");
        assert_eq!(get("redirects"), if redirected { "1" } else { "0" });
    }
    if stopped {
        assert!(
            ["cancelled", "connect", ""].contains(&get("error")),
            "line {line}: {detail}"
        );
        assert!((1..=failures + 1).contains(&attempts), "line {line}");
    } else if retries >= failures {
        assert_eq!(get("status"), "200", "line {line}: {detail}");
        assert_eq!(attempts, failures + 1, "line {line}");
    } else {
        assert_eq!(get("error"), "connect", "line {line}");
        assert_eq!(attempts, retries + 1, "line {line}");
    }
}

/// Line numbers of the rows, in output order.
fn lines_of(table: &Table) -> Vec<u64> {
    table
        .column("line")
        .iter()
        .map(|l| l.parse().expect("a line number"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        // Each shrinking step of a stuck run costs STUCK: give up shrinking after a while.
        max_shrink_time: 300_000,
        ..ProptestConfig::default()
    })]

    /// Every non-skipped line gets exactly one row, with its own number, text and outcome,
    /// whatever order the requests finish in.
    #[test]
    fn every_line_gets_exactly_one_row(list in list_strategy(), knobs in knobs_strategy()) {
        let (bytes, expected) = list.render();
        let net = FakeNet::new(knobs.seed, None);
        let (summary, out) = run(config(&knobs, false), bytes, net, Stop::new());
        let table = Table::parse(&out);
        let mut lines = lines_of(&table);
        for (i, line) in lines.iter().enumerate() {
            check_row(&table, i, &expected[line], false, knobs.retries);
        }
        lines.sort_unstable();
        prop_assert_eq!(lines, expected.keys().copied().collect::<Vec<_>>());
        prop_assert_eq!(summary.rows, expected.len() as u64);
        prop_assert_eq!(summary.stopped, None);
    }

    /// With `--ordered`, the same rows, in input order, whatever the window.
    #[test]
    fn ordered_rows_come_in_input_order(list in list_strategy(), knobs in knobs_strategy()) {
        let (bytes, expected) = list.render();
        let net = FakeNet::new(knobs.seed, None);
        let (_, out) = run(config(&knobs, true), bytes, net, Stop::new());
        let table = Table::parse(&out);
        let lines = lines_of(&table);
        for (i, line) in lines.iter().enumerate() {
            check_row(&table, i, &expected[line], false, knobs.retries);
        }
        prop_assert_eq!(lines, expected.keys().copied().collect::<Vec<_>>());
    }

    /// Stopped when any request starts (or never): the output is valid CSV of complete rows
    /// (the strict reader checks every record has the header's field count), each of a distinct
    /// expected line and right for it; in input order with `--ordered`.
    #[test]
    fn a_stopped_run_leaves_complete_rows(
        list in list_strategy(),
        knobs in knobs_strategy(),
        stop_at in 0usize..150,
        ordered in any::<bool>(),
    ) {
        let (bytes, expected) = list.render();
        let stop = Stop::new();
        let net = FakeNet::new(knobs.seed, Some((stop_at, stop.clone())));
        let (summary, out) = run(config(&knobs, ordered), bytes, net, stop);
        let table = Table::parse(&out);
        let lines = lines_of(&table);
        let distinct: HashSet<u64> = lines.iter().copied().collect();
        prop_assert_eq!(distinct.len(), lines.len(), "a line written twice");
        for (i, line) in lines.iter().enumerate() {
            prop_assert!(expected.contains_key(line), "line {} gets no row", line);
            check_row(&table, i, &expected[line], true, knobs.retries);
        }
        if ordered {
            prop_assert!(lines.is_sorted(), "{:?}", lines);
        }
        prop_assert_eq!(summary.rows, lines.len() as u64);
        if summary.stopped.is_none() {
            prop_assert_eq!(lines.len(), expected.len(), "a run not stopped writes every row");
        }
    }
}
