//! The rows of the table: each runs our figure and its baseline back to back, three
//! times, on the same data.

use std::{future::Future, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    data,
    load::{Summary, closed_loop},
    report::{Row, describe, idle_percent, median, millis},
    servers::{API_KEY, Platform},
};

/// Connections of the read rows, as the measurements used.
const CONNECTIONS: usize = 64;
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

    async fn get_json(&self, path: &str) -> Value {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// Imports customers `0..count` of the generated base (NDJSON uploads of
    /// `IMPORT_CHUNK`), showing progress; answers every customer id.
    pub async fn load_customers(&self, count: u64) -> Vec<String> {
        let started = std::time::Instant::now();
        let mut from = 0;
        while from < count {
            let to = (from + IMPORT_CHUNK).min(count);
            let mut body = String::new();
            for n in from..to {
                body.push_str(&data::customer(n).to_string());
                body.push('\n');
            }
            let response = self
                .request(reqwest::Method::POST, "/api/imports")
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .expect("import upload");
            let job: Value = response.json().await.expect("the import job");
            let created = job["counts"]["created"].as_u64().unwrap_or_default();
            assert_eq!(created, to - from, "the import created every row: {job}");
            from = to;
            let rate = from as f64 / started.elapsed().as_secs_f64();
            println!("bench:   {from}/{count} customers imported ({rate:.0} rows/s)");
        }
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

/// Three pairs of (ours, baseline) load runs, each preceded by a look at how idle the
/// machine is.
async fn pairs<O, OF, B, BF>(ours: O, baseline: B) -> (Vec<(Summary, Summary)>, f64)
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
        let mine = ours(round).await;
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

fn rate_row(
    what: &str,
    baseline: &str,
    target: &str,
    runs: &[(Summary, Summary)],
    idle_before: f64,
) -> Row {
    let ours = median(runs.iter().map(|(o, _)| o.per_second).collect());
    let base = median(runs.iter().map(|(_, b)| b.per_second).collect());
    let p99 = |pick: fn(&(Summary, Summary)) -> Duration| {
        median(runs.iter().map(|r| millis(pick(r))).collect())
    };
    let errors: u64 = runs.iter().map(|(o, b)| o.errors + b.errors).sum();
    let mut note = format!(
        "p99 {:.2} ms vs {:.2} ms",
        p99(|r| r.0.p99),
        p99(|r| r.1.p99)
    );
    if errors > 0 {
        note.push_str(&format!("; {errors} errors"));
    }
    Row {
        what: what.to_owned(),
        baseline: baseline.to_owned(),
        unit: "req/s",
        ours,
        base,
        ratio: ours / base,
        target: target.to_owned(),
        note,
        idle_before,
    }
}

/// `GET /api/customers/{id}` at 64 connections, cache cold (each id once) and warm,
/// against the primary-key SELECT customer-core runs, prepared, at the same concurrency;
/// Redis GET of the same cache keys beside the warm row.
pub async fn get_customer(
    api: &Api,
    platform: &Platform,
    ids: &[String],
    requests: u64,
) -> Vec<Row> {
    let database_url = platform.database_url.as_deref().expect("distributed");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CONNECTIONS as u32)
        .connect(database_url)
        .await
        .expect("connect to the platform's database");
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    let select = |ids: Arc<Vec<String>>, offset: usize, count: u64| {
        let pool = pool.clone();
        closed_loop(CONNECTIONS, count, move |n| {
            let (pool, ids) = (pool.clone(), ids.clone());
            async move {
                let id: uuid::Uuid = ids[(offset + n as usize) % ids.len()].parse().unwrap();
                sqlx::query(SELECT_CUSTOMER)
                    .bind(id)
                    .fetch_optional(&pool)
                    .await
                    .is_ok_and(|row| row.is_some())
            }
        })
    };
    let get = |ids: Arc<Vec<String>>, offset: usize, count: u64| {
        let api = api.clone();
        closed_loop(CONNECTIONS, count, move |n| {
            let (api, ids) = (api.clone(), ids.clone());
            async move {
                let id = &ids[(offset + n as usize) % ids.len()];
                api.get_ok(&format!("/api/customers/{id}")).await
            }
        })
    };

    println!("bench: GET customer, cache cold (each id once)");
    let third = ids.len() / 3;
    let cold_count = (third as u64).min(requests);
    let (cold, cold_idle) = pairs(
        |round| get(ids.clone(), round * third, cold_count),
        |round| select(ids.clone(), round * third, cold_count),
    )
    .await;

    println!("bench: GET customer, cache warm");
    let warm: Arc<Vec<String>> = Arc::new(ids[..ids.len().min(10_000)].to_vec());
    get(warm.clone(), 0, warm.len() as u64).await;
    let (warm_runs, warm_idle) = pairs(
        |_| get(warm.clone(), 0, requests),
        |_| select(warm.clone(), 0, requests),
    )
    .await;
    let redis = redis_get(platform, warm.clone(), requests).await;
    let mut warm_row = rate_row(
        "GET /api/customers/{id}, 64 connections, cache warm",
        "PK SELECT, prepared, 64 clients",
        "≥ 0.5×",
        &warm_runs,
        warm_idle,
    );
    warm_row.note.push_str(&format!(
        "; Redis GET of the same keys: {}",
        describe(&redis)
    ));
    vec![
        warm_row,
        rate_row(
            "GET /api/customers/{id}, 64 connections, cache cold (each id once)",
            "PK SELECT, prepared, 64 clients",
            "≥ 0.3×",
            &cold,
            cold_idle,
        ),
    ]
}

/// The statement customer-core reads a customer by id with.
const SELECT_CUSTOMER: &str =
    include_str!("../services/customer-core/src/repo/queries/select_customer.sql");

async fn redis_get(platform: &Platform, ids: Arc<Vec<String>>, requests: u64) -> Summary {
    let client = Arc::new(
        crm_platform::redis::RedisClient::new(
            &crm_platform::settings::Secret::new("redis://127.0.0.1:6379"),
            Duration::from_secs(5),
        )
        .expect("a Redis client"),
    );
    let prefix = platform.redis_key_prefix.clone();
    closed_loop(CONNECTIONS, requests, move |n| {
        let (client, ids) = (client.clone(), ids.clone());
        let key = format!("{prefix}customer:{}", ids[n as usize % ids.len()]);
        async move {
            client
                .call(|mut conn| async move {
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Option<Vec<u8>>>(&mut conn)
                        .await
                })
                .await
                .is_some_and(|value| value.is_some())
        }
    })
    .await
}

/// Customers of the 360 row, each with 10 orders and 40 product views.
const VIEWED_CUSTOMERS: usize = 20;

/// `GET /api/customers/{id}/360` on one connection for customers with 50 events and 10
/// orders, beside the SELECTs customer-core runs for its parts (the customer, recent
/// orders, events and tickets) one after another on one connection.
pub async fn view_360(api: &Api, platform: &Platform, ids: &[String], requests: u64) -> Row {
    let chosen: Arc<Vec<String>> = Arc::new(ids.iter().take(VIEWED_CUSTOMERS).cloned().collect());
    println!(
        "bench: 360 view: 50 events (10 orders) for each of {} customers",
        chosen.len()
    );
    for (c, id) in chosen.iter().enumerate() {
        let c = c as u64 * 100;
        let events: Vec<Value> = (0..10)
            .map(|n| data::order(id, c + n))
            .chain((0..40).map(|n| data::view(id, c + n)))
            .collect();
        let body = serde_json::json!({ "events": events });
        assert!(api.post_ok("/api/events", &body).await, "events accepted");
    }
    for id in chosen.iter() {
        let started = std::time::Instant::now();
        loop {
            let customer = api.get_json(&format!("/api/customers/{id}")).await;
            if customer["metrics"]["total_orders"] == 10 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "orders applied in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let database_url = platform.database_url.as_deref().expect("distributed");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("connect to the platform's database");
    let count = (requests / 25).max(50);
    let (runs, idle) = pairs(
        |_| {
            let (api, chosen) = (api.clone(), chosen.clone());
            closed_loop(1, count, move |n| {
                let (api, chosen) = (api.clone(), chosen.clone());
                async move {
                    let id = &chosen[n as usize % chosen.len()];
                    api.get_ok(&format!("/api/customers/{id}/360")).await
                }
            })
        },
        |_| {
            let (pool, chosen) = (pool.clone(), chosen.clone());
            closed_loop(1, count, move |n| {
                let (pool, chosen) = (pool.clone(), chosen.clone());
                async move {
                    let id: uuid::Uuid = chosen[n as usize % chosen.len()].parse().unwrap();
                    view_selects(&pool, id).await.is_ok()
                }
            })
        },
    )
    .await;
    let p = |pick: fn(&(Summary, Summary)) -> Duration| {
        median(runs.iter().map(|r| millis(pick(r))).collect())
    };
    let (ours, base) = (p(|r| r.0.p99), p(|r| r.1.p99));
    Row {
        what: "GET /api/customers/{id}/360, 1 connection, 50 events and 10 orders".into(),
        baseline: "customer-core's SELECTs for it, in sequence, 1 connection".into(),
        unit: "p99 ms",
        ours,
        base,
        ratio: base / ours,
        target: "p99 ≤ 3× (ratio ≥ 0.33) and ≤ 10 ms".into(),
        note: format!(
            "p50 {:.2} ms vs {:.2} ms; segmentation's RFM and recommendations are in ours, \
             not yet in the baseline",
            p(|r| r.0.p50),
            p(|r| r.1.p50)
        ),
        idle_before: idle,
    }
}

/// The statements of customer-core's part of the 360 view, one after another.
async fn view_selects(pool: &sqlx::PgPool, id: uuid::Uuid) -> sqlx::Result<()> {
    const ORDERS: &str =
        include_str!("../services/customer-core/src/repo/queries/select_recent_orders.sql");
    const EVENTS: &str =
        include_str!("../services/customer-core/src/repo/queries/select_events.sql");
    const TICKETS: &str =
        include_str!("../services/customer-core/src/repo/queries/select_recent_tickets.sql");
    sqlx::query(SELECT_CUSTOMER)
        .bind(id)
        .fetch_one(pool)
        .await?;
    sqlx::query(ORDERS)
        .bind(id)
        .bind(10_i64)
        .fetch_all(pool)
        .await?;
    sqlx::query(EVENTS)
        .bind(id)
        .bind(None::<String>)
        .bind(None::<i64>)
        .bind(None::<uuid::Uuid>)
        .bind(50_i64)
        .fetch_all(pool)
        .await?;
    sqlx::query(TICKETS)
        .bind(id)
        .bind(50_i64)
        .fetch_all(pool)
        .await?;
    Ok(())
}
