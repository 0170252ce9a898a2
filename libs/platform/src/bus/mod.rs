//! The event bus port: topic exchanges, durable consumer queues, publisher confirms,
//! retries with backoff, then a dead-letter queue that says why.
//!
//! Two adapters pass one contract suite: RabbitMQ (`RabbitBus`) for the services and an
//! in-process bus (`MemoryBus`) for the standalone binary.

mod memory;
mod rabbitmq;
mod topic;

#[cfg(test)]
mod contract;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;

pub use memory::MemoryBus;
pub use rabbitmq::RabbitBus;
pub use topic::topic_matches;

use crate::Shutdown;

/// The exchange every event goes to; routing key = event type.
pub const EVENTS_EXCHANGE: &str = "crm.events";
/// Messages for the notification service outside this project.
pub const NOTIFICATIONS_EXCHANGE: &str = "crm.notifications";

/// The header that carries why a message was dead-lettered.
pub const FAILURE_REASON_HEADER: &str = "x-crm-failure-reason";
/// The header that carries the delivery attempt (1 for the first).
pub const ATTEMPT_HEADER: &str = "x-crm-attempt";

/// One message: an id (consumers deduplicate by it), a routing key, a payload and
/// string headers (W3C trace context travels here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Message {
    pub fn new(id: impl Into<String>, routing_key: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            id: id.into(),
            routing_key: routing_key.into(),
            payload,
            headers: BTreeMap::new(),
        }
    }
}

/// A message as a consumer receives it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Message,
    /// 1 on the first delivery, then one more per retry.
    pub attempt: u32,
}

/// What a handler decided about a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; never deliver it again.
    Ack,
    /// A passing failure: deliver again after a backoff, up to the attempt limit.
    Retry(String),
    /// It can never succeed: straight to the dead-letter queue.
    DeadLetter(String),
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, delivery: &Delivery) -> Outcome;

    /// The deliveries waiting together (at most `ConsumerConfig::batch`), for a handler
    /// that does the work of many at once (one transaction); their outcomes in the same
    /// order. None is acknowledged before this returns. By default, one after another.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        one_by_one(self, deliveries).await
    }
}

/// Each delivery handled alone, in order: `Handler::handle_batch`'s default, and a
/// batch handler's way out when the batch as a whole fails.
pub async fn one_by_one<H: Handler + ?Sized>(handler: &H, deliveries: &[Delivery]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        outcomes.push(handler.handle(delivery).await);
    }
    outcomes
}

/// What the bus does with deliveries that arrived together: one alone goes to
/// `handle`, more to `handle_batch`. One outcome per delivery, in order; a handler that
/// answered for fewer has the rest retried, never lost.
pub(crate) async fn outcomes_of(
    handler: &dyn Handler,
    waiting: &[Delivery],
) -> impl Iterator<Item = Outcome> + use<> {
    let outcomes = match waiting {
        [one] => vec![handler.handle(one).await],
        many => handler.handle_batch(many).await,
    };
    outcomes.into_iter().chain(std::iter::repeat_with(|| {
        Outcome::Retry("no outcome".into())
    }))
}

/// A message that ended in a consumer's dead-letter queue, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message: Message,
    pub reason: String,
}

/// One consumer: its durable queue, what it is bound to, and how it retries.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The queue's name, e.g. `customer-core.events`.
    pub queue: String,
    pub exchange: String,
    /// Topic patterns (`order.*`, `customer.#`, `#`).
    pub bindings: Vec<String>,
    /// Unacknowledged deliveries at most (RabbitMQ prefetch).
    pub prefetch: u16,
    /// Deliveries handled at once (1 keeps the queue's order; more suit handlers whose
    /// effects do not depend on order).
    pub concurrency: usize,
    /// Deliveries given to one `Handler::handle_batch` at most: those already waiting
    /// when a handler is free (nothing waits for a batch to fill).
    pub batch: usize,
    /// Deliveries at most before the dead-letter queue.
    pub max_attempts: u32,
    /// The delay before the first retry; doubled for each later one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A queue of one consumer's own (a replica's): the broker drops it, and its retry
    /// and dead-letter queues, once nobody has used it for this long.
    pub expires: Option<Duration>,
}

