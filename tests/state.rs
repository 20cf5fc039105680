//! `--state FILE`: nightly-style runs back to back against a site whose pages change between
//! them, conditional requests as the site sees them, the `changes` table, and a state file that
//! is locked, damaged or somebody else's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use axum::http::header;
use rusqlite::Connection;

use crate::support::Table;
use crate::support::site::{Page, Site};
use crate::support::{fetch_without_stdin as fetch, stderr};

/// A directory with the list, the state file and the outputs of a series of runs.
struct Night {
    dir: tempfile::TempDir,
    runs: usize,
}

impl Night {
    fn new() -> Night {
        Night {
            dir: tempfile::tempdir().unwrap(),
            runs: 0,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state.db")
    }

    fn db(&self) -> Connection {
        Connection::open(self.state()).unwrap()
    }

    fn write_list(&self, lines: &[String]) -> PathBuf {
        let list = self.path("urls.txt");
        std::fs::write(&list, lines.join("\n") + "\n").unwrap();
        list
    }

    /// Runs fetch on the list with `--state` and `-o run-N.csv`, plus `args`.
    fn run(&mut self, args: &[&str]) -> (Output, Table) {
        self.runs += 1;
        let out = self.path(&format!("run-{}.csv", self.runs));
        let output = fetch()
            .arg("--state")
            .arg(self.state())
            .arg("-o")
            .arg(&out)
            .args(args)
            .arg(self.path("urls.txt"))
            .output()
            .unwrap();
        let table = match std::fs::read(&out) {
            Ok(bytes) => Table::parse(&bytes),
            Err(_) => Table {
                headers: Vec::new(),
                rows: Vec::new(),
            },
        };
        (output, table)
    }
}

/// The `change` and `changed_fields` of the row for `url`.
fn change_of(table: &Table, url: &str) -> (String, String) {
    let i = table.headers.iter().position(|h| h == "url").unwrap();
    let row = table
        .rows
        .iter()
        .find(|r| r[i] == url)
        .unwrap_or_else(|| panic!("no row for {url}"));
    let cell = |name: &str| row[table.headers.iter().position(|h| h == name).unwrap()].clone();
    (cell("change"), cell("changed_fields"))
}

fn cell(table: &Table, url: &str, column: &str) -> String {
    let i = table.headers.iter().position(|h| h == "url").unwrap();
    let c = table.headers.iter().position(|h| h == column).unwrap();
    table.rows.iter().find(|r| r[i] == url).unwrap()[c].clone()
}

/// Every page of the nightly test, as it is on the first night.
fn first_night(site: &Site) {
    site.put("/same", Page::new("Same", "unchanged"));
    site.put("/body", Page::new("Body", "v1"));
    site.put("/title", Page::new("Old title", "x"));
    site.put("/gone", Page::new("Gone", "soon"));
    site.put("/moved", Page::redirect("/target-a"));
    site.put("/target-a", Page::new("Target", "t"));
    site.put("/target-b", Page::new("Target", "t"));
    site.put("/retagged", Page::new("Retagged", "same content"));
    site.put("/hangs", Page::new("Hangs", "later"));
    site.put(
        "/recovers",
        Page {
            delay: Some(Duration::from_secs(3)),
            ..Page::new("Recovers", "r")
        },
    );
    site.put(
        "/dated",
        Page {
            etag: None,
            last_modified: Some("Sun, 01 Nov 2026 00:00:00 GMT".into()),
            ..Page::new("Dated", "d")
        },
    );
    site.put("/price", Page::new("Shop", "<p class=p>$10.00</p>"));
}

/// The changes between the first and the second night.
fn second_night(site: &Site) {
    site.put("/body", site.page("/body").edited("Body", "v2"));
    site.put("/title", site.page("/title").edited("New title", "x"));
    site.put(
        "/gone",
        Page {
            status: 404,
            ..Page::new("Not Found", "nothing here")
        },
    );
    site.put("/moved", Page::redirect("/target-b"));
    let mut retagged = site.page("/retagged");
    retagged.etag = Some("\"regenerated\"".into());
    site.put("/retagged", retagged);
    site.put(
        "/hangs",
        Page {
            delay: Some(Duration::from_secs(3)),
            ..site.page("/hangs")
        },
    );
    site.put(
        "/recovers",
        Page {
            delay: None,
            ..site.page("/recovers")
        },
    );
    site.put("/fresh", Page::new("Fresh", "new page"));
    site.put("/added", Page::new("Added", "a line added to the list"));
    site.put(
        "/price",
        site.page("/price").edited("Shop", "<p class=p>$12.50</p>"),
    );
}

const PAGES: [&str; 11] = [
    "/same",
    "/body",
    "/title",
    "/gone",
    "/moved",
    "/retagged",
    "/hangs",
    "/recovers",
    "/dated",
    "/price",
    "/fresh",
];

#[test]
fn nightly_runs_see_what_changed() {
    let site = Site::start();
    first_night(&site);
    let mut night = Night::new();
    let mut lines: Vec<String> = PAGES.iter().map(|p| site.url(p)).collect();
    lines.push("not a url".into());
    night.write_list(&lines);
    let args = ["-q", "-t", "1s", "--regex", r"price=\$([\d.]+)"];

    // Night 1: everything is new (and /fresh is not there yet: a 404).
    let (out, table) = night.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(table.len(), lines.len());
    for page in PAGES {
        assert_eq!(change_of(&table, &site.url(page)).0, "new", "{page}");
    }
    assert_eq!(
        change_of(&table, "not a url"),
        (String::new(), String::new())
    );
    let first_visits = site.take_visits();
    assert!(
        first_visits
            .iter()
            .all(|v| !v.headers.contains_key(header::IF_NONE_MATCH)),
        "nothing to be conditional about on the first night"
    );
    let same_digest = cell(&table, &site.url("/same"), "body_sha256");

    // Night 2, after the site changed and a line was added to the list.
    second_night(&site);
    lines.insert(PAGES.len(), site.url("/added"));
    night.write_list(&lines);
    let (out, table) = night.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expect = [
        ("/same", "not_modified", ""),
        ("/body", "changed", "body"),
        ("/title", "changed", "title,body"),
        ("/gone", "changed", "status"),
        ("/moved", "changed", "final_url"),
        ("/retagged", "same", ""),
        ("/hangs", "changed", "error"),
        ("/recovers", "changed", "error"),
        ("/dated", "not_modified", ""),
        ("/price", "changed", "body,price"),
        ("/fresh", "changed", "status"),
        ("/added", "new", ""),
    ];
    for (page, change, fields) in expect {
        assert_eq!(
            change_of(&table, &site.url(page)),
            (change.to_owned(), fields.to_owned()),
            "{page}"
        );
    }
    // A 304 row shows what the state holds of the page.
    let same = site.url("/same");
    assert_eq!(cell(&table, &same, "status"), "304");
    assert_eq!(cell(&table, &same, "title"), "Same");
    assert_eq!(cell(&table, &same, "body_sha256"), same_digest);
    assert_eq!(cell(&table, &site.url("/dated"), "title"), "Dated");
    // What the site saw: the stored validators, each to its own URL.
    let visits = site.take_visits();
    let sent = |path: &str, name| {
        visits
            .iter()
            .find(|v| v.path == path)
            .and_then(|v| v.headers.get(name))
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        sent("/same", header::IF_NONE_MATCH),
        Page::new("Same", "unchanged").etag
    );
    assert_eq!(
        sent("/dated", header::IF_MODIFIED_SINCE).as_deref(),
        Some("Sun, 01 Nov 2026 00:00:00 GMT")
    );
    assert!(
        sent("/moved", header::IF_NONE_MATCH).is_none()
            && sent("/target-b", header::IF_NONE_MATCH).is_none(),
        "the validators of /target-a go to /target-a only"
    );

    // The changes table says the same, with old and new values.
    let db = night.db();
    let mut changes: Vec<(String, String, Option<String>, Option<String>)> = db
        .prepare("SELECT url, field, old, new FROM changes WHERE run = 2 ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    changes.sort();
    let path = |url: &str| url.trim_start_matches(&site.url("")).to_owned();
    let fields: BTreeSet<(String, String)> = changes
        .iter()
        .map(|(url, field, _, _)| (path(url), field.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = expect
        .iter()
        .flat_map(|(page, _, fields)| {
            fields
                .split(',')
                .filter(|f| !f.is_empty())
                .map(|f| (page.to_string(), f.to_owned()))
        })
        .collect();
    assert_eq!(fields, expected);
    let find = |page: &str, field: &str| {
        changes
            .iter()
            .find(|(url, f, _, _)| path(url) == page && f == field)
            .map(|(_, _, old, new)| (old.clone(), new.clone()))
            .unwrap()
    };
    assert_eq!(
        find("/price", "price"),
        (Some("10.00".into()), Some("12.50".into()))
    );
    assert_eq!(
        find("/title", "title"),
        (Some("Old title".into()), Some("New title".into()))
    );
    assert_eq!(
        find("/gone", "status"),
        (Some("200".into()), Some("404".into()))
    );
    assert_eq!(find("/hangs", "error"), (None, Some("timeout".into())));
    assert_eq!(
        find("/moved", "final_url"),
        (Some(site.url("/target-a")), Some(site.url("/target-b")))
    );
    // A failure or an error page never overwrites the last good title.
    let record = |page: &str| -> (Option<i64>, Option<String>, Option<String>) {
        db.query_row(
            "SELECT status, error, title FROM urls WHERE url = ?1",
            [site.url(page)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(record("/gone"), (Some(404), None, Some("Gone".into())));
    assert_eq!(
        record("/hangs"),
        (Some(200), Some("timeout".into()), Some("Hangs".into()))
    );
    let price: String = db
        .query_row(
            "SELECT json_extract(extracted, '$.price') FROM urls WHERE url = ?1",
            [site.url("/price")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(price, "12.50");
    let runs: Vec<(Option<String>, i64, i64, i64, i64, i64)> = db
        .prepare("SELECT outcome, rows, new, same, changed, not_modified FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        runs,
        [
            (Some("complete".into()), 12, 11, 0, 0, 0),
            (Some("complete".into()), 13, 1, 1, 8, 2)
        ]
    );

    // Night 3: nothing changed since night 2, including what still fails.
    let (out, table) = night.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for page in PAGES {
        let (change, fields) = change_of(&table, &site.url(page));
        assert!(
            change == "same" || change == "not_modified",
            "{page}: {change} {fields}"
        );
    }
    let last_changed = cell(&table, &site.url("/title"), "last_changed");
    let night2: String = db
        .query_row(
            "SELECT at FROM changes WHERE field = 'title' AND url = ?1",
            [site.url("/title")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_changed, night2, "last_changed stays at the change");
}

#[test]
fn a_server_that_ignores_conditional_headers_still_gets_compared() {
    let site = Site::start();
    let page = Page {
        conditional: false,
        last_modified: Some("Sun, 01 Nov 2026 00:00:00 GMT".into()),
        ..Page::new("Stubborn", "always 200")
    };
    site.put("/stubborn", page.clone());
    let mut night = Night::new();
    night.write_list(&[site.url("/stubborn")]);
    night.run(&["-q"]);
    site.take_visits();
    let (out, table) = night.run(&["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let visit = &site.take_visits()[0];
    assert_eq!(
        visit.headers.get(header::IF_NONE_MATCH).unwrap(),
        page.etag.as_deref().unwrap()
    );
    assert_eq!(visit.status, 200);
    assert_eq!(
        change_of(&table, &site.url("/stubborn")),
        ("same".into(), "".into())
    );
    site.put("/stubborn", page.edited("Stubborn", "now different"));
    let (_, table) = night.run(&["-q"]);
    assert_eq!(
        change_of(&table, &site.url("/stubborn")),
        ("changed".into(), "body".into())
    );
}

#[test]
fn a_weak_etag_goes_back_as_it_came() {
    let site = Site::start();
    site.put(
        "/weak",
        Page {
            etag: Some("W/\"soft-1\"".into()),
            ..Page::new("Weak", "w")
        },
    );
    let mut night = Night::new();
    night.write_list(&[site.url("/weak")]);
    night.run(&["-q"]);
    site.take_visits();
    let (_, table) = night.run(&["-q"]);
    let visit = &site.take_visits()[0];
    assert_eq!(
        visit.headers.get(header::IF_NONE_MATCH).unwrap(),
        "W/\"soft-1\""
    );
    assert_eq!(visit.status, 304);
    assert_eq!(
        change_of(&table, &site.url("/weak")),
        ("not_modified".into(), "".into())
    );
}

#[test]
fn no_conditional_fetches_whole_pages_and_still_tracks() {
    let site = Site::start();
    site.put("/p", Page::new("P", "p"));
    let mut night = Night::new();
    night.write_list(&[site.url("/p")]);
    night.run(&["-q"]);
    site.take_visits();
    let (out, table) = night.run(&["-q", "--no-conditional"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let visit = &site.take_visits()[0];
    assert!(!visit.headers.contains_key(header::IF_NONE_MATCH));
    assert_eq!(visit.status, 200);
    assert_eq!(change_of(&table, &site.url("/p")).0, "same");
    let options: String = night
        .db()
        .query_row("SELECT options FROM runs WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert!(options.contains("\"conditional\":false"), "{options}");
}

#[test]
fn a_new_extraction_column_fetches_whole_pages_once() {
    let site = Site::start();
    site.put("/shop", Page::new("Shop", "<b>$3</b>"));
    let mut night = Night::new();
    night.write_list(&[site.url("/shop")]);
    night.run(&["-q"]);
    site.take_visits();
    // A column the state has no value for: a 304 could not fill it.
    let (_, table) = night.run(&["-q", "--regex", r"price=\$(\d+)"]);
    let visit = &site.take_visits()[0];
    assert!(!visit.headers.contains_key(header::IF_NONE_MATCH));
    assert_eq!(cell(&table, &site.url("/shop"), "price"), "3");
    assert_eq!(change_of(&table, &site.url("/shop")).0, "same");
    let (_, table) = night.run(&["-q", "--regex", r"price=\$(\d+)"]);
    assert_eq!(site.take_visits()[0].status, 304);
    assert_eq!(cell(&table, &site.url("/shop"), "price"), "3", "carried");
}

#[test]
fn exit_on_change_and_the_summary_tell_a_cron_wrapper() {
    let site = Site::start();
    site.put("/a", Page::new("A", "1"));
    site.put("/b", Page::new("B", "1"));
    let mut night = Night::new();
    night.write_list(&[site.url("/a"), site.url("/b")]);
    let summary = night.path("summary.json");
    let args = [
        "-q",
        "--exit-on-change",
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    let (out, _) = night.run(&args);
    assert_eq!(out.status.code(), Some(0), "new URLs are no change");
    let (out, _) = night.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    site.put("/b", site.page("/b").edited("B", "2"));
    let (out, _) = night.run(&args);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let json = crate::support::read_json(&summary);
    assert_eq!(
        json["changes"],
        serde_json::json!({"new": 0, "same": 0, "changed": 1, "not_modified": 1})
    );
    // Without the option the exit code stays 0; without --state there is no changes figure.
    let (out, _) = night.run(&["-q"]);
    assert_eq!(out.status.code(), Some(0));
    let plain = fetch()
        .args(["-q", "--summary-json"])
        .arg(&summary)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(plain.status.success());
    let json = crate::support::read_json(&summary);
    assert!(json["changes"].is_null());
    let usage = fetch().args(["--exit-on-change", "x"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "needs --state");
}

/// The state file and the output as they were, byte for byte.
fn snapshot(paths: &[&Path]) -> Vec<Option<Vec<u8>>> {
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

#[test]
fn a_state_file_in_use_fails_the_second_run_at_once() {
    let site = Site::start();
    site.put(
        "/slow",
        Page {
            delay: Some(Duration::from_secs(2)),
            ..Page::new("Slow", "s")
        },
    );
    site.put("/quick", Page::new("Quick", "q"));
    let night = Night::new();
    night.write_list(&[site.url("/slow")]);
    let first = fetch()
        .args(["-q", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(night.path("first.csv"))
        .arg(night.path("urls.txt"))
        .spawn()
        .unwrap();
    // Wait until the first run holds the state (its run is recorded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while night
        .db()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .unwrap_or(0)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second_out = night.path("second.csv");
    let started = std::time::Instant::now();
    let second = fetch()
        .args(["--state"])
        .arg(night.state())
        .arg("-o")
        .arg(&second_out)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "at once");
    assert_eq!(second.status.code(), Some(1));
    let message = stderr(&second);
    assert!(
        message.contains("is in use by another fetch run")
            && message.contains(&format!("pid {}", first.id())),
        "{message}"
    );
    assert!(!second_out.exists() && !night.path("second.csv.partial").exists());
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    let runs: i64 = night
        .db()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 1, "the second run recorded nothing");
}

#[test]
fn damaged_or_foreign_state_files_are_refused_untouched() {
    let site = Site::start();
    site.put("/p", Page::new("P", "p"));
    let night = Night::new();
    night.write_list(&[site.url("/p")]);
    let foreign = night.path("foreign.db");
    {
        let db = Connection::open(&foreign).unwrap();
        db.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
            .unwrap();
    }
    let garbage = night.path("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database, just some text\n".repeat(200),
    )
    .unwrap();
    let newer = night.path("newer.db");
    {
        let db = Connection::open(&newer).unwrap();
        db.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 99; CREATE TABLE urls (x);",
            fetch::state::APPLICATION_ID
        ))
        .unwrap();
    }
    // A real state file, cut in half.
    let truncated = night.path("truncated.db");
    let made = fetch()
        .args(["-q", "--state"])
        .arg(&truncated)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let size = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
    site.take_visits();
    for (file, words) in [
        (&foreign, "an SQLite database of another program"),
        (&garbage, "not an SQLite database"),
        (&newer, "written by a newer fetch"),
        (&truncated, "the database is damaged"),
    ] {
        let out = night.path("out.csv");
        let before = snapshot(&[file]);
        let modified = std::fs::metadata(file).unwrap().modified().unwrap();
        let run = fetch()
            .arg("--state")
            .arg(file)
            .arg("-o")
            .arg(&out)
            .arg(night.path("urls.txt"))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
        assert!(stderr(&run).contains(words), "{}", stderr(&run));
        assert!(stderr(&run).contains(&file.display().to_string()));
        assert_eq!(snapshot(&[file]), before, "{file:?} untouched");
        assert_eq!(
            std::fs::metadata(file).unwrap().modified().unwrap(),
            modified
        );
        assert!(!out.exists(), "no output written");
    }
    assert!(site.take_visits().is_empty(), "no request sent");
}

#[test]
fn a_state_file_cannot_be_the_output_or_an_input() {
    let night = Night::new();
    let list = night.write_list(&["http://127.0.0.1:9/".into()]);
    let out = fetch()
        .arg("--state")
        .arg(&list)
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = fetch()
        .arg("--state")
        .arg(night.path("o.csv"))
        .arg("-o")
        .arg(night.path("o.csv"))
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("state file"), "{}", stderr(&out));
}

/// A site of `n` pages that each take `delay` to answer.
fn slow_site(n: usize, delay: Duration) -> (Site, Vec<String>) {
    let site = Site::start();
    let urls = (0..n)
        .map(|i| {
            let path = format!("/p{i}");
            site.put(
                &path,
                Page {
                    delay: Some(delay),
                    ..Page::new(&format!("Page {i}"), "body")
                },
            );
            site.url(&path)
        })
        .collect();
    (site, urls)
}

/// Starts a run, SIGKILLs it once its partial file holds at least `rows` rows, and returns the
/// rows the partial file holds.
fn kill_after(night: &Night, out: &Path, rows: usize) -> Vec<Vec<String>> {
    let mut child = fetch()
        .args(["-q", "-c", "4", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(out)
        .arg(night.path("urls.txt"))
        .spawn()
        .unwrap();
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let written = std::fs::read(&partial).map_or(0, |b| Table::parse_lenient(&b));
        if written >= rows {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run wrote rows");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let bytes = std::fs::read(&partial).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&bytes[..]);
    let width = reader.headers().unwrap().len();
    reader
        .records()
        .filter_map(Result::ok)
        .filter(|r| r.len() == width)
        .map(|r| r.iter().map(String::from).collect())
        .collect()
}

/// The figures of run `id`: ended, outcome, rows, new, same, changed, not_modified.
#[allow(clippy::type_complexity)]
fn run_record(
    db: &Connection,
    id: i64,
) -> (Option<String>, Option<String>, i64, i64, i64, i64, i64) {
    db.query_row(
        "SELECT ended_at, outcome, rows, new, same, changed, not_modified FROM runs WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )
    .unwrap()
}

#[test]
fn sigkill_then_resume_keeps_file_and_state_in_step() {
    let (site, urls) = slow_site(300, Duration::from_millis(10));
    let night = Night::new();
    night.write_list(&urls);
    let out = night.path("night.csv");
    let torn = kill_after(&night, &out, 40);
    let db = night.db();
    let (ended, _, recorded, ..) = run_record(&db, 1);
    assert!(ended.is_none(), "a killed run never ended");
    let recorded = usize::try_from(recorded).unwrap();
    assert!(
        recorded <= torn.len(),
        "the state ({recorded}) never runs ahead of the file ({})",
        torn.len()
    );
    let stored: i64 = db
        .query_row("SELECT count(*) FROM urls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, recorded, "one URL per recorded row");

    // The next run resumes: the rows the state recorded stay, the rest is fetched again.
    let resumed = fetch()
        .args(["-q", "-c", "8", "--resume", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(&out)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let table = Table::parse(&std::fs::read(&out).unwrap());
    assert_eq!(
        table.lines(),
        (1..=300).collect::<Vec<u64>>(),
        "one row per line"
    );
    assert!(table.column("change").iter().all(|c| *c == "new"));
    for (kept, row) in torn.iter().take(recorded).zip(&table.rows) {
        assert_eq!(kept, row, "the recorded rows are kept as they were");
    }
    let (ended, outcome, rows, new, ..) = run_record(&db, 1);
    assert!(ended.is_some());
    assert_eq!(
        (outcome.as_deref(), rows, new),
        (Some("complete"), 300, 300)
    );
    let runs: i64 = db
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 1, "the resumed run goes on as the same run");
    let every_url_once: (i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT url) FROM urls WHERE last_run = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(every_url_once, (300, 300));

    // Night 2, killed and resumed again: nothing changed, and nothing is called new.
    let out = night.path("night2.csv");
    site.take_visits();
    kill_after(&night, &out, 40);
    let resumed = fetch()
        .args(["-q", "-c", "8", "--resume", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(&out)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let table = Table::parse(&std::fs::read(&out).unwrap());
    assert_eq!(table.len(), 300);
    assert!(
        table.column("change").iter().all(|c| *c == "not_modified"),
        "{:?}",
        table.column("change")
    );
    let (_, outcome, rows, new, same, changed, not_modified) = run_record(&db, 2);
    assert_eq!(
        (outcome.as_deref(), rows, new, same, changed, not_modified),
        (Some("complete"), 300, 0, 0, 0, 300)
    );
}

#[test]
fn a_fresh_run_after_a_kill_calls_new_only_what_was_not_recorded() {
    let (_site, urls) = slow_site(200, Duration::from_millis(10));
    let mut night = Night::new();
    night.write_list(&urls);
    kill_after(&night, &night.path("killed.csv"), 30);
    let recorded = run_record(&night.db(), 1).2;
    let (out, table) = night.run(&["-q", "-c", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new = table
        .column("change")
        .iter()
        .filter(|c| **c == "new")
        .count();
    assert_eq!(new as i64, 200 - recorded);
    assert!(
        table
            .column("change")
            .iter()
            .all(|c| *c == "new" || *c == "not_modified")
    );
}

#[test]
fn a_deadline_stop_records_what_was_written_and_resume_finishes() {
    let (_site, urls) = slow_site(60, Duration::from_millis(300));
    let night = Night::new();
    night.write_list(&urls);
    let out = night.path("cut.csv");
    let cut = fetch()
        .args(["-q", "-c", "4", "--max-time", "1s", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(&out)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert_eq!(cut.status.code(), Some(124), "{}", stderr(&cut));
    let table = Table::parse(&std::fs::read(&out).unwrap());
    let db = night.db();
    let (ended, outcome, rows, new, ..) = run_record(&db, 1);
    assert!(ended.is_some());
    assert_eq!(outcome.as_deref(), Some("deadline"));
    assert_eq!(rows as usize, table.len(), "every written row recorded");
    let observed = table
        .column("change")
        .iter()
        .filter(|c| **c == "new")
        .count();
    assert_eq!(new as usize, observed);
    assert!(
        table
            .column("error")
            .iter()
            .zip(table.column("change"))
            .all(|(e, c)| (*e == "deadline") == c.is_empty()),
        "a request cut off is no observation"
    );
    let stored: i64 = db
        .query_row("SELECT count(*) FROM urls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, observed);
    let resumed = fetch()
        .args(["-q", "-c", "8", "--resume", "--state"])
        .arg(night.state())
        .arg("-o")
        .arg(&out)
        .arg(night.path("urls.txt"))
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let table = Table::parse(&std::fs::read(&out).unwrap());
    assert_eq!(table.lines(), (1..=60).collect::<Vec<u64>>());
    assert!(table.column("change").iter().all(|c| *c == "new"));
    let (_, outcome, rows, new, ..) = run_record(&db, 1);
    assert_eq!((outcome.as_deref(), rows, new), (Some("complete"), 60, 60));
}

#[test]
fn shards_keep_a_state_each_and_are_warned_of_a_swap() {
    let site = Site::start();
    site.put("/p", Page::new("P", "p"));
    // Host names in both shards of two, all served by the one site.
    let hosts = crate::support::hosts_in_both_shards(3);
    let night = Night::new();
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| format!("http://{h}:{}/p", site.addr.port()))
        .collect();
    night.write_list(&urls);
    let run = |shard: usize, state: usize| {
        let mut cmd = fetch();
        cmd.args(["-q", "--shard", &format!("{shard}/2"), "--state"])
            .arg(night.path(&format!("state-{state}.db")));
        for host in &hosts {
            cmd.args(["--resolve", &format!("{host}:127.0.0.1")]);
        }
        cmd.arg(night.path("urls.txt")).output().unwrap()
    };
    for night_number in 0..2 {
        for shard in 0..2 {
            let out = run(shard, shard);
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(stderr(&out).is_empty(), "{}", stderr(&out));
            let table = Table::parse(&out.stdout);
            assert_eq!(table.len(), 3);
            let expected = if night_number == 0 {
                "new"
            } else {
                "not_modified"
            };
            assert!(table.column("change").iter().all(|c| *c == expected));
        }
    }
    for shard in 0..2 {
        let db = Connection::open(night.path(&format!("state-{shard}.db"))).unwrap();
        let stored: Vec<String> = db
            .prepare("SELECT url FROM urls ORDER BY url")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut own: Vec<String> = urls[shard * 3..shard * 3 + 3].to_vec();
        own.sort();
        assert_eq!(stored, own, "shard {shard} keeps its own URLs");
    }
    let swapped = run(0, 1);
    assert!(swapped.status.success());
    assert!(
        stderr(&swapped).contains("was last used for shard 1/2, and this run takes shard 0/2"),
        "{}",
        stderr(&swapped)
    );
}

#[test]
fn dedupe_tracks_a_url_once_however_it_is_spelled() {
    let site = Site::start();
    site.put("/p", Page::new("P", "p"));
    let mut night = Night::new();
    let port = site.addr.port();
    night.write_list(&[
        format!("http://127.0.0.1:{port}/p"),
        format!("HTTP://127.0.0.1:{port}/p"),
        format!("http://127.0.0.1:{port}/./p"),
    ]);
    let (out, table) = night.run(&["-q", "--dedupe"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(table.len(), 1);
    let (_, table) = night.run(&["-q"]);
    assert_eq!(table.len(), 3);
    assert!(
        table.column("change").iter().all(|c| *c == "not_modified"),
        "every spelling is the same URL in the state"
    );
    let stored: i64 = night
        .db()
        .query_row("SELECT count(*) FROM urls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1);
}

/// The library remembers as the binary does: `Config::state`, no command line.
#[tokio::test]
async fn the_pipeline_remembers_without_the_cli() {
    let site = Site::start();
    site.put("/p", Page::new("P", "first"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::config();
    config.state = Some(fetch::config::StateSettings {
        path: dir.path().join("state.db"),
        conditional: true,
    });
    let list = format!("{}\n", site.url("/p"));
    let (summary, table) = crate::support::run_list(config.clone(), &list).await;
    assert_eq!(table.column("change"), ["new"]);
    assert!(
        !table.column("body_sha256")[0].is_empty(),
        "the hash is implied"
    );
    assert_eq!(summary.changes.unwrap().new, 1);
    let (summary, table) = crate::support::run_list(config.clone(), &list).await;
    assert_eq!(table.column("change"), ["not_modified"]);
    assert_eq!(summary.changes.unwrap().not_modified, 1);
    site.put("/p", site.page("/p").edited("P", "second"));
    let (_, table) = crate::support::run_list(config, &list).await;
    assert_eq!(table.column("changed_fields"), ["body"]);
}
