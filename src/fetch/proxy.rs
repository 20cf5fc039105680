//! Proxies: which requests go through one, and how a proxy's own refusal is told from the
//! site's answer.
//!
//! The rules are curl's, so a cron job behaves as the curl line it replaces: `--proxy` for
//! every request, else `http_proxy` for http URLs and `https_proxy` for https ones, with
//! `all_proxy` behind both (lowercase names first, then uppercase; `HTTP_PROXY` is ignored when
//! `REQUEST_METHOD` says we run under CGI, where any client can set it). `NO_PROXY` (or
//! `--noproxy`) exempts hosts, also from `--proxy`. A proxy is `http://` (or no scheme) or
//! `https://` (TLS to the proxy itself); credentials in its URL become `Proxy-Authorization`.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use url::Url;

use crate::error::Error;
use crate::redact::{basic_auth, redact};
use crate::row::{ErrorKind, Failure};

/// One proxy, as requests are sent through it.
#[derive(Debug, PartialEq, Eq)]
pub struct Proxy {
    /// `scheme://host:port`, without credentials: how messages and rows name it.
    pub name: String,
    /// TLS to the proxy itself (`https://`).
    pub tls: bool,
    /// Its host, without the brackets of an IPv6 address.
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization`, from the URL's credentials (or the user's `-H`).
    pub authorization: Option<HeaderValue>,
}

impl Proxy {
    /// Parses a proxy URL given by `origin` (an option or a variable, for messages). A URL
    /// without a scheme is `http://`, as for curl. The user's `authorization`, when given,
    /// wins over the URL's credentials.
    fn parse(
        text: &str,
        origin: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Proxy, Error> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let bad = |why: String| Error::Usage(format!("{origin}: {why}"));
        let url = Url::parse(&with_scheme)
            .map_err(|e| bad(format!("the proxy '{}' is not a URL: {e}", redact(text))))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(bad(format!(
                    "proxy scheme '{other}' is not supported; use http:// or https://"
                )));
            }
        };
        let Some(host) = url.host_str() else {
            return Err(bad("the proxy URL has no host".into()));
        };
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Proxy {
            name: format!("{}://{host}:{port}", url.scheme()),
            tls,
            host: bare(host).to_owned(),
            port,
            authorization: authorization.cloned().or_else(|| basic_auth(&url)),
        })
    }
}

/// Which proxy, if any, each request goes through.
#[derive(Debug)]
pub struct Proxies {
    http: Option<Arc<Proxy>>,
    https: Option<Arc<Proxy>>,
    bypass: NoProxy,
}

/// What the user said about proxies, beside the environment.
#[derive(Debug, Default, Clone)]
pub struct ProxySettings<'a> {
    /// `--proxy`: for every request.
    pub proxy: Option<&'a Url>,
    /// `--noproxy`: replaces `NO_PROXY`.
    pub noproxy: Option<&'a str>,
    /// The user's `-H Proxy-Authorization`, which is for the proxy only.
    pub authorization: Option<&'a HeaderValue>,
}

impl Proxies {
    /// The proxies `settings` and the environment (`var` looks a variable up) ask for; `None`
    /// when no request would go through one.
    pub fn new(
        settings: &ProxySettings<'_>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxies>, Error> {
        // Lowercase first, as curl reads them; an empty value is no proxy.
        let lookup = |name: &str| {
            let under_cgi = name == "http_proxy" && var("REQUEST_METHOD").is_some();
            [name.to_owned(), name.to_ascii_uppercase()]
                .into_iter()
                .filter(|n| !(under_cgi && n == "HTTP_PROXY"))
                .find_map(|n| var(&n).map(|value| (value, n)))
                .filter(|(value, _)| !value.trim().is_empty())
        };
        let parse = |found: Option<(String, String)>| {
            found
                .map(|(text, name)| Proxy::parse(&text, &name, settings.authorization))
                .map(|parsed| parsed.map(Arc::new))
                .transpose()
        };
        let (http, https) = match settings.proxy {
            Some(url) => {
                let proxy = Some(Arc::new(Proxy::parse(
                    url.as_str(),
                    "--proxy",
                    settings.authorization,
                )?));
                (proxy.clone(), proxy)
            }
            None => {
                let all = parse(lookup("all_proxy"))?;
                let http = parse(lookup("http_proxy"))?.or_else(|| all.clone());
                let https = parse(lookup("https_proxy"))?.or(all);
                (http, https)
            }
        };
        if http.is_none() && https.is_none() {
            return Ok(None);
        }
        let bypass = match settings.noproxy {
            Some(list) => NoProxy::parse(list),
            None => NoProxy::parse(&lookup("no_proxy").map(|(v, _)| v).unwrap_or_default()),
        };
        Ok(Some(Proxies {
            http,
            https,
            bypass,
        }))
    }

