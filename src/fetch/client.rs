//! Building the one HTTP client a run uses: TLS, proxy, resolver, connection pool.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;

use super::resolve::{BoundedResolver, lookup_slots};
use crate::config::Config;
use crate::error::Error;

/// How long an idle pooled connection is kept. Short, because a long list of distinct hosts
/// would otherwise hold a socket per host for the whole timeout.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build(config: &Config) -> Result<Client, Error> {
    // reqwest is built without a default crypto provider so that ring (no cmake, no OpenSSL) is
    // used; installing fails harmlessly when another part of the process already did.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let idle_per_host = config
        .per_host_concurrency
        .map_or(config.concurrency, |per_host| {
            per_host.min(config.concurrency)
        });
    let mut builder = Client::builder()
        .user_agent(&config.user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(BoundedResolver::new(
            lookup_slots(config.concurrency.get()),
            &config.resolve,
        )))
        // Enough idle connections to keep one busy host at full concurrency without
        // reconnecting, and no more.
        .pool_max_idle_per_host(idle_per_host.get())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tls_danger_accept_invalid_certs(config.insecure);
    if let Some(connect_timeout) = config.connect_timeout {
        builder = builder.connect_timeout(connect_timeout);
    }
    if let Some(proxy) = &config.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(Error::Client)?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(Error::Client)
}
