//! Per-origin queues: where a job waits while its host is busy, paused or rate-limited (or its
//! robots.txt is being fetched, or its Crawl-delay runs), without holding a global slot and
//! without stalling jobs for other hosts.
//!
//! The table only ever holds hosts with queued or running jobs, or a pause still running (a
//! `Retry-After`, or a Crawl-delay since the last request start), so its size is bounded by the
//! scheduler's look-ahead window and the longest pause, not by the number of distinct hosts in
//! the list. Hosts that can start a job now sit in one of two ready lists: `ready` for those
//! with nothing in flight (hosts that have made a request before at its front, as their
//! connection may still be open), `busy`, round-robin, for those with room beside requests in
//! flight. Hosts that will be able to later (pause, retry backoff, per-host rate) sit on a timer
//! heap.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;
use url::{Position, Url};

use super::robots::{CACHE_WEIGHT, Rules, RulesCache, robots_url};
use crate::fetch::Attempt;
use crate::row::Tracked;

/// An origin: `scheme://host:port`, with the port always spelled out so that `http://a/` and
/// `http://a:80/` share limits. Shared, because it is cloned into queues and timers.
pub(crate) type HostKey = Arc<str>;

pub(crate) fn host_key(url: &Url) -> HostKey {
    let mut spelled = String::new();
    Arc::from(spell_host_key(url, &mut spelled))
}

/// `url`'s host key: the start of the URL's own text when that is it (a port that is not the
/// scheme's default, which the url crate always keeps, and no credentials), else spelled out
/// in `out`, replacing what was there.
fn spell_host_key<'a>(url: &'a Url, out: &'a mut String) -> &'a str {
    if url.port().is_some() && url.username().is_empty() && url.password().is_none() {
        return &url[..Position::AfterPort];
    }
    out.clear();
    out.push_str(url.scheme());
    out.push_str("://");
    out.push_str(url.host_str().unwrap_or_default());
    out.push(':');
    let port = url.port_or_known_default().unwrap_or_default();
    out.push_str(itoa::Buffer::new().format(port));
    out
}

/// A line on its way to a row: queued, in flight, or waiting to be retried.
#[derive(Debug)]
pub(crate) struct Pending {
    pub line: u64,
    pub seq: u64,
    pub text: String,
    pub url: Url,
    pub key: HostKey,
    /// Attempts made so far.
    pub attempts: u32,
    /// A retry must not start before this.
    pub not_before: Option<Instant>,
    /// Since when the job has been waiting to start: when it was read, or when its retry became
    /// due. What it waits from here on is time spent on limits (`queue_ms`).
    pub queued_at: Instant,
    /// The previous attempt, so a retry cut off by a stop still has a row to show.
    pub last: Option<Box<Attempt>>,
    /// A redirect chain in progress: the next URL to request, and the attempt so far.
    pub hop: Option<(Url, Box<Attempt>)>,
    /// `--state`: what the state knew of the URL; goes on to the row.
    pub tracked: Option<Box<Tracked>>,
    /// `--robots`: this job fetches its host's robots.txt; it is a request, not a line.
    pub robots: bool,
}

impl Pending {
    /// A job not yet attempted: a line read (`robots` is for the caller to set).
    pub(crate) fn new(
        line: u64,
        seq: u64,
        text: String,
        url: Url,
        key: HostKey,
        queued_at: Instant,
        tracked: Option<Box<Tracked>>,
    ) -> Pending {
        Pending {
            line,
            seq,
            text,
            url,
            key,
            attempts: 0,
            not_before: None,
            queued_at,
            last: None,
            hop: None,
            tracked,
            robots: false,
        }
    }

    /// The URL the job's next request goes to: the redirect hop's, else its own.
    pub(crate) fn next_url(&self) -> &Url {
        self.hop.as_ref().map_or(&self.url, |(url, _)| url)
    }
}

/// `--robots`: where a host's robots.txt stands.
#[derive(Debug, Default)]
enum Robots {
    /// Not asked for (`--robots` is off).
    #[default]
    Unneeded,
    /// Being fetched: the host's other jobs wait.
    Fetching,
    Known(Arc<Rules>),
}

/// A job the host's robots.txt refuses, with why: it gets a row without a request.
pub(crate) type Refused = (Box<Pending>, String);

