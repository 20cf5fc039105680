//! What the fuzz targets share: arbitrary rows and layouts for the row writers, what each cell
//! must read back as, and each target's check ([`checks`]). The main crate's tests include this
//! file (`#[path]`) to replay the committed seeds, so it names the library `fetch` and its own
//! items by relative paths only.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;

use fetch::output::{Cell, Column, ColumnSpec, Columns, Format, Layout, RowWriter};
use fetch::row::{Certificate, Change, ChangeKind, ErrorKind, Row, TlsFacts};

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z): `started_at` is the clock's
/// time, never past it.
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

/// A row with every field chosen by the fuzzer.
#[derive(Debug, Arbitrary)]
pub struct AnyRow {
    seq: u64,
    line: u64,
    url: String,
    status: Option<u16>,
    latency: Option<Duration>,
    ttfb: Option<Duration>,
    bytes: Option<u64>,
    content_type: Option<String>,
    final_url: Option<String>,
    redirects: Option<u32>,
    attempts: u32,
    started_at: Option<(u64, u32)>,
    error: Option<u8>,
    error_detail: Option<String>,
    title: Option<String>,
    dns: Option<Duration>,
    connect: Option<Duration>,
    tls: Option<Duration>,
    queue: Option<Duration>,
    reused: Option<bool>,
    remote_ip: Option<IpAddr>,
    body_sha256: Option<String>,
    http_version: Option<u8>,
    tls_info: Option<AnyTls>,
    content_encoding: Option<String>,
    wire_bytes: Option<u64>,
    location: Option<String>,
    headers: Vec<Option<String>>,
    values: Vec<Option<String>>,
    change: Option<AnyChange>,
}

/// The change columns of `--state`, chosen by the fuzzer.
#[derive(Debug, Arbitrary)]
pub struct AnyChange {
    kind: u8,
    fields: String,
    last_changed: Option<(u64, u32)>,
}

/// What `--tls-info` records, chosen by the fuzzer.
#[derive(Debug, Arbitrary)]
pub struct AnyTls {
    version: Option<bool>,
    certificate: Option<AnyCertificate>,
}

#[derive(Debug, Arbitrary)]
pub struct AnyCertificate {
    subject: String,
    issuer: String,
    not_after: Option<(u64, u32)>,
}

impl AnyRow {
    pub fn into_row(self) -> Row {
        let pick_kind = |i: u8| ErrorKind::ALL[usize::from(i) % ErrorKind::ALL.len()];
        let time = |(secs, nanos): (u64, u32)| {
            UNIX_EPOCH + Duration::new(secs % (LAST_RFC3339_SECOND + 1), nanos % 1_000_000_000)
        };
        Row {
            seq: self.seq,
            line: self.line,
            url: self.url,
            status: self.status,
            latency: self.latency,
            ttfb: self.ttfb,
            bytes: self.bytes,
            content_type: self.content_type,
            final_url: self.final_url,
            redirects: self.redirects,
            attempts: self.attempts,
            started_at: self.started_at.map(time),
            error: self.error.map(pick_kind),
            error_detail: self.error_detail,
            title: self.title,
            dns: self.dns,
            connect: self.connect,
            tls: self.tls,
            queue: self.queue,
            reused: self.reused,
            remote_ip: self.remote_ip,
            body_sha256: self.body_sha256,
            http_version: self
                .http_version
                .map(|i| ["HTTP/1.0", "HTTP/1.1", "HTTP/2"][usize::from(i) % 3]),
            tls_info: self.tls_info.map(|tls| {
                Arc::new(TlsFacts {
                    version: tls.version.map(|v| if v { "TLSv1.3" } else { "TLSv1.2" }),
                    certificate: tls.certificate.map(|c| Certificate {
                        subject: c.subject,
                        issuer: c.issuer,
                        not_after: c.not_after.map(time),
                    }),
                })
            }),
            content_encoding: self.content_encoding,
            wire_bytes: self.wire_bytes,
            location: self.location,
            headers: self.headers,
            values: self.values,
            tracked: None,
            validators: None,
            change: self.change.map(|c| {
                Box::new(Change {
                    kind: ChangeKind::ALL[usize::from(c.kind) % ChangeKind::ALL.len()],
                    fields: c.fields,
                    last_changed: c.last_changed.map(time),
                })
            }),
        }
    }
}