    /// The proxy for a request to `host` (as the URL has it, brackets and all) and `port`.
    pub fn for_target(&self, https: bool, host: &str, port: u16) -> Option<&Arc<Proxy>> {
        let proxy = if https { &self.https } else { &self.http };
        proxy.as_ref().filter(|_| !self.bypass.matches(host, port))
    }
}

/// `NO_PROXY`: hosts that are reached directly. Entries are separated by commas or spaces:
/// `*` (every host); a name, which also matches its subdomains (`example.com` and
/// `.example.com` both match `www.example.com`, and `*.example.com` is read the same way); an
/// IP address or network (`127.0.0.1`, `10.0.0.0/8`, `::1`, `[::1]`, `fd00::/8`); any of
/// these with `:port` to match that port only (`localhost:8080`, `[::1]:8080`). Names match
/// names and addresses match addresses: no lookup is made, as in curl.
#[derive(Debug, Default, PartialEq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<Entry>,
}

#[derive(Debug, PartialEq)]
struct Entry {
    pattern: Pattern,
    port: Option<u16>,
}

#[derive(Debug, PartialEq)]
enum Pattern {
    /// Lowercase, without leading or trailing dots.
    Name(String),
    /// An address and how many of its leading bits must match.
    Network(IpAddr, u8),
}

impl NoProxy {
    /// Reads a list; entries that are neither names nor addresses are ignored, as curl does.
    pub fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for token in list.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
            if token == "*" {
                no_proxy.all = true;
            } else if let Some(entry) = Entry::parse(token) {
                no_proxy.entries.push(entry);
            }
        }
        no_proxy
    }

    /// Whether a request to `host` (as a URL has it) on `port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = bare(host);
        let ip: Option<IpAddr> = host.parse().ok();
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match (&entry.pattern, ip) {
                    (Pattern::Network(net, bits), Some(ip)) => in_network(ip, *net, *bits),
                    (Pattern::Name(pattern), None) => {
                        name == *pattern
                            || name
                                .strip_suffix(pattern.as_str())
                                .is_some_and(|rest| rest.ends_with('.'))
                    }
                    _ => false,
                }
        })
    }
}

impl Entry {
    fn parse(token: &str) -> Option<Entry> {
        let (host, port) = split_port(token)?;
        let pattern = match host.split_once('/') {
            Some((addr, bits)) => {
                let addr: IpAddr = bare(addr).parse().ok()?;
                let bits: u8 = bits.parse().ok()?;
                (bits <= max_bits(addr)).then_some(Pattern::Network(addr, bits))?
            }
            None => match bare(host).parse::<IpAddr>() {
                Ok(addr) => Pattern::Network(addr, max_bits(addr)),
                Err(_) => {
                    let name = host.trim_start_matches("*.").trim_matches('.');
                    if name.is_empty() || name.contains(['[', ']', ':', '/']) {
                        return None;
                    }
                    Pattern::Name(name.to_ascii_lowercase())
                }
            },
        };
        Some(Entry { pattern, port })
    }
}

/// Splits `host:port`, `[v6]:port` and `[v6]/bits:port`; a bare IPv6 address has no port.
fn split_port(token: &str) -> Option<(&str, Option<u16>)> {
    let colon = match token.rfind(']') {
        Some(close) => token.get(close..)?.find(':').map(|i| close + i),
        None if token.matches(':').count() == 1 => token.find(':'),
        None => None,
    };
    match colon {
        Some(at) => {
            let port = token.get(at + 1..)?.parse().ok()?;
            Some((token.get(..at)?, Some(port)))
        }
        None => Some((token, None)),
    }
}

