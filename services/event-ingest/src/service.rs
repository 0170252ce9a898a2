//! The ingest use case: validate each event, drop duplicates by id, publish the rest to
//! `crm.events` and answer only after the broker confirmed them.

use std::{collections::HashSet, sync::Arc};

use chrono::Utc;
use crm_domain::{
    CustomerEvent, EventDraft, FieldError, ValidationErrors, limits::MAX_EVENTS_PER_REQUEST,
};
use crm_platform::bus::{EVENTS_EXCHANGE, EventBus, Message};
use uuid::Uuid;

use crate::{Result, seen::SeenEvents};

/// One event that was not accepted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Its position in the request.
    pub index: usize,
    /// Its id, when it had one.
    pub id: Option<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Ids of the accepted events, in request order (assigned where missing).
    pub accepted: Vec<Uuid>,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
}

impl IngestReport {
    /// Adds the report of a later chunk whose first event had index `offset`.
    pub fn absorb(&mut self, other: IngestReport, offset: usize) {
        self.accepted.extend(other.accepted);
        self.duplicates += other.duplicates;
        self.rejected
            .extend(other.rejected.into_iter().map(|r| Rejected {
                index: r.index + offset,
                ..r
            }));
    }
}

#[derive(Clone)]
pub struct Ingestor {
    bus: Arc<dyn EventBus>,
    seen: Arc<dyn SeenEvents>,
}

impl Ingestor {
    pub fn new(bus: Arc<dyn EventBus>, seen: Arc<dyn SeenEvents>) -> Self {
        Self { bus, seen }
    }

    pub async fn ingest(&self, drafts: Vec<EventDraft>) -> Result<IngestReport> {
        if drafts.len() > MAX_EVENTS_PER_REQUEST {
            let message = format!("at most {MAX_EVENTS_PER_REQUEST} events per request");
            return Err(ValidationErrors::single("events", message).into());
        }
        let now = Utc::now();
        let mut report = IngestReport::default();
        let mut valid = Vec::with_capacity(drafts.len());
        let mut in_request = HashSet::new();
        for (index, draft) in drafts.into_iter().enumerate() {
            let id = draft.id.clone();
            match CustomerEvent::validate(draft, now) {
                Ok(event) if !in_request.insert(event.id) => report.duplicates += 1,
                Ok(event) => valid.push(event),
                Err(errors) => report.rejected.push(Rejected {
                    index,
                    id,
                    errors: errors.0,
                }),
            }
        }
        let ids: Vec<Uuid> = valid.iter().map(|e| e.id).collect();
        let seen = self.seen.seen(&ids).await;
        let (repeated, new): (Vec<_>, Vec<_>) =
            valid.into_iter().zip(seen).partition(|(_, seen)| *seen);
        report.duplicates += repeated.len();
        let events: Vec<CustomerEvent> = new.into_iter().map(|(event, _)| event).collect();
        if events.is_empty() {
            return Ok(report);
        }
        let messages: Vec<Message> = events.iter().map(to_message).collect();
        self.bus.publish(EVENTS_EXCHANGE, &messages).await?;
        // Only now are they duplicates of anything: a request cancelled before this
        // point (a gateway deadline, a client gone) leaves its retry free to publish.
        report.accepted = events.iter().map(|e| e.id).collect();
        self.seen.remember(&report.accepted).await;
        tracing::info!(
            accepted = report.accepted.len(),
            duplicates = report.duplicates,
            rejected = report.rejected.len(),
            "events ingested"
        );
        Ok(report)
    }
}

/// The bus message of an event: routing key = type, body = the event's JSON envelope.
pub fn to_message(event: &CustomerEvent) -> Message {
    let payload = serde_json::to_vec(event).expect("an event serializes");
    Message::new(event.id.to_string(), event.event_type.as_str(), payload)
}

#[cfg(test)]
mod tests {
    use crm_platform::{
        Shutdown,
        bus::{BusError, ConsumerConfig, DeadLetter, Handler, MemoryBus},
    };
    use serde_json::json;

    use super::*;
    use crate::seen::MemorySeen;

    fn draft(id: &str) -> EventDraft {
        EventDraft {
            id: Some(id.into()),
            customer_id: "01a20df5-a41c-776f-9af3-8d4642c2bb6b".into(),
            event_type: "product.viewed".into(),
            data: json!({ "product_id": "p-1" }),
            ..EventDraft::default()
        }
    }

