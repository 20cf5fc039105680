//! Building the one connection pool a run uses, over our connector.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::proxy::matcher::Matcher;
use tokio_rustls::TlsConnector;

use super::connect::Connector;
use super::pool::Pool;
use super::resolve::{BoundedResolver, lookup_slots};
use super::tls;
use crate::config::Config;
use crate::error::Error;

/// How long an idle pooled connection is kept. Short, because a long list of distinct hosts
/// would otherwise hold a socket per host for the whole timeout.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build(config: &Config, proxy: Option<Arc<Matcher>>) -> Result<Pool, Error> {
    let connector = Connector::new(
        BoundedResolver::new(lookup_slots(config.concurrency.get()), &config.resolve),
        TlsConnector::from(tls::client_config(config.insecure)?),
        config.connect_timeout,
        proxy,
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

/// The proxy rules: `--proxy` for everything, else the usual environment variables (HTTP_PROXY,
/// HTTPS_PROXY, ALL_PROXY, NO_PROXY and their lowercase forms). `None` when no proxy applies.
pub(super) fn proxy_matcher(config: &Config) -> Result<Option<Arc<Matcher>>, Error> {
    let matcher = match &config.proxy {
        Some(url) => Matcher::builder().all(url.to_string()).build(),
        None => {
            let from_env = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"].iter().any(|v| {
                std::env::var_os(v).is_some() || std::env::var_os(v.to_lowercase()).is_some()
            });
            if !from_env {
                return Ok(None);
            }
            Matcher::from_env()
        }
    };
    Ok(Some(Arc::new(matcher)))
}
