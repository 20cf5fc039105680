//! Request tasks' reports to the dispatcher: left in a list, and the dispatcher woken.
//!
//! Every request ends with one report, so a channel (a permit, a slot and a wake-up per report)
//! cost as much as the bookkeeping the report leads to. Here a report is a push and a
//! notification; the dispatcher takes all that have come in one go. The list never holds more
//! than the requests in flight, each of which reports once.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

pub(super) struct Reports<T> {
    posted: Mutex<Vec<T>>,
    arrived: Notify,
}

impl<T> Reports<T> {
    pub(super) fn new() -> Reports<T> {
        Reports {
            posted: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        }
    }

    pub(super) fn post(&self, report: T) {
        self.posted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report);
        self.arrived.notify_one();
    }

    /// Resolves once a report was posted since the dispatcher last waited (a notification that
    /// came while it was busy is kept for it), so the reports are there to take.
    pub(super) async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Moves every report posted so far into `into` (empty), in the order posted. The two
    /// lists trade places, so neither allocates again.
    pub(super) fn take(&self, into: &mut Vec<T>) {
        let mut posted = self.posted.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *posted, into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Reports posted while the dispatcher was busy are all there when it next looks, in
    /// order, and the notification that came meanwhile is not lost.
    #[tokio::test]
    async fn reports_posted_while_busy_wake_the_next_wait() {
        let reports = Reports::new();
        for n in 1..=3 {
            reports.post(n);
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), reports.arrived())
            .await
            .expect("a notification kept for the next wait");
        let mut taken = Vec::new();
        reports.take(&mut taken);
        assert_eq!(taken, [1, 2, 3]);
        taken.clear();
        reports.take(&mut taken);
        assert!(taken.is_empty());
    }

    /// A report posted from another task wakes a dispatcher already waiting.
    #[tokio::test]
    async fn a_report_wakes_a_waiting_dispatcher() {
        let reports = Arc::new(Reports::new());
        let poster = Arc::clone(&reports);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            poster.post("done");
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), reports.arrived())
            .await
            .expect("woken by the post");
        task.await.unwrap();
        let mut taken = Vec::new();
        reports.take(&mut taken);
        assert_eq!(taken, ["done"]);
    }
}
