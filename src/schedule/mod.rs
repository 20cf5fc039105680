//! Schedule: decides when each job starts, under every limit, and makes sure each one ends as
//! exactly one row.
//!
//! One dispatcher task owns all scheduling state, so none of it needs a lock. It reads jobs into
//! per-origin queues ([`hosts`]), and starts a request task only when all of these allow it:
//! 1. the global concurrency limit (a request task exists only while it holds a slot, so a
//!    ten-million-line list never becomes ten million parked tasks);
//! 2. the host's own concurrency limit and any `Retry-After` pause; a job waiting for its host
//!    holds no global slot and does not stall jobs of other hosts behind it;
//! 3. the per-host rate (governor's keyed limiter, burst of one, so starts are spread evenly)
//!    and then the global rate ([`pace`]: a grid of start slots with a window guard). Retries
//!    and redirect hops come back through the same path (a hop under the host it goes to), so
//!    every request start obeys every limit, and a task never waits on a limit while holding a
//!    slot.
//!
//! Reading ahead is bounded: while every global slot is busy only a small buffer of jobs is kept
//! queued; only when slots are free but the queued jobs' hosts are all busy does the dispatcher
//! read further, up to [`LOOKAHEAD`] jobs, looking for another host. Rows go to the writer over a
//! bounded channel that tasks wait on. So memory depends on the limits, never on the list.
//!
//! Every wait listens to [`Stop`]: once a run is stopped, nothing new starts, requests in flight
//! end at once as `cancelled` (or `deadline`) rows, and jobs waiting for a retry or a redirect
//! hop are written with their last outcome. Jobs never attempted get no row, exactly like lines
//! not yet read.

mod hosts;
mod outbox;
mod pace;
mod rate;
mod reports;
mod retry;
mod robots;
mod task;

pub use self::rate::Rate;
pub use self::retry::{BACKOFF_CAP, RetryPolicy, Verdict};
pub use self::robots::{MAX_ROBOTS_BYTES, MAX_ROBOTS_REDIRECTS, RobotsPolicy, product_token};

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use self::hosts::{HostKey, Hosts, Pending};
pub(crate) use self::outbox::BATCH as ROW_BATCH;
use self::outbox::Outbox;
use self::pace::Pacer;
use self::reports::Reports;
use crate::error::Error;
use crate::extract::ExtractPool;
use crate::fetch::Transport;
use crate::input::Job;
use crate::output::OrderGate;
use crate::row::Row;
use crate::stop::{Listener, Stop, StopReason};

/// Most jobs read ahead and queued per host. Bounds memory (a few hundred bytes per job) while
/// letting a slow host's backlog sit aside as later lines for other hosts go ahead.
pub const LOOKAHEAD: usize = 10_000;

/// Jobs kept queued while every slot is busy, so a freed slot never waits for the input thread.
const BUFFER_PER_SLOT: usize = 2;

/// Longest the first requests wait for the input to fill the look-ahead (or end). Started on
/// the first line read, they would decide with one line in view: a list's first host would
/// take every slot, a connection each, and the first requests of one-URL hosts would keep
/// their connections open for lines that never come.
const WARM_UP: Duration = Duration::from_millis(20);

/// How often keys whose rate limit has run out are dropped from the per-host rate limiter. Often
/// enough that a list of millions of distinct hosts keeps only the last second or so of them.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

type KeyedLimiter = RateLimiter<
    HostKey,
    DefaultKeyedStateStore<HostKey>,
    MonotonicClock,
    NoOpMiddleware<std::time::Instant>,
>;

/// The rate limiters. Every request start passes them in the dispatcher: first requests,
/// retries and redirect hops alike.
struct Limiters {
    global: Option<Pacer>,
    per_host: Option<KeyedLimiter>,
}

/// A smooth quota: one start per interval, burst of one, so no second's worth of requests goes
/// out at once when a run (or a host) starts.
fn smooth(rate: Rate) -> Quota {
    Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN)
}

