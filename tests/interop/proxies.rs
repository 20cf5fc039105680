//! Proxies: tinyproxy (open, and with BasicAuth) and squid (a plain port, a TLS port, and an
//! ACL that refuses `blocked.test`), in front of nginx. What reached each server is read from
//! its log: nginx logs the `Via` header a proxy adds, so a row can be traced to the path it took.

use super::servers::{Env, Nginx, Squid, Tinyproxy, fetch, run};
use crate::support::Table;

/// nginx answering `ok` on a plain port (on 127.0.0.1 and [::1]) and an HTTPS port with
/// HTTP/2, and on an IPv6-only plain port; ports in that order.
fn nginx(env: &Env) -> Option<Nginx> {
    let pair = env.pki.good.clone();
    Nginx::start(env, 3, move |ports| {
        format!(
            "server {{\n listen 127.0.0.1:{plain};\n listen [::1]:{plain};\n\
             location / {{ return 200 \"ok\\n\"; }}\n}}\n\
             server {{\n listen 127.0.0.1:{tls} ssl http2;\n\
             ssl_certificate {cert};\n ssl_certificate_key {key};\n\
             location / {{ return 200 \"ok\\n\"; }}\n}}\n\
             server {{\n listen [::1]:{v6};\n location / {{ return 200 \"v6\\n\"; }}\n}}",
            plain = ports[0],
            tls = ports[1],
            v6 = ports[2],
            cert = pair.cert.display(),
            key = pair.key.display(),
        )
    })
}

/// Whether nginx's log line for `path` shows it came through tinyproxy.
fn via_tinyproxy(nginx: &Nginx, path: &str) -> bool {
    let log = nginx.log();
    let line = log
        .iter()
        .find(|l| l.request.split_whitespace().nth(1) == Some(path))
        .unwrap_or_else(|| panic!("nginx never saw {path}: {log:?}"));
    line.via.contains("tinyproxy")
}

fn all_ok(table: &Table) {
    assert_eq!(super::not_ok(table), Vec::<String>::new());
}

#[test]
fn http_and_https_urls_through_tinyproxy() {
    let env = Env::new();
    let (Some(nginx), Some(proxy)) = (nginx(&env), Tinyproxy::start(&env, None)) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[
            format!("http://127.0.0.1:{}/plain", nginx.ports[0]),
            format!("https://localhost:{}/secure", nginx.ports[1]),
        ],
    );
    let run = run(
        fetch()
            .args(["--proxy", &proxy.url(), "--cacert"])
            .arg(&env.pki.ca),
        &list,
    );
    all_ok(&run.table);
    assert!(via_tinyproxy(&nginx, "/plain"), "absolute form through it");
    let tunnel = format!("CONNECT localhost:{}", nginx.ports[1]);
    assert!(proxy.log().contains(&tunnel), "{}", proxy.log());
    let secure = nginx
        .log()
        .into_iter()
        .find(|l| l.request.contains("/secure"));
    assert_eq!(
        secure.map(|l| l.protocol).as_deref(),
        Some("HTTP/2.0"),
        "HTTP/2 inside the tunnel"
    );
}

/// Many HTTPS URLs through one tunnel per connection, with HTTP/2 inside.
#[test]
fn http2_through_a_tunnel_loses_no_row() {
    let env = Env::new();
    let (Some(nginx), Some(proxy)) = (nginx(&env), Tinyproxy::start(&env, None)) else {
        return;
    };
    let urls: Vec<String> = (0..300)
        .map(|i| format!("https://localhost:{}/{i}", nginx.ports[1]))
        .collect();
    let list = env.list("urls.txt", &urls);
    let run = run(
        fetch()
            .args(["-c", "20", "--proxy", &proxy.url(), "--cacert"])
            .arg(&env.pki.ca),
        &list,
    );
    all_ok(&run.table);
    assert_eq!(nginx.log().len(), 300);
}

