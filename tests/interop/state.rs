//! `--state` against nginx serving static files: its own validators (an ETag made of the file's
//! time and size, weak when it gzips the page, and Last-Modified), answered with 304 over
//! HTTP/1.1 and HTTP/2, and the changes seen when a file is edited or removed.

use std::path::Path;

use super::servers::{Env, Nginx, fetch, run};
use crate::support::Table;

/// nginx serving `www/` over plain HTTP with gzip (port 0) and over TLS with HTTP/2 (port 1).
fn nginx(env: &Env) -> Option<Nginx> {
    let pair = env.pki.good.clone();
    let root = env.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    Nginx::start(env, 2, move |ports| {
        format!(
            "server {{\n listen 127.0.0.1:{plain};\n root {root};\n\
             gzip on;\n gzip_min_length 1;\n gzip_types text/html;\n}}\n\
             server {{\n listen 127.0.0.1:{tls} ssl http2;\n root {root};\n\
             ssl_certificate {cert};\n ssl_certificate_key {key};\n}}",
            plain = ports[0],
            tls = ports[1],
            root = root.display(),
            cert = pair.cert.display(),
            key = pair.key.display(),
        )
    })
}

fn page(root: &Path, name: &str, title: &str, words: usize) {
    let body = format!(
        "<!doctype html><html><head><title>{title}</title></head><body>{}</body></html>",
        "<p>some words</p>".repeat(words)
    );
    std::fs::write(root.join(name), body).unwrap();
}

/// The `change` and `changed_fields` cells by URL path and scheme.
fn changes(table: &Table) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = table
        .column("url")
        .iter()
        .zip(table.column("change"))
        .zip(table.column("changed_fields"))
        .map(|((url, change), fields)| {
            let scheme = url.split(':').next().unwrap();
            let path = url.rsplit('/').next().unwrap();
            (
                format!("{scheme} {path}"),
                change.to_owned(),
                fields.to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(page: &str, change: &str, fields: &str) -> (String, String, String) {
    (page.into(), change.into(), fields.into())
}

#[test]
fn nginx_answers_the_stored_validators_with_304_and_edits_show() {
    let env = Env::new();
    let Some(nginx) = nginx(&env) else {
        return;
    };
    let root = env.path().join("www");
    page(&root, "a.html", "Alpha", 50);
    page(&root, "b.html", "Beta", 50);
    page(&root, "c.html", "Gamma", 50);
    let (plain, tls) = (nginx.ports[0], nginx.ports[1]);
    let list = env.list(
        "urls.txt",
        &[
            format!("http://127.0.0.1:{plain}/a.html"),
            format!("http://127.0.0.1:{plain}/b.html"),
            format!("http://127.0.0.1:{plain}/c.html"),
            format!("https://localhost:{tls}/a.html"),
            format!("https://localhost:{tls}/b.html"),
        ],
    );
    let state = env.path().join("state.db");
    let night = || {
        let mut cmd = fetch();
        cmd.args(["--ordered", "--state"])
            .arg(&state)
            .env("SSL_CERT_FILE", &env.pki.ca);
        run(&mut cmd, &list).table
    };

    let first = night();
    assert!(first.column("change").iter().all(|c| *c == "new"));
    assert!(first.column("status").iter().all(|s| *s == "200"));
    let log = nginx.log();
    assert_eq!(log.len(), 5);

    let second = night();
    assert_eq!(
        second.column("status"),
        ["304"; 5],
        "{:?}",
        second.column("error_detail")
    );
    assert!(second.column("change").iter().all(|c| *c == "not_modified"));
    assert_eq!(second.column("title"), first.column("title"), "carried");
    let log = nginx.log();
    let answered: Vec<(u16, &str)> = log[5..]
        .iter()
        .map(|l| (l.status, l.protocol.as_str()))
        .collect();
    assert_eq!(answered.len(), 5);
    assert!(
        answered.iter().all(|(status, _)| *status == 304),
        "{answered:?}"
    );
    assert_eq!(
        answered.iter().filter(|(_, p)| *p == "HTTP/2.0").count(),
        2,
        "304s over HTTP/2 too"
    );

    // An edited page (another size, so another ETag) and a removed one.
    page(&root, "b.html", "Beta, revised", 80);
    std::fs::remove_file(root.join("c.html")).unwrap();
    let third = night();
    assert_eq!(
        changes(&third),
        [
            row("http a.html", "not_modified", ""),
            row("http b.html", "changed", "title,body"),
            row("http c.html", "changed", "status"),
            row("https a.html", "not_modified", ""),
            row("https b.html", "changed", "title,body"),
        ]
    );
    let log = nginx.log();
    let mut statuses: Vec<u16> = log[10..].iter().map(|l| l.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 304, 304, 404]);
}
