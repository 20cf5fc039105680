//! Lines left out of a run as they are read: those a previous run already recorded (`--resume`)
//! and repeats of a URL already seen (`--dedupe`). Deciding here, before a line gets its place
//! in the run, keeps every later stage simple: a skipped line is as if it were not in the list.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use url::Url;

use super::{Job, Shard};
use crate::output::is_formula_like;
use crate::report::Counters;

/// Lines a previous run recorded: line number → a hash of its `url` cell as written.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Sorted by line.
    entries: Vec<(u64, u64)>,
    /// Whether the cells were written spreadsheet-safe (a formula-like URL then has a `'`).
    spreadsheet_safe: bool,
}

impl Recorded {
    /// `entries` are (line, [`cell_key`] of the `url` cell) pairs, in any order.
    pub fn new(mut entries: Vec<(u64, u64)>, spreadsheet_safe: bool) -> Recorded {
        entries.sort_unstable();
        entries.dedup_by_key(|(line, _)| *line);
        Recorded {
            entries,
            spreadsheet_safe,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `line`, whose trimmed text is `text`, is recorded: same line number, same URL
    /// (a changed list is not mistaken for the old one).
    fn contains(&self, line: u64, text: &str) -> bool {
        let Ok(at) = self.entries.binary_search_by_key(&line, |(l, _)| *l) else {
            return false;
        };
        let written = if self.spreadsheet_safe && is_formula_like(text) {
            cell_key(&format!("'{text}"))
        } else {
            cell_key(text)
        };
        self.entries.get(at).is_some_and(|(_, key)| *key == written)
    }
}

/// The key of a `url` cell as written in an output file.
pub fn cell_key(cell: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    cell.hash(&mut hasher);
    hasher.finish()
}

/// The URLs seen so far, as 64-bit hashes: 8 bytes of key (about 16 with the table's slack) per
/// distinct URL, whatever its length. Two different URLs sharing a hash is about as likely as
/// winning a lottery twice for any list that fits on a disk.
#[derive(Debug, Default)]
pub struct Dedupe {
    seen: HashSet<u64, BuildHasherDefault<Identity>>,
}

impl Dedupe {
    /// Whether `url` is new (and remembers it).
    fn first_time(&mut self, url: &Url) -> bool {
        let mut hasher = DefaultHasher::new();
        url.as_str().hash(&mut hasher);
        self.seen.insert(hasher.finish())
    }
}

/// The keys are hashes already.
#[derive(Debug, Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What to leave out, and where to count it.
pub struct Skip {
    /// `--shard`: lines of other shards are not this process's to do.
    pub shard: Option<Shard>,
    pub recorded: Option<Recorded>,
    pub dedupe: Option<Dedupe>,
    pub counters: Arc<Counters>,
}

impl Skip {
    /// Whether `job` belongs in this run.
    pub(super) fn keep(&mut self, job: &Job) -> bool {
        if let Some(shard) = &self.shard
            && !shard.takes(job.target.as_ref().map_err(|_| ()))
        {
            return false;
        }
        // A recorded line's URL still counts as seen, as it did in the run that recorded it.
        let repeat = match (&mut self.dedupe, &job.target) {
            (Some(dedupe), Ok(url)) => !dedupe.first_time(url),
            _ => false,
        };
        if self
            .recorded
            .as_ref()
            .is_some_and(|r| r.contains(job.line, &job.text))
        {
            self.counters
                .skipped_recorded
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if repeat {
            self.counters
                .skipped_duplicates
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(line: u64, text: &str) -> Job {
        Job {
            line,
            seq: 0,
            read_at: std::time::Instant::now(),
            text: text.into(),
            target: Url::parse(text)
                .map_err(|_| crate::row::Failure::new(crate::row::ErrorKind::InvalidUrl, "")),
        }
    }

    #[test]
    fn dedupes_normalised_urls_but_not_bad_lines() {
        let mut skip = Skip {
            shard: None,
            recorded: None,
            dedupe: Some(Dedupe::default()),
            counters: Arc::default(),
        };
        assert!(skip.keep(&job(1, "http://a.test")));
        assert!(
            !skip.keep(&job(2, "http://A.test/")),
            "same URL once normalised"
        );
        assert!(skip.keep(&job(3, "http://a.test/other")));
        assert!(skip.keep(&job(4, "not a url")));
        assert!(skip.keep(&job(5, "not a url")));
        assert_eq!(skip.counters.skipped_duplicates.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn recorded_lines_match_by_number_and_url() {
        let recorded = Recorded::new(
            vec![(2, cell_key("http://a.test/")), (3, cell_key("'=1+1"))],
            true,
        );
        let mut skip = Skip {
            shard: None,
            recorded: Some(recorded),
            dedupe: None,
            counters: Arc::default(),
        };
        assert!(!skip.keep(&job(2, "http://a.test/")));
        assert!(
            skip.keep(&job(2, "http://changed.test/")),
            "a changed list is not skipped"
        );
        assert!(!skip.keep(&job(3, "=1+1")), "the cell was written with a '");
        assert!(skip.keep(&job(4, "http://a.test/")));
    }
}
