//! `--format xlsx`: workbooks read back with an independent reader (calamine) for the cells and
//! their types, and as the zip of XML they are for what readers do not expose (the frozen
//! header, the filter, hyperlinks, charts, that no cell is a formula).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::support::server::TestServer;
use crate::support::{Table, urls};
use crate::support::{fetch_without_stdin as fetch, stderr};

/// A workbook, read back: each sheet's cells, and the XML parts of the zip.
struct Book {
    sheets: Vec<(String, Vec<Vec<Data>>)>,
    parts: BTreeMap<String, String>,
}

impl Book {
    fn read(path: &Path) -> Book {
        let mut xlsx: Xlsx<_> = open_workbook(path).expect("a workbook calamine opens");
        let sheets = xlsx
            .sheet_names()
            .into_iter()
            .map(|name| {
                let range = xlsx.worksheet_range(&name).unwrap();
                let rows = range.rows().map(<[Data]>::to_vec).collect();
                (name, rows)
            })
            .collect();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut parts = BTreeMap::new();
        for i in 0..zip.len() {
            let mut part = zip.by_index(i).unwrap();
            let mut text = String::new();
            if part.read_to_string(&mut text).is_ok() {
                parts.insert(part.name().unwrap().into_owned(), text);
            }
        }
        Book { sheets, parts }
    }

