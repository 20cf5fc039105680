//! The extraction pool: parsing and searching what captures kept runs on the run's
//! [`Workers`] (one thread per core), so it never runs on the event loop and never takes more
//! cores than the machine has. Other parsing of the run's (robots.txt, with `--robots`) runs
//! there too.

use std::sync::Arc;

use super::{Captured, Extracted, Extractor};
use crate::workers::Workers;

pub struct ExtractPool {
    extractor: Arc<Extractor>,
    workers: Workers,
}

impl ExtractPool {
    /// Starts `threads` workers (at least one).
    pub fn start(extractor: Arc<Extractor>, threads: usize) -> std::io::Result<ExtractPool> {
        Ok(ExtractPool {
            extractor,
            workers: Workers::start("fetch-extract", threads)?,
        })
    }

    /// Extracts from `captured`: at once when there is nothing to parse (a hash alone, a plain
    /// title), else on a worker.
    pub async fn extract(&self, captured: Captured) -> Extracted {
        if !captured.needs_work() {
            return self.extractor.extract(captured);
        }
        if let Some(extracted) = self.extractor.extract_title_only(&captured) {
            return extracted;
        }
        let extractor = Arc::clone(&self.extractor);
        // A job that panicked: the row just has no extracted values.
        self.workers
            .run(move || extractor.extract(captured))
            .await
            .unwrap_or_default()
    }

    /// Runs other CPU work on a worker; `None` if it could not run (the pool is closing, or
    /// the work panicked).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.workers.run(work).await
    }

    pub fn extractor(&self) -> &Extractor {
        &self.extractor
    }
}