/// A layout: the options, the value columns, and optionally a `--fields` choice.
#[derive(Debug, Arbitrary)]
pub struct AnyLayout {
    spreadsheet_safe: bool,
    header: bool,
    bom: bool,
    hash: bool,
    tls_info: bool,
    header_columns: u8,
    value_columns: u8,
    /// Indexes into the full column list, for `--fields`.
    fields: Option<Vec<u8>>,
    changes: bool,
}

impl AnyLayout {
    pub fn layout(&self, format: Format) -> Layout {
        let spec = ColumnSpec {
            hash: self.hash,
            tls_info: self.tls_info,
            changes: self.changes,
            headers: (0..self.header_columns % 3)
                .map(|i| format!("header{i}"))
                .collect(),
            values: (0..self.value_columns % 4)
                .map(|i| format!("value{i}"))
                .collect(),
        };
        let all = Columns::new(&spec);
        let columns = self
            .fields
            .as_ref()
            .and_then(|picks| {
                let every: Vec<&str> = all.names().collect();
                let mut wanted: Vec<String> = Vec::new();
                for &pick in picks {
                    let name = every[usize::from(pick) % every.len()].to_owned();
                    if !wanted.contains(&name) {
                        wanted.push(name);
                    }
                }
                Columns::select(&spec, &wanted).ok()
            })
            .unwrap_or(all);
        Layout {
            columns,
            spreadsheet_safe: self.spreadsheet_safe,
            format,
            header: self.header,
            bom: self.bom,
            sheet_rows: fetch::output::SHEET_ROWS,
        }
    }
}

/// Writes `rows` with a [`RowWriter`] into memory.
pub fn write(layout: &Layout, rows: &[Row]) -> Vec<u8> {
    let mut writer = RowWriter::new(Vec::new(), layout.clone()).expect("memory takes anything");
    for row in rows {
        writer.write_row(row).expect("memory takes anything");
    }
    writer.finish().expect("memory takes anything")
}

/// What a text cell must read back as: the text itself, or (spreadsheet-safe) with a `'` in
/// front when a spreadsheet would take it for a formula.
pub fn expected_text(text: &str, safe: bool) -> String {
    let formula = matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\n')
    );
    if safe && formula {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The cell of `column` in `row`, as the writers see it.
pub fn cell(column: Column, row: &Row) -> Cell<'_> {
    column.cell(row)
}

/// Milliseconds as written: microsecond resolution.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// RFC 3339 with milliseconds, as `started_at` is written.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// What each fuzz target checks, as functions: the targets call them on what libFuzzer makes,
/// and the main crate's tests (`tests/fuzz_seeds.rs`) on every committed seed, decoded the same
/// way, so `cargo test` guards the head scanner, the line reader and the writers between
/// fuzzing campaigns.
pub mod checks {
    /// The line reader and URL classification, on arbitrary bytes (BOMs, CR, NUL, invalid UTF-8,
    /// huge lines), read in arbitrary pieces with interrupted reads.
    ///
    /// Checked against a model that splits the whole input at once: the streaming reader must give
    /// the same jobs (line numbers, text, verdict) whatever the read sizes, and every job must obey
    /// the row contract (trimmed, printable, never blank or a comment, only http(s) URLs accepted),
    /// and every URL must be what parsing its line afresh gives (the reader reuses origins).
    ///
    /// Input: byte 0 = read size and whether reads get interrupted; byte 1 = whether to stretch
    /// the first line to a length around the cap (and to which), so short inputs probe the limit.
    pub mod lines {
        use std::io::{self, Read};

        use fetch::input::{MAX_LINE_BYTES, parse_target, read_jobs};
        use fetch::row::ErrorKind;