/// The ready lists: hosts with nothing in flight come first, as a request to a host that
/// has one in flight needs a connection of its own (HTTP/1.1) where the host's one in use
/// would serve it a moment later.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Listed {
    #[default]
    No,
    /// Nothing in flight: `Hosts::ready`.
    Idle,
    /// Requests in flight, room for more: `Hosts::busy`.
    Busy,
}

#[derive(Debug, Default)]
struct Host {
    /// New jobs, in input order. Boxed: most hosts in a long list have one job, and a queue of
    /// unboxed jobs would reserve room for four of them per host.
    fresh: VecDeque<Box<Pending>>,
    /// Jobs coming back: retries, each with its own `not_before`, and redirect hops (due at
    /// once). Kept apart from `fresh` so a backing-off URL does not hold up the rest of its host,
    /// and taken first when due, as they are older.
    // Boxed like every job on its way through the scheduler: moving one is moving a pointer.
    #[allow(clippy::vec_box)]
    retries: Vec<Box<Pending>>,
    /// Jobs started (or staged to start) and not yet finished.
    active: usize,
    /// No job starts before this: the server sent `Retry-After` on a 429/503, or the host's
    /// Crawl-delay since its last request start has not passed. Kept in the table until then,
    /// so that a job coming back for the host still waits.
    paused_until: Option<Instant>,
    /// Which ready list the host is in, if any, and under which listing number: an entry of a
    /// list that does not carry both is stale.
    listed: Listed,
    listing: u64,
    /// The earliest timer registered for the host, if any.
    wake_at: Option<Instant>,
    robots: Robots,
    /// The robots.txt request, taken before anything else of the host.
    robots_job: Option<Box<Pending>>,
    /// When the host's last request started, if it has made one.
    last_start: Option<Instant>,
}

impl Host {
    /// Holds the host's jobs until `until`, or longer if a pause already runs past it.
    fn pause(&mut self, until: Option<Instant>) {
        if let Some(until) = until {
            self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
        }
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.fresh.is_empty()
            && self.retries.is_empty()
            && self.robots_job.is_none()
            && self.active == 0
            && self.paused_until.is_none_or(|until| until <= now)
    }

    /// When the host's next job could start, ignoring rate limits: `None` if it has no job it
    /// may start (none queued, or its robots.txt is in flight).
    fn next_start(&self, now: Instant) -> Option<Instant> {
        let job_at = match (&self.robots_job, &self.robots) {
            (Some(robots), _) => robots.not_before.unwrap_or(now),
            (None, Robots::Fetching) => return None,
            (None, _) => self.next_job(now)?,
        };
        Some(match self.paused_until {
            Some(until) => job_at.max(until),
            None => job_at,
        })
    }

    /// When the next queued job (not the robots request) is due.
    fn next_job(&self, now: Instant) -> Option<Instant> {
        if self.fresh.is_empty() {
            self.retries
                .iter()
                .map(|p| p.not_before.unwrap_or(now))
                .min()
        } else {
            Some(now)
        }
    }

    /// The job to start next: the robots.txt request, else a retry that is due, else the oldest
    /// fresh job.
    fn take_next(&mut self, now: Instant) -> Option<Box<Pending>> {
        if let Some(robots) = self.robots_job.take() {
            return Some(robots);
        }
        let due = self
            .retries
            .iter()
            .enumerate()
            .filter(|(_, p)| p.not_before.is_none_or(|t| t <= now))
            .min_by_key(|(_, p)| p.not_before)
            .map(|(i, _)| i);
        match due {
            Some(i) => Some(self.retries.swap_remove(i)),
            None => self.fresh.pop_front(),
        }
    }
}

pub(crate) struct Hosts {
    /// foldhash rather than SipHash: looked up several times per request, and the keys are the
    /// user's own list, not an attacker's.
    map: HashMap<HostKey, Host, foldhash::fast::RandomState>,
    /// Hosts that may start a job now and have none in flight: those that have made a request
    /// before first (their connection may still be open), then new ones in input order. An
    /// entry whose host's `listed` and `listing` say otherwise is stale and skipped.
    ready: VecDeque<(HostKey, u64)>,
    /// Hosts that may start a job now beside those in flight, round-robin. Taken from only
    /// when sharing is allowed, so stale entries pile up in between: they are swept out when
    /// they outnumber the hosts (50,000 hosts left 260,000 behind before).
    busy: VecDeque<(HostKey, u64)>,
    /// Listings made so far: the next entry's number.
    listings: u64,
    timers: BinaryHeap<Reverse<(Instant, HostKey)>>,
    per_host_limit: usize,
    /// Jobs queued across all hosts: fresh, retries and robots.txt requests.
    queued: usize,
    /// `--robots`: the rules of hosts forgotten for now.
    robots: Option<RulesCache>,
}

