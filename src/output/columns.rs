//! Columns: which cells a row becomes, in what order, under what names and units.
//!
//! The first thirteen columns are the core contract and never move; extraction and timing
//! columns follow; new columns only ever go after the existing ones. Some columns are there
//! only when an option asks (`body_sha256` with `--hash`, the certificate columns with
//! `--tls-info`), some only when named in `--fields`, and `--header-column`, `--select` and
//! `--regex` columns come last.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::row::{ErrorKind, Row};

/// One output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Line,
    Url,
    Status,
    LatencyMs,
    TtfbMs,
    Bytes,
    ContentType,
    FinalUrl,
    Redirects,
    Attempts,
    StartedAt,
    Error,
    ErrorDetail,
    Title,
    DnsMs,
    ConnectMs,
    TlsMs,
    QueueMs,
    Reused,
    RemoteIp,
    BodySha256,
    HttpVersion,
    TlsVersion,
    CertSubject,
    CertIssuer,
    CertNotAfter,
    CertDaysLeft,
    ContentEncoding,
    WireBytes,
    Location,
    Change,
    ChangedFields,
    LastChanged,
    /// The n-th `--header-column`.
    Header(usize),
    /// The n-th `--select`/`--regex` value.
    Value(usize),
}

/// When a run has a built-in column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Always,
    WithHash,
    WithTlsInfo,
    /// With `--state`.
    WithState,
    /// Only when `--fields` names it.
    OnRequest,
}

/// The built-in columns, in output order, with their names.
pub const BUILT_IN: [(Column, &str, Presence); 33] = [
    (Column::Line, "line", Presence::Always),
    (Column::Url, "url", Presence::Always),
    (Column::Status, "status", Presence::Always),
    (Column::LatencyMs, "latency_ms", Presence::Always),
    (Column::TtfbMs, "ttfb_ms", Presence::Always),
    (Column::Bytes, "bytes", Presence::Always),
    (Column::ContentType, "content_type", Presence::Always),
    (Column::FinalUrl, "final_url", Presence::Always),
    (Column::Redirects, "redirects", Presence::Always),
    (Column::Attempts, "attempts", Presence::Always),
    (Column::StartedAt, "started_at", Presence::Always),
    (Column::Error, "error", Presence::Always),
    (Column::ErrorDetail, "error_detail", Presence::Always),
    (Column::Title, "title", Presence::Always),
    (Column::DnsMs, "dns_ms", Presence::Always),
    (Column::ConnectMs, "connect_ms", Presence::Always),
    (Column::TlsMs, "tls_ms", Presence::Always),
    (Column::QueueMs, "queue_ms", Presence::Always),
    (Column::Reused, "reused", Presence::Always),
    (Column::RemoteIp, "remote_ip", Presence::Always),
    (Column::BodySha256, "body_sha256", Presence::WithHash),
    (Column::HttpVersion, "http_version", Presence::Always),
    (Column::TlsVersion, "tls_version", Presence::WithTlsInfo),
    (Column::CertSubject, "cert_subject", Presence::WithTlsInfo),
    (Column::CertIssuer, "cert_issuer", Presence::WithTlsInfo),
    (
        Column::CertNotAfter,
        "cert_not_after",
        Presence::WithTlsInfo,
    ),
    (
        Column::CertDaysLeft,
        "cert_days_left",
        Presence::WithTlsInfo,
    ),
    (
        Column::ContentEncoding,
        "content_encoding",
        Presence::OnRequest,
    ),
    (Column::WireBytes, "wire_bytes", Presence::OnRequest),
    (Column::Location, "location", Presence::OnRequest),
    (Column::Change, "change", Presence::WithState),
    (Column::ChangedFields, "changed_fields", Presence::WithState),
    (Column::LastChanged, "last_changed", Presence::WithState),
];