impl Limiters {
    /// Uses the std monotonic clock, not governor's default TSC clock, which has been seen to
    /// misbehave across cores.
    fn new(limits: &Limits) -> Limiters {
        Limiters {
            global: limits.rate.map(Pacer::new),
            per_host: limits.per_host_rate.map(|rate| {
                RateLimiter::new(
                    smooth(rate),
                    DefaultKeyedStateStore::default(),
                    MonotonicClock,
                )
            }),
        }
    }
}

/// When requests may start: the scheduler's settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most requests in flight at once.
    pub concurrency: NonZeroUsize,
    /// Ceiling on request starts, shared by all requests; `None` for unlimited.
    pub rate: Option<Rate>,
    /// Most requests in flight to one origin (scheme, host, port); `None`: only `concurrency`.
    pub per_host_concurrency: Option<NonZeroUsize>,
    /// Ceiling on request starts to one origin.
    pub per_host_rate: Option<Rate>,
    pub retry: RetryPolicy,
    /// Deadline for the whole run.
    pub max_time: Option<Duration>,
    /// `--robots`: fetch each origin's robots.txt first, and obey it.
    pub robots: Option<RobotsPolicy>,
}

/// What became of the robots.txt requests, as they happen (for the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotsEvent {
    /// A robots.txt request was made (each retry and redirect hop counts).
    Requested,
    /// An origin's robots.txt was found and parsed.
    Found,
    /// An origin has none (4xx, too many redirects): everything allowed.
    Missing,
    /// An origin's could not be had (5xx, no connection): everything disallowed for now.
    Unreachable,
}

/// Where robots.txt events are told; see [`RobotsEvent`].
pub type RobotsTally = Arc<dyn Fn(RobotsEvent) + Send + Sync>;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: NonZeroUsize::new(50).unwrap_or(NonZeroUsize::MIN),
            rate: None,
            per_host_concurrency: None,
            per_host_rate: None,
            retry: RetryPolicy::default(),
            max_time: None,
            robots: None,
        }
    }
}

impl Limits {
    /// Most requests that may be in flight to one origin at once: what the connection pool
    /// keeps idle for it, at most.
    pub fn per_origin(&self) -> NonZeroUsize {
        self.per_host_concurrency
            .map_or(self.concurrency, |per_host| per_host.min(self.concurrency))
    }
}

/// What a request task hands each job to: the request, then the extraction of what its body
/// left.
pub(crate) struct Work {
    pub fetcher: Arc<dyn Transport>,
    /// Where captured bodies are parsed: off the async workers.
    pub extract: ExtractPool,
}

/// What request tasks share.
struct Shared {
    fetcher: Arc<dyn Transport>,
    /// Where captured bodies are parsed: off the async workers, one thread per core.
    extract: ExtractPool,
    retry: RetryPolicy,
    deadline: Option<Instant>,
    rows: Outbox,
    done: Reports<Report>,
    stop: Stop,
    /// `--robots`: whose robots.txt is fetched, where its events are told, and the files
    /// parsed so far.
    robots: Option<(RobotsPolicy, RobotsTally, Arc<robots::Interned>)>,
}