    fn names(&self) -> Vec<&str> {
        self.sheets.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn sheet(&self, name: &str) -> &[Vec<Data>] {
        &self.sheets.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// The XML of the n-th worksheet (from 1).
    fn sheet_xml(&self, n: usize) -> &str {
        &self.parts[&format!("xl/worksheets/sheet{n}.xml")]
    }

    /// The row of the `rows` sheet whose `line` is `line`, by column name.
    fn line(&self, line: u64) -> BTreeMap<String, Data> {
        let rows = self.sheet("rows");
        let header: Vec<String> = rows[0].iter().map(|h| h.to_string()).collect();
        let at = header.iter().position(|h| h == "line").unwrap();
        let row = rows
            .iter()
            .skip(1)
            .find(|r| number(&r[at]) == Some(line as f64))
            .unwrap_or_else(|| panic!("no row for line {line}"));
        header.into_iter().zip(row.iter().cloned()).collect()
    }
}

fn number(cell: &Data) -> Option<f64> {
    match cell {
        Data::Float(f) => Some(*f),
        Data::Int(i) => Some(*i as f64),
        _ => None,
    }
}

fn list(dir: &Path, lines: &[String]) -> PathBuf {
    let path = dir.join("urls.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// How many times `needle` occurs in `haystack`.
fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_run_writes_typed_cells_under_a_frozen_filtered_header() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = server.addr.port();
    let lines = [
        server.url("/ok/a"),
        server.url("/status/404"),
        "=1+1".to_owned(),
        format!("http://alice:s3cret@127.0.0.1:{port}/ok/private"),
        "http://127.0.0.1:9/closed".to_owned(),
    ];
    let out = dir.path().join("report.xlsx");
    let run = fetch()
        .args(["-q", "--ordered", "-o"])
        .arg(&out)
        .arg(list(dir.path(), &lines))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let book = Book::read(&out);
    assert_eq!(book.names(), ["rows", "summary"], "xlsx chosen by the name");

    let rows = book.sheet("rows");
    assert_eq!(rows.len(), 1 + lines.len());
    let header: Vec<String> = rows[0].iter().map(|h| h.to_string()).collect();
    assert_eq!(&header[..4], ["line", "url", "status", "latency_ms"]);
    assert!(rows[0].iter().all(|h| matches!(h, Data::String(_))));

    let ok = book.line(1);
    assert_eq!(number(&ok["status"]), Some(200.0));
    assert_eq!(number(&ok["attempts"]), Some(1.0));
    assert_eq!(number(&ok["redirects"]), Some(0.0));
    assert!(number(&ok["latency_ms"]).is_some_and(|ms| ms > 0.0));
    assert!(number(&ok["bytes"]).is_some());
    assert!(
        matches!(ok["started_at"], Data::DateTime(_)),
        "{:?}",
        ok["started_at"]
    );
    assert_eq!(ok["reused"], Data::Bool(false));
    assert_eq!(ok["title"], Data::String("ok".into()));
    assert_eq!(ok["error"], Data::Empty, "empty cells stay empty");
    assert_eq!(
        ok["url"],
        Data::String(server.url("/ok/a")),
        "text as it is"
    );
    assert_eq!(number(&book.line(2)["status"]), Some(404.0));
    let formula = book.line(3);
    assert_eq!(
        formula["url"],
        Data::String("=1+1".into()),
        "no ' in a workbook"
    );
    assert_eq!(formula["error"], Data::String("invalid_url".into()));
    assert_eq!(formula["status"], Data::Empty);
    let private = book.line(4);
    assert_eq!(
        private["url"],
        Data::String(format!("http://alice:***@127.0.0.1:{port}/ok/private"))
    );
    assert_eq!(book.line(5)["error"], Data::String("connect".into()));

    let xml = book.sheet_xml(1);
    assert!(
        xml.contains(r#"ySplit="1""#) && xml.contains(r#"state="frozen""#),
        "the header row is frozen"
    );
    let last_col = (b'A' + u8::try_from(header.len() - 1).unwrap()) as char;
    assert!(
        xml.contains(&format!(r#"<autoFilter ref="A1:{last_col}6"/>"#)),
        "a filter over every column and row"
    );
    assert!(!xml.contains("<f>"), "no cell is a formula");
    // Links for url and final_url of the requested rows; a password never in a link.
    let links = count(xml, "<hyperlink ");
    assert_eq!(links, 8, "url and final_url of lines 1, 2, 4 and 5");
    let rels = &book.parts["xl/worksheets/_rels/sheet1.xml.rels"];
    assert!(rels.contains(&format!("http://127.0.0.1:{port}/ok/private")));
    assert!(!rels.contains("alice") && !rels.contains("***"), "{rels}");
    assert!(
        book.parts.values().all(|part| !part.contains("s3cret")),
        "the password is nowhere"
    );
    // The header is bold: its cells use a style whose font is bold.
    let header_style = xml
        .split("<c r=\"A1\"")
        .nth(1)
        .and_then(|rest| rest.split("s=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let styles = &book.parts["xl/styles.xml"];
    let xfs = styles.split("<cellXfs").nth(1).unwrap();
    let xf = xfs
        .split("<xf ")
        .nth(header_style.parse::<usize>().unwrap() + 1);
    let font: usize = xf
        .and_then(|xf| xf.split("fontId=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let fonts = styles.split("<fonts").nth(1).unwrap();
    assert!(
        fonts
            .split("<font>")
            .nth(font + 1)
            .unwrap()
            .contains("<b/>"),
        "header font {font} is bold"
    );
}

#[test]
fn the_summary_sheet_has_the_figures_and_two_charts() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..8).map(|i| server.url(&format!("/ok/{i}"))).collect();
    lines.push(server.url("/status/503"));
    lines.push("not a url".into());
    let out = dir.path().join("run.xlsx");
    let summary_json = dir.path().join("run.json");
    let run = fetch()
        .args(["-q", "--format", "xlsx", "--summary-json"])
        .arg(&summary_json)
        .arg("-o")
        .arg(&out)
        .arg(list(dir.path(), &lines))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let book = Book::read(&out);
    let summary = book.sheet("summary");
    let figure = |name: &str| {
        summary
            .iter()
            .find(|r| r.first() == Some(&Data::String(name.into())))
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no figure {name}"))
    };
    let json = crate::support::read_json(&summary_json);
    assert_eq!(number(&figure("rows")), json["rows"].as_f64());
    assert_eq!(number(&figure("status_classes.2xx")), Some(8.0));
    assert_eq!(number(&figure("status_classes.5xx")), Some(1.0));
    assert_eq!(number(&figure("errors.invalid_url")), Some(1.0));
    assert_eq!(
        number(&figure("latency_ms.p50")),
        json["latency_ms"]["p50"].as_f64()
    );
    // The chart tables: status classes, and the latency histogram.
    let classes: Vec<(String, f64)> = summary
        .iter()
        .skip(2)
        .take(6)
        .map(|r| (r[3].to_string(), number(&r[4]).unwrap()))
        .collect();
    assert_eq!(classes[1], ("2xx".into(), 8.0));
    assert_eq!(classes[4], ("5xx".into(), 1.0));
    let histogram: f64 = summary
        .iter()
        .skip(2)
        .filter_map(|r| r.get(7).and_then(number))
        .sum();
    assert_eq!(histogram, 9.0, "every requested row in a bucket");
    let charts: Vec<&String> = book
        .parts
        .iter()
        .filter(|(name, _)| name.starts_with("xl/charts/chart"))
        .map(|(_, xml)| xml)
        .collect();
    assert_eq!(charts.len(), 2);
    assert!(charts[0].contains("<c:barChart>") && charts[0].contains("summary!$E$3:$E$8"));
    assert!(charts[1].contains("summary!$H$3"), "{}", charts[1]);
}

#[test]
fn a_stopped_run_still_leaves_a_valid_workbook() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..4).map(|i| server.url(&format!("/ok/{i}"))).collect();
    lines.extend((0..4).map(|i| server.url(&format!("/hang/{i}"))));
    let path = list(dir.path(), &lines);
    // SIGINT while requests hang: exit 130, a complete workbook.
    let out = dir.path().join("interrupted.xlsx");
    let child = fetch()
        .args(["-q", "-o"])
        .arg(&out)
        .arg(&path)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.stats.in_flight() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hanging requests started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let run = child.wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(130), "{}", stderr(&run));
    let book = Book::read(&out);
    assert_eq!(book.sheet("rows").len(), 1 + 8);
    assert_eq!(number(&book.line(1)["status"]), Some(200.0));
    assert_eq!(book.line(5)["error"], Data::String("cancelled".into()));
    let stopped = book
        .sheet("summary")
        .iter()
        .find(|r| r[0] == Data::String("stopped".into()))
        .map(|r| r[1].clone());
    assert_eq!(stopped, Some(Data::String("interrupted".into())));
    assert!(!dir.path().join("interrupted.xlsx.partial").exists());

    // --max-time: exit 124, a complete workbook.
    let out = dir.path().join("deadline.xlsx");
    let run = fetch()
        .args(["-q", "--max-time", "1s", "-o"])
        .arg(&out)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(124), "{}", stderr(&run));
    let book = Book::read(&out);
    assert_eq!(book.sheet("rows").len(), 1 + 8);
    assert_eq!(book.line(8)["error"], Data::String("deadline".into()));
}

#[test]
fn links_stop_at_the_budget_and_rows_go_on_as_text() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rows = fetch::output::LINK_BUDGET / 2 + 100;
    let out = dir.path().join("many.xlsx");
    let run = fetch()
        .args(["-q", "-c", "50", "--ordered", "-o"])
        .arg(&out)
        .arg(list(
            dir.path(),
            &urls(&server.url("/ok"), rows)
                .lines()
                .map(String::from)
                .collect::<Vec<_>>(),
        ))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let book = Book::read(&out);
    assert_eq!(book.sheet("rows").len(), 1 + rows);
    let xml = book.sheet_xml(1);
    assert_eq!(count(xml, "<hyperlink "), fetch::output::LINK_BUDGET);
    let last = book.line(rows as u64);
    assert_eq!(
        last["url"],
        Data::String(server.url(&format!("/ok/{}", rows - 1)))
    );
}

#[test]
fn workbooks_are_refused_where_they_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = list(dir.path(), &["http://127.0.0.1:9/".to_owned()]);
    let cases: [(&[&str], &str); 4] = [
        (&["--format", "xlsx"], "give it a file with -o FILE.xlsx"),
        (&["--resume", "-o", "x.xlsx"], "resume to CSV instead"),
        (
            &["--bom", "-o", "x.xlsx"],
            "--bom and --no-header are for CSV",
        ),
        (
            &["--no-header", "--format", "xlsx", "-o", "x.out"],
            "always has its header",
        ),
    ];
    for (args, words) in cases {
        let run = fetch()
            .current_dir(dir.path())
            .args(args)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        assert!(stderr(&run).contains(words), "{args:?}: {}", stderr(&run));
    }
    assert!(!dir.path().join("x.xlsx").exists());
}

#[test]
fn csv_shards_merge_into_one_typed_workbook() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = server.addr.port();
    let hosts = crate::support::hosts_in_both_shards(2);
    let mut lines: Vec<String> = hosts
        .iter()
        .map(|h| format!("http://{h}:{port}/ok/x"))
        .collect();
    lines.push("=HYPERLINK(\"http://evil.test\")".into());
    let path = list(dir.path(), &lines);
    for shard in 0..2 {
        let mut cmd = fetch();
        cmd.args(["-q", "--ordered", "--shard", &format!("{shard}/2"), "-o"])
            .arg(dir.path().join(format!("part-{shard}.csv")));
        for host in &hosts {
            cmd.args(["--resolve", &format!("{host}:127.0.0.1")]);
        }
        let run = cmd.arg(&path).output().unwrap();
        assert!(run.status.success(), "{}", stderr(&run));
    }
    let out = dir.path().join("all.xlsx");
    let merged = fetch()
        .args(["-q", "--merge"])
        .arg(dir.path().join("part-0.csv"))
        .arg(dir.path().join("part-1.csv"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(merged.status.success(), "{}", stderr(&merged));
    let book = Book::read(&out);
    let rows = book.sheet("rows");
    let lines_in_order: Vec<f64> = rows.iter().skip(1).filter_map(|r| number(&r[0])).collect();
    assert_eq!(lines_in_order, [1.0, 2.0, 3.0, 4.0, 5.0], "in line order");
    let first = book.line(1);
    assert_eq!(number(&first["status"]), Some(200.0));
    assert!(matches!(first["started_at"], Data::DateTime(_)));
    assert_eq!(first["reused"], Data::Bool(false));
    assert!(number(&first["latency_ms"]).is_some());
    assert_eq!(
        book.line(5)["url"],
        Data::String("=HYPERLINK(\"http://evil.test\")".into()),
        "the CSV's ' taken off, and text stays text"
    );
    assert!(!book.sheet_xml(1).contains("<f>"));
    let rows_figure = book
        .sheet("summary")
        .iter()
        .find(|r| r[0] == Data::String("rows".into()))
        .map(|r| number(&r[1]));
    assert_eq!(rows_figure, Some(Some(5.0)));
    // A workbook cannot be merged.
    let refused = fetch()
        .args(["--merge"])
        .arg(&out)
        .arg("-o")
        .arg(dir.path().join("again.csv"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("it is a workbook"),
        "{}",
        stderr(&refused)
    );
    let csv = Table::parse(&std::fs::read(dir.path().join("part-0.csv")).unwrap());
    assert!(csv.len() >= 2);
}

/// The library writes workbooks too; more rows than a sheet holds go on to the next sheets,
/// each with the header, frozen and filtered; long text is cut at what a cell holds.
#[tokio::test]
async fn rows_roll_over_onto_further_sheets() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rolled.xlsx");
    let mut config = crate::support::config();
    config.output.format = fetch::output::Format::Xlsx;
    config.output.sheet_rows = 4;
    config.output.ordered = Some(100);
    let inputs = fetch::Inputs::from_reader(
        "list",
        std::io::Cursor::new(urls(&server.url("/ok"), 10).into_bytes()),
    );
    fetch::run(
        config,
        inputs,
        fetch::Output::create(&out).unwrap(),
        fetch::Stop::new(),
    )
    .await
    .unwrap();
    let book = Book::read(&out);
    assert_eq!(
        book.names(),
        ["rows", "rows 2", "rows 3", "rows 4", "summary"]
    );
    let mut lines = Vec::new();
    for (i, name) in ["rows", "rows 2", "rows 3", "rows 4"].iter().enumerate() {
        let sheet = book.sheet(name);
        assert_eq!(
            sheet[0][0],
            Data::String("line".into()),
            "{name} has the header"
        );
        lines.extend(sheet.iter().skip(1).filter_map(|r| number(&r[0])));
        let xml = book.sheet_xml(i + 1);
        assert!(xml.contains(r#"state="frozen""#) && xml.contains("<autoFilter "));
    }
    assert_eq!(lines, (1..=10).map(f64::from).collect::<Vec<_>>());

    let long = fetch::row::Row {
        line: 1,
        title: Some("é".repeat(40_000)),
        ..fetch::row::Row::default()
    };
    let layout = fetch::output::Options {
        format: fetch::output::Format::Xlsx,
        fields: Some(vec!["line".into(), "title".into()]),
        ..fetch::output::Options::default()
    }
    .layout(&fetch::output::ColumnSpec::default())
    .unwrap();
    let path = dir.path().join("long.xlsx");
    let mut writer =
        fetch::output::RowWriter::new(std::fs::File::create(&path).unwrap(), layout).unwrap();
    writer.write_row(&long).unwrap();
    writer.finish().unwrap();
    let book = Book::read(&path);
    let title = book.sheet("rows")[1][1].to_string();
    assert_eq!(title.chars().count(), fetch::output::CELL_CHARS);
    assert!(title.ends_with('…'));
}
