//! customer-core's consumer of `crm.events`: every ingested event lands in the
//! customer's activity, its projections and metrics, exactly once in effect.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use async_trait::async_trait;
use crm_domain::{CustomerEvent, CustomerEventType};
use crm_platform::bus::{ConsumerConfig, Delivery, EVENTS_EXCHANGE, Handler, Outcome};

use crate::{Error, repo::EventOutcome, service::CustomerService};

/// The queue of this consumer; every replica of customer-core shares it.
pub const QUEUE: &str = "customer-core.events";

/// Bound to every ingested type (`customer.*` events are customer-core's own).
pub fn config() -> ConsumerConfig {
    let bindings: Vec<&str> = CustomerEventType::ALL
        .iter()
        .filter(|t| !t.is_derived())
        .map(|t| t.as_str())
        .collect();
    ConsumerConfig {
        // Applying an event does not depend on the order of events (sums, latest dates,
        // idempotent upserts), and writes to one customer retry on conflict. What waits
        // is recorded up to 64 events to a transaction.
        concurrency: 4,
        batch: 64,
        prefetch: 256,
        ..ConsumerConfig::new(QUEUE, EVENTS_EXCHANGE, &bindings)
    }
}

pub struct ActivityConsumer {
    service: CustomerService,
    /// Events for customers that do not exist, dead-lettered with the reason.
    unknown_customer: Arc<AtomicU64>,
}

impl ActivityConsumer {
    pub fn new(service: CustomerService) -> Self {
        Self {
            service,
            unknown_customer: Arc::default(),
        }
    }

    pub fn unknown_customer_events(&self) -> Arc<AtomicU64> {
        self.unknown_customer.clone()
    }
}

/// The event a delivery carries, or why it goes to the dead letters.
fn event_of(delivery: &Delivery) -> Result<CustomerEvent, Outcome> {
    let event: CustomerEvent = serde_json::from_slice(&delivery.message.payload)
        .map_err(|error| Outcome::DeadLetter(format!("not a customer event: {error}")))?;
    if !event.is_applicable() {
        return Err(Outcome::DeadLetter(format!(
            "{} event lacks the data its type needs",
            event.event_type
        )));
    }
    Ok(event)
}

impl ActivityConsumer {
    /// What becomes of the delivery of `event`, recorded as `recorded`.
    fn outcome(&self, event: &CustomerEvent, recorded: crate::Result<EventOutcome>) -> Outcome {
        let outcome = match recorded {
            Ok(EventOutcome::Applied { .. }) => {
                metrics::counter!("crm_events_applied_total", "type" => event.event_type.as_str())
                    .increment(1);
                Outcome::Ack
            }
            Ok(EventOutcome::Duplicate) => {
                metrics::counter!("crm_events_duplicate_total").increment(1);
                Outcome::Ack
            }
            Ok(EventOutcome::Erased) => {
                metrics::counter!("crm_events_refused_total", "reason" => "erased").increment(1);
                tracing::info!(customer_id = %event.customer_id, event_id = %event.id, "event for an erased person refused");
                Outcome::Ack
            }
            Ok(EventOutcome::MergedInto(_)) => Outcome::DeadLetter(format!(
                "{} is merged into a chain of merges too long to follow",
                event.customer_id
            )),
            Ok(EventOutcome::UnknownCustomer) => {
                self.unknown_customer.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("crm_events_unknown_customer_total").increment(1);
                tracing::warn!(customer_id = %event.customer_id, event_id = %event.id, "event for an unknown customer");
                Outcome::DeadLetter(format!("unknown customer {}", event.customer_id))
            }
            Err(Error::Corrupt(reason)) => Outcome::DeadLetter(reason),
            Err(error) => Outcome::Retry(error.to_string()),
        };
        if matches!(outcome, Outcome::DeadLetter(_)) {
            metrics::counter!("crm_events_dead_lettered_total").increment(1);
        }
        outcome
    }
}

#[async_trait]
impl Handler for ActivityConsumer {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        match event_of(delivery) {
            Ok(event) => self.outcome(&event, self.service.record_event(&event).await),
            Err(outcome) => outcome,
        }
    }

    /// The batch's events are recorded in one transaction.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let read: Vec<Result<CustomerEvent, Outcome>> = deliveries.iter().map(event_of).collect();
        let events: Vec<CustomerEvent> = read.iter().filter_map(|r| r.clone().ok()).collect();
        let mut recorded = self.service.record_events(&events).await.into_iter();
        read.into_iter()
            .map(|read| match read {
                Ok(event) => match recorded.next() {
                    Some(recorded) => self.outcome(&event, recorded),
                    None => Outcome::Retry("not recorded".into()),
                },
                Err(outcome) => outcome,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crm_platform::{
        Shutdown,
        bus::{EventBus, MemoryBus, Message},
        cache::MemoryCache,
    };
    use uuid::Uuid;

    use super::*;
    use crate::repo::SqliteRepository;

    #[tokio::test]
    async fn unknown_customers_and_garbage_are_dead_lettered_with_the_reason() {
        let repo = SqliteRepository::in_memory().await.unwrap();
        let service = CustomerService::new(Arc::new(repo), Arc::new(MemoryCache::new(10)));
        let bus = Arc::new(MemoryBus::new());
        let consumer = Arc::new(ActivityConsumer::new(service));
        let unknown = consumer.unknown_customer_events();
        let shutdown = Shutdown::new();
        bus.declare(&config()).await.unwrap();
        tokio::spawn({
            let (bus, shutdown) = (bus.clone(), shutdown.clone());
            async move { bus.consume(config(), consumer, shutdown).await }
        });

        let stranger = CustomerEvent {
            id: Uuid::now_v7(),
            customer_id: crm_domain::CustomerId::generate(),
            event_type: CustomerEventType::ProductViewed,
            data: serde_json::json!({ "product_id": "p" }),
            source: "test".into(),
            timestamp: chrono::Utc::now(),
        };
        let messages = [
            Message::new(
                "1",
                "product.viewed",
                serde_json::to_vec(&stranger).unwrap(),
            ),
            Message::new("2", "order.completed", b"not json".to_vec()),
        ];
        bus.publish(EVENTS_EXCHANGE, &messages).await.unwrap();

        let mut dead = Vec::new();
        for _ in 0..500 {
            dead = bus.dead_letters(QUEUE, 10).await.unwrap();
            if dead.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.trigger();
        assert_eq!(dead.len(), 2);
        assert_eq!(
            dead[0].reason,
            format!("unknown customer {}", stranger.customer_id)
        );
        assert!(
            dead[1].reason.starts_with("not a customer event"),
            "{}",
            dead[1].reason
        );
        assert_eq!(unknown.load(Ordering::Relaxed), 1, "counted");
    }
}