        /// Stretched first lines are this long, plus up to 31 bytes: both sides of the cap.
        const STRETCH_FROM: usize = MAX_LINE_BYTES - 16;

        const BOM: &[u8] = b"\xEF\xBB\xBF";

        pub fn check(data: &[u8]) {
            let (shape, stretch, body) = match data {
                [shape, stretch, body @ ..] => (*shape, *stretch, body),
                _ => (0, 0, data),
            };
            let input = stretched(body, stretch);
            // Tiny reads test every split; on stretched inputs they would only cost time.
            let piece = usize::from(shape & 0x7f) + 1;
            let reader = Trickle {
                data: &input,
                at: 0,
                piece: if input.len() > body.len() {
                    piece * 256
                } else {
                    piece
                },
                interrupt: shape & 0x80 != 0,
                reads: 0,
            };
            let got: Vec<_> = read_jobs(reader)
                .map(|job| job.expect("reading from memory cannot fail"))
                .collect();
            let want = model(&input);
            assert_eq!(got.len(), want.len(), "number of jobs");
            for (seq, (job, want)) in got.iter().zip(&want).enumerate() {
                assert_eq!(job.seq, seq as u64);
                assert_eq!(job.line, want.line);
                check_job_contract(job);
                match &want.verdict {
                    Verdict::TooLong => {
                        assert_eq!(
                            kind(job),
                            Some(ErrorKind::InvalidInput),
                            "line {}",
                            job.line
                        );
                        assert!(job.text.ends_with('…'));
                        assert!(job.text.chars().count() <= 201);
                    }
                    Verdict::BadText => {
                        assert_eq!(
                            kind(job),
                            Some(ErrorKind::InvalidInput),
                            "line {}",
                            job.line
                        );
                        assert_eq!(job.text, want.text);
                    }
                    Verdict::Text => {
                        assert_eq!(job.text, want.text);
                        assert_ne!(kind(job), Some(ErrorKind::InvalidInput));
                        // The reader reuses the previous line's origin: it must parse as a fresh parse.
                        let fresh = parse_target(&job.text);
                        assert_eq!(
                            job.target.as_ref().map(|url| url.as_str()).ok(),
                            fresh.as_ref().map(|url| url.as_str()).ok(),
                            "line {}",
                            job.line
                        );
                    }
                }
            }
        }

        /// The body as it is, or (for one `stretch` value in eight) with its first line padded with
        /// `x` to a length just under, at or over the cap.
        fn stretched(body: &[u8], stretch: u8) -> Vec<u8> {
            if stretch < 0xE0 {
                return body.to_vec();
            }
            let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
            let (first, rest) = body.split_at(end);
            let target = STRETCH_FROM + usize::from(stretch & 0x1f);
            let mut out = first.to_vec();
            out.resize(target.max(first.len()), b'x');
            out.extend_from_slice(rest);
            out
        }

        fn kind(job: &fetch::input::Job) -> Option<ErrorKind> {
            job.target.as_ref().err().map(|f| f.kind)
        }

        /// What every job must be, whatever the input.
        fn check_job_contract(job: &fetch::input::Job) {
            let text = &job.text;
            assert!(!text.is_empty() && !text.starts_with('#'), "{text:?}");
            assert_eq!(text.trim(), text, "trimmed");
            assert!(!text.chars().any(char::is_control), "printable: {text:?}");
            match &job.target {
                Ok(url) => {
                    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
                    assert!(url.has_host());
                    assert_eq!(url::Url::parse(text).as_ref(), Ok(url));
                }
                Err(failure) => assert!(!failure.detail.is_empty()),
            }
        }

