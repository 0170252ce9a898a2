//! `make bench`: the platform measured through its real API against the machine's own
//! limits. It starts the release binaries (every service on the local PostgreSQL, Redis
//! and RabbitMQ), loads its own customers (a fixed seed, `BENCH_CUSTOMERS`, 1,000,000 by
//! default) through the import API, and measures each row's figure beside a baseline
//! measured in the same run on the same machine: three back-to-back pairs, the median
//! kept. The table goes to `benches/RESULTS.md`. `BENCH_SMOKE=1` (`make bench-smoke`)
//! runs every row on tiny data and checks each produced a number, not how fast.

use std::path::PathBuf;

use crm_benches::{
    env_or,
    report::{self, Row},
    rows, servers,
};

/// The heading of the hand-written part of `RESULTS.md`, kept from run to run.
const GAINS: &str = "## What each change gained";

#[tokio::main]
async fn main() {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let customers: u64 = env_or("BENCH_CUSTOMERS", if smoke { 300 } else { 1_000_000 });
    let requests: u64 = env_or("BENCH_REQUESTS", if smoke { 300 } else { 50_000 });
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();

    println!("bench: starting the binaries (distributed)");
    let platform = servers::distributed().await;
    let api = rows::Api::new(&platform);
    // Idle: started, nothing asked of it yet.
    let idle_memory = rows::memory(&platform);
    println!("bench: loading {customers} customers through POST /api/imports");
    let ids = api.load_customers(customers).await;
    println!("bench: {} customers loaded", ids.len());
    rows::settle(&platform).await;

    // `BENCH_ROWS=applied,import` runs only those rows (while working on one path).
    let only: Option<Vec<String>> = std::env::var("BENCH_ROWS")
        .ok()
        .map(|list| list.split(',').map(|n| n.trim().to_owned()).collect());
    let runs = |name: &str| {
        only.as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    };

    let mut table: Vec<Row> = vec![idle_memory];
    if runs("get") {
        table.extend(rows::get_customer(&api, &platform, &ids, requests).await);
    }
    if runs("view") {
        table.push(rows::view_360(&api, &platform, &ids, requests).await);
    }
    if runs("search") {
        table.extend(rows::search(&api, &platform, customers, requests).await);
    }
    if runs("applied") {
        rows::settle(&platform).await;
        table.extend(rows::applied(&api, &platform, &ids, requests / 5).await);
    }
    if runs("grpc") {
        rows::settle(&platform).await;
        table.push(rows::grpc_call(&platform, requests).await);
    }
    if runs("recompute") {
        table.push(rows::recompute(&api, &platform).await);
    }
    // Last of the event rows: customer-core applies its events long after they were
    // accepted; the import row waits for the machine to settle.
    if runs("ingest") {
        table.push(rows::ingest(&api, &platform, &ids, requests).await);
    }
    if runs("import") {
        let import_rows: u64 = env_or("BENCH_IMPORT_ROWS", (customers / 10).clamp(30, 100_000));
        println!("bench: import: {import_rows} new customers per upload");
        table.push(rows::import(&api, &platform, customers, import_rows).await);
    }
    drop(platform);
    if runs("standalone") {
        table.push(rows::standalone(customers).await);
    }

    let rendered = report::markdown(&table, customers, &date);
    println!("\n{rendered}");
    let path = if smoke {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-smoke/RESULTS.md")
    } else if only.is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-rows/RESULTS.md")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md")
    };
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("results folder");
    // What each change gained is written by hand below the table, and kept.
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(GAINS).map(|at| old[at..].to_owned()))
        .unwrap_or_default();
    std::fs::write(&path, format!("{rendered}\n{kept}")).expect("write the results");
    println!("bench: written to {}", path.display());
    if smoke {
        let empty: Vec<&str> = table
            .iter()
            .filter(|row| !(row.ours > 0.0 && row.base > 0.0) || row.note.contains("errors"))
            .map(|row| row.what.as_str())
            .collect();
        assert!(
            empty.is_empty(),
            "rows without a number or with errors: {empty:?}"
        );
    }
}
