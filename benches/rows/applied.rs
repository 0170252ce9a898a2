//! Events applied end to end (accepted, then committed to the customer's activity and
//! metrics by customer-core), beside publishing and consuming the same messages with
//! manual acks through the same broker; and how fresh the activity is at half the rate.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use crm_platform::{
    bus::{ConsumerConfig, EventBus, RabbitBus},
    settings::Secret,
};
use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use serde_json::{Value, json};

use super::{
    Api,
    events::{BATCH, CONNECTIONS, channels, publish},
};
use crate::{
    data,
    load::closed_loop,
    report::{Row, cpu_seconds, idle_percent, median},
    servers::Platform,
};

/// The baseline's exchange and queue, apart from the platform's.
const EXCHANGE: &str = "bench.applied";
/// What the baseline's consumer and customer-core's take at once.
const PREFETCH: u16 = 32;

/// `events` order events per round through `POST /api/events` (batches of 500 on 8
/// connections) until customer-core recorded every one, beside the same messages
/// published with confirms and consumed with manual acks; then `events` more at half the
/// rate reached, and the p99 of accepted → recorded.
pub async fn applied(api: &Api, platform: &Platform, ids: &[String], events: u64) -> Vec<Row> {
    println!("bench: events applied end to end, {events} per round");
    let database = platform.database(2).await;
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().take(1_000).cloned().collect());
    let bus = RabbitBus::new(Secret::new(&platform.amqp_url));
    let queue = ConsumerConfig::new(EXCHANGE, EXCHANGE, &["#"]);
    bus.declare(&queue).await.expect("the baseline's queue");
    // Smaller batches only for the smoke run's few events.
    let batch = BATCH.min(events).max(1);
    let batches = (events / batch).max(1);
    let (mut ours, mut base, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    let processes: Vec<(String, u32)> = platform
        .processes
        .iter()
        .filter_map(|p| Some((p.name.trim_start_matches("crm-").to_owned(), p.pid()?)))
        .collect();
    let mut cpu = BTreeMap::<String, f64>::new();
    for round in 0..3u64 {
        idle.push(idle_percent(Duration::from_secs(1)).await);
        let source = format!("bench-applied-{round}");
        let first = 10_000_000 + round * batches * batch;
        let cpu_before = cpu_seconds(&processes);
        let (api_, ids_, source_) = (api.clone(), ids.clone(), source.clone());
        let run = async {
            let started = Instant::now();
            closed_loop(CONNECTIONS, batches, move |n| {
                let (api, ids, source) = (api_.clone(), ids_.clone(), source_.clone());
                async move {
                    let body = json!({ "events": orders(&ids, first + n * batch, batch, &source) });
                    api.post_ok("/api/events", &body).await
                }
            })
            .await;
            recorded(&database, &source, batches * batch).await;
            (batches * batch) as f64 / started.elapsed().as_secs_f64()
        };
        let mine = crate::profile::during("events-applied", round == 0, run).await;
        for (name, seconds) in cpu_seconds(&processes) {
            *cpu.entry(name.clone()).or_default() +=
                seconds - cpu_before.get(&name).unwrap_or(&0.0);
        }

        let payloads: Vec<Vec<u8>> = orders(&ids, first, batches * batch, &source)
            .iter()
            .map(|event| serde_json::to_vec(event).expect("JSON"))
            .collect();
        let theirs = publish_and_consume(&platform.amqp_url, payloads).await;
        println!("bench:     ours {mine:.0} events/s | baseline {theirs:.0} events/s");
        ours.push(mine);
        base.push(theirs);
    }
    let (ours, base) = (median(ours), median(base));
    let rate = Row {
        what: "events applied end to end (accepted → in the activity and metrics), batches of \
               500, 8 connections"
            .into(),
        baseline: "the same messages published with confirms and consumed with manual acks".into(),
        unit: "events/s",
        ours,
        base,
        ratio: ours / base,
        target: "≥ 0.3×".into(),
        note: cpu_note(&cpu, 3 * batches * batch),
        idle_before: median(idle),
    };
    let fresh = freshness(api, &database, &ids, events, ours / 2.0).await;
    vec![rate, fresh]
}

