//! Record: the writer's side of the state. [`Recorder`] compares each row with the state just
//! before it is written (filling the change cells), keeps what the row changes until the row
//! has reached the output, and then hands it to the committer thread, which applies it in
//! batched transactions together with the run's figures.
//!
//! The order is what keeps file and state consistent after a crash: a row is committed only
//! after its bytes left the process, and rows are committed in the order they were written, so
//! the rows the state recorded are always a leading part of the output file (which `--resume`
//! keeps, fetching the rest again).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, Transaction, params};

use super::compare::{Tracking, Update, Verdict, judge, update};
use super::{Figures, State, count, schema, state_error};
use crate::error::Error;
use crate::output::RowObserver;
use crate::row::{ChangeKind, Row, timestamp};
use crate::stop::StopReason;

/// Rows written but not yet known to have reached the output, beyond which the recorder asks
/// the writer to flush: bounds the memory they hold.
const MOST_WAITING: usize = 4096;

/// Batches on their way to the committer: when it falls behind, the writer waits, and the
/// whole pipeline with it.
const BATCHES_QUEUED: usize = 16;

/// A written row, waiting to be known out.
struct Waiting {
    update: Option<Update>,
    failed: bool,
    kind: Option<ChangeKind>,
}

/// What the committer applies in one go.
struct Batch {
    updates: Vec<Update>,
    /// The run's figures over every row recorded so far, these included.
    figures: Figures,
    /// The run is over, for this reason (`None`: complete).
    end: Option<Option<StopReason>>,
}

/// Sees rows on the writer's thread; see the module's documentation.
pub(crate) struct Recorder {
    tracking: Arc<Tracking>,
    /// The verdict of the row being written, from `before_write` to `after_write`.
    verdict: Option<Verdict>,
    waiting: VecDeque<Waiting>,
    /// Rows of this run known to have reached the output, all handed to the committer.
    out: u64,
    figures: Figures,
    to_committer: Option<Sender<Batch>>,
    committer: Option<JoinHandle<Result<(), Error>>>,
}

impl Recorder {
    /// Starts the committer on `state` for `run`, whose figures start at `carried` (the rows
    /// a resumed file kept).
    pub(crate) fn start(
        state: State,
        run: i64,
        tracking: Arc<Tracking>,
        carried: Figures,
    ) -> Result<Recorder, Error> {
        let (tx, rx) = crossbeam_channel::bounded(BATCHES_QUEUED);
        let (path, conn, lock) = state.into_parts();
        let committer = std::thread::Builder::new()
            .name("fetch-state".into())
            .spawn(move || {
                let committed = Committer { conn, path, run }.commit_all(&rx);
                drop(lock); // After the connection (the recall thread holds another share).
                committed
            })
            .map_err(Error::Thread)?;
        Ok(Recorder {
            tracking,
            verdict: None,
            waiting: VecDeque::new(),
            out: 0,
            figures: carried,
            to_committer: Some(tx),
            committer: Some(committer),
        })
    }

    fn send(&mut self, batch: Batch) -> Result<(), Error> {
        let sent = self
            .to_committer
            .as_ref()
            .is_some_and(|tx| tx.send(batch).is_ok());
        if sent {
            return Ok(());
        }
        // The committer stopped: its error says why.
        self.to_committer = None;
        self.join()
    }

    fn join(&mut self) -> Result<(), Error> {
        match self.committer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Internal("the state thread panicked")),
            None => Ok(()),
        }
    }
}

impl RowObserver for Recorder {
    fn before_write(&mut self, row: &mut Row) {
        self.verdict = judge(row, &self.tracking);
    }

    fn after_write(&mut self, row: Row) {
        let failed = row.error.is_some();
        let kind = row.change.as_ref().map(|c| c.kind);
        let update = self
            .verdict
            .take()
            .and_then(|verdict| update(row, verdict, &self.tracking));
        self.waiting.push_back(Waiting {
            update,
            failed,
            kind,
        });
    }