impl Shared {
    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// A request task's report to the dispatcher, with the stop listener it was lent.
struct Report {
    stop: Listener,
    done: Done,
}

/// How a job's request went. `ran_on` is the host whose slot the task held.
enum Done {
    /// The job has its row; its slots are free. With a pause, the host asked for one
    /// (`Retry-After` on a 429/503) and none of its jobs start before then.
    Finished(HostKey, Option<Instant>),
    /// The job goes on: a redirect to follow, or a retry (`job.not_before` says when). With
    /// `pause_until`, `ran_on` asked for a pause (`Retry-After` on a 429/503).
    Again {
        ran_on: HostKey,
        job: Box<Pending>,
        pause_until: Option<Instant>,
    },
    /// A host's robots.txt request ended: its rules (`None` when the run stopped first).
    Rules {
        key: HostKey,
        rules: Option<Arc<robots::Rules>>,
        pause_until: Option<Instant>,
    },
}

/// Runs every job to a row. Returns when the input is exhausted (or the run stopped) and every
/// task it started has sent its row.
///
/// The dispatcher runs as a task of its own on the runtime's workers, not on the caller's
/// thread: every finished request reports to it, and waking a worker that is already running is
/// far cheaper than waking a parked `block_on` thread tens of thousands of times a second.
#[allow(clippy::too_many_arguments)] // The stages it drives, each wired in by lib.rs.
pub(crate) async fn run(
    limits: &Limits,
    work: Work,
    order: Option<Arc<OrderGate>>,
    jobs: mpsc::Receiver<Result<Job, Error>>,
    rows: mpsc::Sender<Vec<Row>>,
    stop: Stop,
    deadline: Option<Instant>,
    robots_tally: RobotsTally,
) -> Result<(), Error> {
    let concurrency = limits.concurrency.get();
    let shared = Arc::new(Shared {
        fetcher: work.fetcher,
        extract: work.extract,
        retry: limits.retry,
        deadline,
        rows: Outbox::new(rows),
        done: Reports::new(),
        stop,
        robots: limits
            .robots
            .clone()
            .map(|policy| (policy, robots_tally, Arc::default())),
    });
    let per_host = limits.per_host_concurrency.map_or(usize::MAX, |n| n.get());
    let mut dispatcher = Dispatcher {
        shared: Arc::clone(&shared),
        limiters: Limiters::new(limits),
        order,
        next_seq: 0,
        hosts: Hosts::new(per_host, limits.robots.is_some()),
        refused: Vec::new(),
        key_scratch: String::new(),
        staged: None,
        input_open: true,
        input_waiting: false,
        warm_up: Some(Instant::now() + WARM_UP),
        in_flight: 0,
        listeners: Vec::new(),
        concurrency,
        tasks: TaskTracker::new(),
        housekept: Instant::now(),
        reports: Vec::new(),
    };
    tokio::spawn(async move { dispatcher.run(jobs).await })
        .await
        .unwrap_or_else(|_| Err(Error::Internal("the dispatcher panicked")))
}

struct Dispatcher {
    shared: Arc<Shared>,
    limiters: Limiters,
    /// `--ordered`: reading stops this far ahead of the oldest row not yet written.
    order: Option<Arc<OrderGate>>,
    /// Sequence number of the next line to be read.
    next_seq: u64,
    hosts: Hosts,
    /// `--robots`: rows of jobs the rules refused, to be sent.
    refused: Vec<Row>,
    /// Where a line's host key is spelled out to be looked up.
    key_scratch: String,
    /// A job that passed its host's limits but is waiting for the global rate, and when the
    /// global rate allows the next start.
    staged: Option<(Box<Pending>, bool, Instant)>,
    /// The input may bring more lines.
    input_open: bool,
    /// Lines are waiting in the input channel now.
    input_waiting: bool,
    /// Until when the first requests wait for the input to fill the look-ahead (see
    /// [`WARM_UP`]); `None` once they have started.
    warm_up: Option<Instant>,
    in_flight: usize,
    /// Stop listeners not lent to a request task. A task per request with a listener of its
    /// own would register one per request; lending them out keeps it to one per slot.
    listeners: Vec<Listener>,
    concurrency: usize,
    tasks: TaskTracker,
    housekept: Instant,
    /// Where the tasks' reports are taken to be read (kept, so that taking them never
    /// allocates).
    reports: Vec<Report>,
}

impl Dispatcher {
    async fn run(&mut self, mut jobs: mpsc::Receiver<Result<Job, Error>>) -> Result<(), Error> {
        let result = self.dispatch_all(&mut jobs).await;
        if result.is_err() {
            self.shared.stop.trigger(StopReason::Failed);
        }
        // Dropping the receiver tells the input thread to stop reading.
        drop(jobs);
        self.finish().await;
        result
    }

