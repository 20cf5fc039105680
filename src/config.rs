//! The validated run configuration, and parsers for the value types the options take (rates,
//! durations, byte sizes). Stages see only these typed values, never option strings.

use std::net::IpAddr;
use std::time::Duration;

use http::Method;
use http::header::{HeaderName, HeaderValue};
use url::Url;

use crate::extract::ExtractSpec;
pub use crate::fetch::Settings as FetchSettings;
use crate::input::Shard;
pub use crate::output::Options as OutputOptions;
pub use crate::schedule::{Limits, Rate, RetryPolicy};
pub use crate::state::Settings as StateSettings;

/// Everything the pipeline needs to know, already checked: one part per stage, each handed to
/// its stage alone (ripgrep's `HiArgs` way: the stages never see the whole of it).
#[derive(Debug, Clone)]
pub struct Config {
    /// How each request is made.
    pub fetch: FetchSettings,
    /// When requests may start: concurrency, rates, retries, the run's deadline.
    pub limits: Limits,
    /// What is kept of each body: title, selectors, regexes, hash.
    pub extract: ExtractSpec,
    /// How rows are written.
    pub output: OutputOptions,
    /// Skip URLs already seen in this run.
    pub dedupe: bool,
    /// `--shard`: take only this shard's lines.
    pub shard: Option<Shard>,
    /// `--state`: memory between runs (the body hash is then always taken).
    pub state: Option<StateSettings>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fetch: FetchSettings::default(),
            limits: Limits::default(),
            extract: ExtractSpec {
                title: true,
                ..ExtractSpec::default()
            },
            output: OutputOptions::default(),
            dedupe: false,
            shard: None,
            state: None,
            progress: false,
        }
    }
}

pub use crate::fetch::default_user_agent;

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
