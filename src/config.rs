//! The validated run configuration, and parsers for the value types the options take (rates,
//! durations, byte sizes). Stages see only these typed values, never option strings.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::extract::ExtractSpec;
use crate::input::Shard;
use crate::output::Format;
pub use crate::schedule::{Rate, RetryPolicy};

/// Everything the pipeline needs to know, already checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most requests in flight at once.
    pub concurrency: NonZeroUsize,
    /// Ceiling on request starts, shared by all requests; `None` for unlimited.
    pub rate: Option<Rate>,
    /// Most requests in flight to one origin (scheme, host, port); `None`: only `concurrency`.
    pub per_host_concurrency: Option<NonZeroUsize>,
    /// Ceiling on request starts to one origin.
    pub per_host_rate: Option<Rate>,
    pub retry: RetryPolicy,
    /// Whole-request limit: connect, send, headers and body.
    pub timeout: Duration,
    /// Limit on establishing a connection; `None` leaves only `timeout`.
    pub connect_timeout: Option<Duration>,
    /// Deadline for the whole run.
    pub max_time: Option<Duration>,
    /// Body bytes (after decoding) read per response before it is cut off.
    pub max_body: u64,
    /// Follow redirects (`--no-follow` records the 3xx itself).
    pub follow_redirects: bool,
    /// Redirects followed per URL; a longer chain is `too_many_redirects`.
    pub max_redirects: u32,
    pub user_agent: String,
    /// GET or HEAD.
    pub method: Method,
    /// Extra request headers (`-H`).
    pub headers: HeaderMap,
    /// Proxy for every request; `None` leaves the usual proxy environment variables in charge.
    pub proxy: Option<Url>,
    /// Hosts reached without the proxy (`--noproxy`); `None` leaves `NO_PROXY` in charge.
    pub noproxy: Option<String>,
    /// More CA certificates to trust (`--cacert`), beside the system's.
    pub cacert: Option<PathBuf>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// `--tls-info`: record the TLS version and the site's certificate.
    pub tls_info: bool,
    /// `--header-column`: response headers to write, each under a column name.
    pub header_columns: Vec<(HeaderName, String)>,
    /// Host names pinned to addresses, skipping DNS (`--resolve`), tried in order.
    pub resolve: Vec<(String, Vec<IpAddr>)>,
    /// Title, selectors, regexes, hash.
    pub extract: ExtractSpec,
    /// Write cells as they are, without neutralising spreadsheet formulas.
    pub raw: bool,
    pub format: Format,
    /// `--fields`: the columns to write, in order; `None` for all of them.
    pub fields: Option<Vec<String>>,
    /// Write the CSV header row.
    pub header: bool,
    /// Start the CSV with a UTF-8 byte-order mark.
    pub bom: bool,
    /// `--ordered`: write rows in input order, with this reorder window.
    pub ordered: Option<usize>,
    /// Skip URLs already seen in this run.
    pub dedupe: bool,
    /// `--shard`: take only this shard's lines.
    pub shard: Option<Shard>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            concurrency: NonZeroUsize::new(50).unwrap_or(NonZeroUsize::MIN),
            rate: None,
            per_host_concurrency: None,
            per_host_rate: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            connect_timeout: None,
            max_time: None,
            max_body: 10 * 1024 * 1024,
            follow_redirects: true,
            max_redirects: 10,
            user_agent: default_user_agent(),
            method: Method::GET,
            headers: HeaderMap::new(),
            proxy: None,
            noproxy: None,
            cacert: None,
            insecure: false,
            tls_info: false,
            header_columns: Vec::new(),
            resolve: Vec::new(),
            extract: ExtractSpec {
                title: true,
                ..ExtractSpec::default()
            },
            raw: false,
            format: Format::Csv,
            fields: None,
            header: true,
            bom: false,
            ordered: None,
            dedupe: false,
            shard: None,
            progress: false,
        }
    }
}

pub fn default_user_agent() -> String {
    concat!("fetch/", env!("CARGO_PKG_VERSION")).to_owned()
}

/// Parses `500ms`, `2s`, `1m`, `1h30m` (humantime's forms), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a valid duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration ({e}); use e.g. 500ms, 2s, 1m"))
}

/// Parses a byte count: `1048576`, `512K`, `10M`, `1G` (binary multiples; `KiB`/`MiB`/`GiB` and
/// `KB`/`MB`/`GB` are read the same way, as people use them interchangeably for limits).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}' is not a size (e.g. 65536, 512K, 10M, 1G)")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 65536, 512K, 10M, 1G)"))?;
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size '{s}' is out of range"));
    }
    Ok(bytes as u64)
}

/// Parses `-H 'Name: value'`. An empty value is allowed (`'X-Empty:'`).
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not a header; use 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("'{}' is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of header '{name}' has characters not allowed in HTTP"))?;
    Ok((name, value))
}

/// GET or HEAD: the methods that make sense for fetching a list (others change server state).
pub fn parse_method(s: &str) -> Result<Method, String> {
    match s.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        _ => Err(format!("method '{s}' is not supported; use GET or HEAD")),
    }
}

/// Parses `--resolve HOST:ADDR[,ADDR...]` (each ADDR an IPv4 or IPv6 address, brackets
/// optional).
pub fn parse_resolve(s: &str) -> Result<(String, Vec<IpAddr>), String> {
    let (host, addrs) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not HOST:ADDR (e.g. www.example.test:127.0.0.2)"))?;
    if host.is_empty() {
        return Err(format!("'{s}' has no host name"));
    }
    let ips = addrs
        .split(',')
        .map(|addr| {
            let addr = addr.trim().trim_start_matches('[').trim_end_matches(']');
            addr.parse()
                .map_err(|_| format!("'{addr}' is not an IP address"))
        })
        .collect::<Result<Vec<IpAddr>, String>>()?;
    Ok((host.to_ascii_lowercase(), ips))
}

/// Parses a proxy URL (`http://`, `https://`, or `socks5://` if built in).
pub fn parse_proxy(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("proxy '{s}' is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "proxy scheme '{other}' is not supported; use http or https"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_bytes("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_bytes("1 GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("10X").is_err());
    }

    #[test]
    fn headers_methods_and_pins() {
        let (name, value) = parse_header("X-Token:  abc def ").unwrap();
        assert_eq!(name.as_str(), "x-token");
        assert_eq!(value, "abc def");
        assert!(parse_header("X-Empty:").is_ok());
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X-Nl: a\nb").is_err());
        assert_eq!(parse_method("head").unwrap(), Method::HEAD);
        assert!(parse_method("POST").is_err());
        assert_eq!(
            parse_resolve("Example.test:127.0.0.2").unwrap(),
            (
                "example.test".to_owned(),
                vec!["127.0.0.2".parse().unwrap()]
            )
        );
        assert!(parse_resolve("h:[::1]").unwrap().1[0].is_ipv6());
        assert_eq!(
            parse_resolve("h:127.0.0.3,[::1], 127.0.0.2").unwrap().1,
            ["127.0.0.3", "::1", "127.0.0.2"]
                .map(|a| a.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        assert!(parse_resolve("h:nope").is_err());
        assert!(parse_resolve("h:127.0.0.1,").is_err());
        assert!(parse_proxy("http://127.0.0.1:3128").is_ok());
        assert!(parse_proxy("ftp://x").is_err());
    }
}