    fn reached(&mut self, rows: u64) -> Result<(), Error> {
        if rows <= self.out {
            return Ok(());
        }
        let arrived = usize::try_from(rows - self.out).unwrap_or(usize::MAX);
        let mut updates = Vec::with_capacity(arrived.min(self.waiting.len()));
        for written in self.waiting.drain(..arrived.min(self.waiting.len())) {
            let f = &mut self.figures;
            f.rows += 1;
            f.errors += u64::from(written.failed);
            match written.kind {
                Some(ChangeKind::New) => f.new += 1,
                Some(ChangeKind::Same) => f.same += 1,
                Some(ChangeKind::Changed) => f.changed += 1,
                Some(ChangeKind::NotModified) => f.not_modified += 1,
                None => {}
            }
            updates.extend(written.update);
        }
        self.out = rows;
        let figures = self.figures;
        self.send(Batch {
            updates,
            figures,
            end: None,
        })
    }

    fn wants_flush(&self) -> bool {
        self.waiting.len() >= MOST_WAITING
    }

    fn finish(mut self: Box<Self>, rows: u64, stopped: Option<StopReason>) -> Result<(), Error> {
        self.reached(rows)?;
        let figures = self.figures;
        self.send(Batch {
            updates: Vec::new(),
            figures,
            end: Some(stopped),
        })?;
        self.to_committer = None;
        self.join()
    }
}

/// The committer thread: the state's one writing connection.
struct Committer {
    conn: Connection,
    path: PathBuf,
    run: i64,
}

impl Committer {
    /// Applies batches as they come, all those waiting in one transaction, until the last.
    fn commit_all(mut self, batches: &Receiver<Batch>) -> Result<(), Error> {
        while let Ok(first) = batches.recv() {
            let path = self.path.clone();
            let fail = |e: rusqlite::Error| state_error(&path, &e);
            let run = self.run;
            let tx = self.conn.transaction().map_err(fail)?;
            let mut batch = first;
            loop {
                apply(&tx, run, &batch.updates).map_err(fail)?;
                if batch.end.is_some() {
                    break;
                }
                match batches.try_recv() {
                    Ok(next) => batch = next,
                    Err(_) => break,
                }
            }
            let f = batch.figures;
            tx.execute(
                schema::RUN_FIGURES,
                params![
                    run,
                    count(f.rows),
                    count(f.errors),
                    count(f.new),
                    count(f.same),
                    count(f.changed),
                    count(f.not_modified)
                ],
            )
            .map_err(fail)?;
            if let Some(stopped) = batch.end {
                let outcome = stopped.map_or("complete", StopReason::name);
                tx.execute(
                    "UPDATE runs SET ended_at = ?2, outcome = ?3 WHERE id = ?1",
                    params![run, timestamp(SystemTime::now()), outcome],
                )
                .map_err(fail)?;
                tx.commit().map_err(fail)?;
                return Ok(());
            }
            tx.commit().map_err(fail)?;
        }
        Ok(())
    }
}

/// Writes each URL's new record and its changes.
fn apply(tx: &Transaction<'_>, run: i64, updates: &[Update]) -> rusqlite::Result<()> {
    let mut update_known = tx.prepare_cached(schema::UPDATE)?;
    let mut insert = tx.prepare_cached(schema::INSERT)?;
    let mut change = tx.prepare_cached(schema::CHANGE)?;
    for u in updates {
        let r = &u.record;
        let at = timestamp(u.at);
        let last_changed = timestamp(r.last_changed);
        let status = r.status.map(i64::from);
        let fields = params![
            status,
            r.error,
            r.final_url,
            r.title,
            r.body_sha256,
            r.extracted,
            r.validators.etag,
            r.validators.last_modified,
            at,
            last_changed,
            run,
            r.spec,
        ];
        let updated = match u.id {
            // A record deleted by hand since the lookup is written anew.
            Some(id) => {
                update_known.execute(rusqlite::params_from_iter(
                    std::iter::once(&id as &dyn rusqlite::ToSql).chain(fields.iter().copied()),
                ))? > 0
            }
            None => false,
        };
        if !updated {
            insert.execute(rusqlite::params_from_iter(
                std::iter::once(&u.key as &dyn rusqlite::ToSql).chain(fields.iter().copied()),
            ))?;
        }
        for (field, old, new) in &u.changes {
            change.execute(params![run, u.key, field, old, new, at])?;
        }
    }
    Ok(())
}
