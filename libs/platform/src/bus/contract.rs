//! The contract every `EventBus` adapter passes.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    BusError, ConsumerConfig, Delivery, EVENTS_EXCHANGE, EventBus, Handler, Message, Outcome,
};
use crate::Shutdown;

/// Records deliveries; fails the first `fail_first` attempts with `failure`.
struct Recorder {
    seen: mpsc::UnboundedSender<Delivery>,
    fail_first: u32,
    failure: fn(String) -> Outcome,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let _ = self.seen.send(delivery.clone());
        if delivery.attempt <= self.fail_first {
            (self.failure)(format!("failed attempt {}", delivery.attempt))
        } else {
            Outcome::Ack
        }
    }
}

/// Records the batches it is given; dead-letters the messages whose id starts with
/// `dead`, acknowledges the rest. Slow, so that more wait meanwhile.
struct BatchRecorder {
    batches: mpsc::UnboundedSender<Vec<String>>,
}

#[async_trait]
impl Handler for BatchRecorder {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.handle_batch(std::slice::from_ref(delivery))
            .await
            .remove(0)
    }

    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let ids: Vec<String> = deliveries.iter().map(|d| d.message.id.clone()).collect();
        let _ = self.batches.send(ids);
        tokio::time::sleep(Duration::from_millis(200)).await;
        deliveries
            .iter()
            .map(|d| match d.message.id.starts_with("dead") {
                true => Outcome::DeadLetter(format!("{} refused", d.message.id)),
                false => Outcome::Ack,
            })
            .collect()
    }
}

fn config(queue: &str, bindings: &[&str], max_attempts: u32) -> ConsumerConfig {
    ConsumerConfig {
        max_attempts,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        ..ConsumerConfig::new(queue, EVENTS_EXCHANGE, bindings)
    }
}

/// Starts a consumer; returns what it receives.
async fn start(
    bus: &Arc<dyn EventBus>,
    config: ConsumerConfig,
    fail_first: u32,
    failure: fn(String) -> Outcome,
    shutdown: &Shutdown,
) -> mpsc::UnboundedReceiver<Delivery> {
    bus.declare(&config).await.expect("declare");
    let (seen, received) = mpsc::unbounded_channel();
    let handler = Arc::new(Recorder {
        seen,
        fail_first,
        failure,
    });
    let (bus, shutdown) = (bus.clone(), shutdown.clone());
    tokio::spawn(async move { bus.consume(config, handler, shutdown).await });
    received
}

async fn next(received: &mut mpsc::UnboundedReceiver<Delivery>, what: &str) -> Delivery {
    tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("consumer alive")
}

async fn nothing_more(received: &mut mpsc::UnboundedReceiver<Delivery>, what: &str) {
    let more = tokio::time::timeout(Duration::from_millis(300), received.recv()).await;
    assert!(more.is_err(), "unexpected delivery: {what}");
}

fn message(id: &str, routing_key: &str) -> Message {
    let mut message = Message::new(id, routing_key, format!("{{\"id\":\"{id}\"}}").into_bytes());
    message
        .headers
        .insert("traceparent".into(), format!("00-{id}-01"));
    message
}

