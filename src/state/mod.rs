//! `--state FILE`: memory between runs, in an SQLite database.
//!
//! A side stage on both ends of the pipeline, wired in `lib.rs`:
//!
//! ```text
//! input ──▶ recall ──▶ schedule ──▶ fetch ──▶ extract ──▶ output (writer thread) ──▶ report
//!           (thread:                 ▲ If-None-Match,          │ compare, change cells
//!            batched lookups)        │ If-Modified-Since       ▼
//!                                                          commit (thread: batched
//!                                                          transactions, after the rows
//!                                                          reached the output)
//! ```
//!
//! [`recall`] looks each URL up as its line comes from the input and attaches what the state
//! knew (and the validators for a conditional request); the writer compares each row with it
//! just before writing ([`compare`]) and hands what the row changes to [`record`]'s committer
//! once the row has reached the output. So the state never runs ahead of the output: after a
//! crash or SIGKILL, every URL recorded for the run is in the output file, and `--resume` cuts
//! the file back to the rows the state recorded (those after them are fetched again). No
//! SQLite call ever runs on the threads that drive connections.
//!
//! One run at a time: the file is locked (`flock`) while a run has it open, and a second run
//! fails at once, before touching it or its output.

mod compare;
mod recall;
mod record;
mod schema;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub(crate) use self::compare::Tracking;
pub(crate) use self::recall::{Recall, spawn_recall};
pub(crate) use self::record::Recorder;
pub use self::schema::{APPLICATION_ID, VERSION as SCHEMA_VERSION};
use crate::error::Error;
use crate::row::timestamp;

/// How long a state call waits for a lock another connection holds (the `sqlite3` shell in the
/// middle of a write, say) before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Page cache per connection, in KiB (SQLite's default is 2,000). Lookups of a long list land
/// all over the URL index, so a bigger cache hardly raises the hit rate (the upper levels of
/// the trees, which every lookup reads, fit in this one); what it would change is the memory a
/// run plateaus at. Measured over 10,000 to 1,000,000 URLs: 2,000 KiB and 1,024 KiB run alike
/// (see bench/state.sh).
const CACHE_KIB: i64 = 1024;

/// The state stage's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The state file.
    pub path: PathBuf,
    /// Send the stored validators (`If-None-Match`, `If-Modified-Since`); `--no-conditional`
    /// turns this off.
    pub conditional: bool,
}

/// An open state file, locked for this run.
pub struct State {
    path: PathBuf,
    conn: Connection,
    /// The `flock` on the file, held for as long as the state is open. Shared by every thread
    /// with a connection, and dropped after the last connection is closed: closing any
    /// descriptor of a file drops the POSIX locks SQLite holds on it.
    lock: Arc<File>,
    conditional: bool,
}

/// What a run's record starts from.
#[derive(Debug, Clone, Default)]
pub struct RunStart {
    /// The output file (after symlinks, absolute); `None` for stdout or a writer.
    pub output: Option<PathBuf>,
    /// `--resume`: the output continues an earlier run's file; that run's record goes on.
    pub resumed: bool,
    /// Rows the resumed file holds from earlier runs, and how they compared.
    pub carried: Figures,
    /// The options that matter for reading the state, as JSON.
    pub options: serde_json::Value,
}

/// A run's figures, as the `runs` table keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub rows: u64,
    pub errors: u64,
    pub new: u64,
    pub same: u64,
    pub changed: u64,
    pub not_modified: u64,
}

impl State {
    /// Opens (creating it if needed) and locks the state file, and checks that it is one: a
    /// file another run holds, a file that is not an SQLite database, or an SQLite database of
    /// another program is an error that leaves the file as it was.
    pub fn open(settings: &Settings) -> Result<State, Error> {
        let path = &settings.path;
        let fail = |why: String| Error::State {
            path: path.clone(),
            why,
        };
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fail(format!("cannot open it: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(fail(in_use_by(path))),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(fail(format!("cannot lock it: {e}")));
            }
        }
        let conn = connect(path).map_err(|e| fail(sqlite_words(&e)))?;
        prepare(&conn).map_err(fail)?;
        Ok(State {
            path: path.clone(),
            conn,
            lock: Arc::new(lock),
            conditional: settings.conditional,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// For `--resume -o FILE`: how many leading rows of FILE the state recorded for the run
    /// that wrote it (the rows after them are to be fetched again, so that file and state agree);
    /// `None` when no run of this state wrote FILE.
    pub fn recorded_rows(&self, output: &Path) -> Result<Option<u64>, Error> {
        let Some(output) = output_key(output) else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT rows FROM runs WHERE output = ?1 ORDER BY id DESC LIMIT 1",
                [output],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|rows| rows.map(|n| u64::try_from(n).unwrap_or(0)))
            .map_err(|e| self.error(&e))
    }

    /// The shard (`K/N`) the last run on this state took (`Some(None)`: the whole list);
    /// `None` before the first run.
    pub fn last_shard(&self) -> Result<Option<Option<String>>, Error> {
        let options: Option<String> = self
            .conn
            .query_row(
                "SELECT options FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error(&e))?;
        Ok(options.map(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|o| o.get("shard")?.as_str().map(String::from))
        }))
    }

    /// Writes the run's record (or takes up the resumed run's), before any request: from here
    /// on a crash leaves a run without `ended_at`.
    pub(crate) fn begin(&mut self, start: &RunStart) -> Result<i64, Error> {
        let now = timestamp(SystemTime::now());
        let output = start.output.as_deref().and_then(output_key);
        let options = start.options.to_string();
        let pid = i64::from(std::process::id());
        let tx = self
            .conn
            .transaction()
            .map_err(|e| state_error(&self.path, &e))?;
        let resumed: Option<i64> = match (&output, start.resumed) {
            (Some(output), true) => tx
                .query_row(
                    "SELECT id FROM runs WHERE output = ?1 ORDER BY id DESC LIMIT 1",
                    [output],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| state_error(&self.path, &e))?,
            _ => None,
        };
        let c = start.carried;
        let run = match resumed {
            Some(id) => {
                tx.execute(
                    "UPDATE runs SET ended_at = NULL, outcome = NULL, pid = ?2, options = ?3, \
                     resumed = resumed + 1 WHERE id = ?1",
                    params![id, pid, options],
                )
                .map_err(|e| state_error(&self.path, &e))?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO runs (started_at, pid, version, options, output) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![now, pid, env!("CARGO_PKG_VERSION"), options, output],
                )
                .map_err(|e| state_error(&self.path, &e))?;
                tx.last_insert_rowid()
            }
        };
        tx.execute(
            schema::RUN_FIGURES,
            params![
                run,
                count(c.rows),
                count(c.errors),
                count(c.new),
                count(c.same),
                count(c.changed),
                count(c.not_modified)
            ],
        )
        .map_err(|e| state_error(&self.path, &e))?;
        tx.commit().map_err(|e| state_error(&self.path, &e))?;
        Ok(run)
    }

