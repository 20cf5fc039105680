//! Real servers from the package registries (nginx, squid, tinyproxy), each started for one test
//! on free loopback ports, in a directory of its own, and stopped by PID when the test ends.
//!
//! When a program is missing the test is skipped with a line on stderr that says so, unless
//! `FETCH_INTEROP=require` (set by `.ci/run`), which makes it a failure: CI must never pass by
//! skipping the servers it was meant to test against.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::certs::Pki;
use crate::support::Table;

/// Set to `require` to fail instead of skipping when a server program is missing.
pub const REQUIRED: &str = "FETCH_INTEROP";

/// Set to keep each test's directory (configurations, logs, lists) after it ends.
pub const KEEP: &str = "FETCH_INTEROP_KEEP";

/// Where Debian puts daemons, which a non-root PATH often leaves out.
const SBIN: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The program's path, or `None` (after saying why on stderr) when the test is to be skipped.
pub fn program(name: &str, package: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = path_dirs
        .into_iter()
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let required = std::env::var(REQUIRED).is_ok_and(|v| v == "require");
        assert!(
            !required,
            "{name} is not installed and {REQUIRED}=require: apt-get install {package}"
        );
        // Straight to stderr: the test harness captures print macros of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "interop: skipped, {name} is not installed (apt-get install {package}; \
             {REQUIRED}=require makes this a failure)"
        );
    }
    found
}

/// One test's directory: certificates, server configurations and logs, and the URL lists.
pub struct Env {
    dir: tempfile::TempDir,
    pub pki: Pki,
}