#[test]
fn a_proxy_asking_for_credentials_is_a_proxy_error_and_credentials_pass() {
    let env = Env::new();
    let (Some(nginx), Some(proxy)) = (
        nginx(&env),
        Tinyproxy::start(&env, Some(("alice", "s3cret"))),
    ) else {
        return;
    };
    let lines = [
        format!("http://127.0.0.1:{}/plain", nginx.ports[0]),
        format!("https://localhost:{}/secure", nginx.ports[1]),
    ];
    let list = env.list("urls.txt", &lines);
    let refused = run(
        fetch()
            .args(["--proxy", &proxy.url(), "--cacert"])
            .arg(&env.pki.ca),
        &list,
    );
    for line in 1..=2 {
        let row = refused.table.line(line);
        assert_eq!(row.get("error"), "proxy", "{}", row.get("error_detail"));
        assert_eq!(row.get("status"), "", "not the site's answer");
        let detail = row.get("error_detail");
        assert!(detail.contains("407"), "{detail}");
        assert!(
            detail.contains(&format!("127.0.0.1:{}", proxy.port)),
            "{detail}"
        );
    }
    assert!(nginx.log().is_empty());

    let with_auth = format!("http://alice:s3cret@127.0.0.1:{}", proxy.port);
    let passed = run(
        fetch()
            .args(["--proxy", &with_auth, "--cacert"])
            .arg(&env.pki.ca),
        &list,
    );
    all_ok(&passed.table);
    assert!(!passed.stdout().contains("s3cret") && !passed.stderr().contains("s3cret"));
    // The proxy's credentials are for the proxy: no site saw them.
    assert!(nginx.log().iter().all(|l| l.authorization.is_empty()));

    // The same credentials as the user's own header ("alice:s3cret"), for the proxy only.
    let header = "Proxy-Authorization: Basic YWxpY2U6czNjcmV0";
    let by_header = run(
        fetch()
            .args(["--proxy", &proxy.url(), "-H", header, "--cacert"])
            .arg(&env.pki.ca),
        &list,
    );
    all_ok(&by_header.table);
    assert!(nginx.log().iter().all(|l| l.authorization.is_empty()));
}

/// The proxy's own refusal (squid's ACL) reads the same for plain HTTP (a 403 page from squid)
/// and HTTPS (a refused CONNECT): never a 403 "from the site".
#[test]
fn squid_refusing_by_acl_is_a_proxy_error_both_ways() {
    let env = Env::new();
    let Some(squid) = Squid::start(&env) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[
            "http://blocked.test/page".to_owned(),
            "https://blocked.test/page".to_owned(),
        ],
    );
    let run = run(fetch().args(["--proxy", &squid.url()]), &list);
    for line in 1..=2 {
        let row = run.table.line(line);
        assert_eq!(row.get("error"), "proxy", "{}", row.get("error_detail"));
        assert_eq!(row.get("status"), "");
        let detail = row.get("error_detail");
        assert!(detail.contains("403 Forbidden"), "{detail}");
        assert!(detail.contains(&squid.url()), "{detail}");
        // What was measured stays: the connection to the proxy.
        assert_eq!(row.get("remote_ip"), "127.0.0.1");
        assert!(row.get("connect_ms").parse::<f64>().is_ok());
        assert!(row.get("latency_ms").parse::<f64>().is_ok());
    }
}

/// An `https://` proxy: TLS to squid's TLS port, verified against its certificate like any
/// server (here signed by the test CA), then plain requests or CONNECT inside.
#[test]
fn squid_over_tls_carries_http_and_https() {
    let env = Env::new();
    let (Some(nginx), Some(squid)) = (nginx(&env), Squid::start(&env)) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[
            format!("http://127.0.0.1:{}/plain", nginx.ports[0]),
            format!("https://localhost:{}/secure", nginx.ports[1]),
        ],
    );
    let run_with = |extra: &[&str]| {
        run(
            fetch().args(["--proxy", &squid.tls_url()]).args(extra),
            &list,
        )
    };
    let ca = env.pki.ca.display().to_string();
    let trusted = run_with(&["--cacert", &ca]);
    all_ok(&trusted.table);
    let by_env = run(
        fetch()
            .args(["--proxy", &squid.tls_url()])
            .env("SSL_CERT_FILE", &env.pki.ca),
        &list,
    );
    all_ok(&by_env.table);
    let log = squid.log();
    assert!(log.contains("/plain"), "{log}");
    assert!(
        log.contains(&format!("CONNECT localhost:{}", nginx.ports[1])),
        "{log}"
    );

    let untrusted = run_with(&[]);
    for line in 1..=2 {
        let row = untrusted.table.line(line);
        assert_eq!(row.get("error"), "proxy");
        let detail = row.get("error_detail");
        assert!(detail.contains(&squid.tls_url()), "{detail}");
        assert!(detail.contains("unknown authority"), "{detail}");
    }
}

