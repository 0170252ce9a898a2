//! `crm`, the whole platform in one process: its memory once it holds the customers.

use std::time::{Duration, Instant};

use super::Api;
use crate::{report::Row, servers};

/// Starts `crm` on a fresh data directory, loads `customers` through its import API,
/// waits until it has done the work the import caused (its queues and index; at most
/// ten minutes) and reads its resident memory, and the peak while loading.
pub async fn standalone(customers: u64) -> Row {
    println!("bench: crm standalone: loading {customers} customers");
    let platform = servers::standalone().await;
    let api = Api::new(&platform);
    let started = Instant::now();
    api.import_customers(customers).await;
    let rate = customers as f64 / started.elapsed().as_secs_f64();
    let pid = platform.processes[0].pid();
    let peak = pid.map_or(0.0, crate::report::peak_mib);
    super::settle_within(&platform, Duration::from_secs(600)).await;
    let mib = pid.map_or(0.0, crate::report::rss_mib);
    Row {
        what: format!("crm standalone holding {customers} customers, resident memory"),
        baseline: "the target".into(),
        unit: "MiB",
        ours: mib,
        base: 512.0,
        ratio: 512.0 / mib,
        target: "≤ 512 MiB".into(),
        note: format!(
            "loaded through POST /api/imports at {rate:.0} rows/s; at most {peak:.0} MiB while \
             loading, its in-process queues holding the work the import caused"
        ),
        idle_before: f64::NAN,
    }
}