    fn error(&self, e: &rusqlite::Error) -> Error {
        state_error(&self.path, e)
    }
}

/// How the `runs` table names an output file: its absolute path, after symlinks (the same
/// file however the command line spelled it, from the same directory or not).
fn output_key(path: &Path) -> Option<String> {
    let target = crate::output::follow_symlink(path).ok()?;
    let absolute = std::path::absolute(target).ok()?;
    Some(absolute.to_string_lossy().into_owned())
}

/// A count as SQLite stores it.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn state_error(path: &Path, e: &rusqlite::Error) -> Error {
    Error::State {
        path: path.to_path_buf(),
        why: sqlite_words(e),
    }
}

/// SQLite's complaint, in words a user can act on.
fn sqlite_words(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "it is not a fetch state file (not an SQLite database); give another --state \
             file, or move this one away"
                .into()
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            "the database is damaged (SQLite: database disk image is malformed); move it \
             away to start afresh, or repair it with the sqlite3 shell's .recover"
                .into()
        }
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            format!("it stayed locked by another program for {BUSY_TIMEOUT:?} ({e})")
        }
        Some(rusqlite::ErrorCode::DiskFull) => "the disk is full".into(),
        _ => e.to_string(),
    }
}

/// Opens a connection with the settings every connection of a run uses.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

/// Checks that the database is a state file (or an empty one, which becomes one) and sets it
/// up: WAL, so that lookups read while commits write, and the schema.
fn prepare(conn: &Connection) -> Result<(), String> {
    let pragma = |name: &str| -> Result<i64, String> {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .map_err(|e| sqlite_words(&e))
    };
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(|e| sqlite_words(&e))?;
    let application = pragma("application_id")?;
    let version = pragma("user_version")?;
    let ours = application == i64::from(APPLICATION_ID);
    if !ours && tables > 0 {
        return Err(
            "it is an SQLite database of another program (it has tables fetch did not \
                    make); give --state a file of its own"
                .into(),
        );
    }
    if ours && version > i64::from(schema::VERSION) {
        return Err(format!(
            "it was written by a newer fetch (state schema {version}; this fetch knows {}); \
             upgrade fetch",
            schema::VERSION
        ));
    }
    let words = |e: rusqlite::Error| sqlite_words(&e);
    // WAL is a property of the file: set once, it stays.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(words)?;
    // In WAL mode, NORMAL loses no committed transaction to a crash of the process, only to a
    // crash of the machine, and spares an fsync per commit.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(words)?;
    if !ours {
        conn.execute_batch(&format!(
            "BEGIN; {} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {}; COMMIT;",
            schema::CREATE,
            schema::VERSION
        ))
        .map_err(words)?;
    }
    Ok(())
}

/// Why the lock is taken: the run holding it, as far as the file tells.
fn in_use_by(path: &Path) -> String {
    let running = connect(path).ok().and_then(|conn| {
        conn.query_row(
            "SELECT pid, started_at FROM runs WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, String>(1)?)),
        )
        .ok()
    });
    let holder = match running {
        Some((Some(pid), started)) => format!(" (pid {pid}, started {started})"),
        _ => String::new(),
    };
    format!(
        "it is in use by another fetch run{holder}; runs on one state file cannot overlap \
         (nothing was changed)"
    )
}

impl State {
    /// Whether requests are made conditional.
    pub(crate) fn conditional(&self) -> bool {
        self.conditional
    }

    /// A second connection, for lookups beside the committer's writes, with a share of the
    /// lock to drop after it.
    pub(crate) fn reader(&self) -> Result<(Connection, Arc<File>), Error> {
        let conn = connect(&self.path).map_err(|e| self.error(&e))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| self.error(&e))?;
        Ok((conn, Arc::clone(&self.lock)))
    }

    /// The connection and the lock, for the committer, which closes them in that order.
    pub(crate) fn into_parts(self) -> (PathBuf, Connection, Arc<File>) {
        (self.path, self.conn, self.lock)
    }
}
