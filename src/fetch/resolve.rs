//! Name resolution with a bounded number of blocking lookups.
//!
//! The system resolver (getaddrinfo) is the one users expect: it honours /etc/hosts, nsswitch and
//! resolv.conf exactly as curl and browsers do. But it blocks, and reqwest's default runs every
//! lookup on tokio's blocking pool, which grows to 512 threads when many new hosts are looked up
//! at once (and, measured, then fails lookups). Here at most [`lookup_slots`] lookups run at a
//! time; the rest wait their turn without a thread. Names given with `--resolve` skip the lookup.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

/// Most getaddrinfo calls in flight at once, hence most threads parked on DNS: one per request
/// slot (a list of new hosts has every request start with a lookup), but never more than 64.
pub fn lookup_slots(concurrency: usize) -> usize {
    concurrency.clamp(1, 64)
}

#[derive(Debug)]
pub struct BoundedResolver {
    slots: Arc<Semaphore>,
    pinned: HashMap<String, IpAddr>,
}

impl BoundedResolver {
    /// A resolver running at most `slots` lookups at once, with `pinned` names answered without
    /// a lookup.
    pub fn new(slots: usize, pinned: &[(String, IpAddr)]) -> Self {
        BoundedResolver {
            slots: Arc::new(Semaphore::new(slots)),
            pinned: pinned
                .iter()
                .map(|(name, ip)| (name.to_ascii_lowercase(), *ip))
                .collect(),
        }
    }
}

impl Resolve for BoundedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        if let Some(ip) = self.pinned.get(&name.as_str().to_ascii_lowercase()) {
            let addr = SocketAddr::new(*ip, 0);
            return Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) });
        }
        let slots = Arc::clone(&self.slots);
        Box::pin(async move {
            let _slot = slots.acquire_owned().await?;
            let host = name.as_str().to_owned();
            // Port 0: the connector fills in the URL's port.
            let addrs =
                tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs()).await??;
            Ok(Box::new(addrs) as Addrs)
        })
    }
}
