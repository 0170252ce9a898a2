//! The 360 view, beside the statements that read its parts.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use super::{Api, Figure, pairs, reads::SELECT_CUSTOMER, row};
use crate::{data, load::closed_loop, report::Row, servers::Platform};

/// Customers of the 360 row, each with 10 orders and 40 product views.
const VIEWED_CUSTOMERS: usize = 20;

/// `GET /api/customers/{id}/360` on one connection for customers with 50 events and 10
/// orders, beside the SELECTs its parts run, one after another on one connection:
/// customer-core's (the customer, recent orders, events and tickets) and segmentation's
/// (the profile with its RFM, the bounds, and the recommendations' reads).
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
    let pools = (
        platform.database(1).await,
        platform.database_in("segmentation", 1).await,
    );
    let count = (requests / 25).max(50);
    let (runs, idle) = pairs(
        "view",
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
            let (pools, chosen) = (pools.clone(), chosen.clone());
            closed_loop(1, count, move |n| {
                let (pools, chosen) = (pools.clone(), chosen.clone());
                async move {
                    let id: uuid::Uuid = chosen[n as usize % chosen.len()].parse().unwrap();
                    let read = async {
                        view_selects(&pools.0, id).await?;
                        segmentation_selects(&pools.1, id).await
                    };
                    read.await
                        .inspect_err(|e| eprintln!("bench: 360 baseline: {e}"))
                        .is_ok()
                }
            })
        },
    )
    .await;
    row(
        Figure::P99,
        "GET /api/customers/{id}/360, 1 connection, 50 events and 10 orders",
        "the SELECTs of its parts (customer-core's and segmentation's), in sequence, 1 connection",
        "p99 ≤ 3× (ratio ≥ 0.33) and ≤ 10 ms",
        &runs,
        idle,
    )
}

/// customer-core's statements for the 360 view, one after another.
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

/// segmentation's reads for the view (on its schema): the customer's segment and RFM, and
/// what `recommend` reads for 10 recommendations (the best sellers overall once).
async fn segmentation_selects(pool: &sqlx::PgPool, id: uuid::Uuid) -> sqlx::Result<()> {
    use crm_segmentation::store::{
        BEST_SELLERS, BOUGHT_TOGETHER, MAX_ANCHORS, PURCHASED, SELECT_BOUNDS, SELECT_PROFILE,
        VIEWED_TOGETHER,
    };
    for statement in [SELECT_PROFILE, PURCHASED] {
        sqlx::query(statement).bind(id).fetch_all(pool).await?;
    }
    sqlx::query(SELECT_BOUNDS).fetch_all(pool).await?;
    for statement in [BOUGHT_TOGETHER, VIEWED_TOGETHER] {
        sqlx::query(statement)
            .bind(id)
            .bind(MAX_ANCHORS)
            .fetch_all(pool)
            .await?;
    }
    sqlx::query(BEST_SELLERS)
        .bind(None::<String>)
        .bind(10_i64)
        .fetch_all(pool)
        .await?;
    Ok(())
}
