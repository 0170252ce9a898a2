//! The rows of the table: each runs our figure and its baseline back to back, three
//! times, on the same data. The REST client and the pairing live here, the rows beside.

mod applied;
mod events;
mod grpc;
mod import;
mod reads;
mod recompute;
mod search;
mod standalone;
mod view;

pub use applied::applied;
pub use events::ingest;
pub use grpc::grpc_call;
pub use import::import;
pub use reads::get_customer;
pub use recompute::recompute;
pub use search::search;
pub use standalone::standalone;
pub use view::view_360;

use std::{future::Future, time::Duration};

use serde_json::Value;

use crate::{
    data,
    load::Summary,
    report::{Row, describe, idle_percent, median, millis},
    servers::{API_KEY, Platform},
};

/// Connections of the read rows, as the measurements used.
pub(crate) const CONNECTIONS: usize = 64;
/// Customers per import upload while loading.
const IMPORT_CHUNK: u64 = 5_000;

/// The REST API, as a client with a key sees it.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(platform: &Platform) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1_024)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(600))
            .build()
            .expect("an HTTP client");
        Self {
            client,
            base: platform.api.clone(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
    }

    /// Whether `GET path` answered 200 (its body read).
    pub async fn get_ok(&self, path: &str) -> bool {
        match self.request(reqwest::Method::GET, path).send().await {
            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
            _ => false,
        }
    }

    /// `POST path` with a JSON body; whether it answered 2xx.
    pub async fn post_ok(&self, path: &str, body: &Value) -> bool {
        let sent = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await;
        sent.is_ok_and(|response| response.status().is_success())
    }

    /// `POST path` with a JSON body, answered 2xx with JSON.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Value {
        let request = self.request(reqwest::Method::POST, path).json(body);
        answered_json(request, path).await
    }

    pub(crate) async fn get_json(&self, path: &str) -> Value {
        answered_json(self.request(reqwest::Method::GET, path), path).await
    }

    /// Uploads `ndjson` to `POST /api/imports`; the finished job.
    pub(crate) async fn import(&self, ndjson: String) -> Value {
        let request = self
            .request(reqwest::Method::POST, "/api/imports")
            .header("content-type", "application/x-ndjson")
            .body(ndjson);
        answered_json(request, "/api/imports").await
    }

    /// Imports customers `0..count` of the generated base (NDJSON uploads of
    /// `IMPORT_CHUNK`), showing progress; answers every customer id.
    pub async fn load_customers(&self, count: u64) -> Vec<String> {
        self.import_customers(count).await;
        self.customer_ids(count).await
    }

    /// Imports `count` generated customers in uploads of `IMPORT_CHUNK`, with progress.
    pub async fn import_customers(&self, count: u64) {
        let started = std::time::Instant::now();
        let mut from = 0;
        while from < count {
            let to = (from + IMPORT_CHUNK).min(count);
            let mut body = String::new();
            for n in from..to {
                body.push_str(&data::customer(n).to_string());
                body.push('\n');
            }
            let job = self.import(body).await;
            let created = job["counts"]["created"].as_u64().unwrap_or_default();
            assert_eq!(created, to - from, "the import created every row: {job}");
            from = to;
            let rate = from as f64 / started.elapsed().as_secs_f64();
            println!("bench:   {from}/{count} customers imported ({rate:.0} rows/s)");
        }
    }

    /// The ids of every customer, a page at a time.
    async fn customer_ids(&self, count: u64) -> Vec<String> {
        let mut ids = Vec::with_capacity(count as usize);
        let mut cursor = String::new();
        loop {
            let page = self
                .get_json(&format!("/api/customers?limit=100{cursor}"))
                .await;
            for item in page["items"].as_array().expect("items") {
                ids.push(item["id"].as_str().expect("an id").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = format!("&cursor={next}"),
                _ => return ids,
            }
        }
    }
}