impl Hosts {
    /// Hosts with at most `per_host_limit` jobs running each; with `robots`, every host's
    /// robots.txt is fetched before its first job starts.
    pub(crate) fn new(per_host_limit: usize, robots: bool) -> Hosts {
        Hosts {
            map: HashMap::default(),
            ready: VecDeque::new(),
            busy: VecDeque::new(),
            listings: 0,
            timers: BinaryHeap::new(),
            per_host_limit,
            queued: 0,
            robots: robots.then(|| RulesCache::new(CACHE_WEIGHT)),
        }
    }

    /// Jobs waiting in queues (not in flight).
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// The key of `url`'s host: the one already in the table when the host has jobs queued or
    /// running, so a list that keeps to a few hosts allocates no key per line. `scratch` is
    /// where the key is spelled out for the lookup.
    pub(crate) fn key_of(&self, url: &Url, scratch: &mut String) -> HostKey {
        let spelled = spell_host_key(url, scratch);
        match self.map.get_key_value(spelled) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(spelled),
        }
    }

    /// Hosts with queued or running jobs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Queues a new job under its host. Returns it back when the host's robots.txt refuses it.
    pub(crate) fn push(&mut self, job: Box<Pending>, now: Instant) -> Option<Refused> {
        let key = Arc::clone(&job.key);
        let host = match self.map.entry(Arc::clone(&key)) {
            Entry::Occupied(known) => {
                let host = known.into_mut();
                if let Some(why) = refusal(host_rules(&host.robots), &job) {
                    return Some((job, why));
                }
                host
            }
            Entry::Vacant(vacant) => {
                let host = new_host(self.robots.as_mut(), &key, job.next_url());
                // Made into a table entry only for a job it takes: a host whose cached rules
                // refuse its one job would sit there with nothing to do, never evicted, its
                // rules held outside the cache's bound.
                if let Some(why) = refusal(host_rules(&host.robots), &job) {
                    return Some((job, why));
                }
                self.queued += usize::from(host.robots_job.is_some());
                vacant.insert(host)
            }
        };
        host.fresh.push_back(job);
        self.queued += 1;
        self.consider(&key, now);
        None
    }

    /// The host of `key`, made when new (see [`new_host`]).
    fn host(&mut self, key: &HostKey, url: &Url) -> &mut Host {
        match self.map.entry(Arc::clone(key)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(vacant) => {
                let host = new_host(self.robots.as_mut(), key, url);
                self.queued += usize::from(host.robots_job.is_some());
                vacant.insert(host)
            }
        }
    }

    /// `--robots`: the host's rules arrived (its robots.txt request has finished, see
    /// [`Hosts::finished`]). Its queued jobs may start now, but those the rules refuse, which
    /// are returned.
    #[allow(clippy::vec_box)]
    pub(crate) fn set_rules(
        &mut self,
        key: &HostKey,
        rules: Arc<Rules>,
        now: Instant,
    ) -> Vec<Refused> {
        let Some(host) = self.map.get_mut(key) else {
            return Vec::new();
        };
        // The robots.txt request was the host's first start: Crawl-delay counts from it.
        if let (Some(last), Some(delay)) = (host.last_start, rules.delay()) {
            host.pause(Some(last + delay));
        }
        host.robots = Robots::Known(Arc::clone(&rules));
        let mut refused = Vec::new();
        for job in std::mem::take(&mut host.fresh) {
            match rules.refusal(job.next_url()) {
                Some(why) => refused.push((job, why)),
                None => host.fresh.push_back(job),
            }
        }
        for job in std::mem::take(&mut host.retries) {
            match rules.refusal(job.next_url()) {
                Some(why) => refused.push((job, why)),
                None => host.retries.push(job),
            }
        }
        self.queued -= refused.len();
        self.consider(key, now);
        refused
    }

    /// A job of `key` finished for good; with `pause_until`, the host asked for a pause.
    pub(crate) fn finished(&mut self, key: &HostKey, pause_until: Option<Instant>, now: Instant) {
        if let Some(host) = self.map.get_mut(key) {
            host.active = host.active.saturating_sub(1);
            host.pause(pause_until);
        }
        self.consider(key, now);
    }

    /// A job that ran on `ran_on` goes back in a queue: a retry (due at `job.not_before`) or a
    /// redirect hop, under the host it goes to next (`job.key`), ahead of that host's new jobs.
    /// With `pause_until`, `ran_on` asked for a pause: none of its jobs start before then.
    pub(crate) fn requeue(
        &mut self,
        ran_on: &HostKey,
        job: Box<Pending>,
        pause_until: Option<Instant>,
        now: Instant,
    ) -> Option<Refused> {
        if let Some(host) = self.map.get_mut(ran_on) {
            host.active = host.active.saturating_sub(1);
            host.pause(pause_until);
        }
        let key = Arc::clone(&job.key);
        let host = self.host(&key, job.next_url());
        let refused = if job.robots {
            // A robots.txt retry or redirect hop stays its host's first request.
            host.robots_job = Some(job);
            None
        } else if let Some(why) = refusal(host_rules(&host.robots), &job) {
            Some((job, why))
        } else {
            host.retries.push(job);
            None
        };
        if refused.is_none() {
            self.queued += 1;
        }
        self.consider(&key, now);
        if *ran_on != key {
            self.consider(ran_on, now);
        }
        refused
    }

    /// The next host that may start a job now: one with nothing in flight if any (warm ones
    /// first), else, when `share` allows, one with room beside its requests in flight,
    /// round-robin. The caller either takes a job from it ([`Hosts::take`]) or defers it
    /// ([`Hosts::defer`]).
    pub(crate) fn next_ready(&mut self, now: Instant, share: bool) -> Option<HostKey> {
        loop {
            let ((key, listing), from) = match self.ready.pop_front() {
                Some(entry) => (entry, Listed::Idle),
                None if share => (self.busy.pop_front()?, Listed::Busy),
                None => return None,
            };
            let Some(host) = self.map.get_mut(&key) else {
                continue;
            };
            if host.listed != from || host.listing != listing {
                continue;
            }
            host.listed = Listed::No;
            if host.active < self.per_host_limit && host.next_start(now).is_some_and(|t| t <= now) {
                return Some(key);
            }
            self.consider(&key, now);
        }
    }

    /// Takes the next job of a host returned by [`Hosts::next_ready`] and counts it as active.
    /// Also says whether more jobs of this host are queued.
    pub(crate) fn take(&mut self, key: &HostKey, now: Instant) -> Option<(Box<Pending>, bool)> {
        let host = self.map.get_mut(key)?;
        let job = host.take_next(now)?;
        host.active += 1;
        host.last_start = Some(now);
        // Crawl-delay as a pause: it holds the host's next start, and keeps the host (and so
        // its last start) in the table until it ends, however soon this request finishes.
        if let Some(delay) = host_rules(&host.robots).and_then(Rules::delay) {
            host.pause(Some(now + delay));
        }
        self.queued -= 1;
        let more = !host.fresh.is_empty() || !host.retries.is_empty();
        self.consider(key, now);
        Some((job, more))
    }

    /// The host may not start anything before `until` (its rate limit).
    pub(crate) fn defer(&mut self, key: &HostKey, until: Instant) {
        self.set_timer(key, until);
    }

    /// Moves hosts whose timers are due back into consideration.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            if let Some(host) = self.map.get_mut(&key)
                && host.wake_at == Some(at)
            {
                host.wake_at = None;
                self.consider(&key, now);
            }
        }
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Empties every queue (the run is stopping) and returns the jobs that had been attempted
    /// and were waiting for a retry; never-attempted jobs are dropped.
    #[allow(clippy::vec_box)] // Jobs stay boxed, as everywhere in the scheduler.
    pub(crate) fn drain_attempted(&mut self) -> Vec<Box<Pending>> {
        let attempted = self
            .map
            .drain()
            .flat_map(|(_, host)| host.retries.into_iter().chain(host.fresh))
            .filter(|job| job.attempts > 0 && !job.robots)
            .collect();
        self.ready.clear();
        self.busy.clear();
        self.timers.clear();
        self.queued = 0;
        attempted
    }

    /// Puts a host where it belongs: in the ready list, on a timer, or (idle) out of the table.
    fn consider(&mut self, key: &HostKey, now: Instant) {
        let Some(host) = self.map.get_mut(key) else {
            return;
        };
        // A pause that has ended is no pause: forget it, so nothing waits for it (a timer set
        // for a moment already past would fire again at once, forever).
        if host.paused_until.is_some_and(|until| until <= now) {
            host.paused_until = None;
        }
        if host.is_idle(now) {
            if let (
                Some(Host {
                    robots: Robots::Known(rules),
                    ..
                }),
                Some(cache),
            ) = (self.map.remove(key), &mut self.robots)
            {
                cache.put(Arc::clone(key), rules);
            }
            return;
        }
        if host.active >= self.per_host_limit {
            return; // A finishing job brings it back.
        }
        match host.next_start(now) {
            // Nothing queued but a pause still on (with or without jobs running): look again
            // when it ends, to evict the host then if it is idle.
            None => {
                if let Some(until) = host.paused_until {
                    self.set_timer(key, until);
                }
            }
            Some(at) if at <= now => {
                let list = if host.active == 0 {
                    Listed::Idle
                } else {
                    Listed::Busy
                };
                if host.listed != list {
                    self.listings += 1;
                    host.listed = list;
                    host.listing = self.listings;
                    let entry = (Arc::clone(key), self.listings);
                    match list {
                        // A host that has made a request may have its connection still open:
                        // it goes on with it before new hosts open theirs.
                        Listed::Idle if host.last_start.is_some() => self.ready.push_front(entry),
                        Listed::Idle => self.ready.push_back(entry),
                        _ => self.busy.push_back(entry),
                    }
                    self.sweep_if_stale();
                }
            }
            Some(at) => self.set_timer(key, at),
        }
    }

    /// Drops the ready lists' stale entries once they outnumber the hosts (amortised: a sweep
    /// at least halves a list), so the lists stay as small as the table.
    fn sweep_if_stale(&mut self) {
        let most = 2 * self.map.len() + 64;
        for (list, listed) in [
            (&mut self.ready, Listed::Idle),
            (&mut self.busy, Listed::Busy),
        ] {
            if list.len() > most {
                let map = &self.map;
                list.retain(|(key, listing)| {
                    map.get(key)
                        .is_some_and(|host| host.listed == listed && host.listing == *listing)
                });
            }
        }
    }

    fn set_timer(&mut self, key: &HostKey, at: Instant) {
        let Some(host) = self.map.get_mut(key) else {
            return;
        };
        if host.wake_at.is_some_and(|t| t <= at) {
            return;
        }
        host.wake_at = Some(at);
        self.timers.push(Reverse((at, Arc::clone(key))));
    }
}

