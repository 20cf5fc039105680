//! DNS benchmark: how many threads, and how much time, resolving many distinct host names costs
//! with each resolver. Run by `bench/dns.sh`, which provides a slow local DNS server for the
//! `*.dnsbench.test` names; nothing leaves 127.0.0.0/8.
//!
//!     bench/dns.sh            # or, with a DNS server for *.dnsbench.test configured:
//!     cargo run --release --example dns_threads -- RESOLVER NAMES CONCURRENCY
//!
//! `CONCURRENCY` lookups are in flight at once (as with that many requests to new hosts).
//! Resolvers, each run in a process of its own (tokio keeps idle blocking threads for 10 s, which
//! would otherwise count against the next):
//! - `gai-unbounded`: getaddrinfo on tokio's blocking pool, one call per lookup (what hyper's and
//!   reqwest's default resolvers do; the pool grows to 512 threads);
//! - `gai-bounded`: fetch's resolver, getaddrinfo with at most `lookup_slots(concurrency)` calls
//!   at once;
//! - `hickory`: the async hickory resolver (no blocking threads; reads resolv.conf itself).

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fetch::fetch::{BoundedResolver, lookup_slots};

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

enum Resolver {
    Unbounded,
    Bounded(BoundedResolver),
    Hickory(Box<hickory_resolver::TokioResolver>),
}

impl Resolver {
    async fn lookup(&self, name: String) -> bool {
        match self {
            Resolver::Unbounded => tokio::task::spawn_blocking(move || {
                (name.as_str(), 80)
                    .to_socket_addrs()
                    .is_ok_and(|mut a| a.next().is_some())
            })
            .await
            .unwrap_or(false),
            Resolver::Bounded(r) => r.lookup(&name, 80).await.is_ok_and(|a| !a.is_empty()),
            Resolver::Hickory(r) => r.lookup_ip(name.as_str()).await.is_ok(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let label = args.next().unwrap_or_else(|| "gai-bounded".into());
    let mut numbers = args.map(|a| a.parse::<usize>());
    let names = numbers.next().transpose()?.unwrap_or(2000);
    let concurrency = numbers.next().transpose()?.unwrap_or(500);
    let resolver = Arc::new(match label.as_str() {
        "gai-unbounded" => Resolver::Unbounded,
        "gai-bounded" => Resolver::Bounded(BoundedResolver::new(lookup_slots(concurrency), &[])),
        "hickory" => Resolver::Hickory(Box::new(
            hickory_resolver::TokioResolver::builder_tokio()?.build()?,
        )),
        other => return Err(format!("unknown resolver {other}").into()),
    });

    let base = threads();
    let peak = Arc::new(AtomicUsize::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(threads(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..names {
        let permit = slots.clone().acquire_owned().await?;
        let (resolver, failed) = (Arc::clone(&resolver), Arc::clone(&failed));
        let name = format!("{label}-{i}.dnsbench.test");
        tasks.spawn(async move {
            if !resolver.lookup(name).await {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    println!(
        "| {label} | {names} | {concurrency} | {:.2} s | {:.0} | {} | {} |",
        wall.as_secs_f64(),
        names as f64 / wall.as_secs_f64(),
        peak.load(Ordering::Relaxed) - base,
        failed.load(Ordering::Relaxed),
    );
    Ok(())
}
