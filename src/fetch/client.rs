//! Building the one connection pool a run uses, over our connector.

use std::sync::Arc;
use std::time::Duration;

use super::connect::Connector;
use super::pool::Pool;
use super::proxy::Proxies;
use super::resolve::{BoundedResolver, lookup_slots};
use super::tls;
use crate::config::Config;
use crate::error::Error;

/// How long an idle pooled connection is kept. Short, because a long list of distinct hosts
/// would otherwise hold a socket per host for the whole timeout.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build(config: &Config, proxies: Option<Arc<Proxies>>) -> Result<Pool, Error> {
    let connector = Connector::new(
        BoundedResolver::new(lookup_slots(config.concurrency.get()), &config.resolve),
        tls::client_config(config.insecure, config.cacert.as_deref())?,
        config.connect_timeout,
        proxies,
        config.tls_info,
    );
    // Enough idle connections to keep one busy host at full concurrency without reconnecting,
    // and no more.
    let idle_per_host = config
        .per_host_concurrency
        .map_or(config.concurrency, |per_host| {
            per_host.min(config.concurrency)
        });
    Ok(Pool::new(connector, idle_per_host.get(), POOL_IDLE_TIMEOUT))
}
