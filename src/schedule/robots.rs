//! `--robots`: each origin's robots.txt (RFC 9309), fetched once before its first request and
//! matched by texting_robots, which is tested against the RFC's and Google's test cases.
//!
//! What the scheduler does with it lives in `hosts.rs` (an origin's URLs wait in its queue while
//! its robots.txt is fetched; Crawl-delay spaces its request starts) and in the dispatcher
//! (`mod.rs`); the request itself is a task of its own (`fetch_rules`), made through every limit
//! of the origin like any other. Here: what a robots.txt response means ([`Rules`]), and the
//! cache that keeps the rules of origins the scheduler has forgotten, for a while.
//!
//! RFC 9309: a 2xx is parsed (its first 500 KiB); a 4xx means there are no rules; a 5xx or an
//! unreachable server means everything is disallowed for now (after `--retries` more tries);
//! redirects are followed, five at most, and more mean there are no rules.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use texting_robots::Robot;
use url::Url;

use super::hosts::HostKey;

/// Most bytes of a robots.txt that are read (RFC 9309 §2.5: at least 500 KiB must be).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// Redirects followed for a robots.txt (RFC 9309 §2.3.1.2: at least five).
pub const MAX_ROBOTS_REDIRECTS: u32 = 5;

/// Most Disallow rules kept to name the one that refused a URL; a robots.txt with more still
/// refuses the same URLs, its messages just do not name the rule.
const MAX_EXPLAINED_RULES: usize = 256;

/// What a rule with `$` costs in memory: texting_robots compiles it to a regex (measured:
/// 8.4 KB per robots.txt for one such rule, 0.3 to 0.5 KB for rules without).
const REGEX_WEIGHT: usize = 9 * 1024;

/// How robots.txt is honoured: the scheduler's settings.
#[derive(Debug, Clone)]
pub struct RobotsPolicy {
    /// The product token of the user agent (`acme-monitor` in `acme-monitor/1.0 (ops@acme)`),
    /// matched against the `User-agent` lines, case-insensitively.
    pub agent: String,
    /// The longest Crawl-delay honoured, so that one site cannot stall a run.
    pub max_crawl_delay: Duration,
}