        /// A reader that hands out at most `piece` bytes per read, and fails every other read with
        /// `Interrupted` when asked to (which readers must retry).
        pub struct Trickle<'a> {
            data: &'a [u8],
            at: usize,
            piece: usize,
            interrupt: bool,
            reads: u64,
        }

        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.reads += 1;
                if self.interrupt && self.reads.is_multiple_of(2) {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                let rest = self.data.get(self.at..).unwrap_or_default();
                let n = rest.len().min(self.piece).min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.at += n;
                Ok(n)
            }
        }

        pub struct Expected {
            line: u64,
            text: String,
            verdict: Verdict,
        }

        enum Verdict {
            /// Longer than the cap: invalid input, with a shortened preview.
            TooLong,
            /// Not UTF-8, or a control character: invalid input, shown with replacement characters.
            BadText,
            /// Text to classify as a URL (or not).
            Text,
        }

        /// The reader's rules applied to the whole input at once: split on `\n` (a final line needs no
        /// newline), drop leading ASCII whitespace and then a BOM on the first line, cap the length,
        /// decode lossily, trim; blank lines and `#` comments get no job.
        fn model(input: &[u8]) -> Vec<Expected> {
            let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if segments.last().is_some_and(|s| s.is_empty()) {
                segments.pop();
            }
            let mut out = Vec::new();
            for (i, segment) in segments.into_iter().enumerate() {
                let start = segment
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(segment.len());
                let mut content = &segment[start..];
                if i == 0 {
                    content = content.strip_prefix(BOM).unwrap_or(content);
                }
                let kept = &content[..content.len().min(MAX_LINE_BYTES)];
                let text = String::from_utf8_lossy(kept).trim().to_owned();
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
                let printable: String = text
                    .chars()
                    .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                    .collect();
                let verdict = if content.len() > MAX_LINE_BYTES {
                    Verdict::TooLong
                } else if std::str::from_utf8(kept).is_err() || printable != text {
                    Verdict::BadText
                } else {
                    Verdict::Text
                };
                out.push(Expected {
                    line: i as u64 + 1,
                    text: printable,
                    verdict,
                });
            }
            out
        }
    }

    /// The CSV row writer: whatever the values (commas, quotes, CR/LF, NUL, formula starts, any
    /// Unicode) and whatever the layout (`--fields`, `--raw`, `--no-header`, `--bom`), the csv
    /// crate's strict reader gets back one record per row with the header's field count, and every
    /// cell as it should be.
    pub mod csv_rows {
        use super::super::{AnyLayout, AnyRow, cell, expected_text, millis, rfc3339, write};
        use fetch::output::{Cell, Format};

        pub fn check(input: (AnyLayout, Vec<AnyRow>)) {
            let (layout, rows) = input;
            let layout = layout.layout(Format::Csv);
            let rows: Vec<_> = rows.into_iter().map(AnyRow::into_row).collect();
            let bytes = write(&layout, &rows);

            let body = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
                Some(rest) => {
                    assert!(layout.bom, "a BOM only with --bom");
                    rest
                }
                None => {
                    assert!(!layout.bom, "--bom writes a BOM");
                    &bytes[..]
                }
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(false)
                .from_reader(body);
            let mut records = reader.records().map(|r| r.expect("valid CSV"));
            let columns: Vec<_> = layout.columns.iter().collect();
            if layout.header {
                let header = records.next().expect("a header, even without rows");
                assert!(header.iter().eq(layout.columns.names()));
            }
            let mut written = 0;
            for (record, row) in records.by_ref().zip(&rows) {
                written += 1;
                assert_eq!(record.len(), columns.len());
                for (field, &column) in record.iter().zip(&columns) {
                    let want = match cell(column, row) {
                        Cell::Empty => String::new(),
                        Cell::Text(text) => expected_text(text, layout.spreadsheet_safe),
                        Cell::Word(word) => word.to_owned(),
                        Cell::Count(n) => n.to_string(),
                        Cell::Int(n) => n.to_string(),
                        Cell::Millis(d) => {
                            let read: f64 = field.parse().expect("a number");
                            // The cell is exact; the float only up to 2^53 µs (285 years): past that
                            // the two may differ in the last bit (found by this target).
                            if d.as_micros() < 1 << 53 {
                                assert_eq!(read, millis(d), "{column:?}");
                            } else {
                                assert!(
                                    (read - millis(d)).abs() <= millis(d) * 1e-15,
                                    "{column:?}"
                                );
                            }
                            continue;
                        }
                        Cell::Flag(b) => b.to_string(),
                        Cell::Ip(ip) => ip.to_string(),
                        Cell::Time(t) => rfc3339(t),
                    };
                    assert_eq!(field, want, "{column:?}");
                }
            }
            assert_eq!(written, rows.len(), "one record per row");
            assert!(records.next().is_none(), "nothing after the last row");
        }
    }

    /// The JSON Lines row writer: whatever the values, each row is one line holding one JSON object
    /// whose keys are the columns, in order, and whose values read back exactly: text as it was
    /// (no formula neutralising in JSON), numbers as numbers, empty cells as `null`.
    pub mod jsonl_rows {
        use super::super::{AnyLayout, AnyRow, cell, millis, rfc3339, write};
        use fetch::output::{Cell, Format};
        use serde_json::Value;

        pub fn check(input: (AnyLayout, Vec<AnyRow>)) {
            let (layout, rows) = input;
            let layout = layout.layout(Format::Jsonl);
            let rows: Vec<_> = rows.into_iter().map(AnyRow::into_row).collect();
            let bytes = write(&layout, &rows);
            let text = std::str::from_utf8(&bytes).expect("JSON Lines are UTF-8");
            assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), rows.len(), "one line per row, no header");
            let names: Vec<&str> = layout.columns.names().collect();
            for ((line, row), seen) in lines.iter().zip(&rows).zip(0..) {
                let pairs: Vec<(String, Value)> = ordered_object(line);
                assert!(
                    pairs
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .eq(names.iter().copied()),
                    "row {seen}: keys in column order"
                );
                for ((_, value), column) in pairs.iter().zip(layout.columns.iter()) {
                    let want = match cell(column, row) {
                        Cell::Empty => Value::Null,
                        Cell::Text(text) | Cell::Word(text) => Value::from(text),
                        Cell::Count(n) => Value::from(n),
                        Cell::Int(n) => Value::from(n),
                        Cell::Millis(d) => {
                            let read = value.as_f64().expect("a number");
                            assert_eq!(read, millis(d), "{column:?}");
                            continue;
                        }
                        Cell::Flag(b) => Value::from(b),
                        Cell::Ip(ip) => Value::from(ip.to_string()),
                        Cell::Time(t) => Value::from(rfc3339(t)),
                    };
                    assert_eq!(value, &want, "{column:?}");
                }
            }
        }

        /// The line's object as (key, value) pairs in the order written (serde_json's map sorts keys).
        fn ordered_object(line: &str) -> Vec<(String, Value)> {
            struct Pairs(Vec<(String, Value)>);
            impl<'de> serde::Deserialize<'de> for Pairs {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    struct Visit;
                    impl<'de> serde::de::Visitor<'de> for Visit {
                        type Value = Pairs;
                        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                            f.write_str("an object")
                        }
                        fn visit_map<M: serde::de::MapAccess<'de>>(
                            self,
                            mut m: M,
                        ) -> Result<Pairs, M::Error> {
                            let mut pairs = Vec::new();
                            while let Some(pair) = m.next_entry()? {
                                pairs.push(pair);
                            }
                            Ok(Pairs(pairs))
                        }
                    }
                    d.deserialize_map(Visit)
                }
            }
            let Pairs(pairs) = serde_json::from_str(line).expect("each line is one JSON object");
            pairs
        }
    }

    /// The workbook row writer: whatever the values and the layout, the workbook opens in an
    /// independent reader (calamine), its `rows` sheet has the header and one row per row, and
    /// every cell reads back typed as written: numbers as numbers, times as date-times to the
    /// millisecond, booleans, text as it was (cut at what a cell holds), empty cells empty.
    pub mod xlsx_rows {
        use std::time::{SystemTime, UNIX_EPOCH};

        use super::super::{AnyLayout, AnyRow, cell, millis, write};
        use calamine::{Data, Reader, Xlsx};
        use fetch::output::{CELL_CHARS, Cell, Format};

        pub fn check(input: (AnyLayout, Vec<AnyRow>)) {
            let (layout, rows) = input;
            let layout = layout.layout(Format::Xlsx);
            let rows: Vec<_> = rows.into_iter().map(AnyRow::into_row).collect();
            let bytes = write(&layout, &rows);
            let mut book: Xlsx<_> =
                Xlsx::new(std::io::Cursor::new(bytes)).expect("a workbook calamine opens");
            assert_eq!(book.sheet_names(), ["rows"], "no summary outside a run");
            let range = book.worksheet_range("rows").expect("the rows sheet");
            let mut sheet = range.rows();
            let header = sheet.next().expect("a header, even without rows");
            let names: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            assert!(names.iter().map(String::as_str).eq(layout.columns.names()));
            // A reader's range ends at the last cell with a value: rows of empty cells at the
            // end are rows all the same (what the next row's position says).
            let read: Vec<&[Data]> = sheet.collect();
            assert!(read.len() <= rows.len(), "no more rows than written");
            for (i, row) in rows.iter().enumerate() {
                let cells = read.get(i).copied().unwrap_or_default();
                for (at, column) in layout.columns.iter().enumerate() {
                    let got = cells.get(at).unwrap_or(&Data::Empty);
                    expect(cell(column, row), got, &format!("row {i}, {column:?}"));
                }
            }
        }

        fn expect(want: Cell<'_>, got: &Data, what: &str) {
            let number = |n: f64| match got {
                Data::Float(f) => assert_eq!(*f, n, "{what}"),
                Data::Int(i) => assert_eq!(*i as f64, n, "{what}"),
                other => panic!("{what}: {other:?} for {n}"),
            };
            match want {
                Cell::Empty => assert_eq!(got, &Data::Empty, "{what}"),
                Cell::Text(text) | Cell::Word(text) => {
                    let kept: String = if text.chars().count() > CELL_CHARS {
                        text.chars().take(CELL_CHARS - 1).chain(['…']).collect()
                    } else {
                        text.to_owned()
                    };
                    let read = match got {
                        Data::String(s) => s.as_str(),
                        Data::Empty => "",
                        other => panic!("{what}: {other:?} for text {text:?}"),
                    };
                    assert_eq!(read, kept, "{what}");
                }
                Cell::Count(n) => number(n as f64),
                Cell::Int(n) => number(n as f64),
                Cell::Millis(d) => number(millis(d)),
                Cell::Flag(b) => assert_eq!(got, &Data::Bool(b), "{what}"),
                Cell::Ip(ip) => assert_eq!(got, &Data::String(ip.to_string()), "{what}"),
                Cell::Time(t) => match got {
                    Data::DateTime(date) => {
                        let ms = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
                            Ok(d) => d.as_millis() as f64,
                            Err(e) => -(e.duration().as_millis() as f64),
                        };
                        let read = (date.as_f64() - 25_569.0) * 86_400_000.0;
                        assert!((read - ms(t)).abs() < 1.0, "{what}: {read} ms for {t:?}");
                    }
                    // Past what a spreadsheet's dates hold: the RFC 3339 text.
                    Data::String(text) => {
                        assert_eq!(*text, humantime::format_rfc3339_millis(t).to_string())
                    }
                    other => panic!("{what}: {other:?} for a time"),
                },
            }
        }
    }

    /// The option value parsers (`--rate`, `--timeout` and friends, `--max-body`): never a panic on
    /// any text, and whatever they accept is in range and reads back the same when written out.
    pub mod parsers {
        use std::time::Duration;

        use fetch::config::{Rate, parse_bytes, parse_duration};

        /// The slowest rate accepted: one a year.
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

        pub fn check(text: &str) {
            if let Ok(rate) = text.parse::<Rate>() {
                let interval = rate.interval();
                assert!(
                    !interval.is_zero() && interval <= YEAR,
                    "{text:?}: {interval:?}"
                );
                assert!(rate.per_second().is_finite() && rate.per_second() > 0.0);
                let shown = rate.to_string();
                assert_eq!(
                    shown.parse::<Rate>(),
                    Ok(rate),
                    "{text:?} shown as {shown:?}"
                );
            }
            if let Ok(duration) = parse_duration(text) {
                let shown = humantime::format_duration(duration).to_string();
                assert_eq!(
                    parse_duration(&shown),
                    Ok(duration),
                    "{text:?} shown as {shown:?}"
                );
            }
            if let Ok(bytes) = parse_bytes(text) {
                assert_eq!(parse_bytes(&bytes.to_string()), Ok(bytes), "{text:?}");
            }
        }
    }

    /// Charset detection and title extraction on arbitrary bodies, content types and chunkings.
    ///
    /// The capture keeps only a page's head, found by a streaming scanner rather than a parser; the
    /// contract is that this changes nothing: the title is the one a full parse of the whole page
    /// finds (decoded with the same charset), and it does not depend on how the body was split into
    /// chunks. Titles are always one line, trimmed, and at most the title limit. The quick path that
    /// skips the parser for plain titles gives the parser's answer whenever it gives one.
    pub mod title {
        use arbitrary::Arbitrary;
        use fetch::extract::{ExtractSpec, Extractor, HEAD_LIMIT, TITLE_LIMIT};
        use fetch::fetch::BodySink;

        #[derive(Debug, Arbitrary)]
        pub struct Page<'a> {
            content_type: Option<&'a str>,
            /// Chunk lengths to split the body at (cycled); 0 entries are skipped.
            cuts: Vec<u8>,
            body: &'a [u8],
        }

        pub fn check(page: Page<'_>) {
            let extractor = Extractor::new(ExtractSpec {
                title: true,
                values: Vec::new(),
                hash: true,
            });
            let whole = extract(&extractor, page.content_type, &[page.body]);
            let chunks = split(page.body, &page.cuts);
            let chunked = extract(&extractor, page.content_type, &chunks);
            assert_eq!(whole, chunked, "chunking changed the result");

            if let Some(title) = &whole.title {
                assert!(title.chars().count() <= TITLE_LIMIT + 1);
                assert_eq!(title.trim(), title, "trimmed");
                assert!(!title.contains(['\n', '\r', '\t']), "one line: {title:?}");
            }
            if comparable(page.body) {
                assert_eq!(whole.title, full_parse_title(page.content_type, page.body));
            }
        }

        fn extract(
            extractor: &Extractor,
            content_type: Option<&str>,
            chunks: &[&[u8]],
        ) -> fetch::extract::Extracted {
            let mut capture = extractor.capture();
            capture.begin(content_type);
            for chunk in chunks {
                capture.feed(chunk);
            }
            let captured = capture.finish();
            // The quick path, when it answers, must answer what the parser would.
            let quick = extractor.extract_title_only(&captured);
            let parsed = extractor.extract(captured);
            if let Some(quick) = quick {
                assert_eq!(quick, parsed, "the quick title differs from the parser's");
            }
            parsed
        }

        fn split<'a>(body: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
            let mut chunks = Vec::new();
            let mut rest = body;
            let mut sizes = cuts.iter().filter(|&&c| c > 0).cycle();
            while !rest.is_empty() {
                let size = sizes.next().map_or(rest.len(), |&c| usize::from(c));
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            chunks
        }

        /// The title a parser finds in the whole page, with nothing cut: what the head capture must
        /// agree with. Feeding the whole body to a capture that wants every byte gives the parser the
        /// full page through the same decoding.
        fn full_parse_title(content_type: Option<&str>, body: &[u8]) -> Option<String> {
            let full = Extractor::new(ExtractSpec {
                title: true,
                values: vec![
                    fetch::extract::parse_select("all=html", false)
                        .expect("valid")
                        .into(),
                ],
                hash: false,
            });
            extract(&full, content_type, &[body]).title
        }

        /// Pages where a full parse is the right oracle: shorter than the head limit (past it the
        /// capture gives up by design), UTF-8 (so a charset guess over the head and over the whole page
        /// cannot differ), and without the tags after which the capture deliberately looks no further
        /// (`<body>`, and `<svg>`/`<math>`, whose `<title>`s are icons' and formulas', not the page's).
        fn comparable(body: &[u8]) -> bool {
            let lower = body.to_ascii_lowercase();
            let has = |tag: &[u8]| lower.windows(tag.len()).any(|w| w == tag);
            body.len() < HEAD_LIMIT
                && std::str::from_utf8(body).is_ok()
                && !["<body", "<svg", "<math", "<plaintext"]
                    .iter()
                    .any(|tag| has(tag.as_bytes()))
        }
    }

    /// `Retry-After` parsing (RFC 9110 §10.2.3): delay-seconds or an HTTP date, against any clock.
    /// Never a panic; delay-seconds always give a delay (a huge one is a long wait, not none); a
    /// date gives the time from now until it (zero when past); anything else gives none.
    pub mod retry_after {
        use std::time::{Duration, UNIX_EPOCH};

        use fetch::fetch::parse_retry_after;

        /// HTTP dates stop at the year 9999.
        const LAST_HTTP_DATE: u64 = 253_402_300_799;

        pub fn check(input: (&str, u64, u32, u64)) {
            let (value, now_secs, now_nanos, ahead) = input;
            let now =
                UNIX_EPOCH + Duration::new(now_secs % LAST_HTTP_DATE, now_nanos % 1_000_000_000);
            let got = parse_retry_after(value, now);

            let trimmed = value.trim();
            if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
                let want = trimmed.parse().map_or(Duration::MAX, Duration::from_secs);
                assert_eq!(got, Some(want), "{value:?}");
            } else if let Ok(date) = httpdate::parse_http_date(trimmed) {
                assert_eq!(
                    got,
                    Some(date.duration_since(now).unwrap_or_default()),
                    "{value:?}"
                );
            } else {
                assert_eq!(got, None, "{value:?}");
            }

            // A date the server formats the usual way comes back as the whole seconds until it.
            let whole_now = UNIX_EPOCH + Duration::from_secs(now_secs % LAST_HTTP_DATE);
            let ahead = ahead % (LAST_HTTP_DATE - now_secs % LAST_HTTP_DATE + 1);
            let date = httpdate::fmt_http_date(whole_now + Duration::from_secs(ahead));
            assert_eq!(
                parse_retry_after(&date, whole_now),
                Some(Duration::from_secs(ahead)),
                "{date}"
            );
        }
    }
}