/// What a run can write beside the built-in columns it always has.
#[derive(Debug, Clone, Default)]
pub struct ColumnSpec {
    /// `--hash`: `body_sha256`.
    pub hash: bool,
    /// `--tls-info`: the TLS version and certificate columns.
    pub tls_info: bool,
    /// `--state`: the change columns.
    pub changes: bool,
    /// `--header-column` names, in order.
    pub headers: Vec<String>,
    /// `--select`/`--regex` names, in order.
    pub values: Vec<String>,
}

/// The columns of a run, in order.
#[derive(Debug, Clone)]
pub struct Columns {
    list: Vec<(Column, String)>,
}

impl Columns {
    /// The default columns: every built-in one the options ask for, then one per header column
    /// and one per value name.
    pub fn new(spec: &ColumnSpec) -> Columns {
        Columns {
            list: available(spec)
                .filter(|(_, _, default)| *default)
                .map(|(c, name, _)| (c, name))
                .collect(),
        }
    }

    /// The columns of a file with these column names (its header): built-in columns by name,
    /// any other as a text column of its own (a `--select`, `--regex` or header column).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Columns {
        let mut others = 0;
        let list = names
            .into_iter()
            .map(|name| {
                let column = BUILT_IN.iter().find(|(_, n, _)| *n == name).map_or_else(
                    || {
                        others += 1;
                        Column::Value(others - 1)
                    },
                    |(column, _, _)| *column,
                );
                (column, name.to_owned())
            })
            .collect();
        Columns { list }
    }

    /// The columns `--fields` names, in that order; with a first name starting with `+`, the
    /// default columns and then those named. An unknown name is an error that lists the valid
    /// ones.
    pub fn select(spec: &ColumnSpec, wanted: &[String]) -> Result<Columns, String> {
        let adding = wanted.first().is_some_and(|w| w.trim().starts_with('+'));
        let mut list = if adding {
            Columns::new(spec).list
        } else {
            Vec::with_capacity(wanted.len())
        };
        for name in wanted {
            let name = name.trim();
            let name = name.strip_prefix('+').unwrap_or(name);
            if name.is_empty() && adding {
                continue;
            }
            match available(spec).find(|(_, n, _)| n == name) {
                Some((column, name, _)) if !list.iter().any(|(c, _)| *c == column) => {
                    list.push((column, name));
                }
                Some(_) => return Err(format!("the field '{name}' is given twice")),
                None => {
                    let valid: Vec<String> = available(spec).map(|(_, n, _)| n).collect();
                    return Err(format!(
                        "unknown field '{name}'; the fields are: {}",
                        valid.join(", ")
                    ));
                }
            }
        }
        if list.is_empty() {
            return Err("--fields names no column".into());
        }
        Ok(Columns { list })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(_, name)| name.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = Column> + '_ {
        self.list.iter().map(|(c, _)| *c)
    }

    /// Whether the run writes `column`.
    pub fn contains(&self, column: Column) -> bool {
        self.list.iter().any(|(c, _)| *c == column)
    }
}

/// Every column a run can write, in order, and whether it is one of the defaults.
fn available(spec: &ColumnSpec) -> impl Iterator<Item = (Column, String, bool)> + '_ {
    let built_in = BUILT_IN.iter().filter_map(|(column, name, presence)| {
        let default = match presence {
            Presence::Always => true,
            Presence::WithHash if spec.hash => true,
            Presence::WithTlsInfo if spec.tls_info => true,
            Presence::WithState if spec.changes => true,
            Presence::OnRequest => false,
            Presence::WithHash | Presence::WithTlsInfo | Presence::WithState => return None,
        };
        Some((*column, (*name).to_owned(), default))
    });
    let headers = spec
        .headers
        .iter()
        .enumerate()
        .map(|(i, name)| (Column::Header(i), name.clone(), true));
    let values = spec
        .values
        .iter()
        .enumerate()
        .map(|(i, name)| (Column::Value(i), name.clone(), true));
    built_in.chain(headers).chain(values)
}

/// Whether `name` is taken by a built-in column.
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(_, n, _)| *n == name)
}

