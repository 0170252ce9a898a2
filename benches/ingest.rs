//! Ingest throughput against the real RabbitMQ and PostgreSQL: events per second
//! accepted by crm-event-ingest (validated, deduplicated, confirmed by the broker) and
//! until applied by crm-customer-core, beside the raw confirmed-publish rate of the same
//! broker measured in the same run. `BENCH_EVENTS` sets the size (default 20,000).

use std::{sync::Arc, time::Instant};

use crm_platform::{
    Shutdown,
    bus::{ConsumerConfig, EVENTS_EXCHANGE, EventBus, Message, RabbitBus},
    settings::{BusSettings, DatabaseSettings, ListenSettings, RedisSettings, Secret},
    testing::TestVhost,
};
use crm_proto::v1::{
    self, customer_service_client::CustomerServiceClient,
    ingest_service_client::IngestServiceClient,
};
use futures::StreamExt;
use serde_json::json;

const BATCH: usize = 100;
const CONCURRENCY: usize = 4;
const CUSTOMERS: usize = 100;

fn order(n: usize) -> serde_json::Value {
    json!({ "order_id": format!("o-{n}"), "total": 10.0, "currency": "EUR",
            "items": [{ "product_id": "p-1", "quantity": 1, "price": 10.0 }] })
}

fn rate(events: usize, started: Instant) -> f64 {
    events as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = crm_benches::env_or("BENCH_EVENTS", 20_000);
    let vhost = TestVhost::create();
    let shutdown = Shutdown::new();

    // Baseline: the broker alone, confirmed publishes of the same batches and concurrency.
    let bus = Arc::new(RabbitBus::new(Secret::new(&vhost.url)));
    bus.declare(&ConsumerConfig::new(
        "bench.baseline",
        EVENTS_EXCHANGE,
        &["bench.#"],
    ))
    .await
    .unwrap();
    let payload = serde_json::to_vec(&order(0)).unwrap();
    let batches: Vec<Vec<Message>> = (0..events)
        .map(|n| Message::new(format!("raw-{n}"), "bench.raw", payload.clone()))
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[Message]>::to_vec)
        .collect();
    let started = Instant::now();
    futures::stream::iter(batches)
        .for_each_concurrent(CONCURRENCY, |batch| {
            let bus = bus.clone();
            async move { bus.publish(EVENTS_EXCHANGE, &batch).await.unwrap() }
        })
        .await;
    let raw = rate(events, started);

    // The platform: customer-core and event-ingest, in this process, on real servers.
    let redis = RedisSettings {
        redis_key_prefix: format!("bench:{}:", uuid::Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    let bus = BusSettings {
        amqp_url: Secret::new(&vhost.url),
    };
    let core_settings = crm_customer_core::Settings {
        listen: ListenSettings::loopback(0, 0),
        database: DatabaseSettings {
            database_url: Secret::new(crm_platform::testing::fresh_postgres_url().await),
            ..DatabaseSettings::default()
        },
        redis: redis.clone(),
        bus: bus.clone(),
        ..crm_customer_core::Settings::default()
    };
    let core = crm_customer_core::Application::build(&core_settings)
        .await
        .unwrap();
    let core_url = format!("http://{}", core.grpc_addr());
    tokio::spawn(core.run(shutdown.clone()));
    let ingest_settings = crm_event_ingest::Settings {
        listen: ListenSettings::loopback(0, 0),
        redis,
        bus,
        ..crm_event_ingest::Settings::default()
    };
    let ingest = crm_event_ingest::Application::build(&ingest_settings)
        .await
        .unwrap();
    let ingest_url = format!("http://{}", ingest.grpc_addr());
    tokio::spawn(ingest.run(shutdown.clone()));

    let mut customers = CustomerServiceClient::connect(core_url).await.unwrap();
    let mut ids = Vec::with_capacity(CUSTOMERS);
    for n in 0..CUSTOMERS {
        let input = v1::CustomerInput {
            email: format!("bench{n}@example.com"),
            ..Default::default()
        };
        let created = customers
            .create_customer(v1::CreateCustomerRequest {
                customer: Some(input),
            })
            .await
            .unwrap();
        ids.push(created.into_inner().id);
    }
    let batches: Vec<Vec<v1::CustomerEvent>> = (0..events)
        .map(|n| {
            let customer = &ids[n % CUSTOMERS];
            let serde_json::Value::Object(data) = order(n) else {
                unreachable!()
            };
            v1::CustomerEvent {
                customer_id: customer.clone(),
                r#type: "order.completed".into(),
                data: Some(crm_proto::json::json_to_struct(data)),
                ..Default::default()
            }
        })
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[v1::CustomerEvent]>::to_vec)
        .collect();

    let client = IngestServiceClient::connect(ingest_url).await.unwrap();
    let started = Instant::now();
    futures::stream::iter(batches)
        .for_each_concurrent(CONCURRENCY, |events| {
            let mut client = client.clone();
            async move {
                let result = client
                    .ingest_batch(v1::IngestBatchRequest { events })
                    .await
                    .unwrap();
                assert!(result.into_inner().rejected.is_empty());
            }
        })
        .await;
    let accepted = rate(events, started);

    // Applied: every order counted in its customer's metrics.
    loop {
        let mut applied = 0;
        for id in &ids {
            let customer = customers
                .get_customer(v1::GetCustomerRequest { id: id.clone() })
                .await
                .unwrap();
            applied += customer
                .into_inner()
                .metrics
                .unwrap_or_default()
                .total_orders as usize;
        }
        if applied >= events {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let applied = rate(events, started);
    shutdown.trigger();

    println!(
        "ingest benchmark: {events} order.completed events, batches of {BATCH}, {CONCURRENCY} concurrent senders"
    );
    println!("| measure                                  | events/s | vs raw publish |");
    println!("|------------------------------------------|---------:|---------------:|");
    println!("| RabbitMQ confirmed publish (baseline)    | {raw:>8.0} |          1.00x |");
    println!(
        "| accepted by event-ingest                 | {accepted:>8.0} | {:>13.2}x |",
        accepted / raw
    );
    println!(
        "| applied by customer-core (end to end)    | {applied:>8.0} | {:>13.2}x |",
        applied / raw
    );
}
