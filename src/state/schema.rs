//! The state file's tables: a stable interface, documented in the README, that users query with
//! the `sqlite3` shell. Later versions only add (columns, tables, indexes), and say so in
//! `user_version`, so a file keeps working with queries written for an older one.

/// `PRAGMA application_id` of a fetch state file ("ftch"), so `file(1)` and fetch itself can
/// tell it from other SQLite databases.
pub const APPLICATION_ID: i32 = 0x6674_6368;

/// `PRAGMA user_version`: the schema's version. A file of a later version is refused.
pub const VERSION: i32 = 1;

/// The schema of version 1. Times are RFC 3339 UTC text with milliseconds
/// (`2026-12-05T02:15:00.123Z`), which SQLite's date functions read and which sorts as time.
pub const CREATE: &str = "
CREATE TABLE urls (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,
    status        INTEGER,
    error         TEXT,
    final_url     TEXT,
    title         TEXT,
    body_sha256   TEXT,
    extracted     TEXT,
    etag          TEXT,
    last_modified TEXT,
    first_seen    TEXT NOT NULL,
    last_checked  TEXT NOT NULL,
    last_changed  TEXT NOT NULL,
    last_run      INTEGER NOT NULL,
    spec          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    outcome       TEXT,
    pid           INTEGER,
    version       TEXT NOT NULL,
    options       TEXT NOT NULL,
    output        TEXT,
    resumed       INTEGER NOT NULL DEFAULT 0,
    rows          INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    new           INTEGER NOT NULL DEFAULT 0,
    same          INTEGER NOT NULL DEFAULT 0,
    changed       INTEGER NOT NULL DEFAULT 0,
    not_modified  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE changes (
    id            INTEGER PRIMARY KEY,
    run           INTEGER NOT NULL REFERENCES runs(id),
    url           TEXT NOT NULL,
    field         TEXT NOT NULL,
    old           TEXT,
    new           TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX changes_by_url ON changes(url, at);
CREATE INDEX changes_by_run ON changes(run, field);
";

/// What a lookup reads of a URL's record, in this order.
pub const LOOKUP: &str = "SELECT id, status, error, final_url, title, body_sha256, extracted, \
     etag, last_modified, last_changed, spec FROM urls WHERE url = ?1";

/// A record seen before: every field is the new state of it (`first_seen` stays).
pub const UPDATE: &str = "UPDATE urls SET status = ?2, error = ?3, final_url = ?4, title = ?5, \
     body_sha256 = ?6, extracted = ?7, etag = ?8, last_modified = ?9, last_checked = ?10, \
     last_changed = ?11, last_run = ?12, spec = ?13 WHERE id = ?1";

/// A URL not seen before (or, listed twice in one run, seen earlier in it).
pub const INSERT: &str = "INSERT INTO urls (url, status, error, final_url, title, body_sha256, \
     extracted, etag, last_modified, last_checked, last_changed, last_run, spec, first_seen) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?10) \
     ON CONFLICT (url) DO UPDATE SET status = ?2, error = ?3, final_url = ?4, title = ?5, \
     body_sha256 = ?6, extracted = ?7, etag = ?8, last_modified = ?9, last_checked = ?10, \
     last_changed = ?11, last_run = ?12, spec = ?13";

pub const CHANGE: &str =
    "INSERT INTO changes (run, url, field, old, new, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The run's figures, kept up to date with every commit: `rows` counts the leading rows of the
/// run's output that the state has recorded (which is what `--resume` keeps of the file).
pub const RUN_FIGURES: &str = "UPDATE runs SET rows = ?2, errors = ?3, new = ?4, same = ?5, \
     changed = ?6, not_modified = ?7 WHERE id = ?1";
