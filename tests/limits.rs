//! Limits, checked by counting on the server: concurrency, rate, and back-pressure from a slow
//! writer. Timing bounds are generous; the counts are what is asserted.

use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use fetch::config::Rate;
use fetch::{Inputs, Output, Stop};

use crate::support::server::TestServer;
use crate::support::{config, run_list, urls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_reached_and_never_exceeded() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.concurrency = NonZeroUsize::new(8).unwrap();
    let (summary, table) = run_list(config, urls(&server.url("/slow/100"), 80)).await;
    assert_eq!(table.len(), 80);
    assert_eq!(summary.errors(), 0, "{summary}");
    assert_eq!(server.stats.max_in_flight(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_spreads_request_starts_without_a_burst() {
    let server = TestServer::start();
    let mut config = config();
    config.limits.rate = Some("20/s".parse::<Rate>().unwrap());
    let n = 30;
    let (_, table) = run_list(config, urls(&server.url("/ok"), n)).await;
    assert_eq!(table.len(), n);

    let arrivals = server.stats.arrivals();
    assert_eq!(arrivals.len(), n);
    // 30 starts at 20/s are 29 intervals of 50 ms: 1.45 s. Allow for a slow machine above,
    // and for network jitter below.
    let span = arrivals[n - 1] - arrivals[0];
    assert!(
        span >= Duration::from_millis(1200),
        "{span:?}: faster than the rate"
    );
    // No burst: any 5 consecutive starts span at least ~4 intervals (200 ms), minus jitter.
    for window in arrivals.windows(5) {
        let width = window[4] - window[0];
        assert!(
            width >= Duration::from_millis(140),
            "burst: 5 starts within {width:?}"
        );
    }
}

/// A writer that blocks until the test opens the gate.
#[derive(Clone)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_writer_stops_the_fetchers() {
    let server = TestServer::start();
    let total = 10_000;
    let gate = Gate(Arc::default());
    let inputs = Inputs::from_reader(
        "list",
        std::io::Cursor::new(urls(&server.url("/ok"), total)),
    );
    let run = tokio::spawn(fetch::run(
        config(),
        inputs,
        Output::to_writer(gate.clone()),
        Stop::new(),
    ));
    // Wait for requests to start, then for them to stop arriving, and see how far they got.
    let waiting = std::time::Instant::now();
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let hits = server.stats.hits();
        if hits > 0 && hits == last {
            break;
        }
        last = hits;
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "requests never settled"
        );
    }
    // Bounded by the row queue (1,024), the writer's buffer and the requests in flight; far
    // below the list's length.
    assert!(last < 4_000, "{last} requests ran ahead of a stuck writer");
    gate.open();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.rows, total as u64);
    assert_eq!(server.stats.hits(), total);
}