/// Decodes `bytes` as libFuzzer's typed targets do (too short for the type: nothing to check)
/// and runs `check` on the value.
pub fn run_typed<'a, T: arbitrary::Arbitrary<'a>>(bytes: &'a [u8], check: impl FnOnce(T)) {
    if bytes.len() < T::size_hint(0).0 {
        return;
    }
    if let Ok(value) = T::arbitrary_take_rest(arbitrary::Unstructured::new(bytes)) {
        check(value);
    }
}

/// Runs the check of fuzz target `target` on one input; false for an unknown target.
pub fn replay(target: &str, bytes: &[u8]) -> bool {
    match target {
        "lines" => run_typed::<&[u8]>(bytes, checks::lines::check),
        "csv_rows" => run_typed::<(AnyLayout, Vec<AnyRow>)>(bytes, checks::csv_rows::check),
        "jsonl_rows" => run_typed::<(AnyLayout, Vec<AnyRow>)>(bytes, checks::jsonl_rows::check),
        "xlsx_rows" => run_typed::<(AnyLayout, Vec<AnyRow>)>(bytes, checks::xlsx_rows::check),
        "parsers" => run_typed::<&str>(bytes, checks::parsers::check),
        "title" => run_typed::<checks::title::Page<'_>>(bytes, checks::title::check),
        "retry_after" => run_typed::<(&str, u64, u32, u64)>(bytes, checks::retry_after::check),
        _ => return false,
    }
    true
}