impl Env {
    /// A fresh directory, removed after the test unless `FETCH_INTEROP_KEEP` is set (then its
    /// path is printed, for reading the servers' logs).
    pub fn new() -> Env {
        let keep = std::env::var_os(KEEP).is_some();
        let dir = tempfile::Builder::new()
            .prefix("fetch-interop-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            let _ = writeln!(std::io::stderr(), "interop: kept {}", dir.path().display());
        }
        // squid drops root for its own user, which must still read its configuration and write
        // its logs here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let pki = Pki::create(dir.path());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Env { dir, pki }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `lines` to a list file for fetch to read.
    pub fn list(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.path().join(name);
        let mut text = String::new();
        for line in lines {
            let _ = writeln!(text, "{line}");
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A free TCP port on `ip` (the kernel's pick; a server started with it retries on a clash).
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server process; killed and reaped when dropped.
pub struct Daemon {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Daemon {
    /// Kills the process and reaps it (again: nothing).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `command` and waits until every address in `listening` accepts connections.
    /// `None` when it exited first because an address was taken (the caller picks new ports).
    fn spawn(
        name: &str,
        mut command: Command,
        dir: &Path,
        listening: &[SocketAddr],
        logs: &[PathBuf],
    ) -> Option<Daemon> {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut daemon = Daemon {
            name: name.to_owned(),
            child,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if listening
                .iter()
                .all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok())
            {
                return Some(daemon);
            }
            let exited = daemon.child.try_wait().unwrap();
            let mut said = std::fs::read_to_string(&daemon.stderr).unwrap_or_default();
            for log in logs {
                said.push_str(&std::fs::read_to_string(log).unwrap_or_default());
            }
            if exited.is_some() && said.contains("in use") {
                return None;
            }
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} did not start listening on {listening:?}: {said}",
                daemon.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts a server on fresh ports, trying again when a port was taken meanwhile. `launch` gets
/// the ports and returns the command, the addresses it will listen on, and its log files.
fn start_on_ports(
    name: &str,
    dir: &Path,
    ports: usize,
    launch: impl Fn(&[u16]) -> (Command, Vec<SocketAddr>, Vec<PathBuf>),
) -> (Daemon, Vec<u16>) {
    for _ in 0..5 {
        let picked: Vec<u16> = (0..ports).map(|_| free_port("127.0.0.1")).collect();
        let (command, listening, logs) = launch(&picked);
        if let Some(daemon) = Daemon::spawn(name, command, dir, &listening, &logs) {
            return (daemon, picked);
        }
    }
    panic!("{name}: no free ports after five tries");
}

/// nginx with the `server` blocks a test writes; every server logs to `access.log` in the
/// [`LogLine`] format.
pub struct Nginx {
    _daemon: Daemon,
    pub ports: Vec<u16>,
    access_log: PathBuf,
}

/// What nginx logs per request: enough to tell what reached it and how.
const LOG_FORMAT: &str = r#"log_format interop '$msec $connection $status $server_protocol ssl=$ssl_protocol user=$remote_user "$request" via="$http_via" auth="$http_authorization"';"#;

impl Nginx {
    /// Starts nginx with `ports` listening ports; `servers(ports)` writes the `server { }`
    /// blocks (in nginx's syntax, listening on `127.0.0.1:{port}` or `[::1]:{port}`).
    pub fn start(env: &Env, ports: usize, servers: impl Fn(&[u16]) -> String) -> Option<Nginx> {
        let nginx = program("nginx", "nginx-light")?;
        let dir = env.path().to_owned();
        let access_log = dir.join("access.log");
        let error_log = dir.join("error.log");
        let conf = dir.join("nginx.conf");
        let (daemon, picked) = start_on_ports("nginx", &dir, ports, |ports| {
            let text = format!(
                "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\n\
                 error_log {error} info;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n{LOG_FORMAT}\naccess_log {access} interop;\n\
                 client_body_temp_path {dir}/body;\nproxy_temp_path {dir}/proxy;\n\
                 fastcgi_temp_path {dir}/fastcgi;\nscgi_temp_path {dir}/scgi;\n\
                 uwsgi_temp_path {dir}/uwsgi;\n\
                 default_type text/plain;\n{servers}\n}}\n",
                dir = dir.display(),
                error = error_log.display(),
                access = access_log.display(),
                servers = servers(ports),
            );
            std::fs::write(&conf, text).unwrap();
            let mut command = Command::new(&nginx);
            command
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(&error_log);
            let listening = listen_addrs(&std::fs::read_to_string(&conf).unwrap());
            (command, listening, vec![error_log.clone()])
        });
        Some(Nginx {
            _daemon: daemon,
            ports: picked,
            access_log,
        })
    }

    /// What nginx logged, one entry per request it received.
    pub fn log(&self) -> Vec<LogLine> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(LogLine::parse)
            .collect()
    }
}

/// The addresses of the `listen` directives of an nginx configuration.
fn listen_addrs(conf: &str) -> Vec<SocketAddr> {
    conf.lines()
        .filter_map(|line| line.trim().strip_prefix("listen "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|addr| addr.trim_end_matches(';').parse().unwrap())
        .collect()
}

/// One request as nginx logged it.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Seconds since the epoch, with milliseconds.
    pub at: f64,
    /// nginx's serial number of the connection the request came on.
    pub connection: u64,
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: String,
    /// `TLSv1.2`, `TLSv1.3`; empty for plain HTTP.
    pub tls: String,
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub request: String,
    /// The Basic auth user, if any.
    pub user: String,
    pub via: String,
    pub authorization: String,
}

impl LogLine {
    fn parse(line: &str) -> LogLine {
        let pattern = regex::Regex::new(
            r#"^(\S+) (\d+) (\d+) (\S+) ssl=(\S*) user=(\S*) "([^"]*)" via="([^"]*)" auth="([^"]*)"$"#,
        )
        .unwrap();
        let caps = pattern
            .captures(line)
            .unwrap_or_else(|| panic!("unexpected log line: {line}"));
        LogLine {
            at: caps[1].parse().unwrap(),
            connection: caps[2].parse().unwrap(),
            status: caps[3].parse().unwrap(),
            protocol: caps[4].to_owned(),
            tls: logged(&caps[5]),
            user: logged(&caps[6]),
            request: caps[7].to_owned(),
            via: logged(&caps[8]),
            authorization: logged(&caps[9]),
        }
    }
}

/// A logged value: nginx writes `-` for none.
fn logged(value: &str) -> String {
    if value == "-" {
        String::new()
    } else {
        value.to_owned()
    }
}

/// tinyproxy on one port, open to loopback; with `basic_auth`, only for that user.
pub struct Tinyproxy {
    _daemon: Daemon,
    pub port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    pub fn start(env: &Env, basic_auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
        let tinyproxy = program("tinyproxy", "tinyproxy")?;
        let dir = env.path().to_owned();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        let (daemon, ports) = start_on_ports("tinyproxy", &dir, 1, |ports| {
            let mut text = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 500\n\
                 LogFile \"{log}\"\nLogLevel Info\nPidFile \"{dir}/tinyproxy.pid\"\n\
                 Allow 127.0.0.1\n",
                port = ports[0],
                log = log.display(),
                dir = dir.display(),
            );
            if is_root() {
                text.push_str("User nobody\nGroup nogroup\n");
            }
            if let Some((user, password)) = basic_auth {
                let _ = writeln!(text, "BasicAuth {user} {password}");
            }
            std::fs::write(&conf, text).unwrap();
            let mut command = Command::new(&tinyproxy);
            command.arg("-d").arg("-c").arg(&conf);
            let addr = SocketAddr::from(([127, 0, 0, 1], ports[0]));
            (command, vec![addr], vec![log.clone()])
        });
        Some(Tinyproxy {
            _daemon: daemon,
            port: ports[0],
            log,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything tinyproxy logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// squid with a plain port and a TLS port (certificate signed by the test CA), refusing every
/// request for `blocked.test` by its ACL.
pub struct Squid {
    _daemon: Daemon,
    pub port: u16,
    pub tls_port: u16,
    access_log: PathBuf,
    /// Its service name, which prefixes its shared-memory segments.
    service: String,
}

impl Drop for Squid {
    fn drop(&mut self) {
        // Killed, squid leaves its segments behind (the daemon field is dropped after this,
        // so stop it first).
        self._daemon.stop();
        if let Ok(entries) = std::fs::read_dir("/dev/shm") {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&self.service)
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// A short tag unique to a test's directory.
fn dir_tag(dir: &Path) -> String {
    dir.file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect()
        })
        .unwrap_or_default()
}

impl Squid {
    pub fn start(env: &Env) -> Option<Squid> {
        let squid = program("squid", "squid-openssl")?;
        let dir = env.path().to_owned();
        let access_log = dir.join("squid-access.log");
        let cache_log = dir.join("squid-cache.log");
        let conf = dir.join("squid.conf");
        let pair = env.pki.good.clone();
        let service = format!("fi{}x{}", std::process::id(), dir_tag(&dir));
        let (daemon, ports) = start_on_ports("squid", &dir, 2, |ports| {
            let text = format!(
                "http_port 127.0.0.1:{plain}\n\
                 https_port 127.0.0.1:{tls} tls-cert={cert} tls-key={key}\n\
                 acl blocked dstdomain blocked.test\n\
                 http_access deny blocked\n\
                 http_access allow localhost\n\
                 http_access deny all\n\
                 cache deny all\n\
                 access_log stdio:{access}\n\
                 cache_log {cache}\n\
                 cache_store_log none\n\
                 pid_filename {dir}/squid.pid\n\
                 coredump_dir {dir}\n\
                 logfile_rotate 0\n\
                 shutdown_lifetime 0 seconds\n\
                 pinger_enable off\n\
                 forwarded_for on\n",
                plain = ports[0],
                tls = ports[1],
                cert = pair.cert.display(),
                key = pair.key.display(),
                access = access_log.display(),
                cache = cache_log.display(),
                dir = dir.display(),
            );
            std::fs::write(&conf, text).unwrap();
            // Its shared-memory segments are named after the service: one name per instance,
            // so tests running side by side (or one killed earlier) do not clash.
            let mut command = Command::new(&squid);
            command
                .arg("-N")
                .arg("-n")
                .arg(&service)
                .arg("-f")
                .arg(&conf);
            let listening = ports
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect();
            (command, listening, vec![cache_log.clone()])
        });
        Some(Squid {
            _daemon: daemon,
            port: ports[0],
            tls_port: ports[1],
            access_log,
            service,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TLS port, by a name its certificate is valid for.
    pub fn tls_url(&self) -> String {
        format!("https://localhost:{}", self.tls_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Set to a fetch binary to run the suite against it instead of this build's (to show what an
/// older version gets wrong).
pub const BINARY: &str = "FETCH_INTEROP_BIN";

/// The real binary (or the one `FETCH_INTEROP_BIN` names), quiet, with no proxy or
/// certificate settings inherited from the machine.
pub fn fetch() -> Command {
    let binary = std::env::var_os(BINARY).unwrap_or_else(|| env!("CARGO_BIN_EXE_fetch").into());
    let mut cmd = crate::support::binary(binary);
    cmd.arg("-q");
    cmd
}

/// A finished run of the binary.
pub struct Run {
    pub output: Output,
    pub table: Table,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
}

/// Runs `cmd` over `list` (a file) and parses its CSV; the run must exit 0.
pub fn run(cmd: &mut Command, list: &Path) -> Run {
    let output = cmd.arg(list).output().unwrap();
    assert!(
        output.status.success(),
        "fetch failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let table = Table::parse(&output.stdout);
    Run { output, table }
}
