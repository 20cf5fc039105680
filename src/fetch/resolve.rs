//! Name resolution with a bounded number of blocking lookups.
//!
//! The system resolver (getaddrinfo) is the one users expect: it honours /etc/hosts, nsswitch and
//! resolv.conf exactly as curl and browsers do. But it blocks, and the usual way of calling it
//! from async code (hyper's and reqwest's default) runs every lookup on tokio's blocking pool,
//! which grows to 512 threads when many new hosts are looked up at once (and, measured, then
//! fails lookups). Here at most [`lookup_slots`] lookups run at a time; the rest wait their turn
//! without a thread. Names given with `--resolve` skip the lookup.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Most getaddrinfo calls in flight at once, hence most threads parked on DNS: one per request
/// slot (a list of new hosts has every request start with a lookup), but never more than 64.
pub fn lookup_slots(concurrency: usize) -> usize {
    concurrency.clamp(1, 64)
}

#[derive(Debug, Clone)]
pub struct BoundedResolver {
    slots: Arc<Semaphore>,
    pinned: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl BoundedResolver {
    /// A resolver running at most `slots` lookups at once, with `pinned` names answered without
    /// a lookup. A name given more than once keeps every address, in the order given.
    pub fn new(slots: usize, pinned: &[(String, Vec<IpAddr>)]) -> Self {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, addrs) in pinned {
            let known = table.entry(name.to_ascii_lowercase()).or_default();
            for addr in addrs {
                if !known.contains(addr) {
                    known.push(*addr);
                }
            }
        }
        BoundedResolver {
            slots: Arc::new(Semaphore::new(slots)),
            pinned: Arc::new(table),
        }
    }

    /// The addresses of a name pinned with `--resolve`, if any: no lookup needed.
    pub fn pinned(&self, host: &str) -> Option<&[IpAddr]> {
        self.pinned
            .get(&host.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// Looks `host` up with getaddrinfo, waiting for a free slot first.
    pub async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| io::Error::other("resolver closed"))?;
        let host = host.to_owned();
        tokio::task::spawn_blocking(move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect())
        })
        .await
        .map_err(io::Error::other)?
    }
}
