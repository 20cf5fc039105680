//! Building the one connection pool a run uses, over our connector.

use std::sync::Arc;
use std::time::Duration;

use super::connect::Connector;
use super::pool::Pool;
use super::proxy::Proxies;
use super::resolve::{BoundedResolver, lookup_slots};
use super::{Capacity, Settings, tls};
use crate::error::Error;

/// How long an idle pooled connection is kept. Short, because a long list of distinct hosts
/// would otherwise hold a socket per host for the whole timeout.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build(
    settings: &Settings,
    capacity: Capacity,
    proxies: Option<Arc<Proxies>>,
) -> Result<Pool, Error> {
    let connector = Connector::new(
        BoundedResolver::new(lookup_slots(capacity.requests), &settings.resolve),
        tls::client_config(settings.insecure, settings.cacert.as_deref())?,
        settings.connect_timeout,
        proxies,
        settings.tls_info,
    );
    // Enough idle connections to keep one busy host at full concurrency without reconnecting,
    // and no more; across hosts, as many as requests may be in flight.
    Ok(Pool::new(
        connector,
        capacity.per_origin,
        capacity.requests,
        POOL_IDLE_TIMEOUT,
    ))
}