/// The JSON of a 2xx answer to `request`; anything else stops the benchmark.
async fn answered_json(request: reqwest::RequestBuilder, path: &str) -> Value {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// The resident memory of every process of `platform` (the largest in the row).
pub fn memory(platform: &Platform) -> Row {
    let each: Vec<(String, f64)> = platform
        .processes
        .iter()
        .map(|p| (p.name.clone(), p.pid().map_or(0.0, crate::report::rss_mib)))
        .collect();
    let largest = each.iter().map(|(_, mib)| *mib).fold(0.0, f64::max);
    let listed: Vec<String> = each
        .iter()
        .map(|(name, mib)| format!("{} {mib:.0}", name.trim_start_matches("crm-")))
        .collect();
    Row {
        what: "resident memory of each service, idle (the largest)".into(),
        baseline: "the target".into(),
        unit: "MiB",
        ours: largest,
        base: 64.0,
        ratio: 64.0 / largest,
        target: "≤ 64 MiB each".into(),
        note: listed.join(", "),
        idle_before: f64::NAN,
    }
}

/// Waits until the platform is done with earlier work: customer-core's outbox relayed
/// (distributed) and the machine at least 80 % idle for a second, at most two minutes;
/// how idle it was last.
pub async fn settle(platform: &Platform) -> f64 {
    settle_within(platform, Duration::from_secs(120)).await
}

/// `settle`, waiting at most `limit`.
pub async fn settle_within(platform: &Platform, limit: Duration) -> f64 {
    let outbox = match platform.database_url {
        Some(_) => Some(platform.database(1).await),
        None => None,
    };
    let started = std::time::Instant::now();
    loop {
        let waiting = match &outbox {
            Some(database) => {
                let (waiting,): (i64,) = sqlx::query_as("select count(*) from outbox")
                    .fetch_one(database)
                    .await
                    .expect("the outbox");
                waiting
            }
            None => 0,
        };
        let idle = idle_percent(Duration::from_secs(1)).await;
        if (waiting == 0 && idle >= 80.0) || started.elapsed() > limit {
            return idle;
        }
    }
}

/// Three pairs of (ours, baseline) load runs, each preceded by a look at how idle the
/// machine is; the first of ours profiled as `label` when `BENCH_PROFILE` is set.
pub(crate) async fn pairs<O, OF, B, BF>(
    label: &str,
    ours: O,
    baseline: B,
) -> (Vec<(Summary, Summary)>, f64)
where
    O: Fn(usize) -> OF,
    OF: Future<Output = Summary>,
    B: Fn(usize) -> BF,
    BF: Future<Output = Summary>,
{
    let mut runs = Vec::new();
    let mut idle = Vec::new();
    for round in 0..3 {
        idle.push(idle_percent(Duration::from_secs(1)).await);
        let mine = crate::profile::during(label, round == 0, ours(round)).await;
        let theirs = baseline(round).await;
        println!(
            "bench:     ours {} | baseline {}",
            describe(&mine),
            describe(&theirs)
        );
        runs.push((mine, theirs));
    }
    (runs, median(idle))
}

/// What a row compares.
pub(crate) enum Figure {
    /// Requests per second: higher is ahead; the p99s go in the note.
    Rate,
    /// The p99 latency: lower is ahead; the p50s go in the note.
    P99,
}

/// A row from three pairs of runs, medians of each side.
pub(crate) fn row(
    figure: Figure,
    what: &str,
    baseline: &str,
    target: &str,
    runs: &[(Summary, Summary)],
    idle_before: f64,
) -> Row {
    let (unit, ours, base, ratio, note) = match figure {
        Figure::Rate => {
            let ours = median(runs.iter().map(|(o, _)| o.per_second).collect());
            let base = median(runs.iter().map(|(_, b)| b.per_second).collect());
            let (mine, theirs) = (median_ms(runs, |r| r.0.p99), median_ms(runs, |r| r.1.p99));
            let note = format!("p99 {mine:.2} ms vs {theirs:.2} ms");
            ("req/s", ours, base, ours / base, note)
        }
        Figure::P99 => {
            let (ours, base) = (median_ms(runs, |r| r.0.p99), median_ms(runs, |r| r.1.p99));
            let (mine, theirs) = (median_ms(runs, |r| r.0.p50), median_ms(runs, |r| r.1.p50));
            let note = format!("p50 {mine:.2} ms vs {theirs:.2} ms");
            ("p99 ms", ours, base, base / ours, note)
        }
    };
    Row {
        what: what.to_owned(),
        baseline: baseline.to_owned(),
        unit,
        ours,
        base,
        ratio,
        target: target.to_owned(),
        note: with_errors(note, runs),
        idle_before,
    }
}

/// The median over the runs of one latency, in milliseconds.
pub(crate) fn median_ms(
    runs: &[(Summary, Summary)],
    pick: fn(&(Summary, Summary)) -> Duration,
) -> f64 {
    median(runs.iter().map(|r| millis(pick(r))).collect())
}

/// `note`, and how many requests failed when any did (the smoke run refuses those rows).
fn with_errors(mut note: String, runs: &[(Summary, Summary)]) -> String {
    let errors: u64 = runs.iter().map(|(o, b)| o.errors + b.errors).sum();
    if errors > 0 {
        note.push_str(&format!("; {errors} errors"));
    }
    note
}