pub async fn run(bus: Arc<dyn EventBus>, name: &str) {
    let shutdown = Shutdown::new();

    // Nobody is bound: the publish fails instead of losing the message.
    let lost = bus
        .publish(EVENTS_EXCHANGE, &[message("m0", "nobody.listens")])
        .await;
    assert!(
        matches!(lost, Err(BusError::Unroutable { .. })),
        "{name}: {lost:?}"
    );

    // A broadcast nobody listens to is confirmed and dropped.
    let nobody = [message("m00", "nobody.listens")];
    bus.broadcast(EVENTS_EXCHANGE, &nobody)
        .await
        .expect("broadcast");

    // What waits for a consumer is counted.
    bus.declare(&config("waiting", &["wait.*"], 3))
        .await
        .expect("declare");
    let waiting = [message("w1", "wait.here"), message("w2", "wait.here")];
    bus.publish(EVENTS_EXCHANGE, &waiting)
        .await
        .expect("publish");
    assert_eq!(bus.depth("waiting").await.expect("depth"), 2, "{name}");

    // Routing by topic; id, key, payload and headers arrive intact.
    let mut orders = start(
        &bus,
        config("orders", &["order.*"], 3),
        0,
        Outcome::Retry,
        &shutdown,
    )
    .await;
    let mut all = start(&bus, config("all", &["#"], 3), 0, Outcome::Retry, &shutdown).await;
    let sent = [
        message("m1", "order.completed"),
        message("m2", "customer.created"),
    ];
    bus.publish(EVENTS_EXCHANGE, &sent).await.expect("publish");
    let got = next(&mut orders, "order.completed").await;
    assert_eq!(
        (got.message.clone(), got.attempt),
        (sent[0].clone(), 1),
        "{name}"
    );
    nothing_more(&mut orders, "customer.created is not an order").await;
    let mut both = vec![
        next(&mut all, "m1").await.message,
        next(&mut all, "m2").await.message,
    ];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(both, sent, "{name}: '#' receives everything");

    // Retried after a passing failure, with the attempt counted.
    let mut flaky = start(
        &bus,
        config("flaky", &["retry.me"], 3),
        2,
        Outcome::Retry,
        &shutdown,
    )
    .await;
    bus.publish(EVENTS_EXCHANGE, &[message("m3", "retry.me")])
        .await
        .expect("publish");
    for attempt in 1..=3 {
        let got = next(&mut flaky, "a retry").await;
        assert_eq!(
            (got.message.id.as_str(), got.attempt),
            ("m3", attempt),
            "{name}"
        );
        assert_eq!(
            got.message.routing_key, "retry.me",
            "{name}: retries keep the routing key"
        );
    }
    nothing_more(&mut flaky, "acknowledged on the third attempt").await;
    assert!(
        bus.dead_letters("flaky", 10).await.expect("dlq").is_empty(),
        "{name}"
    );

    // After the last attempt, or at once for a poison message: the dead-letter queue.
    let mut doomed = start(
        &bus,
        config("doomed", &["fail.*"], 2),
        u32::MAX,
        Outcome::Retry,
        &shutdown,
    )
    .await;
    bus.publish(EVENTS_EXCHANGE, &[message("m4", "fail.always")])
        .await
        .expect("publish");
    next(&mut doomed, "first attempt").await;
    next(&mut doomed, "second attempt").await;
    let mut poison = start(
        &bus,
        config("poison", &["poison"], 5),
        u32::MAX,
        Outcome::DeadLetter,
        &shutdown,
    )
    .await;
    bus.publish(EVENTS_EXCHANGE, &[message("m5", "poison")])
        .await
        .expect("publish");
    next(&mut poison, "the only attempt").await;
    nothing_more(&mut poison, "a poison message is not retried").await;
    let expected = [
        ("doomed", message("m4", "fail.always"), "failed attempt 2"),
        ("poison", message("m5", "poison"), "failed attempt 1"),
    ];
    for (queue, original, reason) in expected {
        let dead = eventually_dead(&bus, queue).await;
        assert_eq!(dead.len(), 1, "{name}: {queue}");
        assert_eq!(dead[0].reason, reason, "{name}: the reason is kept");
        let mut message = dead[0].message.clone();
        message.headers.retain(|k, _| k == "traceparent");
        assert_eq!(message, original, "{name}: the message is kept whole");
    }

    // What waits goes to a batch handler together, and each delivery gets its outcome.
    let batched = ConsumerConfig {
        batch: 10,
        ..config("batched", &["batch.*"], 3)
    };
    bus.declare(&batched).await.expect("declare");
    let (batches, mut handled) = mpsc::unbounded_channel();
    let handler = Arc::new(BatchRecorder { batches });
    tokio::spawn({
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        async move { bus.consume(batched, handler, shutdown).await }
    });
    let ids = ["b1", "b2", "dead3", "b4", "b5", "b6"];
    let sent: Vec<Message> = ids.iter().map(|id| message(id, "batch.me")).collect();
    bus.publish(EVENTS_EXCHANGE, &sent).await.expect("publish");
    let mut seen = Vec::new();
    let mut largest = 0;
    while seen.len() < ids.len() {
        let batch = tokio::time::timeout(Duration::from_secs(20), handled.recv())
            .await
            .expect("batches in time")
            .expect("consumer alive");
        largest = largest.max(batch.len());
        seen.extend(batch);
    }
    seen.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    expected.sort();
    assert_eq!(seen, expected, "{name}: each delivery once");
    assert!(largest > 1, "{name}: deliveries that waited came together");
    let dead = eventually_dead(&bus, "batched").await;
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons, ["dead3 refused"], "{name}: only its own outcome");
    let more = tokio::time::timeout(Duration::from_millis(500), handled.recv()).await;
    assert!(
        more.is_err(),
        "{name}: the acknowledged are not delivered again"
    );
    shutdown.trigger();
}

async fn eventually_dead(bus: &Arc<dyn EventBus>, queue: &str) -> Vec<super::DeadLetter> {
    for _ in 0..400 {
        let dead = bus.dead_letters(queue, 10).await.expect("dead letters");
        if !dead.is_empty() {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}
