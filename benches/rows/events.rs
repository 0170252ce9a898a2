//! Events through `POST /api/events` beside confirmed publishes of the same messages
//! straight to the same broker.

use std::sync::Arc;

use crm_platform::{
    bus::{ConsumerConfig, EVENTS_EXCHANGE, EventBus, RabbitBus},
    settings::Secret,
};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, options::BasicPublishOptions,
    options::ConfirmSelectOptions,
};
use serde_json::{Value, json};

use super::{Api, Figure, pairs, row};
use crate::{data, load::closed_loop, report::Row, servers::Platform};

/// Events per request, and requests in flight, as the issue measured ingest.
pub(super) const BATCH: u64 = 500;
pub(super) const CONNECTIONS: usize = 8;

fn batch(ids: &[String], first: u64) -> Vec<Value> {
    (first..first + BATCH)
        .map(|n| data::order(&ids[n as usize % ids.len()], n))
        .collect()
}

/// Publisher channels in confirm mode on one connection.
pub(super) async fn channels(url: &str) -> (Connection, Vec<Channel>) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect to the broker");
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        channels.push(channel);
    }
    (connection, channels)
}

/// Publishes `payloads` persistent to `exchange` and waits for every confirm.
pub(super) async fn publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payloads: &[Vec<u8>],
) -> bool {
    let mut confirms = Vec::with_capacity(payloads.len());
    for payload in payloads {
        let sent = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await;
        match sent {
            Ok(confirm) => confirms.push(confirm),
            Err(_) => return false,
        }
    }
    for confirm in confirms {
        if !confirm.await.is_ok_and(|c| c.is_ack()) {
            return false;
        }
    }
    true
}

/// Events accepted per second, batches of 500 on 8 connections, beside confirmed
/// publishes of the same messages to a quorum queue of the same broker.
pub async fn ingest(api: &Api, platform: &Platform, ids: &[String], requests: u64) -> Row {
    println!("bench: events accepted, batches of {BATCH} on {CONNECTIONS} connections");
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().take(1_000).cloned().collect());
    let batches = (requests / 1_000).max(4);
    let bus = RabbitBus::new(Secret::new(&platform.amqp_url));
    let queue = ConsumerConfig::new("bench.published", EVENTS_EXCHANGE, &["bench.#"]);
    bus.declare(&queue).await.expect("the baseline's queue");
    let (_connection, channels) = channels(&platform.amqp_url).await;
    let channels = Arc::new(channels);
    let (runs, idle) = pairs(
        "events-accepted",
        |round| {
            let (api, ids) = (api.clone(), ids.clone());
            let offset = round as u64 * batches * BATCH;
            closed_loop(CONNECTIONS, batches, move |n| {
                let (api, ids) = (api.clone(), ids.clone());
                async move {
                    let body = json!({ "events": batch(&ids, offset + n * BATCH) });
                    api.post_ok("/api/events", &body).await
                }
            })
        },
        |round| {
            let (channels, ids) = (channels.clone(), ids.clone());
            let offset = round as u64 * batches * BATCH;
            closed_loop(CONNECTIONS, batches, move |n| {
                let (channels, ids) = (channels.clone(), ids.clone());
                async move {
                    let payloads: Vec<Vec<u8>> = batch(&ids, offset + n * BATCH)
                        .iter()
                        .map(|event| serde_json::to_vec(event).expect("JSON"))
                        .collect();
                    let channel = &channels[n as usize % channels.len()];
                    publish(channel, EVENTS_EXCHANGE, "bench.order", &payloads).await
                }
            })
        },
    )
    .await;
    let mut accepted = row(
        Figure::Rate,
        "events accepted, POST /api/events, batches of 500, 8 connections",
        "confirmed publish of the same messages to a quorum queue, 8 channels",
        "≥ 0.5×",
        &runs,
        idle,
    );
    // Each request carries a batch: events per second, latencies per batch.
    accepted.unit = "events/s";
    accepted.ours *= BATCH as f64;
    accepted.base *= BATCH as f64;
    accepted.note = format!("per batch: {}", accepted.note);
    accepted
}
