//! The seam between scheduling and the network: what a request task needs from whoever makes
//! the request. [`Fetcher`] is the real one; tests (and library users with their own client)
//! plug in another, so the whole pipeline — limits, retries, ordering, cancellation, output —
//! can be exercised without a socket.
//!
//! The contract is [`Fetcher::fetch`]'s: one call makes one request, never fails (a failure is
//! recorded in the [`Attempt`]), fills the attempt as it goes so a request cut short still
//! reports what it got, and returns [`Hop::Redirect`] for a redirect to be followed through the
//! scheduler.

use futures::future::BoxFuture;
use url::Url;

use super::{Attempt, BodySink, Fetcher, Hop};

/// Makes one request at a time for the scheduler. Shared by every request task of a run.
pub trait Transport: Send + Sync + 'static {
    /// Requests `url`, records what happened in `attempt` (setting `started_at` when the request
    /// begins, then status, timings, bytes, failure…), offers the final response's body to
    /// `sink`, and says whether a redirect is to be followed. `keep_alive: false` means no
    /// further request to this host is queued. The future may be dropped at any await (the run
    /// was stopped): what `attempt` holds by then is what the row shows.
    fn fetch<'a>(
        &'a self,
        url: Url,
        keep_alive: bool,
        sink: &'a mut dyn BodySink,
        attempt: &'a mut Attempt,
    ) -> BoxFuture<'a, Hop>;

    /// Whether responses carry bodies (not for HEAD): a body digest means nothing otherwise.
    fn reads_bodies(&self) -> bool;
}

impl Transport for Fetcher {
    fn fetch<'a>(
        &'a self,
        url: Url,
        keep_alive: bool,
        sink: &'a mut dyn BodySink,
        attempt: &'a mut Attempt,
    ) -> BoxFuture<'a, Hop> {
        // The inherent method (one allocation per request for the box: noise next to a request).
        Box::pin(Fetcher::fetch(self, url, keep_alive, sink, attempt))
    }

    fn reads_bodies(&self) -> bool {
        Fetcher::reads_bodies(self)
    }
}