/// A cell's value, typed, before any format writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Empty,
    /// Text that came from outside (the input, a server): a spreadsheet must not run it.
    Text(&'a str),
    /// Text of our own making (error kinds, timestamps, digests): safe as it is.
    Word(&'a str),
    Count(u64),
    Millis(Duration),
    Flag(bool),
    Ip(IpAddr),
    Time(SystemTime),
    /// A signed whole number of our own making (days left).
    Int(i64),
}

/// What a column's cells hold, whatever the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Count,
    Int,
    Millis,
    Time,
    Flag,
    /// Text of our own making (error kinds, digests, addresses).
    Word,
    /// Text from outside.
    Text,
}

impl Column {
    /// What the column's cells hold: what [`Column::cell`] gives for it, when not empty.
    pub(crate) fn kind(self) -> Kind {
        use Column::*;
        match self {
            Line | Status | Bytes | Redirects | Attempts | WireBytes => Kind::Count,
            CertDaysLeft => Kind::Int,
            LatencyMs | TtfbMs | DnsMs | ConnectMs | TlsMs | QueueMs => Kind::Millis,
            StartedAt | CertNotAfter | LastChanged => Kind::Time,
            Reused => Kind::Flag,
            Error | RemoteIp | BodySha256 | HttpVersion | TlsVersion | Change | ChangedFields => {
                Kind::Word
            }
            Url | ContentType | FinalUrl | ErrorDetail | Title | CertSubject | CertIssuer
            | ContentEncoding | Location | Header(_) | Value(_) => Kind::Text,
        }
    }

    /// A cell as the CSV writer wrote it, read back typed (to convert CSV into a workbook).
    /// Text that does not read as the column's type stays text; the `'` that neutralised a
    /// formula is taken off again.
    pub fn read_cell(self, text: &str) -> Cell<'_> {
        if text.is_empty() {
            return Cell::Empty;
        }
        let or_text = |cell: Option<Cell<'static>>| cell.unwrap_or(Cell::Text(text));
        match self.kind() {
            Kind::Count => or_text(text.parse().ok().map(Cell::Count)),
            Kind::Int => or_text(text.parse().ok().map(Cell::Int)),
            Kind::Millis => or_text(super::resume::parse_millis(text).map(Cell::Millis)),
            Kind::Time => or_text(humantime::parse_rfc3339_weak(text).ok().map(Cell::Time)),
            Kind::Flag => match text {
                "true" => Cell::Flag(true),
                "false" => Cell::Flag(false),
                _ => Cell::Text(text),
            },
            Kind::Word => Cell::Word(text),
            Kind::Text => Cell::Text(
                text.strip_prefix('\'')
                    .filter(|rest| is_formula_like(rest))
                    .unwrap_or(text),
            ),
        }
    }

    pub fn cell<'a>(self, row: &'a Row) -> Cell<'a> {
        use Cell::*;
        let text = |v: &'a Option<String>| v.as_deref().map_or(Empty, Text);
        let ms = |v: Option<Duration>| v.map_or(Empty, Millis);
        let tls = row.tls_info.as_deref();
        let cert = tls.and_then(|t| t.certificate.as_ref());
        let change = row.change.as_deref();
        match self {
            Column::Line => Count(row.line),
            Column::Url => Text(&row.url),
            Column::Status => row.status.map_or(Empty, |s| Count(u64::from(s))),
            Column::LatencyMs => ms(row.latency),
            Column::TtfbMs => ms(row.ttfb),
            Column::Bytes => row.bytes.map_or(Empty, Count),
            Column::ContentType => text(&row.content_type),
            Column::FinalUrl => text(&row.final_url),
            Column::Redirects => row.redirects.map_or(Empty, |r| Count(u64::from(r))),
            Column::Attempts => Count(u64::from(row.attempts)),
            Column::StartedAt => row.started_at.map_or(Empty, Time),
            Column::Error => row.error.map_or(Empty, |k: ErrorKind| Word(k.as_str())),
            Column::ErrorDetail => text(&row.error_detail),
            Column::Title => text(&row.title),
            Column::DnsMs => ms(row.dns),
            Column::ConnectMs => ms(row.connect),
            Column::TlsMs => ms(row.tls),
            Column::QueueMs => ms(row.queue),
            Column::Reused => row.reused.map_or(Empty, Flag),
            Column::RemoteIp => row.remote_ip.map_or(Empty, Ip),
            Column::BodySha256 => row.body_sha256.as_deref().map_or(Empty, Word),
            Column::HttpVersion => row.http_version.map_or(Empty, Word),
            Column::TlsVersion => tls.and_then(|t| t.version).map_or(Empty, Word),
            Column::CertSubject => cert.map_or(Empty, |c| Text(&c.subject)),
            Column::CertIssuer => cert.map_or(Empty, |c| Text(&c.issuer)),
            Column::CertNotAfter => cert.and_then(|c| c.not_after).map_or(Empty, Time),
            Column::CertDaysLeft => cert
                .zip(row.started_at)
                .and_then(|(c, at)| c.days_left(at))
                .map_or(Empty, Int),
            Column::ContentEncoding => text(&row.content_encoding),
            Column::WireBytes => row.wire_bytes.map_or(Empty, Count),
            Column::Location => text(&row.location),
            Column::Change => change.map_or(Empty, |c| Word(c.kind.as_str())),
            // Field names: ours, or column names the user gave (letters, digits, `_-.`).
            Column::ChangedFields => change
                .filter(|c| !c.fields.is_empty())
                .map_or(Empty, |c| Word(&c.fields)),
            Column::LastChanged => change.and_then(|c| c.last_changed).map_or(Empty, Time),
            Column::Header(i) => row.headers.get(i).map_or(Empty, text),
            Column::Value(i) => row.values.get(i).map_or(Empty, text),
        }
    }
}

