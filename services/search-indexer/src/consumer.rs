//! Keeps the index in step with customer-core: every `customer.*` event carries the
//! snapshot and version it produced. While the search engine is down the consumer holds
//! its place in the queue and retries with backoff, so it catches up in order when the
//! engine is back; what waits meanwhile is its lag.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerEventType};
use crm_platform::{
    Shutdown,
    bus::{ConsumerConfig, Delivery, EVENTS_EXCHANGE, EventBus, Handler, Outcome, one_by_one},
};
use serde::Serialize;

use crate::{
    generations::Generations,
    index::{Applied, IndexError},
};

pub const QUEUE: &str = "search-indexer.customers";
/// A replica's own queue outlives the replica by this long (a restart, a node drain);
/// then the broker drops it, and a replica coming back after that rebuilds its index.
pub const REPLICA_QUEUE_KEPT: Duration = Duration::from_secs(24 * 3600);

/// The queue an indexer consumes. Replicas sharing one index (Elasticsearch) share one
/// queue and split the events; a replica with an index of its own (tantivy, on its own
/// disk) needs every event, so it has a queue of its own, named by `replica`.
pub fn config_for(replica: Option<&str>) -> ConsumerConfig {
    let (queue, expires) = match replica {
        Some(replica) => (format!("{QUEUE}.{replica}"), Some(REPLICA_QUEUE_KEPT)),
        None => (QUEUE.to_owned(), None),
    };
    ConsumerConfig {
        // Retries happen inside the handler (holding the queue position), so a
        // delivery is only ever retried by the bus after a restart. What waits goes to
        // the engine together.
        batch: 64,
        prefetch: 128,
        max_attempts: 5,
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(30),
        expires,
        ..ConsumerConfig::new(queue, EVENTS_EXCHANGE, &CustomerEventType::snapshot_keys())
    }
}

/// The shared queue's configuration.
pub fn config() -> ConsumerConfig {
    config_for(None)
}

/// How far the index is behind customer-core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LagReport {
    pub events_behind: u64,
    pub seconds_behind: u64,
}

/// When the last applied event happened; with the queue's depth, the lag.
pub struct Lag {
    last_event_micros: AtomicI64,
    queue: String,
}

impl Default for Lag {
    fn default() -> Self {
        Self::of(QUEUE)
    }
}

impl Lag {
    /// The lag of the indexer consuming `queue`.
    pub fn of(queue: &str) -> Self {
        Self {
            last_event_micros: AtomicI64::new(0),
            queue: queue.to_owned(),
        }
    }

    fn applied(&self, at: DateTime<Utc>) {
        self.last_event_micros
            .fetch_max(at.timestamp_micros(), Ordering::Relaxed);
    }

    /// Events waiting in the queue, and how long ago the last applied one happened
    /// while any wait (0 when none does: the index is current).
    pub async fn report(
        &self,
        bus: &dyn EventBus,
        now: DateTime<Utc>,
    ) -> Result<LagReport, String> {
        let events_behind = bus.depth(&self.queue).await.map_err(|e| e.to_string())?;
        let last = self.last_event_micros.load(Ordering::Relaxed);
        let seconds_behind = if events_behind == 0 || last == 0 {
            0
        } else {
            u64::try_from((now.timestamp_micros() - last) / 1_000_000).unwrap_or(0)
        };
        let report = LagReport {
            events_behind,
            seconds_behind,
        };
        metrics::gauge!("crm_search_events_behind").set(report.events_behind as f64);
        metrics::gauge!("crm_search_seconds_behind").set(report.seconds_behind as f64);
        Ok(report)
    }
}

pub struct Snapshots {
    generations: Arc<Generations>,
    lag: Arc<Lag>,
    shutdown: Shutdown,
    config: ConsumerConfig,
}

impl Snapshots {
    pub fn new(
        generations: Arc<Generations>,
        lag: Arc<Lag>,
        shutdown: Shutdown,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            generations,
            lag,
            shutdown,
            config,
        }
    }
}

/// The snapshot a delivery carries and when its event happened, or why it goes to the
/// dead letters.
fn snapshot_of(delivery: &Delivery) -> Result<(DateTime<Utc>, Customer), Outcome> {
    let event: CustomerEvent = serde_json::from_slice(&delivery.message.payload)
        .map_err(|error| Outcome::DeadLetter(format!("not an event: {error}")))?;
    let customer = event
        .snapshot()
        .map_err(|error| Outcome::DeadLetter(format!("no customer snapshot: {error}")))?;
    Ok((event.timestamp, customer))
}

