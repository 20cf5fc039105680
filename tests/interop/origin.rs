//! Talking to nginx directly: credentials in URLs, `Retry-After`, an IPv6-only listener, a
//! gzip-encoded windows-1252 page, and names pinned to several addresses.

use super::servers::{Env, Nginx, fetch, run};

/// nginx with `auth_basic` under /private (alice:s3cret), redirects from there to the same and
/// to another origin, `return 429` with `Retry-After: 2` under /limited, a gzip-encoded
/// windows-1252 page at /cafe.html, and an IPv6-only port; ports: main, other origin, IPv6.
fn nginx(env: &Env) -> Option<Nginx> {
    std::fs::write(env.path().join("htpasswd"), "alice:{PLAIN}s3cret\n").unwrap();
    let root = env.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    // "Café crème" in windows-1252, long enough for gzip to be worth it.
    let mut page = b"<html><head><title>Caf\xe9 cr\xe8me</title></head><body>".to_vec();
    page.extend(b"d\xe9j\xe0 vu ".repeat(200));
    page.extend(b"</body></html>");
    std::fs::write(root.join("cafe.html"), page).unwrap();
    // Files, not `return`: nginx's `return` answers before `auth_basic` would check anything.
    std::fs::create_dir_all(root.join("private")).unwrap();
    for name in ["page", "landed"] {
        std::fs::write(root.join("private").join(name), "secret\n").unwrap();
    }
    let dir = env.path().display().to_string();
    Nginx::start(env, 3, move |ports| {
        format!(
            "server {{\n listen 127.0.0.1:{main};\n root {dir}/www;\n\
             gzip on;\n gzip_min_length 1;\n gzip_types text/html;\n\
             location = /cafe.html {{ types {{ }} default_type \"text/html; charset=windows-1252\"; }}\n\
             location /private/ {{\n auth_basic \"interop\";\n\
             auth_basic_user_file {dir}/htpasswd;\n }}\n\
             location = /private/same {{ return 302 /private/landed; }}\n\
             location = /private/absolute {{ return 302 http://127.0.0.1:{main}/private/landed; }}\n\
             location = /private/away {{ return 302 http://127.0.0.1:{other}/elsewhere; }}\n\
             location /limited {{ add_header Retry-After 2 always; return 429; }}\n\
             location / {{ return 200 \"ok\\n\"; }}\n}}\n\
             server {{\n listen 127.0.0.1:{other};\n location / {{ return 200 \"other\\n\"; }}\n}}\n\
             server {{\n listen [::1]:{v6};\n location / {{ return 200 \"v6\\n\"; }}\n}}",
            main = ports[0],
            other = ports[1],
            v6 = ports[2],
        )
    })
}

#[test]
fn url_credentials_are_basic_auth_for_their_origin_and_never_shown() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let (main, other) = (nginx.ports[0], nginx.ports[1]);
    let base = format!("http://alice:s3cret@127.0.0.1:{main}/private");
    let list = env.list(
        "urls.txt",
        &[
            format!("{base}/page"),
            format!("{base}/same"),
            format!("{base}/absolute"),
            format!("{base}/away"),
            format!("http://alice:wrong@127.0.0.1:{main}/private/page"),
            format!("http://127.0.0.1:{main}/private/page"),
        ],
    );
    let run = run(fetch().args(["--ordered"]), &list);
    let table = &run.table;
    let statuses: Vec<&str> = table.column("status");
    assert_eq!(statuses, ["200", "200", "200", "200", "401", "401"]);
    assert_eq!(
        table.line(1).get("url"),
        format!("http://alice:***@127.0.0.1:{main}/private/page")
    );
    for line in [2, 3] {
        let row = table.line(line);
        let landed = row.get("final_url");
        assert!(
            landed.ends_with(&format!("127.0.0.1:{main}/private/landed")),
            "{landed}"
        );
    }
    assert_eq!(
        table.line(4).get("final_url"),
        format!("http://127.0.0.1:{other}/elsewhere")
    );
    let everything = run.stdout() + &run.stderr();
    assert!(!everything.contains("s3cret"), "{everything}");

    let log = nginx.log();
    let authorized = |path: &str| {
        log.iter()
            .filter(|l| l.request.contains(path))
            .map(|l| l.user.clone())
            .collect::<Vec<_>>()
    };
    // The same origin keeps the credentials, also after an absolute Location without them.
    assert_eq!(authorized("/private/landed"), ["alice", "alice"]);
    // Another origin never sees them.
    let away = log
        .iter()
        .find(|l| l.request.contains("/elsewhere"))
        .unwrap();
    assert_eq!(away.authorization, "", "{away:?}");
    // Never in a request line.
    assert!(log.iter().all(|l| !l.request.contains('@')), "{log:?}");
}