/// The product token of a User-Agent value: its text up to the first `/` or space.
pub fn product_token(user_agent: &str) -> String {
    user_agent
        .trim()
        .split(['/', ' ', '\t'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The robots.txt of `url`'s origin. Never fails, so that a host waiting for its rules always
/// has the request that brings them (input lets only http(s) through; anything else would get a
/// request that fails, and so rules).
pub fn robots_url(url: &Url) -> Url {
    let mut robots = url.clone();
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    // Only URLs that cannot carry credentials refuse these, and then there are none to drop.
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    robots
}

/// What an origin's robots.txt says.
#[derive(Debug)]
pub struct Rules {
    /// Where the rules came from, for messages.
    source: String,
    kind: Kind,
    /// Crawl-delay, already capped by `--max-crawl-delay`.
    delay: Option<Duration>,
}

#[derive(Debug)]
enum Kind {
    /// Parsed: each URL is matched against it.
    Parsed(Arc<Parsed>),
    /// No rules: everything allowed (a 4xx, too many redirects).
    AllowAll,
    /// Unreachable: everything disallowed for now (a 5xx, no connection), and why.
    DisallowAll(String),
}

/// A robots.txt parsed for the run's agent. Origins serving the same file (the default of a
/// popular CMS, a hosting company's) share one.
#[derive(Debug)]
pub struct Parsed {
    /// The file, as read: what origins sharing this one must serve.
    text: Box<[u8]>,
    robot: Robot,
    /// The Disallow rules of the groups that apply, to name the rule that refused a URL;
    /// each is made a robot of its own only when a refused URL needs it.
    explain: Vec<String>,
    alone: Mutex<Vec<Option<Robot>>>,
    /// Crawl-delay, already capped by `--max-crawl-delay`.
    delay: Option<Duration>,
    weight: usize,
}

/// The robots.txt files parsed so far, by content, while some origin still uses them.
#[derive(Debug, Default)]
pub struct Interned {
    map: Mutex<Map>,
}

/// Parsed files by a hash of their text.
type Map = HashMap<u64, Vec<Weak<Parsed>>, foldhash::fast::RandomState>;

impl Interned {
    /// The parsed `body`: one already made for the same file, else parsed now (CPU work: a
    /// regex per rule with `$`; run it off the event loop).
    fn get(&self, body: &[u8], policy: &RobotsPolicy) -> Option<Arc<Parsed>> {
        let key = {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = foldhash::fast::FixedState::default().build_hasher();
            hasher.write(body);
            hasher.finish()
        };
        let find = |map: &Map| {
            map.get(&key).and_then(|same| {
                same.iter()
                    .filter_map(Weak::upgrade)
                    .find(|p| *p.text == *body)
            })
        };
        if let Some(found) = find(&self.lock()) {
            return Some(found);
        }
        // Parsed without the lock: other tasks' files need not wait for this one's regexes.
        let parsed = Arc::new(Parsed::new(body, policy)?);
        let mut map = self.lock();
        // Another task may have parsed the same file meanwhile: share its copy, not ours.
        if let Some(found) = find(&map) {
            return Some(found);
        }
        let live = map.entry(key).or_default();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&parsed));
        if map.len() > 1024 && map.len().is_power_of_two() {
            map.retain(|_, same| same.iter().any(|w| w.strong_count() > 0));
        }
        Some(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Parsed {
    fn new(body: &[u8], policy: &RobotsPolicy) -> Option<Parsed> {
        // The parser is forgiving; what it cannot read at all says nothing we could obey.
        let robot = Robot::new(&policy.agent, body).ok()?;
        let delay = robot
            .delay
            .filter(|d| d.is_finite() && *d > 0.0)
            .map(|d| Duration::from_secs_f64(f64::from(d)).min(policy.max_crawl_delay));
        let group = group_rules(body, &policy.agent);
        let weight = 512
            + body.len()
            + group.regexes * REGEX_WEIGHT
            + group.disallow.len().min(MAX_EXPLAINED_RULES) * 64;
        let mut explain = group.disallow;
        explain.truncate(MAX_EXPLAINED_RULES);
        Some(Parsed {
            text: body.into(),
            robot,
            explain,
            alone: Mutex::new(Vec::new()),
            delay,
            weight,
        })
    }
}

impl Rules {
    /// Rules from a robots.txt body (its first [`MAX_ROBOTS_BYTES`]), for `policy`'s agent,
    /// shared with every origin serving the same file. CPU work: run it off the event loop.
    pub fn parse(source: &Url, body: &[u8], policy: &RobotsPolicy, interned: &Interned) -> Rules {
        let body = body.get(..MAX_ROBOTS_BYTES).unwrap_or(body);
        let source = source.to_string();
        match interned.get(body, policy) {
            Some(parsed) => Rules {
                source,
                delay: parsed.delay,
                kind: Kind::Parsed(parsed),
            },
            None => Rules {
                source,
                kind: Kind::AllowAll,
                delay: None,
            },
        }
    }

    /// No robots.txt to obey (a 4xx, too many redirects).
    pub fn allow_all(source: &Url) -> Rules {
        Rules {
            source: source.to_string(),
            kind: Kind::AllowAll,
            delay: None,
        }
    }

    /// The robots.txt could not be had: every URL of the origin is refused for now.
    pub fn disallow_all(source: &Url, why: String) -> Rules {
        Rules {
            source: source.to_string(),
            kind: Kind::DisallowAll(why),
            delay: None,
        }
    }

    /// Why `url` may not be requested, or `None` when it may.
    pub fn refusal(&self, url: &Url) -> Option<String> {
        match &self.kind {
            Kind::AllowAll => None,
            Kind::DisallowAll(why) => Some(format!(
                "robots.txt {} could not be fetched ({why}): everything is disallowed until it \
                 can be (RFC 9309)",
                self.source
            )),
            Kind::Parsed(parsed) => {
                if parsed.robot.allowed(url.as_str()) {
                    return None;
                }
                Some(match deciding_rule(url, &parsed.explain, &parsed.alone) {
                    Some(rule) => format!("disallowed by {}: Disallow: {rule}", self.source),
                    None => format!("disallowed by {}", self.source),
                })
            }
        }
    }

    /// The Crawl-delay to keep between the origin's request starts.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// A rough size in memory, for the cache's bound.
    fn weight(&self) -> usize {
        match &self.kind {
            // Shared with other origins maybe, but counted for each: the bound errs on the
            // safe side.
            Kind::Parsed(parsed) => parsed.weight + self.source.len(),
            Kind::AllowAll => 128,
            Kind::DisallowAll(why) => 128 + why.len(),
        }
    }
}

/// The Disallow rule that refused `url`: the longest that refuses it on its own (RFC 9309
/// §2.2.2: the longest match decides, and the URL was refused, so it is a Disallow). Each
/// rule is made a robot of its own (by texting_robots, which matches) the first time a
/// refused URL needs it; the text before a `*` or `$` must start the path for it to be tried.
fn deciding_rule<'a>(
    url: &Url,
    rules: &'a [String],
    alone: &Mutex<Vec<Option<Robot>>>,
) -> Option<&'a str> {
    let target = &url[url::Position::BeforePath..];
    let mut alone = alone
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    alone.resize_with(rules.len(), || None);
    let mut best: Option<&str> = None;
    for (rule, robot) in rules.iter().zip(alone.iter_mut()) {
        let literal = rule.split(['*', '$']).next().unwrap_or_default();
        if !target.starts_with(literal) || best.is_some_and(|b| b.len() >= rule.len()) {
            continue;
        }
        if robot.is_none() {
            *robot = Robot::new("fetch", format!("Disallow: {rule}").as_bytes()).ok();
        }
        if robot.as_ref().is_some_and(|r| !r.allowed(url.as_str())) {
            best = Some(rule);
        }
    }
    best
}

/// The rules of the groups that apply to an agent.
#[derive(Debug, Default, PartialEq)]
struct GroupRules {
    /// The Disallow patterns, in order.
    disallow: Vec<String>,
    /// Rules (Allow or Disallow) with a `$`, which texting_robots compiles to a regex.
    regexes: usize,
}

/// A group of robots.txt: its agents, and its rules as (allow, pattern).
type Group = (Vec<String>, Vec<(bool, String)>);

/// The rules of the groups that apply to `agent`, as texting_robots picks them: the groups
/// naming the agent if any does, else those for `*` (all rules when there is no group).
fn group_rules(body: &[u8], agent: &str) -> GroupRules {
    let text = String::from_utf8_lossy(body);
    let agent = agent.to_ascii_lowercase();
    let mut groups: Vec<Group> = Vec::new();
    let mut in_agents = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let key = key.trim().to_ascii_lowercase();
        match key.as_str() {
            "user-agent" => {
                if !in_agents {
                    groups.push((Vec::new(), Vec::new()));
                    in_agents = true;
                }
                if let Some((agents, _)) = groups.last_mut() {
                    agents.push(value.to_ascii_lowercase());
                }
            }
            "allow" | "disallow" if !value.is_empty() => {
                in_agents = false;
                if groups.is_empty() {
                    groups.push((vec!["*".to_owned()], Vec::new()));
                }
                if let Some((_, rules)) = groups.last_mut() {
                    rules.push((key == "allow", value.to_owned()));
                }
            }
            _ => in_agents = false,
        }
    }
    let names_us = groups.iter().any(|(agents, _)| agents.contains(&agent));
    let wanted = if names_us { agent.as_str() } else { "*" };
    let mut found = GroupRules::default();
    for (allow, rule) in groups
        .into_iter()
        .filter(|(agents, _)| agents.iter().any(|a| a == wanted))
        .flat_map(|(_, rules)| rules)
    {
        found.regexes += usize::from(rule.contains('$'));
        if !allow {
            found.disallow.push(rule);
        }
    }
    found
}

/// The rules of origins the scheduler has forgotten (nothing queued), so that one whose URLs
/// come back later in the list is not asked again at once. Bounded by a rough weight; the
/// least recently used go first, and come back by asking the server again.
#[derive(Debug)]
pub(crate) struct RulesCache {
    map: HashMap<HostKey, (Arc<Rules>, u64), foldhash::fast::RandomState>,
    /// Keys by use, oldest first; an entry whose stamp is not the map's is stale and skipped.
    order: VecDeque<(HostKey, u64)>,
    clock: u64,
    weight: usize,
    max_weight: usize,
}

/// The cache's bound: about this many bytes of rules.
pub(crate) const CACHE_WEIGHT: usize = 8 << 20;

impl RulesCache {
    pub(crate) fn new(max_weight: usize) -> RulesCache {
        RulesCache {
            map: HashMap::default(),
            order: VecDeque::new(),
            clock: 0,
            weight: 0,
            max_weight,
        }
    }

    pub(crate) fn get(&mut self, key: &HostKey) -> Option<Arc<Rules>> {
        self.clock += 1;
        let (rules, used) = self.map.get_mut(key)?;
        *used = self.clock;
        let rules = Arc::clone(rules);
        self.order.push_back((Arc::clone(key), self.clock));
        self.compact();
        Some(rules)
    }

    pub(crate) fn put(&mut self, key: HostKey, rules: Arc<Rules>) {
        self.clock += 1;
        self.weight += rules.weight();
        self.order.push_back((Arc::clone(&key), self.clock));
        if let Some((old, _)) = self.map.insert(key, (rules, self.clock)) {
            self.weight -= old.weight();
        }
        while self.weight > self.max_weight {
            let Some((oldest, stamp)) = self.order.pop_front() else {
                break;
            };
            if self
                .map
                .get(&oldest)
                .is_some_and(|(_, used)| *used == stamp)
                && let Some((gone, _)) = self.map.remove(&oldest)
            {
                self.weight -= gone.weight();
            }
        }
        self.compact();
    }

    /// Drops stale entries from the use order when they outnumber the live ones.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(key, stamp)| map.get(key).is_some_and(|(_, used)| used == stamp));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(agent: &str) -> RobotsPolicy {
        RobotsPolicy {
            agent: agent.into(),
            max_crawl_delay: Duration::from_secs(30),
        }
    }

    fn rules(text: &str, agent: &str) -> Rules {
        let source = Url::parse("http://a.test/robots.txt").unwrap();
        Rules::parse(
            &source,
            text.as_bytes(),
            &policy(agent),
            &Interned::default(),
        )
    }

    #[test]
    fn origins_serving_the_same_file_share_its_rules() {
        let interned = Interned::default();
        let parse = |host: &str, text: &str| {
            let source = Url::parse(&format!("http://{host}/robots.txt")).unwrap();
            Rules::parse(&source, text.as_bytes(), &policy("fetch"), &interned)
        };
        let (a, b) = (
            parse("a.test", "Disallow: /x$"),
            parse("b.test", "Disallow: /x$"),
        );
        let (Kind::Parsed(pa), Kind::Parsed(pb)) = (&a.kind, &b.kind) else {
            panic!("parsed");
        };
        assert!(Arc::ptr_eq(pa, pb));
        assert!(
            refused(&b, "/x")
                .unwrap()
                .contains("http://b.test/robots.txt")
        );
        let c = parse("c.test", "Disallow: /y$");
        let Kind::Parsed(pc) = &c.kind else {
            panic!("parsed")
        };
        assert!(!Arc::ptr_eq(pa, pc));
    }

    fn refused(rules: &Rules, path: &str) -> Option<String> {
        rules.refusal(&Url::parse(&format!("http://a.test{path}")).unwrap())
    }

    #[test]
    fn robots_url_is_the_origins_without_credentials() {
        let url = Url::parse("http://u:p@a.test:8080/x/y?q=1#f").unwrap();
        assert_eq!(robots_url(&url).as_str(), "http://a.test:8080/robots.txt");
    }

    #[test]
    fn product_tokens() {
        assert_eq!(product_token("fetch/0.1.0"), "fetch");
        assert_eq!(
            product_token("acme-monitor/1.0 (ops@acme.test)"),
            "acme-monitor"
        );
        assert_eq!(product_token("Bot"), "Bot");
    }

    #[test]
    fn the_longest_rule_decides_and_is_named() {
        let r = rules(
            "User-agent: *\nDisallow: /private\nAllow: /private/open\nDisallow: /*.pdf$\n",
            "fetch",
        );
        assert_eq!(
            refused(&r, "/private/x").as_deref(),
            Some("disallowed by http://a.test/robots.txt: Disallow: /private")
        );
        assert_eq!(refused(&r, "/private/open/x"), None);
        assert!(
            refused(&r, "/doc.pdf")
                .unwrap()
                .ends_with("Disallow: /*.pdf$")
        );
        assert_eq!(refused(&r, "/doc.pdf?x=1"), None, "$ anchors at the end");
        assert_eq!(refused(&r, "/public"), None);
        assert_eq!(refused(&r, "/robots.txt"), None);
    }

    #[test]
    fn our_group_wins_over_the_catch_all() {
        let text = "User-agent: acme\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n";
        let ours = rules(text, "ACME");
        assert!(refused(&ours, "/a").unwrap().ends_with("Disallow: /a"));
        assert_eq!(refused(&ours, "/b"), None);
        let others = rules(text, "fetch");
        assert_eq!(refused(&others, "/a"), None);
        assert!(refused(&others, "/b").is_some());
    }

    #[test]
    fn crawl_delay_is_capped() {
        let r = rules("User-agent: *\nCrawl-delay: 120\n", "fetch");
        assert_eq!(r.delay(), Some(Duration::from_secs(30)));
        let r = rules("User-agent: *\nCrawl-delay: 0.5\n", "fetch");
        assert_eq!(r.delay(), Some(Duration::from_millis(500)));
    }

    #[test]
    fn unreachable_refuses_everything_and_missing_allows_it() {
        let source = Url::parse("http://a.test/robots.txt").unwrap();
        let down = Rules::disallow_all(&source, "503 Service Unavailable".into());
        assert!(
            refused(&down, "/x")
                .unwrap()
                .contains("503 Service Unavailable")
        );
        let none = Rules::allow_all(&source);
        assert_eq!(refused(&none, "/x"), None);
    }

    #[test]
    fn the_cache_keeps_within_its_weight() {
        let mut cache = RulesCache::new(10_000);
        let source = Url::parse("http://a.test/robots.txt").unwrap();
        for i in 0..1000 {
            cache.put(
                Arc::from(format!("http://h{i}.test:80")),
                Arc::new(Rules::allow_all(&source)),
            );
        }
        assert!(cache.len() <= 10_000 / 128);
        assert!(
            cache.get(&Arc::from("http://h999.test:80")).is_some(),
            "the newest stay"
        );
        assert!(
            cache.get(&Arc::from("http://h0.test:80")).is_none(),
            "the oldest go"
        );
    }
}
