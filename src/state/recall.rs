//! Recall: looks each URL up in the state as its line comes from the input, and attaches what
//! the state knew of it (and, for a conditional request, the validators to send).
//!
//! A thread of its own between the input thread and the dispatcher, because every SQLite call
//! blocks. It takes the jobs that are ready (up to [`BATCH`]) and looks them up in one read
//! transaction, so a long list costs one transaction per batch, not per line, and a slow trickle
//! on stdin is never held back waiting for a batch to fill.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::mpsc;

use super::compare::{Tracking, parse_values};
use super::schema;
use crate::error::Error;
use crate::input::{Handover, Job};
use crate::redact::redact_url;
use crate::row::{Conditions, Known, Tracked, Validators};

/// Most jobs looked up in one read transaction.
const BATCH: usize = 256;

/// How the recall stage works: what to look up, and whether to make requests conditional.
pub(crate) struct Recall {
    pub conn: Connection,
    /// The state's lock, released after `conn` is closed (fields drop in order).
    #[allow(dead_code)] // Held, never read.
    pub lock: Arc<std::fs::File>,
    pub path: std::path::PathBuf,
    pub tracking: Arc<Tracking>,
    pub conditional: bool,
}

/// Starts the recall thread between `jobs` (from the input) and the returned receiver (for the
/// dispatcher). The thread ends when the input ends or the dispatcher stops listening.
pub(crate) fn spawn_recall(
    recall: Recall,
    mut jobs: mpsc::Receiver<Result<Job, Error>>,
    capacity: usize,
) -> std::io::Result<mpsc::Receiver<Result<Job, Error>>> {
    let (tx, rx) = mpsc::channel(capacity);
    std::thread::Builder::new()
        .name("fetch-recall".into())
        .spawn(move || {
            let mut handover = Handover::new(&tx);
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = jobs.blocking_recv() {
                batch.push(first);
                while batch.len() < BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                if let Err(e) = recall.look_up(&mut batch) {
                    handover.send(Err(e));
                    return;
                }
                for job in batch.drain(..) {
                    if !handover.send(job) {
                        return; // The run stopped.
                    }
                }
            }
        })?;
    Ok(rx)
}

impl Recall {
    /// Attaches the state's record to every job with a URL, in one read transaction.
    fn look_up(&self, batch: &mut [Result<Job, Error>]) -> Result<(), Error> {
        let fail = |e: rusqlite::Error| super::state_error(&self.path, &e);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        {
            let mut lookup = tx.prepare_cached(schema::LOOKUP).map_err(fail)?;
            for job in batch.iter_mut().filter_map(|job| job.as_mut().ok()) {
                let Ok(url) = &job.target else {
                    continue;
                };
                let key = redact_url(url).into_owned();
                let known = lookup
                    .query_row([&key], known_from_row)
                    .optional()
                    .map_err(fail)?;
                let conditions = known.as_ref().and_then(|k| self.conditions(k));
                job.tracked = Some(Box::new(Tracked {
                    key,
                    known,
                    conditions,
                }));
            }
        }
        tx.commit().map_err(fail)
    }

    /// The validators to send: only when the stored content is what this run would extract
    /// from a full response (a 304 carries it into the row), and only to the final URL they
    /// came from.
    fn conditions(&self, known: &Known) -> Option<Arc<Conditions>> {
        let usable = self.conditional
            && known.body_sha256.is_some()
            && known.spec == self.tracking.spec
            && !known.validators.is_empty();
        if !usable {
            return None;
        }
        Some(Arc::new(Conditions {
            url: known.final_url.clone()?,
            validators: known.validators.clone(),
        }))
    }
}

/// A row of [`schema::LOOKUP`] as a record.
fn known_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Known> {
    let extracted: Option<String> = row.get(6)?;
    let last_changed: Option<String> = row.get(9)?;
    Ok(Known {
        id: row.get(0)?,
        status: row
            .get::<_, Option<i64>>(1)?
            .and_then(|s| u16::try_from(s).ok()),
        error: row.get(2)?,
        final_url: row.get(3)?,
        title: row.get(4)?,
        body_sha256: row.get(5)?,
        values: parse_values(extracted.as_deref()),
        validators: Validators {
            etag: row.get(7)?,
            last_modified: row.get(8)?,
        },
        last_changed: last_changed.and_then(|t| humantime::parse_rfc3339_weak(&t).ok()),
        spec: row.get::<_, Option<i64>>(10)?.unwrap_or(0),
    })
}
