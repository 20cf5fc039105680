//! DNS benchmark: how many threads, and how much time, resolving many distinct host names costs
//! with each resolver. Run by `bench/dns.sh`, which provides a slow local DNS server for the
//! `*.dnsbench.test` names and a local HTTP server; nothing leaves 127.0.0.0/8.
//!
//!     bench/dns.sh            # or, with the servers already up:
//!     cargo run --release --example dns_threads -- RESOLVER PORT NAMES CONCURRENCY
//!
//! Each resolver runs in a process of its own, so threads left over from one (tokio keeps idle
//! blocking threads for 10 s) do not count against the next.
//!
//! Resolvers compared, each on fresh names so no cache helps:
//! - `gai-unbounded`: reqwest's default, getaddrinfo on tokio's blocking pool (up to 512 threads);
//! - `gai-bounded`: fetch's resolver, getaddrinfo with at most `lookup_slots(concurrency)` at once;
//! - `hickory`: the async hickory resolver (no blocking threads; reads resolv.conf itself).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fetch::fetch::{BoundedResolver, lookup_slots};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

struct Hickory(hickory_resolver::TokioResolver);

impl Resolve for Hickory {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.0.clone();
        Box::pin(async move {
            let ips = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn measure(
    label: &str,
    client: reqwest::Client,
    port: u16,
    names: usize,
    concurrency: usize,
) {
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
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..names {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let (client, errors) = (client.clone(), Arc::clone(&errors));
        let url = format!("http://{label}-{i}.dnsbench.test:{port}/page/x");
        tasks.spawn(async move {
            if client.get(url).send().await.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
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
        errors.load(Ordering::Relaxed),
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let resolver = args.next().unwrap_or_else(|| "gai-bounded".into());
    let mut numbers = args.map(|a| a.parse::<usize>());
    let port = numbers.next().transpose()?.unwrap_or(18181) as u16;
    let names = numbers.next().transpose()?.unwrap_or(2000);
    let concurrency = numbers.next().transpose()?.unwrap_or(500);
    let builder = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0);
    let client = match resolver.as_str() {
        "gai-unbounded" => builder.build()?,
        "gai-bounded" => builder
            .dns_resolver(Arc::new(BoundedResolver::new(
                lookup_slots(concurrency),
                &[],
            )))
            .build()?,
        "hickory" => {
            let hickory = Hickory(hickory_resolver::TokioResolver::builder_tokio()?.build()?);
            builder.dns_resolver(Arc::new(hickory)).build()?
        }
        other => return Err(format!("unknown resolver {other}").into()),
    };
    measure(&resolver, client, port, names, concurrency).await;
    Ok(())
}