    async fn ingestor() -> Ingestor {
        let bus = Arc::new(MemoryBus::new());
        bus.declare(&ConsumerConfig::new("all", EVENTS_EXCHANGE, &["#"]))
            .await
            .unwrap();
        Ingestor::new(bus, Arc::new(MemorySeen::new(100)))
    }

    const A: &str = "0194f8a0-0000-7000-8000-00000000000a";
    const B: &str = "0194f8a0-0000-7000-8000-00000000000b";

    #[tokio::test]
    async fn duplicates_in_the_request_and_across_requests_are_counted_once() {
        let ingestor = ingestor().await;
        let first = ingestor
            .ingest(vec![draft(A), draft(A), draft(B)])
            .await
            .unwrap();
        assert_eq!((first.accepted.len(), first.duplicates), (2, 1));
        let again = ingestor.ingest(vec![draft(A), draft(B)]).await.unwrap();
        assert_eq!((again.accepted.len(), again.duplicates), (0, 2));
    }

    #[tokio::test]
    async fn rejected_events_keep_their_index_and_the_rest_is_accepted() {
        let ingestor = ingestor().await;
        let bad = EventDraft {
            data: json!({}),
            ..draft(B)
        };
        let report = ingestor.ingest(vec![draft(A), bad]).await.unwrap();
        assert_eq!(report.accepted.len(), 1);
        assert_eq!(report.rejected[0].index, 1);
        assert_eq!(report.rejected[0].id.as_deref(), Some(B));
        assert_eq!(report.rejected[0].errors[0].field, "data.product_id");
    }

    #[tokio::test]
    async fn when_the_bus_refuses_nothing_is_remembered() {
        // No queue is bound yet, so the bus refuses the event.
        let bus = Arc::new(MemoryBus::new());
        let ingestor = Ingestor::new(bus.clone(), Arc::new(MemorySeen::new(100)));
        assert!(ingestor.ingest(vec![draft(A)]).await.is_err());

        bus.declare(&ConsumerConfig::new("late", EVENTS_EXCHANGE, &["#"]))
            .await
            .unwrap();
        let retry = ingestor.ingest(vec![draft(A)]).await.unwrap();
        assert_eq!(
            (retry.accepted.len(), retry.duplicates),
            (1, 0),
            "the retry is not a duplicate"
        );
    }

    /// A bus whose publishes never confirm while `stalled` is set.
    struct Stalling {
        bus: MemoryBus,
        stalled: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl EventBus for Stalling {
        async fn declare(&self, config: &ConsumerConfig) -> Result<(), BusError> {
            self.bus.declare(config).await
        }
        async fn publish(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
            if self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.bus.publish(exchange, messages).await
        }
        async fn broadcast(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
            self.bus.broadcast(exchange, messages).await
        }
        async fn consume(
            &self,
            config: ConsumerConfig,
            handler: Arc<dyn Handler>,
            shutdown: Shutdown,
        ) -> Result<(), BusError> {
            self.bus.consume(config, handler, shutdown).await
        }
        async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, BusError> {
            self.bus.dead_letters(queue, max).await
        }
        async fn depth(&self, queue: &str) -> Result<u64, BusError> {
            self.bus.depth(queue).await
        }
    }

    #[tokio::test]
    async fn a_request_cancelled_before_the_confirm_leaves_its_retry_free() {
        let bus = Arc::new(Stalling {
            bus: MemoryBus::new(),
            stalled: true.into(),
        });
        bus.declare(&ConsumerConfig::new("all", EVENTS_EXCHANGE, &["#"]))
            .await
            .unwrap();
        let ingestor = Ingestor::new(bus.clone(), Arc::new(MemorySeen::new(100)));
        let cancelled = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            ingestor.ingest(vec![draft(A)]),
        )
        .await;
        assert!(
            cancelled.is_err(),
            "the caller gave up waiting for the broker"
        );

        bus.stalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let retry = ingestor.ingest(vec![draft(A)]).await.unwrap();
        assert_eq!(
            (retry.accepted.len(), retry.duplicates),
            (1, 0),
            "the retry is published, not called a duplicate"
        );
        assert_eq!(bus.depth("all").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_is_refused_whole() {
        let ingestor = ingestor().await;
        let too_many = vec![draft(A); MAX_EVENTS_PER_REQUEST + 1];
        assert!(matches!(
            ingestor.ingest(too_many).await,
            Err(crate::Error::Invalid(_))
        ));
    }
}
