//! Search through the API on the loaded base, beside the same queries on the search
//! engine in this process over the same customers, and on PostgreSQL's `pg_trgm`.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use crm_domain::{Customer, CustomerDraft, CustomerId};
use crm_search_indexer::index::{SearchIndex, SearchQuery, TantivyIndex};
use serde_json::json;

use super::{Api, Figure, median_ms, pairs, row};
use crate::{
    data,
    load::{Summary, closed_loop},
    report::{Row, median},
    servers::Platform,
};

/// Customers indexed in one call while building the in-process engine.
const BATCH: u64 = 2_000;

/// Customer `n` of the generated base as the search engine receives it.
fn indexed(n: u64) -> Customer {
    let draft: CustomerDraft = serde_json::from_value(data::customer(n)).expect("a draft");
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let id = CustomerId::from(uuid::Uuid::from_u128(u128::from(n) + 1));
    Customer::create(id, draft, at).expect("a valid customer")
}

/// `POST /api/customers/search` on one connection with misspelled names, e-mail local
/// parts and phone endings, beside the same queries on tantivy in this process; then
/// the API's p99 beside the same queries as `pg_trgm` word similarity over the same
/// customers (a GIN trigram index on their e-mail, name and phone).
pub async fn search(api: &Api, platform: &Platform, customers: u64, requests: u64) -> Vec<Row> {
    println!("bench: search: waiting for the index to hold every customer");
    let last = json!({ "query": data::email(customers - 1) });
    let started = std::time::Instant::now();
    while api.post_json("/api/customers/search", &last).await["total"] == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "indexed in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("bench: search: indexing {customers} customers in this process (the baseline)");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(TantivyIndex::open(dir.path()).expect("a tantivy index"));
    for start in (0..customers).step_by(BATCH as usize) {
        let batch: Vec<Customer> = (start..(start + BATCH).min(customers))
            .map(indexed)
            .collect();
        engine.apply_all(&batch).await.expect("indexed");
    }
    engine.refresh().await.expect("refreshed");

    let count = (requests / 25).max(50);
    let (runs, idle) = pairs(
        "search",
        |_| {
            let api = api.clone();
            closed_loop(1, count, move |n| {
                let api = api.clone();
                async move {
                    let body = data::search(n, customers);
                    api.post_ok("/api/customers/search", &body).await
                }
            })
        },
        |_| {
            let engine = engine.clone();
            closed_loop(1, count, move |n| {
                let engine = engine.clone();
                async move {
                    let body = data::search(n, customers);
                    let query = SearchQuery {
                        text: body["query"].as_str().unwrap_or_default().to_owned(),
                        limit: 10,
                        ..SearchQuery::default()
                    };
                    engine.search(&query).await.is_ok()
                }
            })
        },
    )
    .await;
    let engine_row = row(
        Figure::P99,
        "POST /api/customers/search, 1 connection, typos, e-mails, phone endings",
        "the same queries on tantivy in this process",
        "p99 ≤ 1.5× (ratio ≥ 0.67) and ≤ 15 ms",
        &runs,
        idle,
    );
    let trigrams = pg_trgm(platform, customers, count).await;
    let ours = median_ms(&runs, |r| r.0.p99);
    let theirs = median(
        trigrams
            .iter()
            .map(|s| crate::report::millis(s.p99))
            .collect(),
    );
    let theirs_p50 = median(
        trigrams
            .iter()
            .map(|s| crate::report::millis(s.p50))
            .collect(),
    );
    let trigram_row = Row {
        what: "the same search through the API (its p99 above)".into(),
        baseline: "the same queries as pg_trgm word similarity, GIN index, same customers".into(),
        unit: "p99 ms",
        ours,
        base: theirs,
        ratio: theirs / ours,
        target: "≥ 10× faster".into(),
        note: format!("pg_trgm p50 {theirs_p50:.2} ms"),
        idle_before: idle,
    };
    vec![engine_row, trigram_row]
}

/// The search queries, three runs of `count` on one connection, as `pg_trgm` word
/// similarity over a table of the platform's customers (e-mail, name and phone).
async fn pg_trgm(platform: &Platform, customers: u64, count: u64) -> Vec<Summary> {
    println!("bench: search: a pg_trgm index of the same customers (the second baseline)");
    let pool = platform.database(1).await;
    for statement in [
        "create extension if not exists pg_trgm",
        "drop table if exists bench_search",
        "create table bench_search as select id, concat_ws(' ', email, first_name, \
         last_name, phone) as text from customers",
        "create index bench_search_trgm on bench_search using gin (text gin_trgm_ops)",
        "analyze bench_search",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        let pool = pool.clone();
        let summary = closed_loop(1, count, move |n| {
            let pool = pool.clone();
            async move {
                let body = data::search(n, customers);
                let text = body["query"].as_str().unwrap_or_default().to_owned();
                sqlx::query(
                    "select id from bench_search where $1 <% text \
                     order by word_similarity($1, text) desc limit 10",
                )
                .bind(text)
                .fetch_all(&pool)
                .await
                .is_ok()
            }
        })
        .await;
        println!("bench:     pg_trgm {}", crate::report::describe(&summary));
        runs.push(summary);
    }
    runs
}
