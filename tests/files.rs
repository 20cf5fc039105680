//! Output files in shared directories: symlink loops, links planted at `FILE` and
//! `FILE.partial` (in a plain and in a sticky world-writable directory, by us and by another
//! user), a partial file of someone else's on `--resume`, and a write that fails part-way.
//! Every refusal is a clear error, exit 1, before any request.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::server::TestServer;
use crate::support::stderr;
use crate::support::{Table, urls};

fn fetch() -> Command {
    let mut cmd = crate::support::fetch_binary();
    cmd.arg("-q");
    cmd
}

/// `fetch -o out list`.
fn write_to(out: &Path, list: &Path) -> Output {
    fetch().arg("-o").arg(out).arg(list).output().unwrap()
}

/// A directory for one test, plain or sticky and world-writable like /tmp, with a list of
/// `n` URLs of `server`.
struct Place {
    dir: tempfile::TempDir,
    list: PathBuf,
}

impl Place {
    fn new(server: &TestServer, n: usize, sticky: bool) -> Place {
        let dir = tempfile::tempdir().unwrap();
        if sticky {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        }
        let list = dir.path().join("urls.txt");
        std::fs::write(&list, urls(&server.url("/ok"), n)).unwrap();
        Place { dir, list }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Says on stderr (past the test harness's capture) why part of a test did not run.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "files: skipped: {why}");
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Hands `path` (a link itself, not its target) to `nobody`.
fn give_away(path: &Path) {
    let status = Command::new("chown")
        .args(["-h", "nobody"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn assert_refused(out: &Output, server: &TestServer, says: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(stderr(out).contains(says), "{}", stderr(out));
    assert_eq!(server.stats.hits(), 0, "no request before the refusal");
}

#[test]
fn a_symlink_loop_is_a_clear_error_for_every_output() {
    let server = TestServer::start();
    let place = Place::new(&server, 3, false);
    symlink("loopB", place.path("loopA")).unwrap();
    symlink("loopA", place.path("loopB")).unwrap();
    let loop_a = place.path("loopA");
    let out = place.path("out.csv");
    std::fs::write(&out, "line,url\n").unwrap();
    let runs: [Vec<&std::ffi::OsStr>; 4] = [
        vec!["-o".as_ref(), loop_a.as_os_str(), place.list.as_os_str()],
        vec![
            "--resume".as_ref(),
            "-o".as_ref(),
            loop_a.as_os_str(),
            place.list.as_os_str(),
        ],
        vec![
            "--summary-json".as_ref(),
            loop_a.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            place.list.as_os_str(),
        ],
        vec![
            "--merge".as_ref(),
            out.as_os_str(),
            "-o".as_ref(),
            loop_a.as_os_str(),
        ],
    ];
    for args in runs {
        let run = fetch().args(&args).output().unwrap();
        assert_refused(&run, &server, "too many levels of symbolic links");
        assert!(
            stderr(&run).contains("loopA"),
            "names the file: {}",
            stderr(&run)
        );
    }
}

/// A link planted at `FILE.partial` is replaced, never written through, and never becomes
/// `FILE`: in a plain directory and in a sticky shared one.
#[test]
fn a_link_planted_at_the_partial_file_is_replaced_not_followed() {
    let server = TestServer::start();
    for sticky in [false, true] {
        let place = Place::new(&server, 5, sticky);
        let victim = place.path("victim.txt");
        std::fs::write(&victim, "precious\n").unwrap();
        symlink(&victim, place.path("out.csv.partial")).unwrap();
        let out = place.path("out.csv");
        let run = write_to(&out, &place.list);
        assert!(run.status.success(), "{}", stderr(&run));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(
            !out.is_symlink(),
            "sticky {sticky}: FILE is not the planted link"
        );
        assert_eq!(Table::parse(&std::fs::read(&out).unwrap()).len(), 5);
        assert!(!place.path("out.csv.partial").exists());
    }
}

/// A link at `FILE` is the user's own way of naming the output: its target is replaced and the
/// link stays. In a sticky shared directory, a link of another user is not followed (the
/// kernel's protected_symlinks rule).
#[test]
fn a_link_at_the_output_is_followed_only_when_it_may_be() {
    let server = TestServer::start();
    let place = Place::new(&server, 2, false);
    let real = place.path("real.csv");
    let link = place.path("out.csv");
    symlink("real.csv", &link).unwrap();
    let run = write_to(&link, &place.list);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(link.is_symlink());
    assert_eq!(Table::parse(&std::fs::read(&real).unwrap()).len(), 2);

    if !is_root() {
        skip("planting another user's link needs root");
        return;
    }
    let shared = Place::new(&server, 2, true);
    let victim = shared.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let planted = shared.path("report.csv");
    symlink(&victim, &planted).unwrap();
    give_away(&planted);
    let hits = server.stats.hits();
    let run = write_to(&planted, &shared.list);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("another user"), "{}", stderr(&run));
    assert_eq!(server.stats.hits(), hits, "no request");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// `--resume` reads a partial file only when it is a regular file of ours.
#[test]
fn resume_refuses_a_partial_file_that_is_not_its_own() {
    let server = TestServer::start();
    let place = Place::new(&server, 3, true);
    let out = place.path("out.csv");
    let partial = place.path("out.csv.partial");
    let victim = place.path("victim.csv");
    std::fs::write(&victim, "line,url\n").unwrap();
    symlink(&victim, &partial).unwrap();
    let run = fetch()
        .args(["--resume", "-o"])
        .arg(&out)
        .arg(&place.list)
        .output()
        .unwrap();
    assert_refused(&run, &server, "symbolic link");
    assert!(stderr(&run).contains("out.csv.partial"), "{}", stderr(&run));

    if !is_root() {
        skip("a partial file of another user needs root to make");
        return;
    }
    std::fs::remove_file(&partial).unwrap();
    let first = write_to(&out, &place.list);
    assert!(first.status.success());
    std::fs::rename(&out, &partial).unwrap();
    give_away(&partial);
    let hits = server.stats.hits();
    let run = fetch()
        .args(["--resume", "-o"])
        .arg(&out)
        .arg(&place.list)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("another user"), "{}", stderr(&run));
    assert_eq!(server.stats.hits(), hits);
}

/// A write that fails part-way (here a file size limit, as a full disk would) leaves the
/// partial file ending with a complete row, and the message says where and how many.
#[test]
fn a_failed_write_leaves_only_complete_rows() {
    let server = TestServer::start();
    let place = Place::new(&server, 3000, false);
    let out = place.path("out.csv");
    // 192 blocks of 512 bytes: room for the header and two buffers of rows, not more.
    let run = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 192 && exec \"$0\" -q -o '{}' '{}'",
            out.display(),
            place.list.display()
        ))
        .arg(env!("CARGO_BIN_EXE_fetch"))
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let said = stderr(&run);
    assert!(said.contains("out.csv.partial"), "{said}");
    let bytes = std::fs::read(place.path("out.csv.partial")).unwrap();
    assert!(bytes.ends_with(b"\n"), "ends at the end of a row");
    let table = Table::parse(&bytes);
    assert!(table.len() > 100, "{} rows kept", table.len());
    assert!(
        said.contains(&format!("holds the {} rows written before it", table.len())),
        "{said}"
    );
    assert!(table.column("status").iter().all(|s| *s == "200"));
}

/// A full disk, for real: a small tmpfs, where one can be mounted (root, outside a container
/// that forbids it).
#[test]
fn a_full_disk_leaves_only_complete_rows() {
    let server = TestServer::start();
    let place = Place::new(&server, 3000, false);
    let mount = place.path("small");
    std::fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96k", "tmpfs"])
        .arg(&mount)
        .output();
    if !mounted.is_ok_and(|m| m.status.success()) {
        skip("cannot mount a tmpfs here (needs root)");
        return;
    }
    let out = mount.join("out.csv");
    let run = write_to(&out, &place.list);
    let partial = std::fs::read(mount.join("out.csv.partial"));
    let _ = Command::new("umount").arg(&mount).status();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("No space left"), "{}", stderr(&run));
    let bytes = partial.unwrap();
    let table = Table::parse(&bytes);
    assert!(bytes.ends_with(b"\n") && table.len() > 0);
    assert!(stderr(&run).contains(&format!("holds the {} rows", table.len())));
}

#[test]
fn usage_faults_read_right() {
    let server = TestServer::start();
    let place = Place::new(&server, 1, false);
    let zero = fetch()
        .args(["--max-time", "0"])
        .arg(&place.list)
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));

