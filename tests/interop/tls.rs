//! TLS against nginx serving each certificate fault the test PKI makes, and a plain-HTTP port
//! asked for TLS. Every failure must read like curl's: what is wrong with the certificate, in
//! words and dates, never a Rust enum or a UNIX time.

use super::certs::{Pair, Pki};
use super::servers::{Env, Nginx, fetch, run};

/// One HTTPS server per certificate, then a plain-HTTP port: ports in the order of `pairs`,
/// the plain one last.
fn nginx(env: &Env, pairs: &[Pair]) -> Option<Nginx> {
    let pairs = pairs.to_vec();
    Nginx::start(env, pairs.len() + 1, move |ports| {
        let mut conf = String::new();
        for (pair, port) in pairs.iter().zip(ports) {
            conf.push_str(&format!(
                "server {{\n listen 127.0.0.1:{port} ssl http2;\n\
                 ssl_certificate {cert};\n ssl_certificate_key {key};\n\
                 location / {{ return 200 \"ok\\n\"; }}\n}}\n",
                cert = pair.cert.display(),
                key = pair.key.display(),
            ));
        }
        conf.push_str(&format!(
            "server {{\n listen 127.0.0.1:{};\n location / {{ return 200 \"plain\\n\"; }}\n}}",
            ports[pairs.len()]
        ));
        conf
    })
}

#[test]
fn certificate_faults_read_like_curl() {
    let env = Env::new();
    let pki = &env.pki;
    let pairs = [
        pki.good.clone(),
        pki.expired.clone(),
        pki.wrong_name.clone(),
        pki.self_signed.clone(),
        pki.ca_as_leaf.clone(),
    ];
    let Some(nginx) = nginx(&env, &pairs) else {
        return;
    };
    let urls: Vec<String> = nginx
        .ports
        .iter()
        .map(|port| format!("https://localhost:{port}/"))
        .collect();
    let list = env.list("urls.txt", &urls);
    let run = run(fetch().arg("--cacert").arg(&pki.ca), &list);
    let table = &run.table;
    assert_eq!(table.line(1).get("status"), "200", "the good one");
    let expected = [
        (2, "certificate expired on 2024-01-02 00:00:00 UTC"),
        (
            3,
            "certificate is not valid for 'localhost': it is for other.test, www.other.test",
        ),
        (4, "self-signed certificate"),
        (5, "presents a CA certificate as its own"),
        (6, "the server did not answer with TLS"),
    ];
    for (line, words) in expected {
        let row = table.line(line);
        let detail = row.get("error_detail");
        assert_eq!(row.get("error"), "tls", "{detail}");
        assert!(detail.contains(words), "line {line}: {detail}");
        assert!(detail.starts_with("TLS handshake failed: "), "{detail}");
        for machine in ["Other(", "Error(", "Context", "17955"] {
            assert!(!detail.contains(machine), "line {line}: {detail}");
        }
    }
    // None of the refused ones was answered (the plain port logs the ClientHello as a 400).
    let answered = nginx.log().iter().filter(|l| l.status == 200).count();
    assert_eq!(answered, 1);
}

/// nginx with the good certificate, and a list of its one URL.
fn one_good_site(env: &Env) -> Option<(Nginx, std::path::PathBuf)> {
    let nginx = nginx(env, std::slice::from_ref(&env.pki.good))?;
    let list = env.list(
        "urls.txt",
        &[format!("https://localhost:{}/", nginx.ports[0])],
    );
    Some((nginx, list))
}

#[test]
fn a_private_ca_is_trusted_with_cacert_or_ssl_cert_file_only() {
    let env = Env::new();
    // Bound, not dropped: nginx runs until the end of the test.
    let Some((_nginx, list)) = one_good_site(&env) else {
        return;
    };
    let untrusted = run(&mut fetch(), &list);
    let row = untrusted.table.line(1);
    assert_eq!(row.get("error"), "tls");
    let detail = row.get("error_detail");
    assert!(
        detail.contains("unknown authority") && detail.contains("fetch interop test CA"),
        "{detail}"
    );
    assert!(detail.contains("--cacert"), "says how to fix it: {detail}");

    let by_option = run(fetch().arg("--cacert").arg(&env.pki.ca), &list);
    assert_eq!(by_option.table.line(1).get("status"), "200");
    let by_env = run(fetch().env("SSL_CERT_FILE", &env.pki.ca), &list);
    assert_eq!(by_env.table.line(1).get("status"), "200");
}