impl ConsumerConfig {
    pub fn new(queue: impl Into<String>, exchange: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            queue: queue.into(),
            exchange: exchange.into(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            prefetch: 32,
            concurrency: 1,
            batch: 1,
            max_attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            expires: None,
        }
    }

    /// The delay before delivery `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff(self.first_backoff, self.max_backoff, attempt)
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("the message bus is unavailable: {0}")]
    Unavailable(String),
    #[error("no queue is bound to {exchange} for {routing_key}; the message would be lost")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("the broker refused the message")]
    Refused,
    #[error("no queue {0}")]
    NoSuchQueue(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Declares a consumer's exchange, queue, bindings, retry and dead-letter queues
    /// (idempotent), so publishing works before the consumer first runs.
    async fn declare(&self, config: &ConsumerConfig) -> Result<(), BusError>;

    /// Publishes every message; returns only after the broker confirmed all of them.
    /// A message no queue is bound to is an error, never silently dropped.
    async fn publish(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError>;

    /// Publishes notifications of state changes: confirmed by the broker like `publish`,
    /// but a message no queue is bound to is dropped, because nobody subscribed to it.
    async fn broadcast(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError>;

    /// Runs `handler` on every delivery of the consumer's queue until `shutdown`,
    /// reconnecting with backoff when the broker goes away.
    async fn consume(
        &self,
        config: ConsumerConfig,
        handler: Arc<dyn Handler>,
        shutdown: Shutdown,
    ) -> Result<(), BusError>;

    /// Up to `max` messages of a consumer's dead-letter queue, oldest first, without
    /// removing them.
    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, BusError>;
    /// Messages waiting in a consumer's queue, not yet handed to a consumer (how far
    /// behind it is).
    async fn depth(&self, queue: &str) -> Result<u64, BusError>;

    /// Whether the broker answers now (for `/readyz`).
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    /// Whether a consumer's queue exists (before it is declared).
    async fn exists(&self, queue: &str) -> Result<bool, BusError> {
        let _ = queue;
        Ok(true)
    }
}

/// The broker as a `/readyz` check. Not required: without it a service still answers
/// (reads, writes kept in the outbox), so it reports itself degraded, not unready.
pub fn broker_probe(bus: Arc<dyn EventBus>) -> Arc<dyn crate::health::Probe> {
    crate::health::probe("broker", false, move || {
        let bus = bus.clone();
        async move { bus.ping().await.map_err(|e| e.to_string()) }
    })
}

/// A service's consumers, started the way every service must: each queue is declared
/// now, before the service says it listens, so that what is published from then on
/// reaches it; the returned future consumes them all until shutdown. A broker that is
/// down now is only a warning: each consumer declares again when it connects.
pub async fn start_consumers(
    bus: Arc<dyn EventBus>,
    consumers: Vec<(ConsumerConfig, Arc<dyn Handler>)>,
    shutdown: Shutdown,
) -> impl Future<Output = crate::Result<()>> {
    for (config, _) in &consumers {
        if let Err(error) = bus.declare(config).await {
            tracing::warn!(%error, queue = config.queue, "cannot declare the queue yet; the consumer will retry");
        }
    }
    let consuming = consumers.into_iter().map(move |(config, handler)| {
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        async move { bus.consume(config, handler, shutdown).await }
    });
    async move {
        futures::future::try_join_all(consuming)
            .await
            .map(drop)
            .map_err(|e| crate::Error::Serve(format!("consuming: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = ConsumerConfig {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..ConsumerConfig::new("q", "x", &["#"])
        };
        let delays: Vec<u128> = (1..=5).map(|a| config.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }
}