    async fn dispatch_all(
        &mut self,
        jobs: &mut mpsc::Receiver<Result<Job, Error>>,
    ) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let stop = self.shared.stop.listener();
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            for row in std::mem::take(&mut self.refused) {
                self.shared.rows.put(row);
            }
            self.shared.rows.send().await;
            let now = Instant::now();
            self.hosts.fire_timers(now);
            self.input_waiting = self.input_open && !jobs.is_empty();
            self.start_what_may_start(now);
            self.housekeeping(now);
            if !self.input_open && self.is_idle() {
                return Ok(());
            }
            let wake = self.next_wake();
            if let Some(at) = wake {
                timer.as_mut().reset(at);
            }
            // The writer thread moves the order gate at any time: read it once, so that reading
            // on and waiting for the gate are never both off (which waited forever).
            let admitted = self.order_admits();
            let accepting = self.input_open && admitted && self.wants_input();
            let held_by_order = self.input_open && !admitted;
            let order = self.order.clone();
            tokio::select! {
                biased;
                () = stop.stopped() => return Ok(()),
                () = async { if let Some(gate) = &order { gate.moved().await } }, if held_by_order => {}
                // One clock read for all the reports ready now (and below, for all the lines).
                () = shared.done.arrived() => {
                    let now = Instant::now();
                    let mut reports = std::mem::take(&mut self.reports);
                    shared.done.take(&mut reports);
                    for report in reports.drain(..) {
                        self.on_done(report, now);
                    }
                    self.reports = reports;
                }
                () = &mut timer, if wake.is_some() => {}
                job = jobs.recv(), if accepting => match job {
                    None => self.input_open = false,
                    Some(job) => {
                        let now = Instant::now();
                        self.accept(job?, now);
                        // Take what else is ready, so decisions below see a full look-ahead.
                        while self.wants_input() {
                            match jobs.try_recv() {
                                Ok(job) => self.accept(job?, now),
                                Err(mpsc::error::TryRecvError::Empty) => break,
                                Err(mpsc::error::TryRecvError::Disconnected) => {
                                    self.input_open = false;
                                    break;
                                }
                            }
                        }
                    }
                },
            }
        }
    }

    /// Whether reading another line could help: always up to a small buffer; beyond it only while
    /// slots are free (the queued jobs' hosts are busy, so look further for other hosts).
    fn wants_input(&self) -> bool {
        let queued = self.hosts.queued();
        let helps = queued < self.concurrency * BUFFER_PER_SLOT
            || (self.in_flight < self.concurrency && queued < LOOKAHEAD);
        helps && self.order_admits()
    }

    /// With `--ordered`, whether the next line is inside the reorder window.
    fn order_admits(&self) -> bool {
        self.order
            .as_ref()
            .is_none_or(|gate| gate.admits(self.next_seq))
    }

    /// Whether a host with nothing queued may still have lines coming soon, so its connection
    /// is worth keeping: not once the input has ended, nor while the queues hold a full
    /// look-ahead of it.
    fn more_may_come(&self) -> bool {
        self.input_open && self.hosts.queued() < (self.concurrency * BUFFER_PER_SLOT / 2).max(1)
    }

    /// Whether the first requests still wait for the input (see [`WARM_UP`]).
    fn warming_up(&mut self, now: Instant) -> bool {
        let Some(until) = self.warm_up else {
            return false;
        };
        let filled = self.hosts.queued() >= self.concurrency * BUFFER_PER_SLOT;
        if now < until && self.input_open && !filled {
            return true;
        }
        self.warm_up = None;
        false
    }

    /// Whether a host with requests in flight may start another beside them: not while
    /// reading on could bring a host with none (whose request does not cost a connection that
    /// waiting would have saved).
    fn may_share(&self) -> bool {
        !(self.input_waiting && self.wants_input())
    }

    fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.hosts.queued() == 0 && self.staged.is_none()
    }

    fn next_wake(&self) -> Option<Instant> {
        let global = self.staged.as_ref().map(|(_, _, at)| *at);
        [self.hosts.next_timer(), global, self.warm_up]
            .into_iter()
            .flatten()
            .min()
    }

    /// A line from the input: bad ones go straight to the writer, good ones to their host.
    fn accept(&mut self, job: Job, now: Instant) {
        let Job {
            line,
            seq,
            read_at,
            text,
            target,
            tracked,
        } = job;
        self.next_seq = seq + 1;
        match target {
            Err(failure) => {
                let row = Row {
                    seq,
                    ..Row::unrequested(line, text, failure)
                };
                self.shared.rows.put(row);
            }
            Ok(url) => {
                let key = self.hosts.key_of(&url, &mut self.key_scratch);
                let queued_at = Instant::from_std(read_at);
                let pending = Box::new(Pending::new(line, seq, text, url, key, queued_at, tracked));
                if let Some(refused) = self.hosts.push(pending, now) {
                    self.refuse(refused);
                }
            }
        }
    }

    /// Starts jobs while global slots are free and the limits allow.
    fn start_what_may_start(&mut self, now: Instant) {
        // The deadline watcher may not have run yet: never start past the deadline regardless.
        if self.shared.deadline.is_some_and(|deadline| now >= deadline) {
            self.shared.stop.trigger(StopReason::Deadline);
            return;
        }
        if self.warming_up(now) {
            return;
        }
        while self.in_flight < self.concurrency {
            let (job, keep_alive) = match self.staged.take() {
                Some((job, keep_alive, _)) => (job, keep_alive),
                None => match self.next_for_a_host(now) {
                    Some(next) => next,
                    None => return,
                },
            };
            if let Some(global) = &mut self.limiters.global
                && let Err(at) = global.try_start(now)
            {
                self.staged = Some((job, keep_alive, at));
                return;
            }
            self.in_flight += 1;
            let shared = Arc::clone(&self.shared);
            let stop = self
                .listeners
                .pop()
                .unwrap_or_else(|| self.shared.stop.listener());
            self.tasks
                .spawn(task::attempt(shared, stop, job, keep_alive));
        }
    }

    /// The next job whose host allows a start now (concurrency, pause, per-host rate).
    fn next_for_a_host(&mut self, now: Instant) -> Option<(Box<Pending>, bool)> {
        loop {
            let key = self.hosts.next_ready(now, self.may_share())?;
            if let Some(per_host) = &self.limiters.per_host
                && let Err(not_until) = per_host.check_key(&key)
            {
                self.hosts
                    .defer(&key, Instant::from_std(not_until.earliest_possible()));
                continue;
            }
            if let Some((job, more)) = self.hosts.take(&key, now) {
                return Some((job, more || self.more_may_come()));
            }
        }
    }

    fn on_done(&mut self, report: Report, now: Instant) {
        self.in_flight -= 1;
        self.listeners.push(report.stop);
        match report.done {
            Done::Finished(key, pause_until) => self.hosts.finished(&key, pause_until, now),
            Done::Again {
                ran_on,
                job,
                pause_until,
            } => {
                if let Some(refused) = self.hosts.requeue(&ran_on, job, pause_until, now) {
                    self.refuse(refused);
                }
            }
            Done::Rules {
                key,
                rules,
                pause_until,
            } => {
                self.hosts.finished(&key, pause_until, now);
                if let Some(rules) = rules {
                    for refused in self.hosts.set_rules(&key, rules, now) {
                        self.refuse(refused);
                    }
                }
            }
        }
    }

    /// A job its host's robots.txt refuses: its row, without a request.
    fn refuse(&mut self, (mut job, why): hosts::Refused) {
        self.refused.push(task::refused_row(&mut job, why));
    }

    /// Forgets per-host rate state of hosts not seen for a while, so a list of millions of hosts
    /// does not keep a limiter entry for each.
    fn housekeeping(&mut self, now: Instant) {
        if now.duration_since(self.housekept) < HOUSEKEEPING {
            return;
        }
        self.housekept = now;
        if let Some(per_host) = &self.limiters.per_host {
            per_host.retain_recent();
            per_host.shrink_to_fit();
        }
    }

    /// After the loop: waits for the tasks in flight, then writes rows for jobs that were
    /// attempted but are waiting for a retry that will not happen now.
    async fn finish(&mut self) {
        self.tasks.close();
        self.tasks.wait().await;
        let mut leftovers = self.hosts.drain_attempted();
        leftovers.extend(self.staged.take().map(|(job, _, _)| job));
        let mut reports = Vec::new();
        self.shared.done.take(&mut reports);
        for report in reports {
            if let Done::Again { job, .. } = report.done {
                leftovers.push(job);
            }
        }
        for mut job in leftovers {
            if let Some(row) = task::unfinished_row(&mut job) {
                self.shared.rows.put(row);
            }
        }
        self.shared.rows.send().await;
    }
}
