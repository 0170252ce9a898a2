//! Reading one customer: cache cold and warm, beside the database and Redis.

use std::{sync::Arc, time::Duration};

use super::{Api, CONNECTIONS, Figure, pairs, row};
use crate::{
    load::{Summary, closed_loop},
    report::{Row, describe},
    servers::Platform,
};

/// `GET /api/customers/{id}` at 64 connections, cache cold (each id once) and warm,
/// against the primary-key SELECT customer-core runs, prepared, at the same concurrency;
/// Redis GET of the same cache keys beside the warm row.
pub async fn get_customer(
    api: &Api,
    platform: &Platform,
    ids: &[String],
    requests: u64,
) -> Vec<Row> {
    let pool = platform.database(CONNECTIONS as u32).await;
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
        "get-cold",
        |round| get(ids.clone(), round * third, cold_count),
        |round| select(ids.clone(), round * third, cold_count),
    )
    .await;

    println!("bench: GET customer, cache warm");
    let warm: Arc<Vec<String>> = Arc::new(ids[..ids.len().min(10_000)].to_vec());
    get(warm.clone(), 0, warm.len() as u64).await;
    let (warm_runs, warm_idle) = pairs(
        "get-warm",
        |_| get(warm.clone(), 0, requests),
        |_| select(warm.clone(), 0, requests),
    )
    .await;
    let redis = redis_get(platform, warm.clone(), requests).await;
    let mut warm_row = row(
        Figure::Rate,
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
        row(
            Figure::Rate,
            "GET /api/customers/{id}, 64 connections, cache cold (each id once)",
            "PK SELECT, prepared, 64 clients",
            "≥ 0.3×",
            &cold,
            cold_idle,
        ),
    ]
}

/// The statement customer-core reads a customer by id with.
pub(crate) const SELECT_CUSTOMER: &str =
    include_str!("../../services/customer-core/src/repo/queries/select_customer.sql");

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