impl Snapshots {
    /// Counts an applied snapshot and moves the lag on.
    fn applied(&self, applied: Applied, at: DateTime<Utc>) {
        let outcome = match applied {
            Applied::Indexed => "indexed",
            Applied::Stale => "stale",
            Applied::Removed => "removed",
        };
        metrics::counter!("crm_search_events_applied_total", "outcome" => outcome).increment(1);
        self.lag.applied(at);
    }
}

#[async_trait]
impl Handler for Snapshots {
    /// The batch's snapshots go to the engine in one call; when that fails, each
    /// delivery is handled alone (a rejected one dead-lettered, an engine that is down
    /// waited for).
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let read: Vec<_> = deliveries.iter().map(snapshot_of).collect();
        let customers: Vec<Customer> = read
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(_, customer)| customer.clone()))
            .collect();
        let Ok(applied) = self.generations.apply_all(&customers).await else {
            return one_by_one(self, deliveries).await;
        };
        let mut applied = applied.into_iter();
        read.into_iter()
            .map(|read| match read {
                Ok((at, _)) => match applied.next() {
                    Some(outcome) => {
                        self.applied(outcome, at);
                        Outcome::Ack
                    }
                    None => Outcome::Retry("not applied".into()),
                },
                Err(outcome) => outcome,
            })
            .collect()
    }

    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let (at, customer) = match snapshot_of(delivery) {
            Ok(read) => read,
            Err(outcome) => return outcome,
        };
        let mut attempt = 0;
        loop {
            match self.generations.apply(&customer).await {
                Ok(applied) => {
                    self.applied(applied, at);
                    return Outcome::Ack;
                }
                Err(IndexError::Rejected(reason)) => {
                    metrics::counter!("crm_search_events_applied_total", "outcome" => "rejected")
                        .increment(1);
                    return Outcome::DeadLetter(reason);
                }
                Err(error) => {
                    attempt += 1;
                    let delay = self.config.backoff(attempt);
                    tracing::warn!(%error, attempt, ?delay, "the search engine failed; holding the queue position and retrying");
                    tokio::select! {
                        _ = self.shutdown.wait() => return Outcome::Retry(error.to_string()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Keeps the lag gauges of `/metrics` current between `/readyz` calls.
pub async fn sample_lag(
    lag: Arc<Lag>,
    bus: Arc<dyn EventBus>,
    every: Duration,
    shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(error) = lag.report(bus.as_ref(), Utc::now()).await {
            tracing::debug!(%error, "cannot measure the search lag");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use chrono::TimeZone;
    use crm_domain::{Customer, CustomerDraft, CustomerId};
    use crm_platform::bus::{MemoryBus, Message};

    use super::*;
    use crate::index::{IndexError, Result, SearchIndex, SearchQuery, SearchResults, TantivyIndex};

    /// The real index behind an engine that is down for its first `down` writes.
    struct Unavailable {
        index: TantivyIndex,
        down: AtomicU32,
        /// What the engine answers while down.
        failure: fn(String) -> IndexError,
    }

    #[async_trait]
    impl SearchIndex for Unavailable {
        async fn apply_all(&self, customers: &[Customer]) -> Result<Vec<Applied>> {
            if self
                .down
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err((self.failure)("connection refused".into()));
            }
            self.index.apply_all(customers).await
        }
        async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
            self.index.search(query).await
        }
        async fn refresh(&self) -> Result<()> {
            self.index.refresh().await
        }
        async fn ping(&self) -> Result<()> {
            self.index.ping().await
        }
    }

    fn ada(at: DateTime<Utc>) -> Customer {
        let draft = CustomerDraft {
            email: "ada@example.com".into(),
            ..Default::default()
        };
        Customer::create(CustomerId::generate(), draft, at).unwrap()
    }

    fn delivery(customer: &Customer, at: DateTime<Utc>) -> Delivery {
        let event =
            CustomerEvent::customer_changed(CustomerEventType::CustomerCreated, customer, at);
        let payload = serde_json::to_vec(&event).unwrap();
        Delivery {
            message: Message::new(event.id.to_string(), "customer.created", payload),
            attempt: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_engine_outage_is_waited_out_in_place_and_the_lag_shows() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let customer = ada(at);
        let engine = Arc::new(Unavailable {
            index: TantivyIndex::in_memory().unwrap(),
            down: AtomicU32::new(2),
            failure: IndexError::Engine,
        });
        let lag = Arc::new(Lag::default());
        let handler = Snapshots::new(
            Arc::new(Generations::new(engine.clone(), None)),
            lag.clone(),
            Shutdown::new(),
            config(),
        );
        // Two failures, then it goes through: acknowledged, never dead-lettered.
        assert!(matches!(
            handler.handle(&delivery(&customer, at)).await,
            Outcome::Ack
        ));
        engine.refresh().await.unwrap();
        let found = engine
            .search(&SearchQuery {
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.total, 1);

        // Two events wait in the queue: the lag counts them, and the time since the
        // last applied event.
        let bus = MemoryBus::new();
        bus.declare(&config()).await.unwrap();
        let waiting = [
            delivery(&customer, at).message,
            delivery(&customer, at).message,
        ];
        bus.publish(EVENTS_EXCHANGE, &waiting).await.unwrap();
        let report = lag
            .report(&bus, at + chrono::Duration::seconds(90))
            .await
            .unwrap();
        assert_eq!(
            report,
            LagReport {
                events_behind: 2,
                seconds_behind: 90
            }
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_ends_the_wait_and_leaves_the_event_for_later() {
        let at = Utc::now();
        let customer = ada(at);
        let engine = Arc::new(Unavailable {
            index: TantivyIndex::in_memory().unwrap(),
            down: AtomicU32::new(u32::MAX),
            failure: IndexError::Engine,
        });
        let shutdown = Shutdown::new();
        let handler = Snapshots::new(
            Arc::new(Generations::new(engine, None)),
            Arc::default(),
            shutdown.clone(),
            config(),
        );
        let stopping = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            shutdown.trigger();
        };
        let delivery = delivery(&customer, at);
        let (outcome, ()) = tokio::join!(handler.handle(&delivery), stopping);
        assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_snapshot_the_engine_refuses_for_good_is_dead_lettered() {
        let at = Utc::now();
        let engine = Arc::new(Unavailable {
            index: TantivyIndex::in_memory().unwrap(),
            down: AtomicU32::new(1),
            failure: IndexError::Rejected,
        });
        let handler = Snapshots::new(
            Arc::new(Generations::new(engine, None)),
            Arc::default(),
            Shutdown::new(),
            config(),
        );
        let outcome = handler.handle(&delivery(&ada(at), at)).await;
        assert!(matches!(outcome, Outcome::DeadLetter(_)), "{outcome:?}");
    }

    /// A batch goes to the engine in one call: snapshots out of order keep the newest,
    /// garbage is dead-lettered alone; when the engine refuses the batch, each delivery
    /// is handled alone and the outage waited out.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_is_applied_at_once_and_one_by_one_when_the_engine_fails() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let v1 = ada(at);
        let renamed = |customer: &Customer, name: &str| {
            let patch = crm_domain::CustomerPatch {
                first_name: Some(Some(name.into())),
                ..Default::default()
            };
            customer.patched(&patch, at).unwrap()
        };
        let v2 = renamed(&v1, "Augusta");
        let v3 = renamed(&v2, "Grace");
        let engine = Arc::new(Unavailable {
            index: TantivyIndex::in_memory().unwrap(),
            down: AtomicU32::new(0),
            failure: IndexError::Engine,
        });
        let handler = Snapshots::new(
            Arc::new(Generations::new(engine.clone(), None)),
            Arc::default(),
            Shutdown::new(),
            config(),
        );
        let garbage = Delivery {
            message: Message::new("g", "customer.updated", b"not json".to_vec()),
            attempt: 1,
        };
        let batch = [
            delivery(&v1, at),
            delivery(&v3, at),
            garbage,
            delivery(&v2, at),
        ];
        let outcomes = handler.handle_batch(&batch).await;
        let acked: Vec<bool> = outcomes.iter().map(|o| matches!(o, Outcome::Ack)).collect();
        assert_eq!(acked, [true, true, false, true], "{outcomes:?}");
        assert!(matches!(outcomes[2], Outcome::DeadLetter(_)));
        let found = |name: &'static str| {
            let engine = engine.clone();
            async move {
                engine.refresh().await.unwrap();
                let query = SearchQuery {
                    text: name.into(),
                    limit: 5,
                    ..Default::default()
                };
                engine.search(&query).await.unwrap().total
            }
        };
        assert_eq!((found("Grace").await, found("Augusta").await), (1, 0));

        // The engine fails the batch's call once: each delivery then goes alone.
        engine.down.store(1, Ordering::Relaxed);
        let v4 = renamed(&v3, "Hedy");
        let outcomes = handler.handle_batch(&[delivery(&v4, at)]).await;
        assert!(matches!(outcomes[..], [Outcome::Ack]), "{outcomes:?}");
        assert_eq!(found("Hedy").await, 1);
    }
}
