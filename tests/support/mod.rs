//! Test support: an in-process HTTP server on 127.0.0.1 that counts what it sees, raw TCP
//! listeners that misbehave, and helpers to run the pipeline or the binary and read its CSV.

#![allow(dead_code)] // Each test module uses a different part of this.

pub mod server;
pub mod site;
pub mod tls;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fetch::{Config, Inputs, Output, Stop, Summary};

/// A `Write` whose bytes the test can read after the run.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON file the run wrote (`--summary-json`), parsed.
pub fn read_json(path: impl AsRef<std::path::Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Parsed CSV output, addressed by column name.
#[derive(Debug)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses CSV strictly: every record must have as many fields as the header.
    pub fn parse(bytes: &[u8]) -> Table {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
        let headers = reader
            .headers()
            .expect("CSV has a header")
            .iter()
            .map(String::from)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                r.expect("valid CSV record")
                    .iter()
                    .map(String::from)
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    /// Counts the complete records of a CSV that may end in a torn one.
    pub fn parse_lenient(bytes: &[u8]) -> usize {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let fields = reader.headers().map(|h| h.len()).unwrap_or(0);
        reader
            .records()
            .filter_map(Result::ok)
            .filter(|r| r.len() == fields)
            .count()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    fn index(&self, column: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column}"))
    }

    /// The values of one column, in output order.
    pub fn column(&self, column: &str) -> Vec<&str> {
        let i = self.index(column);
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// The row whose `line` is `line`; panics unless there is exactly one.
    pub fn line(&self, line: u64) -> Row<'_> {
        let i = self.index("line");
        let found: Vec<&Vec<String>> = self
            .rows
            .iter()
            .filter(|r| r[i] == line.to_string())
            .collect();
        assert_eq!(found.len(), 1, "rows for line {line}: {found:?}");
        Row {
            table: self,
            cells: found[0],
        }
    }

    /// Line numbers, sorted.
    pub fn lines(&self) -> Vec<u64> {
        let mut lines: Vec<u64> = self
            .column("line")
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        lines.sort_unstable();
        lines
    }
}

pub struct Row<'a> {
    table: &'a Table,
    cells: &'a [String],
}

impl Row<'_> {
    pub fn get(&self, column: &str) -> &str {
        &self.cells[self.table.index(column)]
    }
}

/// Runs the library pipeline over `list` and returns the summary and the parsed CSV.
pub async fn run_list(config: Config, list: impl AsRef<[u8]>) -> (Summary, Table) {
    run_list_with_stop(config, list, Stop::new()).await
}

pub async fn run_list_with_stop(
    config: Config,
    list: impl AsRef<[u8]>,
    stop: Stop,
) -> (Summary, Table) {
    let out = SharedBuf::default();
    let inputs = Inputs::from_reader("test list", std::io::Cursor::new(list.as_ref().to_vec()));
    let summary = fetch::run(config, inputs, Output::to_writer(out.clone()), stop)
        .await
        .expect("run succeeds");
    (summary, Table::parse(&out.contents()))
}

/// `program` (fetch, or another build of it) with no proxy or certificate settings inherited
/// from the machine, which must not reach our loopback servers.
pub fn binary(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// This build's binary, as [`binary`] starts it.
pub fn fetch_binary() -> std::process::Command {
    binary(env!("CARGO_BIN_EXE_fetch"))
}

/// This build's binary with nothing on its standard input (a list read from stdin would wait).
pub fn fetch_without_stdin() -> std::process::Command {
    let mut cmd = fetch_binary();
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// What a run of the binary said on standard error.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `per_shard` host names (`h<N>.test`) of each of shards 0 and 1 of two: lists that `--shard`
/// splits in both directions.
pub fn hosts_in_both_shards(per_shard: usize) -> Vec<String> {
    let of = |shard| {
        (0..)
            .map(|i| format!("h{i}.test"))
            .filter(move |h| fetch::input::shard_of(h, 2) == shard)
            .take(per_shard)
    };
    of(0).chain(of(1)).collect()
}

/// `n` lines of `base` + `/i`.
pub fn urls(base: &str, n: usize) -> String {
    (0..n).map(|i| format!("{base}/{i}\n")).collect()
}

pub fn config() -> Config {
    Config::default()
}