    let help = fetch().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for code in [
        "0 done",
        "1 I/O error",
        "2 usage error",
        "3 more rows failed",
        "124",
        "130",
        "143",
    ] {
        assert!(help.contains(code), "--help lists {code}");
    }
    let man = Command::new(env!("CARGO_BIN_EXE_fetch"))
        .arg("--man")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&man.stdout).contains("3 more rows failed"));

    let one = Command::new(env!("CARGO_BIN_EXE_fetch"))
        .env("NO_PROXY", "*")
        .arg(&place.list)
        .output()
        .unwrap();
    assert!(
        stderr(&one).starts_with("fetch: 1 row in "),
        "{}",
        stderr(&one)
    );

    let bad_summary = fetch()
        .args(["--summary-json"])
        .arg(place.path("no/such/dir/summary.json"))
        .arg(&place.list)
        .output()
        .unwrap();
    assert_eq!(bad_summary.status.code(), Some(1));
    assert!(
        stderr(&bad_summary).contains("cannot write summary file"),
        "{}",
        stderr(&bad_summary)
    );

    let out = place.path("out.csv");
    let first = write_to(&out, &place.list);
    assert!(first.status.success());
    let other = fetch()
        .args(["--resume", "--fields", "line,url", "-o"])
        .arg(&out)
        .arg(&place.list)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    let said = stderr(&other);
    assert!(
        said.contains("the file has: line, url, status, latency_ms"),
        "{said}"
    );
    assert!(said.contains("this run writes: line, url (use"), "{said}");
}
