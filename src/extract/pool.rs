//! The extraction pool: one thread per core that parses and searches what captures kept, so
//! CPU work never runs on the async workers and never takes more cores than the machine has.
//! Other parsing of the run's (robots.txt, with `--robots`) runs on it too.
//!
//! Dedicated threads rather than tokio's blocking pool: under load they stay busy and take the
//! next job without being woken, where `spawn_blocking` wakes a parked pool thread per job
//! (measured: about 11 µs of extra CPU per page, most of the cost of title extraction).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Captured, Extracted, Extractor};

enum Job {
    Extract(Captured, oneshot::Sender<Extracted>),
    /// Other CPU work; it sends its own result.
    Run(Box<dyn FnOnce() + Send>),
}

pub struct ExtractPool {
    extractor: Arc<Extractor>,
    jobs: Option<crossbeam_channel::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl ExtractPool {
    /// Starts `threads` workers (at least one).
    pub fn start(extractor: Arc<Extractor>, threads: usize) -> std::io::Result<ExtractPool> {
        // Unbounded, but never long: each request task queues one job and waits for it, and
        // there are at most --concurrency of them.
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let (rx, extractor) = (rx.clone(), Arc::clone(&extractor));
                std::thread::Builder::new()
                    .name(format!("fetch-extract-{i}"))
                    .spawn(move || {
                        for job in rx {
                            match job {
                                Job::Extract(captured, reply) => {
                                    let _ = reply.send(extractor.extract(captured));
                                }
                                Job::Run(work) => work(),
                            }
                        }
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExtractPool {
            extractor,
            jobs: Some(tx),
            threads,
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
        let (reply, result) = oneshot::channel();
        let Some(jobs) = &self.jobs else {
            return Extracted::default();
        };
        if jobs.send(Job::Extract(captured, reply)).is_err() {
            return Extracted::default();
        }
        // A worker that panicked drops the reply: the row just has no extracted values.
        result.await.unwrap_or_default()
    }

    /// Runs other CPU work on a worker; `None` if it could not run (the pool is closing, or
    /// the work panicked).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, result) = oneshot::channel();
        let job = Job::Run(Box::new(move || {
            let _ = reply.send(work());
        }));
        self.jobs.as_ref()?.send(job).ok()?;
        result.await.ok()
    }

    pub fn extractor(&self) -> &Extractor {
        &self.extractor
    }
}

impl Drop for ExtractPool {
    /// Closes the queue and waits for the workers, so no thread outlives the run.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