#[test]
fn an_unreachable_proxy_is_a_proxy_error_worth_a_retry() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let list = env.list(
        "urls.txt",
        &[format!("http://127.0.0.1:{}/x", nginx.ports[0])],
    );
    let run = run(
        fetch().args([
            "--proxy",
            &format!("http://127.0.0.1:{port}"),
            "--retries",
            "1",
            "--retry-base",
            "10ms",
        ]),
        &list,
    );
    let row = run.table.line(1);
    assert_eq!(row.get("error"), "proxy");
    assert!(row.get("error_detail").contains("cannot connect to proxy"));
    assert_eq!(row.get("attempts"), "2");
}

/// NO_PROXY as curl reads it, and the forms curl users write: which of three URLs (by IPv4, by
/// IPv6, by name) went through tinyproxy, per nginx's log.
#[test]
fn no_proxy_forms_exempt_the_hosts_they_name() {
    let env = Env::new();
    let (Some(nginx), Some(proxy)) = (nginx(&env), Tinyproxy::start(&env, None)) else {
        return;
    };
    let port = nginx.ports[0];
    let this_port = format!("localhost:{port}");
    let cases: [(&str, [bool; 3]); 9] = [
        ("*", [false, false, false]),
        ("127.0.0.1", [false, true, true]),
        ("127.0.0.0/8", [false, true, true]),
        ("[::1]", [true, false, true]),
        ("::1", [true, false, true]),
        (&this_port, [true, true, false]),
        ("localhost:1", [true, true, true]),
        (".localhost, 10.0.0.0/8", [true, true, false]),
        ("other.test", [true, true, true]),
    ];
    for (round, (no_proxy, proxied)) in cases.iter().enumerate() {
        let paths = ["v4", "v6", "name"].map(|kind| format!("/{round}/{kind}"));
        let list = env.list(
            "urls.txt",
            &[
                format!("http://127.0.0.1:{port}{}", paths[0]),
                format!("http://[::1]:{port}{}", paths[1]),
                format!("http://localhost:{port}{}", paths[2]),
            ],
        );
        let run = run(
            fetch()
                .env("http_proxy", proxy.url())
                .env("NO_PROXY", no_proxy),
            &list,
        );
        all_ok(&run.table);
        let got = paths.clone().map(|p| via_tinyproxy(&nginx, &p));
        assert_eq!(got, *proxied, "NO_PROXY={no_proxy}");
    }
    // --noproxy replaces NO_PROXY; '' means no exemption at all.
    let list = env.list("urls.txt", &[format!("http://127.0.0.1:{port}/option")]);
    let run = run(
        fetch()
            .env("http_proxy", proxy.url())
            .env("NO_PROXY", "*")
            .args(["--noproxy", ""]),
        &list,
    );
    all_ok(&run.table);
    assert!(via_tinyproxy(&nginx, "/option"));
}

/// Credentials in a URL reach the site as Basic auth, but never the proxy's request line
/// (which proxies log), nor any cell.
#[test]
fn url_credentials_never_reach_a_proxy_log() {
    let env = Env::new();
    let (Some(nginx), Some(proxy)) = (nginx(&env), Tinyproxy::start(&env, None)) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[format!(
            "http://alice:s3cret@127.0.0.1:{}/who",
            nginx.ports[0]
        )],
    );
    let run = run(fetch().args(["--proxy", &proxy.url()]), &list);
    all_ok(&run.table);
    let log = proxy.log();
    assert!(log.contains("/who"), "{log}");
    assert!(!log.contains("s3cret") && !log.contains("alice@"), "{log}");
    let seen = nginx.log();
    assert!(seen[0].authorization.starts_with("Basic "), "{seen:?}");
    assert!(!run.stdout().contains("s3cret"));
    assert!(run.table.line(1).get("url").contains("alice:***@"));
}