/// Where the CPU went: seconds per 1,000 events applied, the largest first.
fn cpu_note(cpu: &BTreeMap<String, f64>, events: u64) -> String {
    let mut spent: Vec<(&String, f64)> = cpu
        .iter()
        .map(|(name, seconds)| (name, seconds * 1_000.0 / events as f64))
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    let listed: Vec<String> = spent
        .iter()
        .map(|(name, seconds)| format!("{name} {seconds:.2}"))
        .collect();
    format!("CPU s per 1,000 events: {}", listed.join(", "))
}

/// `count` order events from number `first` on, for the chosen customers, from `source`.
fn orders(ids: &[String], first: u64, count: u64, source: &str) -> Vec<Value> {
    (first..first + count)
        .map(|n| {
            let mut event = data::order(&ids[n as usize % ids.len()], n);
            event["source"] = json!(source);
            event
        })
        .collect()
}

/// Waits until customer-core recorded `count` events from `source` (at most 10 minutes).
async fn recorded(database: &sqlx::PgPool, source: &str, count: u64) {
    let started = Instant::now();
    loop {
        let (done,): (i64,) =
            sqlx::query_as("select count(*) from customer_events where source = $1")
                .bind(source)
                .fetch_one(database)
                .await
                .expect("count the recorded events");
        if done as u64 >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{done} of {count} events recorded after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `payloads` on 8 confirming channels while one consumer acks each as it
/// arrives; messages per second until the last ack.
async fn publish_and_consume(url: &str, payloads: Vec<Vec<u8>>) -> f64 {
    let count = payloads.len();
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect to the broker");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .expect("prefetch");
    let mut deliveries = channel
        .basic_consume(
            EXCHANGE.into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let started = Instant::now();
    let consumed = tokio::spawn(async move {
        for _ in 0..count {
            let delivery = deliveries
                .next()
                .await
                .expect("a delivery")
                .expect("a delivery");
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
    });
    let (_publisher, channels) = channels(url).await;
    let per_channel = count.div_ceil(channels.len());
    let sent = futures::future::join_all(
        payloads
            .chunks(per_channel)
            .zip(&channels)
            .map(|(chunk, channel)| publish(channel, EXCHANGE, "bench.order", chunk)),
    )
    .await;
    assert!(sent.into_iter().all(|ok| ok), "every message confirmed");
    consumed.await.expect("the consumer");
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = connection.close(200, "done".into()).await;
    rate
}

/// `events` more, sent at `rate` events/s (batches of 50, each on its own task so a slow
/// answer does not slow the sending); the p99 from acceptance (the event's timestamp,
/// set on receipt) to its commit in customer-core.
async fn freshness(
    api: &Api,
    database: &sqlx::PgPool,
    ids: &Arc<Vec<String>>,
    events: u64,
    rate: f64,
) -> Row {
    let small = 50.min(events).max(1);
    println!("bench: freshness at {rate:.0} events/s");
    let source = "bench-fresh";
    let batches = (events / small).max(1);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(small as f64 / rate.max(1.0)));
    let mut sent = Vec::new();
    for n in 0..batches {
        tick.tick().await;
        let body = json!({ "events": orders(ids, 20_000_000 + n * small, small, source) });
        let api = api.clone();
        sent.push(tokio::spawn(async move {
            api.post_ok("/api/events", &body).await
        }));
    }
    for request in sent {
        assert!(request.await.expect("sent"), "events accepted");
    }
    recorded(database, source, batches * small).await;
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "select percentile_cont(0.5) within group (order by extract(epoch from recorded_at - occurred_at))::float8,
                percentile_cont(0.99) within group (order by extract(epoch from recorded_at - occurred_at))::float8
         from customer_events where source = $1",
    )
    .bind(source)
    .fetch_one(database)
    .await
    .expect("the freshness");
    let p99 = p99 * 1_000.0;
    Row {
        what: format!("freshness at half that rate ({rate:.0} events/s): accepted → recorded"),
        baseline: "the target".into(),
        unit: "p99 ms",
        ours: p99,
        base: 1_000.0,
        ratio: 1_000.0 / p99,
        target: "p99 ≤ 1 s".into(),
        note: format!("p50 {:.1} ms", p50 * 1_000.0),
        idle_before: f64::NAN,
    }
}
