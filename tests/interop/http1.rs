//! HTTP/1.1 against nginx: connections that nginx closes after a few requests, or after a short
//! idle time, while fetch may be sending the next request on them.

use super::not_ok;
use super::servers::{Env, Nginx, fetch, run};

fn nginx_h1(env: &Env) -> Option<Nginx> {
    Nginx::start(env, 1, |ports| {
        format!(
            "server {{\n listen 127.0.0.1:{port};\n keepalive_requests 3;\n\
             keepalive_timeout 1s;\n location / {{ return 200 \"ok\\n\"; }}\n}}",
            port = ports[0],
        )
    })
}

#[test]
fn keepalive_requests_3_loses_no_row() {
    let env = Env::new();
    let Some(nginx) = nginx_h1(&env) else {
        return;
    };
    let urls: Vec<String> = (0..600)
        .map(|i| format!("http://127.0.0.1:{}/{i}", nginx.ports[0]))
        .collect();
    let list = env.list("urls.txt", &urls);
    let run = run(fetch().args(["-c", "10"]), &list);
    assert_eq!(run.table.len(), 600);
    assert_eq!(not_ok(&run.table), Vec::<String>::new());
    assert!(run.table.column("attempts").iter().all(|a| *a == "1"));
    assert!(
        run.table
            .column("http_version")
            .iter()
            .all(|v| *v == "HTTP/1.1")
    );
    assert_eq!(nginx.log().len(), 600);
}

/// Requests a second apart, as long as nginx keeps an idle connection: some go out just as
/// nginx closes it.
#[test]
fn idle_close_races_lose_no_row() {
    let env = Env::new();
    let Some(nginx) = nginx_h1(&env) else {
        return;
    };
    let urls: Vec<String> = (0..5)
        .map(|i| format!("http://127.0.0.1:{}/{i}", nginx.ports[0]))
        .collect();
    let list = env.list("urls.txt", &urls);
    let run = run(fetch().args(["-c", "1", "--rate", "1/s"]), &list);
    assert_eq!(not_ok(&run.table), Vec::<String>::new());
    assert_eq!(nginx.log().len(), 5);
}
