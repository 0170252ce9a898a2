//! The standalone binary's bus: the in-process bus, with every routed message written to
//! a SQLite journal before `publish` returns and removed once its consumer is done. A
//! message accepted just before the process dies is delivered again after the restart
//! (consumers deduplicate by message id), as RabbitMQ's durable queues do.

use std::{
    collections::{BTreeMap, HashSet},
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use crm_platform::{
    Shutdown,
    bus::{
        BusError, ConsumerConfig, DeadLetter, Delivery, EventBus, Handler, MemoryBus, Message,
        Outcome,
    },
};
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    types::Json,
};

const SCHEMA: &str = "create table if not exists bus_journal (
    seq         integer primary key autoincrement,
    queue       text not null,
    message_id  text not null,
    routing_key text not null,
    payload     blob not null,
    headers     text not null,
    dead_reason text,
    unique (queue, message_id)
) strict";

pub struct JournaledBus {
    inner: MemoryBus,
    pool: SqlitePool,
    /// Queues whose journal was replayed since start.
    replayed: Mutex<HashSet<String>>,
}

fn unavailable(error: sqlx::Error) -> BusError {
    BusError::Unavailable(format!("the bus journal failed: {error}"))
}

impl JournaledBus {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self {
            inner: MemoryBus::new(),
            pool,
            replayed: Mutex::default(),
        })
    }

    async fn journal(
        &self,
        exchange: &str,
        messages: &[Message],
        routed: bool,
    ) -> Result<(), BusError> {
        let targets = self.inner.targets(exchange, messages, routed)?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for (message, queues) in messages.iter().zip(&targets) {
            for queue in queues {
                sqlx::query(
                    "insert or ignore into bus_journal (queue, message_id, routing_key, payload, \
                     headers) values ($1, $2, $3, $4, $5)",
                )
                .bind(queue)
                .bind(&message.id)
                .bind(&message.routing_key)
                .bind(&message.payload)
                .bind(Json(&message.headers))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        for (message, queues) in messages.iter().zip(targets) {
            for queue in queues {
                self.inner.deliver(&queue, message.clone());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for JournaledBus {
    /// Declares the queue and, the first time, delivers what the journal still holds for it.
    async fn declare(&self, config: &ConsumerConfig) -> Result<(), BusError> {
        self.inner.declare(config).await?;
        if !self
            .replayed
            .lock()
            .expect("replayed set")
            .insert(config.queue.clone())
        {
            return Ok(());
        }
        let rows: Vec<(String, String, Vec<u8>, Json<BTreeMap<String, String>>)> = sqlx::query_as(
            "select message_id, routing_key, payload, headers from bus_journal \
             where queue = $1 and dead_reason is null order by seq",
        )
        .bind(&config.queue)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        if !rows.is_empty() {
            tracing::info!(queue = %config.queue, messages = rows.len(), "redelivering journaled messages");
        }
        for (id, routing_key, payload, headers) in rows {
            let message = Message {
                id,
                routing_key,
                payload,
                headers: headers.0,
            };
            self.inner.deliver(&config.queue, message);
        }
        Ok(())
    }

    async fn publish(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.journal(exchange, messages, true).await
    }

    async fn broadcast(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.journal(exchange, messages, false).await
    }

    async fn consume(
        &self,
        config: ConsumerConfig,
        handler: Arc<dyn Handler>,
        shutdown: Shutdown,
    ) -> Result<(), BusError> {
        self.declare(&config).await?;
        let settle = Arc::new(Settle {
            handler,
            pool: self.pool.clone(),
            queue: config.queue.clone(),
            max_attempts: config.max_attempts,
        });
        self.inner.consume(config, settle, shutdown).await
    }

    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        self.inner.dead_letters(queue, max).await
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        self.inner.depth(queue).await
    }
}

/// Settles the journal row of each delivery once its handler has decided for good.
struct Settle {
    handler: Arc<dyn Handler>,
    pool: SqlitePool,
    queue: String,
    max_attempts: u32,
}

#[async_trait]
impl Handler for Settle {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let outcome = self.handler.handle(delivery).await;
        let id = &delivery.message.id;
        let dead_reason = match &outcome {
            Outcome::Ack => None,
            Outcome::DeadLetter(reason) => Some(reason),
            Outcome::Retry(reason) if delivery.attempt >= self.max_attempts => Some(reason),
            // Delivered again later: the row stays as it is.
            Outcome::Retry(_) => return outcome,
        };
        let settled =
            match dead_reason {
                None => {
                    sqlx::query("delete from bus_journal where queue = $1 and message_id = $2")
                        .bind(&self.queue)
                        .bind(id)
                        .execute(&self.pool)
                        .await
                }
                Some(reason) => sqlx::query(
                    "update bus_journal set dead_reason = $1 where queue = $2 and message_id = $3",
                )
                .bind(reason)
                .bind(&self.queue)
                .bind(id)
                .execute(&self.pool)
                .await,
            };
        if let Err(error) = settled {
            // The message stays journaled and comes again after a restart: at least once.
            tracing::warn!(%error, message_id = %id, "cannot settle a journaled message");
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crm_platform::bus::EVENTS_EXCHANGE;
    use tokio::sync::mpsc;

    use super::*;

    struct Collect(mpsc::UnboundedSender<String>, Outcome);

    #[async_trait]
    impl Handler for Collect {
        async fn handle(&self, delivery: &Delivery) -> Outcome {
            let _ = self.0.send(delivery.message.id.clone());
            self.1.clone()
        }
    }

    fn config() -> ConsumerConfig {
        ConsumerConfig {
            max_attempts: 1,
            ..ConsumerConfig::new("q", EVENTS_EXCHANGE, &["#"])
        }
    }

    /// Runs a consumer on a freshly opened bus; returns the ids it got within a moment.
    async fn consume_once(path: &Path, outcome: Outcome) -> Vec<String> {
        let bus = Arc::new(JournaledBus::open(path).await.unwrap());
        let (seen, mut received) = mpsc::unbounded_channel();
        let shutdown = Shutdown::new();
        let consumer = tokio::spawn({
            let (bus, shutdown) = (bus.clone(), shutdown.clone());
            async move {
                bus.consume(config(), Arc::new(Collect(seen, outcome)), shutdown)
                    .await
            }
        });
        let mut ids = Vec::new();
        while let Ok(Some(id)) =
            tokio::time::timeout(Duration::from_millis(300), received.recv()).await
        {
            ids.push(id);
        }
        shutdown.trigger();
        consumer.await.unwrap().unwrap();
        ids
    }

    #[tokio::test]
    async fn a_message_published_before_a_crash_is_delivered_after_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        {
            let bus = JournaledBus::open(&path).await.unwrap();
            bus.declare(&config()).await.unwrap();
            let message = Message::new("m-1", "order.completed", b"{}".to_vec());
            bus.publish(EVENTS_EXCHANGE, &[message]).await.unwrap();
            // The process dies before any consumer ran.
        }
        assert_eq!(consume_once(&path, Outcome::Ack).await, ["m-1"]);
        assert!(
            consume_once(&path, Outcome::Ack).await.is_empty(),
            "acknowledged: gone"
        );
    }

    #[tokio::test]
    async fn a_dead_lettered_message_is_not_delivered_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        {
            let bus = JournaledBus::open(&path).await.unwrap();
            bus.declare(&config()).await.unwrap();
            bus.publish(EVENTS_EXCHANGE, &[Message::new("m-2", "x", b"{}".to_vec())])
                .await
                .unwrap();
        }
        let poison = Outcome::DeadLetter("poison".into());
        assert_eq!(consume_once(&path, poison).await, ["m-2"]);
        assert!(consume_once(&path, Outcome::Ack).await.is_empty());
    }
}
