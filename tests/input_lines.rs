//! A hostile list gives exactly one row per non-skipped line, with the right error kinds.

use crate::support::server::TestServer;
use crate::support::{config, run_list};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_list_gives_one_row_per_line() {
    let server = TestServer::start();
    let ok = server.url("/ok/a");
    let huge = format!("{ok}?{}", "x".repeat(100_000));
    let (summary, table) = run_list(config(), hostile_list(&ok, &huge)).await;

    assert_eq!(table.lines(), [2, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(summary.rows, 8);
    let expect = [
        (2, ""),
        (6, "invalid_url"),
        (7, "unsupported_scheme"),
        (8, "unsupported_scheme"),
        (9, "invalid_url"),
        (10, "invalid_input"),
        (11, "invalid_input"),
        (12, ""),
    ];
    for (line, kind) in expect {
        let row = table.line(line);
        assert_eq!(
            row.get("error"),
            kind,
            "line {line}: {}",
            row.get("error_detail")
        );
    }
    assert_eq!(table.line(2).get("url"), ok, "CR and BOM are trimmed");
    assert_eq!(table.line(12).get("url"), format!("{ok}?q=1"));
    assert_eq!(table.line(12).get("status"), "200");
    assert!(table.line(11).get("error_detail").contains("longer than"));
    assert!(
        table.line(11).get("url").len() < 1000,
        "over-long lines are shortened"
    );
    assert_eq!(table.line(6).get("attempts"), "0");
    assert_eq!(
        server.stats.hits(),
        2,
        "only the two good lines were requested"
    );
}

/// Line by line: 1 comment after a BOM, 2 good with CRLF, 3-4 blank, 5 indented comment,
/// 6 not a URL, 7-8 other schemes, 9 bad host, 10 not UTF-8, 11 too long, 12 good, padded,
/// without a final newline.
fn hostile_list(ok: &str, huge: &str) -> Vec<u8> {
    let mut list = Vec::new();
    list.extend_from_slice(b"\xEF\xBB\xBF# a comment after a BOM\r\n");
    list.extend_from_slice(format!("{ok}\r\n").as_bytes());
    list.extend_from_slice(b"\r\n");
    list.extend_from_slice(b"   \t\n");
    list.extend_from_slice(b"   # indented comment\n");
    list.extend_from_slice(b"not a url\n");
    list.extend_from_slice(b"ftp://127.0.0.1/file\n");
    list.extend_from_slice(b"mailto:someone@127.0.0.1\n");
    list.extend_from_slice(b"http://bad host/\n");
    list.extend_from_slice(b"http://127.0.0.1:\xff\xfe/\n");
    list.extend_from_slice(huge.as_bytes());
    list.push(b'\n');
    list.extend_from_slice(format!("  {ok}?q=1  ").as_bytes());
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_input_still_writes_a_header() {
    let (summary, table) = run_list(config(), "# nothing here\n\n").await;
    assert_eq!(summary.rows, 0);
    assert_eq!(table.len(), 0);
    let defaults = fetch::output::Columns::new(&fetch::output::ColumnSpec::default());
    assert!(table.headers.iter().eq(defaults.names()));
}