/// `--cacert` adds an authority to the system's: a site it does not sign is checked against
/// the system store (which fetch reads only when such a site turns up).
#[test]
fn cacert_adds_to_the_system_store_rather_than_replacing_it() {
    let env = Env::new();
    let dir = env.path().join("their-pki");
    std::fs::create_dir(&dir).unwrap();
    let theirs = Pki::with_authority(&dir, "their test CA");
    let Some(nginx) = nginx(&env, &[env.pki.good.clone(), theirs.good.clone()]) else {
        return;
    };
    let urls = [1, 0, 1].map(|i| format!("https://localhost:{}/", nginx.ports[i]));
    let list = env.list("urls.txt", &urls);

    let with_system = run(
        fetch()
            .arg("--cacert")
            .arg(&env.pki.ca)
            .env("SSL_CERT_FILE", &theirs.ca),
        &list,
    );
    for line in 1..=3 {
        assert_eq!(
            with_system.table.line(line).get("status"),
            "200",
            "line {line}"
        );
    }
    let cacert_only = run(fetch().arg("--cacert").arg(&env.pki.ca), &list);
    assert_eq!(cacert_only.table.line(2).get("status"), "200");
    for line in [1, 3] {
        let row = cacert_only.table.line(line);
        assert_eq!(row.get("error"), "tls", "line {line}");
        let detail = row.get("error_detail");
        assert!(
            detail.contains("unknown authority (CN=their test CA"),
            "{detail}"
        );
    }
}

#[test]
fn a_bad_cacert_file_is_a_clear_error_before_any_request() {
    let env = Env::new();
    let Some((nginx, list)) = one_good_site(&env) else {
        return;
    };
    for (file, says) in [
        (env.path().join("missing.pem"), "No such file"),
        (env.pki.good.key.clone(), "no PEM certificate"),
    ] {
        let out = fetch()
            .arg("--cacert")
            .arg(&file)
            .arg(&list)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&*file.to_string_lossy()) && stderr.contains(says),
            "{stderr}"
        );
    }
    assert!(nginx.log().is_empty());
}

/// `--tls-info` against nginx: the certificate columns of a good, an expired and a wrong-name
/// certificate, the last two from handshakes that rejected them.
#[test]
fn tls_info_shows_certificates_also_when_rejected() {
    let env = Env::new();
    let pki = &env.pki;
    let pairs = [
        pki.good.clone(),
        pki.expired.clone(),
        pki.wrong_name.clone(),
    ];
    let Some(nginx) = nginx(&env, &pairs) else {
        return;
    };
    let urls: Vec<String> = nginx.ports[..3]
        .iter()
        .map(|port| format!("https://localhost:{port}/"))
        .collect();
    let list = env.list("urls.txt", &urls);
    let run = run(
        fetch().arg("--tls-info").arg("--cacert").arg(&pki.ca),
        &list,
    );
    let table = &run.table;
    let good = table.line(1);
    // nginx 1.22 offers up to TLS 1.2 by default; the row says what nginx logged.
    let logged = nginx.log().into_iter().find(|l| l.status == 200).unwrap();
    assert_eq!(good.get("tls_version"), logged.tls);
    assert_eq!(good.get("cert_subject"), "CN=fetch interop good");
    assert_eq!(good.get("cert_issuer"), "CN=fetch interop test CA");
    assert_eq!(good.get("cert_not_after"), "2099-01-01T00:00:00.000Z");
    let expired = table.line(2);
    assert_eq!(expired.get("error"), "tls");
    assert_eq!(
        expired.get("tls_version"),
        "",
        "the handshake did not finish"
    );
    assert_eq!(expired.get("cert_subject"), "CN=fetch interop expired");
    assert_eq!(expired.get("cert_not_after"), "2024-01-02T00:00:00.000Z");
    let days: i64 = expired.get("cert_days_left").parse().unwrap();
    assert!(days < -300, "{days}");
    let wrong = table.line(3);
    assert_eq!(wrong.get("error"), "tls");
    assert_eq!(wrong.get("cert_subject"), "CN=fetch interop wrong-name");
    assert!(wrong.get("cert_days_left").parse::<i64>().unwrap() > 0);
}
