//! Search through the API on the loaded base, beside the same queries on the search
//! engine in this process over the same customers.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use crm_domain::{Customer, CustomerDraft, CustomerId};
use crm_search_indexer::index::{SearchIndex, SearchQuery, TantivyIndex};
use serde_json::json;

use super::{Api, Figure, pairs, row};
use crate::{data, load::closed_loop, report::Row};

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
/// parts and phone endings, beside the same queries on tantivy in this process.
pub async fn search(api: &Api, customers: u64, requests: u64) -> Row {
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
    row(
        Figure::P99,
        "POST /api/customers/search, 1 connection, typos, e-mails, phone endings",
        "the same queries on tantivy in this process",
        "p99 ≤ 1.5× (ratio ≥ 0.67) and ≤ 15 ms",
        &runs,
        idle,
    )
}