fn max_bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    bits == 0 || (ip >> shift) == (net >> shift)
}

/// A host without the brackets of an IPv6 literal.
pub(super) fn bare(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Whether a response to a plain-HTTP request sent through `proxy` is the proxy's own answer
/// rather than the site's: always for 407; for any proxy that says so with
/// `Proxy-Status: …; error=…` (RFC 9209); for squid's error pages (`X-Squid-Error`) and
/// tinyproxy's (an error status with its own `Server`, which it never puts on a site's
/// response: those keep the site's `Server`). Then the row is a
/// `proxy` failure naming the proxy and its status line, and whether it is worth a retry (the
/// proxy could not reach the site).
pub(super) fn refusal(
    response: &http::Response<hyper::body::Incoming>,
    proxy: &Proxy,
) -> Option<(Failure, bool)> {
    let status = response.status();
    let headers = response.headers();
    let says_so = headers.contains_key("x-squid-error")
        || headers
            .get_all("proxy-status")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("error=")))
        || (status.as_u16() >= 400
            && headers
                .get(http::header::SERVER)
                .is_some_and(|v| v.as_bytes().starts_with(b"tinyproxy/")));
    if status != StatusCode::PROXY_AUTHENTICATION_REQUIRED && !says_so {
        return None;
    }
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| status.canonical_reason().map(str::to_owned))
        .unwrap_or_default();
    let line = format!("{:?} {} {reason}", response.version(), status.as_u16());
    let failure = Failure::new(
        ErrorKind::Proxy,
        format!(
            "proxy {} refused the request: {}",
            proxy.name,
            line.trim_end()
        ),
    );
    Some((failure, matches!(status.as_u16(), 502..=504)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)], settings: &ProxySettings<'_>) -> Option<Proxies> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::new(settings, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    fn via(p: &Proxies, https: bool, host: &str, port: u16) -> Option<String> {
        p.for_target(https, host, port).map(|p| p.name.clone())
    }

    #[test]
    fn no_proxy_forms_match_as_curl_reads_them() {
        let list = NoProxy::parse(
            "example.com, .dot.test,*.star.test 10.0.0.0/8,[::1],fd00::/8, 192.168.1.7,\
             localhost:8080 [::2]:443 127.0.0.2:80",
        );
        let yes = [
            ("example.com", 80),
            ("www.example.com", 80),
            ("EXAMPLE.com.", 80),
            ("dot.test", 1),
            ("a.dot.test", 1),
            ("a.star.test", 1),
            ("10.1.2.3", 80),
            ("[::1]", 80),
            ("[fd00::5]", 80),
            ("192.168.1.7", 443),
            ("localhost", 8080),
            ("[::2]", 443),
            ("127.0.0.2", 80),
        ];
        for (host, port) in yes {
            assert!(list.matches(host, port), "{host}:{port} should bypass");
        }
        let no = [
            ("notexample.com", 80),
            ("example.com.evil.test", 80),
            ("11.0.0.1", 80),
            ("[::3]", 80),
            ("192.168.1.8", 80),
            ("localhost", 80),
            ("[::2]", 80),
            ("127.0.0.2", 81),
            ("127.0.0.1", 80),
        ];
        for (host, port) in no {
            assert!(
                !list.matches(host, port),
                "{host}:{port} should use the proxy"
            );
        }
    }

    #[test]
    fn a_star_matches_addresses_too() {
        let all = NoProxy::parse("*");
        for host in ["127.0.0.1", "[::1]", "example.com"] {
            assert!(all.matches(host, 80));
        }
        assert!(NoProxy::parse("a.test, *").matches("[::1]", 1));
        assert!(!NoProxy::parse("").matches("a.test", 80));
    }

    #[test]
    fn names_never_match_addresses_nor_garbage() {
        let list = NoProxy::parse("localhost, 1.2.3.4/99, [oops], :80, /8");
        assert!(!list.matches("127.0.0.1", 80), "no lookup is made");
        assert!(
            !list.matches("1.2.3.4", 80),
            "a bad prefix length is ignored"
        );
        assert_eq!(list.entries.len(), 1);
    }

    #[test]
    fn proxies_come_from_the_usual_variables() {
        let none = ProxySettings::default();
        let p = proxies(
            &[
                ("http_proxy", "proxy.test:3128"),
                ("HTTPS_PROXY", "https://secure.test"),
                ("NO_PROXY", "skip.test"),
            ],
            &none,
        )
        .unwrap();
        assert_eq!(
            via(&p, false, "a.test", 80).as_deref(),
            Some("http://proxy.test:3128")
        );
        assert_eq!(
            via(&p, true, "a.test", 443).as_deref(),
            Some("https://secure.test:443")
        );
        assert_eq!(via(&p, true, "www.skip.test", 443), None);

        let all = proxies(&[("ALL_PROXY", "http://all.test:1")], &none).unwrap();
        assert_eq!(
            via(&all, true, "a.test", 443).as_deref(),
            Some("http://all.test:1")
        );
        assert!(proxies(&[("NO_PROXY", "*")], &none).is_none());
        assert!(proxies(&[("http_proxy", " ")], &none).is_none());
    }

    #[test]
    fn http_proxy_is_ignored_under_cgi() {
        let none = ProxySettings::default();
        let cgi = [
            ("HTTP_PROXY", "http://evil.test"),
            ("REQUEST_METHOD", "GET"),
        ];
        assert!(proxies(&cgi, &none).is_none());
        let lower = [("http_proxy", "http://ok.test"), ("REQUEST_METHOD", "GET")];
        assert!(proxies(&lower, &none).is_some());
    }

    #[test]
    fn the_option_wins_but_no_proxy_still_applies() {
        let url = Url::parse("https://user:p%40ss@proxy.test:8443").unwrap();
        let settings = ProxySettings {
            proxy: Some(&url),
            ..ProxySettings::default()
        };
        let p = proxies(
            &[
                ("http_proxy", "http://env.test"),
                ("no_proxy", "direct.test"),
            ],
            &settings,
        )
        .unwrap();
        let proxy = p.for_target(false, "a.test", 80).unwrap();
        assert_eq!(proxy.name, "https://proxy.test:8443");
        assert!(proxy.tls);
        // "user:p@ss"
        assert_eq!(proxy.authorization.as_ref().unwrap(), "Basic dXNlcjpwQHNz");
        assert_eq!(via(&p, false, "direct.test", 80), None);

        let noproxy = ProxySettings {
            proxy: Some(&url),
            noproxy: Some(""),
            ..ProxySettings::default()
        };
        let p = proxies(&[("no_proxy", "direct.test")], &noproxy).unwrap();
        assert!(
            via(&p, false, "direct.test", 80).is_some(),
            "--noproxy '' wins"
        );
    }

    #[test]
    fn a_proxy_authorization_header_wins_over_url_credentials() {
        let header = HeaderValue::from_static("Bearer from-the-user");
        let settings = ProxySettings {
            authorization: Some(&header),
            ..ProxySettings::default()
        };
        let p = proxies(
            &[
                ("http_proxy", "http://user:pass@plain.test:3128"),
                ("https_proxy", "http://secure.test:3128"),
            ],
            &settings,
        )
        .unwrap();
        for https in [false, true] {
            let proxy = p.for_target(https, "a.test", 80).unwrap();
            assert_eq!(
                proxy.authorization.as_ref(),
                Some(&header),
                "{}",
                proxy.name
            );
        }
        let from_url = proxies(
            &[("http_proxy", "http://user:pass@plain.test:3128")],
            &ProxySettings::default(),
        )
        .unwrap();
        // "user:pass"
        assert_eq!(
            from_url
                .for_target(false, "a.test", 80)
                .unwrap()
                .authorization
                .as_ref()
                .unwrap(),
            "Basic dXNlcjpwYXNz"
        );
    }

    #[test]
    fn unsupported_proxies_are_usage_errors_naming_the_variable() {
        let err = Proxies::new(&ProxySettings::default(), |name| {
            (name == "all_proxy").then(|| "socks5://u:secret@h:1080".to_owned())
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("all_proxy") && text.contains("socks5"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
