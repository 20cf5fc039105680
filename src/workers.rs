//! Worker threads for CPU work that would hold up the event loop: parsing pages and robots.txt
//! (the extraction stage) and decoding large compressed bodies (the fetch stage). The event
//! loop drives every connection; a few milliseconds of parsing or inflating on it show up in
//! every other request's latency.
//!
//! Dedicated threads rather than tokio's blocking pool: under load they stay busy and take the
//! next job without being woken, where `spawn_blocking` wakes a parked pool thread per job
//! (measured: about 11 µs of extra CPU per page, most of the cost of title extraction).

use std::thread::JoinHandle;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads taking jobs from one queue. Dropping it lets the queued jobs
/// finish and waits for the threads, so none outlives its owner.
pub struct Workers {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` workers (at least one), named `{name}-{i}`.
    pub fn start(name: &str, threads: usize) -> std::io::Result<Workers> {
        Self::start_with(name, threads, false)
    }

    /// Like [`Workers::start`]; `yielding` workers run at a lower priority (nice 10, where the
    /// system allows), so that on a machine with every core busy the event loop, which every
    /// request waits on, gets the CPU first.
    pub fn start_with(name: &str, threads: usize, yielding: bool) -> std::io::Result<Workers> {
        // Unbounded, but never long: every job is awaited by the task that queued it, and the
        // run has at most --concurrency tasks.
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        if yielding {
                            lower_priority();
                        }
                        for job in rx {
                            // A job that panics drops its reply (its task gets `None`); the
                            // worker goes on with the next.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workers {
            jobs: Some(tx),
            threads,
        })
    }

    /// Runs `work` on a worker and waits for its result; `None` if it could not run (the
    /// workers are stopping, or the work panicked).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.as_ref()?.send(job).ok()?;
        result.await.ok()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Lowers the calling thread's priority (on Linux, where each thread has its own nice value).
/// Failing is harmless: the thread runs at the usual priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `who` 0 is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// The machine's cores, as the default number of workers.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_off_the_calling_thread() {
        let workers = Workers::start("test-worker", 2).unwrap();
        let name = workers
            .run(|| std::thread::current().name().map(str::to_owned))
            .await;
        let name = name.flatten().unwrap_or_default();
        assert!(name.starts_with("test-worker-"), "{name}");
    }

    #[tokio::test]
    async fn a_panicking_job_is_none_and_the_worker_goes_on() {
        let workers = Workers::start("test-worker", 1).unwrap();
        let panicked = workers.run(|| -> u8 { panic!("boom") }).await;
        assert_eq!(panicked, None);
        assert_eq!(workers.run(|| 7).await, Some(7));
    }
}
