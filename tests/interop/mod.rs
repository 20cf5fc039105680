//! Interop: the real binary against real third-party servers from the package registries
//! (nginx, squid, tinyproxy), started on loopback by each test with certificates made for it.
//! Our own test servers show what we thought of; these show what we did not. Each defect found
//! against them is a test here. Rows are asserted by column name, and what the servers logged
//! is checked too: a row that says 200 must be a request the server answered.

mod certs;
mod servers;

mod http1;
mod http2;
mod origin;
mod proxies;
mod state;
mod tls;

use crate::support::Table;

/// Rows whose status is not 200 or that carry an error, counted by what they say, for a
/// failure message.
fn not_ok(table: &Table) -> Vec<String> {
    let status = table.column("status");
    let error = table.column("error");
    let detail = table.column("error_detail");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for i in (0..table.len()).filter(|&i| status[i] != "200" || !error[i].is_empty()) {
        *counts
            .entry(format!("{} {} {}", status[i], error[i], detail[i]))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(row, n)| format!("{n} x {row}"))
        .collect()
}
