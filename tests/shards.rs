//! Scale-out: one list split over N processes by host, then merged.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use fetch::input::Shard;

use crate::support::server::TestServer;
use crate::support::{Table, config, run_list};

/// A list over many hosts (names pinned to one local server), with bad lines among them.
fn list(server: &TestServer, hosts: usize) -> (String, Vec<(String, Vec<std::net::IpAddr>)>) {
    let port = server.addr.port();
    let mut list = String::from("# shard test\n");
    for round in 0..3 {
        for h in 0..hosts {
            list.push_str(&format!("http://host{h}.test:{port}/ok/{round}\n"));
        }
        list.push_str("not a url\nftp://x.test/\n\n");
    }
    let pins = (0..hosts)
        .map(|h| (format!("host{h}.test"), vec!["127.0.0.1".parse().unwrap()]))
        .collect();
    (list, pins)
}

fn rows(table: &Table) -> BTreeSet<(u64, String)> {
    let lines = table.column("line");
    let urls = table.column("url");
    lines
        .iter()
        .zip(urls)
        .map(|(l, u)| (l.parse().unwrap(), u.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_by_host_and_add_up_to_one_run() {
    let server = TestServer::start();
    let (list, pins) = list(&server, 30);
    let mut whole = config();
    whole.fetch.resolve = pins.clone();
    let (_, single) = run_list(whole, &list).await;
    let expected = rows(&single);

    let count = 4;
    let mut union = BTreeSet::new();
    let mut host_shard: BTreeMap<String, u64> = BTreeMap::new();
    for index in 0..count {
        let mut part = config();
        part.fetch.resolve = pins.clone();
        part.shard = Some(Shard { index, count });
        let (_, table) = run_list(part, &list).await;
        for (line, url) in rows(&table) {
            assert!(
                union.insert((line, url.clone())),
                "line {line} in two shards"
            );
            match url::Url::parse(&url)
                .ok()
                .filter(|u| u.scheme().starts_with("http"))
            {
                Some(parsed) => {
                    let host = parsed.host_str().unwrap().to_owned();
                    let first = *host_shard.entry(host.clone()).or_insert(index);
                    assert_eq!(first, index, "{host} split over shards");
                }
                None => assert_eq!(index, 0, "bad line {line} outside shard 0"),
            }
        }
    }
    assert_eq!(union, expected, "the shards add up to the single run");
    let used: BTreeSet<u64> = host_shard.values().copied().collect();
    assert!(used.len() > 1, "30 hosts should spread over several shards");
}

fn fetch() -> Command {
    crate::support::fetch_binary()
}

#[test]
fn shard_outputs_merge_into_the_single_run() {
    let server = TestServer::start();
    let (list, pins) = list(&server, 12);
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("urls.txt");
    std::fs::write(&list_path, list).unwrap();
    let pin_args: Vec<String> = pins
        .iter()
        .flat_map(|(name, ips)| ["--resolve".to_owned(), format!("{name}:{}", ips[0])])
        .collect();

    let single_path = dir.path().join("single.csv");
    let single = fetch()
        .args(["-q", "--ordered", "--fields", "line,url,status,error"])
        .args(&pin_args)
        .arg(&list_path)
        .arg("-o")
        .arg(&single_path)
        .status()
        .unwrap();
    assert!(single.success());

    let mut parts = Vec::new();
    for index in 0..3 {
        let part = dir.path().join(format!("part-{index}.csv"));
        let status = fetch()
            // The index from the environment, as a Kubernetes Indexed Job sets it.
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .args([
                "-q",
                "--ordered",
                "--shard",
                "auto/3",
                "--fields",
                "line,url,status,error",
            ])
            .args(&pin_args)
            .arg(&list_path)
            .arg("-o")
            .arg(&part)
            .status()
            .unwrap();
        assert!(status.success());
        parts.push(part);
    }
    let merged_path = dir.path().join("merged.csv");
    let merged = fetch()
        .arg("--merge")
        .args(&parts)
        .arg("-o")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let single = std::fs::read(&single_path).unwrap();
    let merged = std::fs::read(&merged_path).unwrap();
    assert_eq!(
        Table::parse(&merged).column("line"),
        Table::parse(&single).column("line"),
        "the merged file is in input order, like the single --ordered run"
    );
    assert_eq!(rows(&Table::parse(&merged)), rows(&Table::parse(&single)));

    let no_env = fetch()
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .args(["--shard", "auto/3"])
        .arg(&list_path)
        .output()
        .unwrap();
    assert_eq!(
        no_env.status.code(),
        Some(2),
        "auto without an index is a usage error"
    );
}