impl Cell<'_> {
    /// Writes the cell as text into `out` (cleared first). With `safe`, text a spreadsheet would
    /// run as a formula (starting with `=`, `+`, `-`, `@`, tab, CR or LF) gets a leading `'`,
    /// as OWASP recommends; numbers and our own words are never touched.
    pub fn render(self, out: &mut String, safe: bool) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = match self {
            Cell::Empty => Ok(()),
            Cell::Text(text) => {
                if safe && is_formula_like(text) {
                    out.push('\'');
                }
                out.write_str(text)
            }
            Cell::Word(word) => out.write_str(word),
            Cell::Count(n) => out.write_str(itoa::Buffer::new().format(n)),
            Cell::Millis(d) => write_millis(out, d),
            Cell::Flag(b) => out.write_str(if b { "true" } else { "false" }),
            Cell::Ip(ip) => write_ip(out, ip),
            Cell::Time(t) => write!(out, "{}", humantime::format_rfc3339_millis(t)),
            Cell::Int(n) => out.write_str(itoa::Buffer::new().format(n)),
        };
    }
}

/// Milliseconds with up to three decimals and no trailing zeros: what `millis(d)` prints as a
/// float, without the float formatting (a few of these per row add up over millions of rows).
fn write_millis(out: &mut String, d: Duration) -> std::fmt::Result {
    let micros = d.as_micros();
    out.push_str(itoa::Buffer::new().format(micros / 1000));
    let frac = micros % 1000;
    if frac != 0 {
        out.push('.');
        // Three digits with the trailing zeros dropped.
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let len = 3 - digits.iter().rev().take_while(|&&d| d == 0).count();
        for digit in digits.iter().take(len) {
            out.push(char::from_digit(u32::try_from(*digit).unwrap_or(0), 10).unwrap_or('0'));
        }
    }
    Ok(())
}

/// An address as `Display` writes it; IPv4, by far the most common, without the formatter.
fn write_ip(out: &mut String, ip: IpAddr) -> std::fmt::Result {
    let IpAddr::V4(v4) = ip else {
        return write!(out, "{ip}");
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(itoa::Buffer::new().format(octet));
    }
    Ok(())
}