/// nginx's 429 with `Retry-After: 2`, and no `--retries`: the host's next URL waits.
#[test]
fn retry_after_pauses_the_host_even_without_retries() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let main = nginx.ports[0];
    let list = env.list(
        "urls.txt",
        &[
            format!("http://127.0.0.1:{main}/limited"),
            format!("http://127.0.0.1:{main}/after/1"),
            format!("http://127.0.0.1:{main}/after/2"),
        ],
    );
    let run = run(fetch().args(["--per-host-concurrency", "1"]), &list);
    assert_eq!(run.table.line(1).get("status"), "429");
    let log = nginx.log();
    assert_eq!(log.len(), 3);
    let waited = log[1].at - log[0].at;
    assert!(
        waited >= 1.9,
        "the next URL came {waited:.3} s after the 429"
    );
}

#[test]
fn an_ipv6_only_listener_is_reached() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[format!("http://[::1]:{}/six", nginx.ports[2])],
    );
    let run = run(&mut fetch(), &list);
    let row = run.table.line(1);
    assert_eq!(row.get("status"), "200", "{}", row.get("error_detail"));
    assert_eq!(row.get("remote_ip"), "::1");
}

#[test]
fn a_gzip_encoded_windows_1252_page_has_its_title() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[format!("http://127.0.0.1:{}/cafe.html", nginx.ports[0])],
    );
    let run = run(fetch().arg("--hash"), &list);
    let row = run.table.line(1);
    assert_eq!(row.get("status"), "200");
    assert_eq!(row.get("title"), "Café crème");
    let page = std::fs::read(env.path().join("www/cafe.html")).unwrap();
    assert_eq!(
        row.get("bytes"),
        page.len().to_string(),
        "counted after decoding"
    );
    assert!(row.get("content_type").contains("windows-1252"));
}

/// `--resolve` with several addresses for a name (one option or repeated): the first refuses,
/// the next one answers.
#[test]
fn a_name_pinned_to_several_addresses_tries_them_in_order() {
    let env = Env::new();
    let Some(nginx) = Nginx::start(&env, 1, |ports| {
        format!(
            "server {{\n listen 127.0.0.2:{};\n location / {{ return 200 \"two\\n\"; }}\n}}",
            ports[0]
        )
    }) else {
        return;
    };
    let list = env.list(
        "urls.txt",
        &[format!("http://pinned.test:{}/x", nginx.ports[0])],
    );
    for pins in [
        vec!["pinned.test:127.0.0.3,127.0.0.2"],
        vec!["pinned.test:127.0.0.3", "pinned.test:127.0.0.2"],
    ] {
        let mut cmd = fetch();
        for pin in &pins {
            cmd.args(["--resolve", pin]);
        }
        let run = run(&mut cmd, &list);
        let row = run.table.line(1);
        assert_eq!(
            row.get("status"),
            "200",
            "{pins:?}: {}",
            row.get("error_detail")
        );
        assert_eq!(row.get("remote_ip"), "127.0.0.2");
    }
}
