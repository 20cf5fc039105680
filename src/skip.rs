//! Lines left out of a run as they are read: those of other shards (`--shard`), those a
//! previous run already recorded (`--resume`) and repeats of a URL already seen (`--dedupe`).
//! Deciding as lines are read, before a line gets its place in the run, keeps every later stage
//! simple: a skipped line is as if it were not in the list. The filter joins three stages'
//! pieces (input's shards and dedupe, output's record of an earlier run, report's counters),
//! so it is put together here, beside `lib.rs`, and handed to the input stage as a closure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::input::{Dedupe, Job, Shard};
use crate::output::Recorded;
use crate::report::Counters;

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
    pub fn keep(&mut self, job: &Job) -> bool {
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
    use crate::output::cell_key;
    use url::Url;

    fn job(line: u64, text: &str) -> Job {
        Job {
            line,
            seq: 0,
            read_at: std::time::Instant::now(),
            text: text.into(),
            target: Url::parse(text)
                .map_err(|_| crate::row::Failure::new(crate::row::ErrorKind::InvalidUrl, "")),
            tracked: None,
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