/// What spreadsheets treat as the start of a formula (or of a cell injection).
pub fn is_formula_like(text: &str) -> bool {
    matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\n')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::millis;

    fn rendered(cell: Cell<'_>, safe: bool) -> String {
        let mut out = String::new();
        cell.render(&mut out, safe);
        out
    }

    #[test]
    fn formulas_are_neutralised_in_text_only() {
        for dangerous in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "\nx"] {
            assert_eq!(
                rendered(Cell::Text(dangerous), true),
                format!("'{dangerous}")
            );
            assert_eq!(rendered(Cell::Text(dangerous), false), dangerous);
        }
        assert_eq!(rendered(Cell::Text("plain"), true), "plain");
        assert_eq!(rendered(Cell::Count(5), true), "5");
        assert_eq!(
            rendered(Cell::Millis(Duration::from_micros(1500)), true),
            "1.5"
        );
    }

    #[test]
    fn millis_print_as_the_float_would() {
        let micros = (0..5_000u64)
            .chain([9_999, 10_000, 10_001, 123_456_789, 86_400_000_000, 1 << 50])
            .chain((0..2_000u64).map(|i| i * 7_919 + 1_000_000));
        for us in micros {
            let d = Duration::from_micros(us);
            assert_eq!(
                rendered(Cell::Millis(d), true),
                millis(d).to_string(),
                "{us} µs"
            );
        }
    }

    #[test]
    fn millis_past_what_a_float_holds_are_exact() {
        let d = Duration::from_micros(u64::MAX);
        assert_eq!(rendered(Cell::Millis(d), true), "18446744073709551.615");
        let d = Duration::new(u64::MAX, 999_999_999);
        assert_eq!(
            rendered(Cell::Millis(d), true),
            "18446744073709551615999.999"
        );
    }

    #[test]
    fn addresses_print_as_display_would() {
        let addresses: [IpAddr; 5] = [
            [127, 0, 0, 1].into(),
            [0, 0, 0, 0].into(),
            [255, 10, 100, 9].into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
            "2001:db8::8a2e:370:7334".parse().unwrap(),
        ];
        for ip in addresses {
            assert_eq!(rendered(Cell::Ip(ip), true), ip.to_string());
        }
    }

    #[test]
    fn the_core_columns_keep_their_order() {
        let columns = Columns::new(&ColumnSpec::default());
        let names: Vec<&str> = columns.names().take(13).collect();
        assert_eq!(
            names,
            [
                "line",
                "url",
                "status",
                "latency_ms",
                "ttfb_ms",
                "bytes",
                "content_type",
                "final_url",
                "redirects",
                "attempts",
                "started_at",
                "error",
                "error_detail"
            ]
        );
        assert!(!columns.names().any(|n| n == "body_sha256"));
        assert_eq!(columns.names().last(), Some("http_version"));
        let spec = ColumnSpec {
            hash: true,
            tls_info: true,
            changes: false,
            headers: vec!["server".into()],
            values: vec!["price".into()],
        };
        let with = Columns::new(&spec);
        let tail: Vec<&str> = with.names().skip(20).collect();
        assert_eq!(
            tail,
            [
                "body_sha256",
                "http_version",
                "tls_version",
                "cert_subject",
                "cert_issuer",
                "cert_not_after",
                "cert_days_left",
                "server",
                "price"
            ]
        );
        let chosen = Columns::select(&spec, &["price".into(), "url".into()]).unwrap();
        assert_eq!(chosen.names().collect::<Vec<_>>(), ["price", "url"]);
        let unknown = Columns::select(&spec, &["nope".into()]).unwrap_err();
        assert!(unknown.contains("line, url, status"), "{unknown}");
        assert!(Columns::select(&spec, &["url".into(), "url".into()]).is_err());
    }

    #[test]
    fn fields_with_a_plus_add_to_the_defaults() {
        let spec = ColumnSpec::default();
        let added = Columns::select(&spec, &["+location".into(), "wire_bytes".into()]).unwrap();
        let names: Vec<&str> = added.names().collect();
        let defaults = Columns::new(&spec);
        assert_eq!(names.len(), defaults.names().count() + 2);
        assert_eq!(&names[names.len() - 2..], ["location", "wire_bytes"]);
        assert!(
            !defaults.names().any(|n| n == "location"),
            "on request only"
        );
        assert!(
            Columns::select(&spec, &["+url".into()]).is_err(),
            "already there"
        );
        let tls_off = Columns::select(&spec, &["cert_subject".into()]).unwrap_err();
        assert!(tls_off.contains("unknown field"), "{tls_off}");
    }

    /// Every column's cells are of its kind, and a cell as CSV writes it reads back as itself
    /// (what converting CSV into a workbook relies on).
    #[test]
    fn cells_read_back_as_their_kind() {
        use crate::row::{Certificate, Change, ChangeKind, TlsFacts};
        use std::sync::Arc;
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_900_000_123);
        let ms = |us| Some(Duration::from_micros(us));
        let row = Row {
            line: 7,
            url: "=cmd".into(),
            status: Some(200),
            latency: ms(1_234),
            ttfb: ms(999),
            bytes: Some(10),
            content_type: Some("text/html".into()),
            final_url: Some("http://a.test/".into()),
            redirects: Some(1),
            attempts: 2,
            started_at: Some(t),
            error: Some(ErrorKind::Timeout),
            error_detail: Some("-x".into()),
            title: Some("T".into()),
            dns: ms(1),
            connect: ms(20),
            tls: ms(300),
            queue: ms(4_000),
            reused: Some(true),
            remote_ip: Some(IpAddr::from([127, 0, 0, 1])),
            body_sha256: Some("ab".into()),
            http_version: Some("HTTP/2"),
            tls_info: Some(Arc::new(TlsFacts {
                version: Some("TLSv1.3"),
                certificate: Some(Certificate {
                    subject: "CN=a".into(),
                    issuer: "CN=b".into(),
                    not_after: Some(t + Duration::from_secs(86_400 * 3)),
                }),
            })),
            content_encoding: Some("gzip".into()),
            wire_bytes: Some(5),
            location: Some("http://b.test/".into()),
            headers: vec![Some("nginx".into())],
            values: vec![Some("@v".into())],
            change: Some(Box::new(Change {
                kind: ChangeKind::Changed,
                fields: "title".into(),
                last_changed: Some(t),
            })),
            ..Row::default()
        };
        let spec = ColumnSpec {
            hash: true,
            tls_info: true,
            changes: true,
            headers: vec!["server".into()],
            values: vec!["v".into()],
        };
        let every = Columns::select(
            &spec,
            &[
                "+content_encoding".into(),
                "wire_bytes".into(),
                "location".into(),
            ],
        )
        .unwrap();
        assert_eq!(every.iter().count(), BUILT_IN.len() + 2);
        for column in every.iter() {
            let cell = column.cell(&row);
            let kind = match cell {
                Cell::Count(_) => Kind::Count,
                Cell::Int(_) => Kind::Int,
                Cell::Millis(_) => Kind::Millis,
                Cell::Time(_) => Kind::Time,
                Cell::Flag(_) => Kind::Flag,
                Cell::Word(_) | Cell::Ip(_) => Kind::Word,
                Cell::Text(_) => Kind::Text,
                Cell::Empty => panic!("{column:?} is empty"),
            };
            assert_eq!(kind, column.kind(), "{column:?}");
            let written = rendered(cell, true);
            let read = column.read_cell(&written);
            assert_eq!(rendered(read, true), written, "{column:?}");
            assert!(
                !matches!(read, Cell::Text(t) if t.starts_with('\'')),
                "{column:?}"
            );
        }
        let named = Columns::from_names(["line", "server", "title", "v"]);
        let columns: Vec<Column> = named.iter().collect();
        assert_eq!(
            columns,
            [
                Column::Line,
                Column::Value(0),
                Column::Title,
                Column::Value(1)
            ]
        );
    }
}
