//! The cron and spreadsheet finish: columns, JSON Lines, ordered output, resume after a crash,
//! dedupe, summary JSON, thresholds, completions.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::server::TestServer;
use crate::support::stderr;
use crate::support::{Table, config, run_list, urls};

fn fetch() -> Command {
    crate::support::fetch_binary()
}

fn run(cmd: &mut Command, stdin: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn fields_choose_and_order_columns() {
    let server = TestServer::start();
    let out = run(
        fetch().args(["-q", "--fields", "status,url,line"]),
        &urls(&server.url("/ok"), 2),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = Table::parse(&out.stdout);
    assert_eq!(table.headers, ["status", "url", "line"]);
    assert_eq!(table.column("status"), ["200", "200"]);

    let bad = run(fetch().args(["--fields", "url,nope"]), "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("unknown field 'nope'") && stderr(&bad).contains("ttfb_ms"));
}

#[test]
fn jsonl_has_typed_values() {
    let server = TestServer::start();
    let list = format!("{}\nnot a url\n", server.url("/ok/x"));
    let out = run(fetch().args(["-q", "--format", "jsonl"]), &list);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let ok = rows.iter().find(|r| r["line"] == 1).unwrap();
    assert_eq!(ok["status"], 200);
    assert!(ok["latency_ms"].is_f64());
    assert_eq!(ok["error"], serde_json::Value::Null);
    assert_eq!(ok["title"], "ok");
    let bad = rows.iter().find(|r| r["line"] == 2).unwrap();
    assert_eq!(bad["error"], "invalid_url");
    assert_eq!(bad["status"], serde_json::Value::Null);
}

#[test]
fn bom_and_no_header() {
    let server = TestServer::start();
    let out = run(fetch().args(["-q", "--bom"]), &urls(&server.url("/ok"), 1));
    assert!(out.stdout.starts_with(b"\xEF\xBB\xBFline,url,"));
    let out = run(
        fetch().args(["-q", "--no-header"]),
        &urls(&server.url("/ok"), 1),
    );
    assert!(out.stdout.starts_with(b"1,http://"));
    let out = run(fetch().args(["--format", "jsonl", "--bom"]), "");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_output_follows_the_input() {
    let server = TestServer::start();
    // Delays that make completion order differ from input order.
    let list: String = (0..60)
        .map(|i| server.url(&format!("/slow/{}/{i}", (i * 37) % 50)) + "\n")
        .collect();
    let mut config = config();
    config.limits.concurrency = std::num::NonZeroUsize::new(20).unwrap();
    let (_, unordered) = run_list(config.clone(), &list).await;
    config.output.ordered = Some(10_000);
    let (_, ordered) = run_list(config, &list).await;
    let lines = |t: &Table| -> Vec<u64> {
        t.column("line")
            .iter()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    assert_eq!(lines(&ordered), (1..=60).collect::<Vec<_>>());
    assert_ne!(
        lines(&unordered),
        (1..=60).collect::<Vec<_>>(),
        "the test needs disorder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_url_holds_the_window_but_no_more() {
    let server = TestServer::start();
    let mut list = server.url("/slow/1500/first") + "\n";
    list.push_str(&urls(&server.url("/ok"), 500));
    let mut config = config();
    config.output.ordered = Some(50);
    let stats = std::sync::Arc::clone(&server.stats);
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stats.hits()
    });
    let (_, table) = run_list(config, list).await;
    let hits_while_held = watcher.await.unwrap();
    // The first line and at most the window behind it started while it was slow.
    assert!(
        hits_while_held <= 51,
        "{hits_while_held} requests ran past a window of 50"
    );
    assert_eq!(table.len(), 501);
    let lines: Vec<u64> = table
        .column("line")
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn dedupe_skips_repeats_and_says_so() {
    let server = TestServer::start();
    let a = server.url("/ok/a");
    let shouted = a.replace("http://", "HTTP://");
    let list = format!(
        "{a}\n{}\n{a}\n{shouted}\nbad line\nbad line\n",
        server.url("/ok/b")
    );
    let out = run(fetch().arg("--dedupe"), &list);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = Table::parse(&out.stdout);
    assert_eq!(
        table.lines(),
        [1, 2, 5, 6],
        "repeats of a URL get no row; bad lines all do"
    );
    assert!(
        stderr(&out).contains("2 duplicate URLs"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn summary_json_and_failure_threshold() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let list = format!(
        "{}\n{}\n{}\n{}\n",
        server.url("/ok/1"),
        server.url("/status/404"),
        server.url("/status/503"),
        server.url("/ok/2")
    );
    // One row in four failed (the 503; a 404 is an answer).
    let strict = run(
        fetch()
            .args(["-q", "--fail-on-errors", "10%", "--summary-json"])
            .arg(&json),
        &list,
    );
    assert_eq!(strict.status.code(), Some(3), "{}", stderr(&strict));
    let summary = crate::support::read_json(&json);
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["status_classes"]["5xx"], 1);
    assert_eq!(summary["failure_share"], 0.25);
    assert!(summary["latency_ms"]["p50"].is_number());
    assert!(summary["urls_per_second"].is_number());
    let lenient = run(fetch().args(["-q", "--fail-on-errors", "0.5"]), &list);
    assert_eq!(lenient.status.code(), Some(0));
}

#[test]
fn completions_and_man_page() {
    let bash = fetch().args(["--completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("--per-host-concurrency"));
    let man = fetch().arg("--man").output().unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH fetch"));
}

/// Kills a run with SIGKILL part-way, then resumes it: every line ends up with exactly one row.
#[test]
fn resume_after_sigkill_covers_every_line_once() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("urls.txt");
    let total = 400;
    std::fs::write(&list_path, urls(&server.url("/slow/50"), total)).unwrap();
    let out_path = dir.path().join("out.csv");
    let partial = dir.path().join("out.csv.partial");

    let mut child = fetch()
        .args(["-q", "-c", "8"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.stats.hits() < total / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let a flush happen, then kill it mid-write.
    std::thread::sleep(Duration::from_millis(1100));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        partial.exists() && !out_path.exists(),
        "a killed run leaves only the partial file"
    );
    // A torn last line, as a crash mid-write would leave.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .unwrap();
    file.write_all(b"9999,http://torn.test/,20").unwrap();
    drop(file);
    let before = Table::parse_lenient(&std::fs::read(&partial).unwrap());
    assert!(
        before > 0 && before < total,
        "{before} rows before resuming"
    );

    let resumed = fetch()
        .args(["-q", "-c", "8", "--resume"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(!partial.exists());
    let table = Table::parse(&std::fs::read(&out_path).unwrap());
    assert_eq!(
        table.lines(),
        (1..=total as u64).collect::<Vec<_>>(),
        "each line exactly once"
    );
    assert!(table.column("error").iter().all(|e| e.is_empty()));
}

#[test]
fn resume_redoes_rows_cut_short_and_refuses_other_columns() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("urls.txt");
    std::fs::write(
        &list_path,
        format!(
            "{}{}",
            urls(&server.url("/ok"), 3),
            urls(&server.url("/hang"), 2)
        ),
    )
    .unwrap();
    let out_path = dir.path().join("out.csv");
    // First run: the two hanging URLs are cut off by the deadline.
    let first = fetch()
        .args(["-q", "--max-time", "1s"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(124));
    let table = Table::parse(&std::fs::read(&out_path).unwrap());
    assert_eq!(
        table
            .column("error")
            .iter()
            .filter(|e| **e == "deadline")
            .count(),
        2
    );
    let hits_after_first = server.stats.hits();

    let other = fetch()
        .args(["-q", "--resume", "--fields", "line,url"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));

    let second = fetch()
        .args(["-q", "--resume", "--max-time", "1s"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(124));
    assert_eq!(
        server.stats.hits() - hits_after_first,
        2,
        "only the cut-off lines again"
    );
    let table = Table::parse(&std::fs::read(&out_path).unwrap());
    assert_eq!(table.lines(), [1, 2, 3, 4, 5], "no duplicates");
}

/// A night that went wrong: most rows of a run cut short by the deadline failed. The resumed
/// run's summary, `--summary-json` and `--fail-on-errors` cover the whole file, not only the
/// few rows it added.
#[test]
fn a_resumed_run_judges_the_whole_file() {
    let server = TestServer::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("urls.txt");
    std::fs::write(
        &list_path,
        format!(
            "{}{}{}",
            urls(&refused, 8),
            urls(&server.url("/ok"), 2),
            urls(&server.url("/slow/1500"), 3)
        ),
    )
    .unwrap();
    let out_path = dir.path().join("out.csv");
    let json_path = dir.path().join("summary.json");
    let first = fetch()
        .args(["-q", "--max-time", "1s"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(124), "{}", stderr(&first));

    let second = fetch()
        .args(["--resume", "--fail-on-errors", "10%", "--summary-json"])
        .arg(&json_path)
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    let said = stderr(&second);
    assert!(said.contains("fetch: 3 rows in"), "{said}");
    assert!(said.contains("10 rows carried over"), "{said}");
    assert!(said.contains("connect 8"), "{said}");
    let summary = crate::support::read_json(&json_path);
    assert_eq!(summary["rows"], 13);
    assert_eq!(summary["carried_over"], 10);
    assert_eq!(summary["this_run"]["rows"], 3);
    assert_eq!(summary["this_run"]["failure_share"], 0.0);
    assert_eq!(summary["errors"]["connect"], 8);

    // Run again over the complete file: nothing to do, and the file's figures, not zeros.
    let again = fetch()
        .args(["--resume", "--fail-on-errors", "10%"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(stderr(&again).contains("13 rows carried over"));
}