fn host_rules(robots: &Robots) -> Option<&Rules> {
    match robots {
        Robots::Known(rules) => Some(rules),
        Robots::Unneeded | Robots::Fetching => None,
    }
}

/// Why the host's rules refuse `job`'s next request, if they do.
fn refusal(rules: Option<&Rules>, job: &Pending) -> Option<String> {
    if job.robots {
        return None;
    }
    rules?.refusal(job.next_url())
}

/// A host for `key`, not yet in the table: with `--robots` (a `cache`), with its rules if the
/// cache has them, else with the request for its robots.txt (for `url`'s origin) queued first,
/// which the caller counts as queued once it keeps the host.
fn new_host(cache: Option<&mut RulesCache>, key: &HostKey, url: &Url) -> Host {
    let mut host = Host::default();
    if let Some(cache) = cache {
        match cache.get(key) {
            Some(rules) => host.robots = Robots::Known(rules),
            None => {
                host.robots = Robots::Fetching;
                host.robots_job = Some(robots_job(key, url));
            }
        }
    }
    host
}

/// The request for the robots.txt of `key`'s origin (that of `url`).
fn robots_job(key: &HostKey, url: &Url) -> Box<Pending> {
    let robots = robots_url(url);
    let text = robots.to_string();
    let mut job = Pending::new(
        0,
        u64::MAX,
        text,
        robots,
        Arc::clone(key),
        Instant::now(),
        None,
    );
    job.robots = true;
    Box::new(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(url: &str, line: u64) -> Box<Pending> {
        let url = Url::parse(url).unwrap();
        let (text, key) = (url.to_string(), host_key(&url));
        Box::new(Pending::new(
            line,
            line,
            text,
            url,
            key,
            Instant::now(),
            None,
        ))
    }

    /// Starts the next ready job and finishes it at once: its host's key.
    fn run_next(hosts: &mut Hosts, now: Instant) -> HostKey {
        let key = hosts.next_ready(now, true).unwrap();
        hosts.take(&key, now).unwrap();
        hosts.finished(&key, None, now);
        key
    }

    #[test]
    fn keys_spell_out_the_port() {
        let a = host_key(&Url::parse("http://A.test/x").unwrap());
        let b = host_key(&Url::parse("http://a.test:80/y").unwrap());
        assert_eq!(a, b);
        assert_eq!(&*a, "http://a.test:80");
        let c = host_key(&Url::parse("https://a.test/").unwrap());
        assert_ne!(a, c);
        // Read from the URL's text or spelled out, a key is the same.
        for (url, key) in [
            ("http://a.test:8080/x?y", "http://a.test:8080"),
            ("http://u:pw@a.test:8080/", "http://a.test:8080"),
            ("http://u@A.test:8080", "http://a.test:8080"),
            ("https://[::1]:8443/", "https://[::1]:8443"),
            ("https://u@[::1]/", "https://[::1]:443"),
        ] {
            assert_eq!(&*host_key(&Url::parse(url).unwrap()), key, "{url}");
        }
    }

    #[test]
    fn busy_host_does_not_block_others() {
        let now = Instant::now();
        let mut hosts = Hosts::new(1, false);
        for i in 0..3 {
            hosts.push(job("http://slow.test/", i), now);
        }
        hosts.push(job("http://fast.test/", 3), now);
        let slow = hosts.next_ready(now, true).unwrap();
        assert_eq!(&*slow, "http://slow.test:80");
        let (first, more) = hosts.take(&slow, now).unwrap();
        assert_eq!(first.line, 0);
        assert!(more);
        // slow.test is at its limit: the next ready host is fast.test.
        let fast = hosts.next_ready(now, true).unwrap();
        assert_eq!(&*fast, "http://fast.test:80");
        let (job, more) = hosts.take(&fast, now).unwrap();
        assert_eq!(job.line, 3);
        assert!(!more);
        assert!(hosts.next_ready(now, true).is_none());
        hosts.finished(&slow, None, now);
        assert_eq!(
            hosts.next_ready(now, true).as_deref(),
            Some("http://slow.test:80")
        );
    }

    /// A second request to a host with one in flight would need a connection of its own:
    /// hosts with nothing in flight go first, and a busy host shares only when allowed; a host
    /// whose request finished goes on (with its open connection) ahead of new hosts.
    #[test]
    fn hosts_with_nothing_in_flight_go_first() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        for i in 0..3 {
            hosts.push(job("http://a.test/", i), now);
        }
        hosts.push(job("http://b.test/", 3), now);
        let a = hosts.next_ready(now, true).unwrap();
        assert_eq!(&*a, "http://a.test:80");
        hosts.take(&a, now).unwrap();
        let b = hosts.next_ready(now, true).unwrap();
        assert_eq!(&*b, "http://b.test:80", "ahead of a's second URL");
        hosts.take(&b, now).unwrap();
        assert!(hosts.next_ready(now, false).is_none(), "a is busy");
        assert_eq!(hosts.next_ready(now, true), Some(Arc::clone(&a)));
        hosts.take(&a, now).unwrap();
        hosts.push(job("http://c.test/", 4), now);
        hosts.finished(&a, None, now);
        hosts.finished(&a, None, now);
        assert_eq!(
            hosts.next_ready(now, false),
            Some(a),
            "a went on ahead of the new c"
        );
    }

    /// Over a long list of hosts, never sharing (as when reading on brings new hosts), each
    /// host is listed busy while its first request runs and never taken from there: the busy
    /// list must not keep an entry per host that ever passed through.
    #[test]
    fn stale_ready_entries_do_not_pile_up() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        for i in 0..10_000 {
            for j in 0..3 {
                hosts.push(job(&format!("http://h{i}.test/{j}"), i * 3 + j), now);
            }
            while let Some(key) = hosts.next_ready(now, false) {
                hosts.take(&key, now).unwrap();
                hosts.finished(&key, None, now);
            }
            assert!(hosts.len() <= 1, "{} hosts in the table", hosts.len());
            // Swept past twice the table (one host) and 64 entries, the one just listed aside.
            assert!(hosts.busy.len() <= 67, "{} busy entries", hosts.busy.len());
            assert!(
                hosts.ready.len() <= 67,
                "{} ready entries",
                hosts.ready.len()
            );
        }
        assert_eq!(hosts.queued(), 0);
    }

    #[test]
    fn idle_hosts_are_evicted() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        for i in 0..100 {
            hosts.push(job(&format!("http://h{i}.test/"), i), now);
        }
        assert_eq!(hosts.len(), 100);
        while let Some(key) = hosts.next_ready(now, true) {
            hosts.take(&key, now).unwrap();
            hosts.finished(&key, None, now);
        }
        assert_eq!(hosts.len(), 0);
        assert_eq!(hosts.queued(), 0);
    }

    #[test]
    fn a_pause_holds_the_host_until_it_ends() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        hosts.push(job("http://a.test/1", 1), now);
        hosts.push(job("http://a.test/2", 2), now);
        let key = hosts.next_ready(now, true).unwrap();
        let (mut first, _) = hosts.take(&key, now).unwrap();
        first.attempts = 1;
        let later = now + Duration::from_secs(5);
        first.not_before = Some(later);
        hosts.requeue(&key, first, Some(later), now);
        assert!(hosts.next_ready(now, true).is_none(), "paused");
        assert_eq!(hosts.next_timer(), Some(later));
        hosts.fire_timers(later);
        let key = hosts.next_ready(later, true).unwrap();
        let (job, _) = hosts.take(&key, later).unwrap();
        assert_eq!(job.line, 1, "the due retry goes first");
    }

    #[test]
    fn an_ended_pause_with_a_job_in_flight_sets_no_timer() {
        // The job that got the 429 was retried; it is in flight, nothing else is queued, and
        // the pause it caused has ended. Timers must not fire forever.
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        hosts.push(job("http://a.test/1", 1), now);
        let key = hosts.next_ready(now, true).unwrap();
        let (mut first, _) = hosts.take(&key, now).unwrap();
        first.attempts = 1;
        let until = now + Duration::from_millis(10);
        first.not_before = Some(until);
        hosts.requeue(&key, first, Some(until), now);
        hosts.fire_timers(until);
        let key = hosts.next_ready(until, true).unwrap();
        hosts.take(&key, until).unwrap();
        let later = until + Duration::from_millis(1);
        hosts.fire_timers(later);
        assert_eq!(hosts.next_timer(), None);
        hosts.finished(&key, None, later);
        assert_eq!(hosts.len(), 0);
    }

    #[test]
    fn drain_keeps_only_attempted_jobs() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, false);
        hosts.push(job("http://a.test/1", 1), now);
        hosts.push(job("http://a.test/2", 2), now);
        let key = hosts.next_ready(now, true).unwrap();
        let (mut first, _) = hosts.take(&key, now).unwrap();
        first.attempts = 1;
        first.not_before = Some(now + Duration::from_secs(1));
        hosts.requeue(&key, first, None, now);
        let drained = hosts.drain_attempted();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].line, 1);
        assert_eq!(hosts.len(), 0);
    }

    fn rules(text: &str) -> Arc<Rules> {
        let policy = super::super::robots::RobotsPolicy {
            agent: "fetch".into(),
            max_crawl_delay: Duration::from_secs(30),
        };
        let source = Url::parse("http://a.test/robots.txt").unwrap();
        let interned = super::super::robots::Interned::default();
        Arc::new(Rules::parse(&source, text.as_bytes(), &policy, &interned))
    }

    /// With `--robots`, a new host's robots.txt goes first and its URLs wait for the rules,
    /// which then refuse some of them; other hosts go on meanwhile.
    #[test]
    fn a_hosts_urls_wait_for_its_robots_txt() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, true);
        assert!(hosts.push(job("http://a.test/private/1", 1), now).is_none());
        assert!(hosts.push(job("http://a.test/open", 2), now).is_none());
        let key = hosts.next_ready(now, true).unwrap();
        let (robots, _) = hosts.take(&key, now).unwrap();
        assert!(robots.robots);
        assert_eq!(robots.url.as_str(), "http://a.test/robots.txt");
        assert!(
            hosts.next_ready(now, true).is_none(),
            "held while it is fetched"
        );
        hosts.push(job("http://b.test/x", 3), now);
        let other = hosts.next_ready(now, true).unwrap();
        assert_eq!(&*other, "http://b.test:80", "other hosts go on");
        hosts.finished(&key, None, now);
        let refused = hosts.set_rules(&key, rules("Disallow: /private"), now);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0.line, 1);
        assert!(refused[0].1.ends_with("Disallow: /private"));
        let key = hosts.next_ready(now, true).unwrap();
        let (job, more) = hosts.take(&key, now).unwrap();
        assert_eq!(job.line, 2);
        assert!(!more);
        // Known rules refuse a new URL as it comes.
        assert!(
            hosts
                .push(super::tests::job("http://a.test/private/2", 4), now)
                .is_some()
        );
    }

    #[test]
    fn crawl_delay_spaces_request_starts() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, true);
        for i in 0..3 {
            hosts.push(job(&format!("http://a.test/{i}"), i), now);
        }
        let key = run_next(&mut hosts, now);
        hosts.set_rules(&key, rules("Crawl-delay: 2"), now);
        assert!(
            hosts.next_ready(now, true).is_none(),
            "2 s after the robots.txt request"
        );
        let due = now + Duration::from_secs(2);
        assert_eq!(hosts.next_timer(), Some(due));
        hosts.fire_timers(due);
        run_next(&mut hosts, due);
        assert!(hosts.next_ready(due, true).is_none());
        assert_eq!(hosts.next_timer(), Some(due + Duration::from_secs(2)));
    }

    /// A host forgotten (nothing queued) keeps its rules in the cache: when its URLs come back,
    /// no second robots.txt request.
    #[test]
    fn forgotten_hosts_keep_their_rules_for_a_while() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, true);
        hosts.push(job("http://a.test/1", 1), now);
        let key = run_next(&mut hosts, now);
        hosts.set_rules(&key, rules("Disallow: /no"), now);
        run_next(&mut hosts, now);
        assert_eq!(hosts.len(), 0, "forgotten");
        assert!(
            hosts.push(job("http://a.test/no", 2), now).is_some(),
            "refused at once"
        );
        assert_eq!(hosts.len(), 0, "no host kept for a refused job");
        hosts.push(job("http://a.test/yes", 3), now);
        let key = hosts.next_ready(now, true).unwrap();
        let (job, _) = hosts.take(&key, now).unwrap();
        assert!(!job.robots && job.line == 3, "no second robots.txt request");
    }

    /// A host whose request finished stays in the table while its Crawl-delay runs: a URL of
    /// it read then waits out the delay from the last start, rather than coming back as a new
    /// host (rules from the cache, no last start) and starting at once.
    #[test]
    fn crawl_delay_outlives_the_hosts_last_request() {
        let now = Instant::now();
        let mut hosts = Hosts::new(usize::MAX, true);
        hosts.push(job("http://a.test/1", 1), now);
        let key = run_next(&mut hosts, now);
        hosts.set_rules(&key, rules("Crawl-delay: 2"), now);
        let started = now + Duration::from_secs(2);
        hosts.fire_timers(started);
        let key = hosts.next_ready(started, true).unwrap();
        let (first, _) = hosts.take(&key, started).unwrap();
        assert_eq!(first.line, 1);
        let ended = started + Duration::from_millis(100);
        hosts.finished(&key, None, ended);
        assert_eq!(hosts.len(), 1, "kept while the delay runs");
        let read = started + Duration::from_secs(1);
        hosts.fire_timers(read);
        assert!(hosts.push(job("http://a.test/2", 2), read).is_none());
        assert!(
            hosts.next_ready(read, true).is_none(),
            "the delay still runs"
        );
        let due = started + Duration::from_secs(2);
        assert_eq!(hosts.next_timer(), Some(due));
        hosts.fire_timers(due);
        let key = hosts.next_ready(due, true).unwrap();
        let (second, _) = hosts.take(&key, due).unwrap();
        assert_eq!(second.line, 2);
        hosts.finished(&key, None, due);
        let later = due + Duration::from_secs(2);
        hosts.fire_timers(later);
        assert_eq!(hosts.len(), 0, "evicted once the delay has passed");
        assert_eq!(hosts.queued(), 0);
    }
}
