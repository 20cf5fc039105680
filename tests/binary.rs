//! The real binary: inputs from files and stdin, exit codes, signals, a closed stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::server::TestServer;
use crate::support::stderr;
use crate::support::{Table, urls};

fn fetch() -> Command {
    crate::support::fetch_binary()
}

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn reads_stdin_when_no_file_is_given() {
    let server = TestServer::start();
    let out = run_with_stdin(fetch().arg("-q"), urls(&server.url("/ok"), 3).as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(Table::parse(&out.stdout).lines(), [1, 2, 3]);
    assert_eq!(stderr(&out), "", "--quiet prints nothing on success");
}

#[test]
fn several_inputs_number_lines_across_files() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, format!("# first file\n{}", server.url("/ok/a"))).unwrap(); // no final newline
    std::fs::write(
        &b,
        format!("{}\n\n{}\n", server.url("/ok/b"), server.url("/ok/c")),
    )
    .unwrap();
    let out_path = dir.path().join("out.csv");
    let out = run_with_stdin(
        fetch().arg(&a).arg("-").arg(&b).arg("-o").arg(&out_path),
        format!("{}\n", server.url("/ok/stdin")).as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "with -o nothing goes to stdout");
    let table = Table::parse(&std::fs::read(&out_path).unwrap());
    assert_eq!(table.lines(), [2, 3, 4, 6]);
    assert_eq!(table.line(3).get("url"), server.url("/ok/stdin"));
    assert_eq!(table.line(6).get("url"), server.url("/ok/c"));
    assert!(
        stderr(&out).contains("4 rows"),
        "summary on stderr: {}",
        stderr(&out)
    );
}

#[test]
fn unwritable_output_fails_before_any_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls(&server.url("/ok"), 5)).unwrap();
    let out = fetch()
        .arg(&list)
        .arg("-o")
        .arg(dir.path().join("missing-dir/out.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("cannot write output file"), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");
    // Only names the user gave: no temporary file's.
    assert!(!message.contains(".new"), "{message}");
    assert_eq!(server.stats.hits(), 0);
}

#[test]
fn unreadable_input_fails_before_any_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("urls.txt");
    std::fs::write(&good, urls(&server.url("/ok"), 5)).unwrap();
    let out = fetch()
        .arg(&good)
        .arg(dir.path().join("nope.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read input file"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(server.stats.hits(), 0);
}

#[test]
fn output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, "http://127.0.0.1:1/\n").unwrap();
    let out = fetch().arg(&list).arg("-o").arg(&list).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "http://127.0.0.1:1/\n"
    );
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["-c", "0", "x"][..],
        &["--rate", "lots", "x"],
        &["--timeout", "soon", "x"],
        &["--threads", "0", "x"],
    ] {
        let out = fetch().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// The default single event loop and a pool of workers give the same rows under the same
/// limit.
#[test]
fn threads_option_keeps_rows_and_limits() {
    let server = TestServer::start();
    let list = urls(&server.url("/slow/50"), 60);
    for threads in ["1", "3"] {
        let out = run_with_stdin(
            fetch().args(["-q", "-c", "6", "--threads", threads]),
            list.as_bytes(),
        );
        assert!(
            out.status.success(),
            "--threads {threads}: {}",
            stderr(&out)
        );
        let table = Table::parse(&out.stdout);
        assert_eq!(
            table.lines(),
            (1..=60).collect::<Vec<u64>>(),
            "--threads {threads}"
        );
        assert!(table.column("status").iter().all(|s| *s == "200"));
    }
    assert_eq!(server.stats.hits(), 120);
    assert_eq!(server.stats.max_in_flight(), 6);
}

#[test]
fn max_time_leaves_valid_csv_and_exit_124() {
    let server = TestServer::start();
    let list = format!(
        "{}\n{}",
        server.url("/ok/first"),
        urls(&server.url("/hang"), 20)
    );
    let started = Instant::now();
    let out = run_with_stdin(
        fetch().args(["-c", "3", "--max-time", "800ms"]),
        list.as_bytes(),
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    let table = Table::parse(&out.stdout);
    assert_eq!(table.len(), 4);
    assert_eq!(table.line(1).get("status"), "200");
    assert_eq!(
        table
            .column("error")
            .iter()
            .filter(|e| **e == "deadline")
            .count(),
        3
    );
    assert!(stderr(&out).contains("--max-time"), "{}", stderr(&out));
}

/// Starts the binary on a list of hanging URLs and waits until `in_flight` requests arrived.
fn start_hanging_run(server: &TestServer, in_flight: usize) -> Child {
    let mut child = fetch()
        .args(["-c", &in_flight.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(urls(&server.url("/hang"), 100).as_bytes())
        .unwrap();
    drop(stdin);
    let waiting = Instant::now();
    while server.stats.in_flight() < in_flight {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "requests never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn check_signal_exit(name: &str, code: i32) {
    let server = TestServer::start();
    let child = start_hanging_run(&server, 4);
    let sent = Instant::now();
    signal(&child, name);
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    let table = Table::parse(&out.stdout);
    assert_eq!(table.len(), 4);
    assert!(table.column("error").iter().all(|e| *e == "cancelled"));
    assert!(out.stdout.ends_with(b"\n"), "no partial line");
}

#[test]
fn sigint_leaves_valid_csv_and_exit_130() {
    check_signal_exit("INT", 130);
}

#[test]
fn sigterm_leaves_valid_csv_and_exit_143() {
    check_signal_exit("TERM", 143);
}

#[test]
fn closed_stdout_ends_quietly() {
    let server = TestServer::start();
    let mut child = fetch()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let list = urls(&server.url("/ok"), 20_000);
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(list.as_bytes());
    });
    // Read the header and one row, then hang up, like `| head -2`.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    stdout.read_line(&mut line).unwrap();
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let _ = writer.join();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "", "a closed stdout is not an error");
    assert!(server.stats.hits() < 20_000, "the run stopped early");
}
