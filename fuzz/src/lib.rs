//! What the fuzz targets share: arbitrary rows and layouts for the row writers, and what each
//! cell must read back as.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use std::sync::Arc;

use fetch::output::{Cell, Column, ColumnSpec, Columns, Format, Layout, RowWriter};
use fetch::row::{Certificate, ErrorKind, Row, TlsFacts};

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
}

impl AnyLayout {
    pub fn layout(&self, format: Format) -> Layout {
        let spec = ColumnSpec {
            hash: self.hash,
            tls_info: self.tls_info,
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
