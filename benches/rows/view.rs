//! The 360 view, beside the statements that read its parts.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use super::{Api, Figure, pairs, reads::SELECT_CUSTOMER, row};
use crate::{data, load::closed_loop, report::Row, servers::Platform};

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
    let pool = platform.database(1).await;
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
    let mut view = row(
        Figure::P99,
        "GET /api/customers/{id}/360, 1 connection, 50 events and 10 orders",
        "customer-core's SELECTs for it, in sequence, 1 connection",
        "p99 ≤ 3× (ratio ≥ 0.33) and ≤ 10 ms",
        &runs,
        idle,
    );
    view.note
        .push_str("; segmentation's RFM and recommendations are in ours, not yet in the baseline");
    view
}

/// The statements of customer-core's part of the 360 view, one after another.
async fn view_selects(pool: &sqlx::PgPool, id: uuid::Uuid) -> sqlx::Result<()> {
    const ORDERS: &str =
        include_str!("../../services/customer-core/src/repo/queries/select_recent_orders.sql");
    const EVENTS: &str =
        include_str!("../../services/customer-core/src/repo/queries/select_events.sql");
    const TICKETS: &str =
        include_str!("../../services/customer-core/src/repo/queries/select_recent_tickets.sql");
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
