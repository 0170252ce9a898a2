//! The RabbitMQ adapter (lapin).
//!
//! Topology of a consumer queue `q`, declared by whoever starts first:
//! - `q`: a durable quorum queue bound to the topic exchange;
//! - `q.retry.<delay>ms`: one queue per retry delay; a message waits there for the delay
//!   (queue TTL) and is then dead-lettered back into `q`, so a retry never blocks the
//!   consumer and survives a restart;
//! - `q.dlq`: a quorum queue for what failed for good, with the reason in a header.
//!
//! lapin's automatic recovery is not trusted after a broker restart, so this adapter owns
//! its reconnect loop: the publisher reconnects on the next publish, consumers reconnect
//! with backoff and redeclare their topology.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use lapin::{
    Channel, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions,
    },
    types::{FieldTable, ShortString},
};
use tokio::sync::Mutex;

use super::{
    ATTEMPT_HEADER, BusError, ConsumerConfig, DeadLetter, Delivery, EVENTS_EXCHANGE, EventBus,
    FAILURE_REASON_HEADER, Handler, Message, NOTIFICATIONS_EXCHANGE, Outcome,
};
use crate::{Shutdown, settings::Secret};

mod messages;
mod topology;

use messages::{ROUTING_KEY_HEADER, publish_confirmed, to_message};
use topology::{dead_letter_queue, declare_exchange, declare_topology, retry_queue};

/// For the connection and its channel setup: a broker that accepts the socket and then
/// stays silent must not hold the caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// For one publish and its confirms (a blocked broker withholds them).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_ATTEMPTS: usize = 3;
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

pub struct RabbitBus {
    url: Secret,
    /// The publisher's connection and confirm-mode channel, made on first use.
    publisher: Mutex<Option<(Connection, Channel)>>,
    connections_opened: AtomicU64,
}

fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl RabbitBus {
    /// Connects lazily: a broker that is down at start only delays the first publish.
    pub fn new(url: Secret) -> Self {
        Self {
            url,
            publisher: Mutex::new(None),
            connections_opened: AtomicU64::new(0),
        }
    }

    /// Connections opened since start (publisher and consumers): a reconnect shows here.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// A new connection and a channel in publisher-confirm mode, with the platform's
    /// exchanges declared.
    async fn connect(&self) -> Result<(Connection, Channel), BusError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_unbounded())
            .await
            .map_err(|_| unavailable("no answer from the broker"))?
    }

    async fn connect_unbounded(&self) -> Result<(Connection, Channel), BusError> {
        let connection = Connection::connect(self.url.expose(), ConnectionProperties::default())
            .await
            .map_err(unavailable)?;
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        for exchange in [EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE] {
            declare_exchange(&channel, exchange)
                .await
                .map_err(unavailable)?;
        }
        Ok((connection, channel))
    }

    async fn publisher_channel(&self) -> Result<Channel, BusError> {
        let mut link = self.publisher.lock().await;
        if let Some((connection, channel)) = link.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let reconnect = link.is_some();
        let (connection, channel) = self.connect().await?;
        tracing::info!(reconnect, "publisher connected to the broker");
        *link = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes with confirms, reconnecting and trying again when the link broke.
    async fn publish_with_retry(
        &self,
        exchange: &str,
        messages: &[Message],
        mandatory: bool,
    ) -> Result<(), BusError> {
        let routed: Vec<(String, Message)> = messages
            .iter()
            .map(|m| (m.routing_key.clone(), m.clone()))
            .collect();
        let mut last_error = None;
        for attempt in 0..PUBLISH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let channel = match self.publisher_channel().await {
                Ok(channel) => channel,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let publish = publish_confirmed(&channel, exchange, &routed, mandatory);
            let outcome = tokio::time::timeout(PUBLISH_TIMEOUT, publish)
                .await
                .unwrap_or_else(|_| Err(unavailable("no confirm from the broker")));
            match outcome {
                Err(BusError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "publish failed; reconnecting");
                    self.forget_publisher().await;
                    last_error = Some(BusError::Unavailable(reason));
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| unavailable("publish failed")))
    }

    async fn forget_publisher(&self) {
        self.publisher.lock().await.take();
    }

    /// Runs one connection's worth of consuming; returns `Ok` only on shutdown.
    async fn consume_connected(
        &self,
        config: &ConsumerConfig,
        handler: &Arc<dyn Handler>,
        shutdown: &Shutdown,
        connected: &mut bool,
    ) -> Result<(), BusError> {
        let (connection, confirms) = self.connect().await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        declare_topology(&channel, config)
            .await
            .map_err(unavailable)?;
        let deliveries = channel
            .basic_consume(
                config.queue.as_str().into(),
                ShortString::from(format!("{}-{}", config.queue, std::process::id())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        *connected = true;
        tracing::info!(queue = %config.queue, concurrency = config.concurrency, "consuming");
        // What is waiting when a handler is free goes to it together (up to `batch`).
        let work = deliveries
            .ready_chunks(config.batch.max(1))
            .map(|waiting| {
                waiting
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)
            })
            .try_for_each_concurrent(config.concurrency.max(1), |waiting| {
                process(config, handler, &confirms, waiting)
            });
        tokio::select! {
            _ = shutdown.wait() => {
                let _ = connection.close(200, "shutdown".into()).await;
                Ok(())
            }
            ended = work => match ended {
                Ok(()) => Err(unavailable("the broker cancelled the consumer")),
                Err(error) => Err(error),
            },
        }
    }
}

#[async_trait]
impl EventBus for RabbitBus {
    async fn declare(&self, config: &ConsumerConfig) -> Result<(), BusError> {
        let channel = self.publisher_channel().await?;
        declare_topology(&channel, config)
            .await
            .map_err(unavailable)
    }

    async fn publish(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.publish_with_retry(exchange, messages, true).await
    }

    async fn broadcast(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.publish_with_retry(exchange, messages, false).await
    }

    async fn consume(
        &self,
        config: ConsumerConfig,
        handler: Arc<dyn Handler>,
        shutdown: Shutdown,
    ) -> Result<(), BusError> {
        let mut delay = Duration::from_millis(200);
        loop {
            let mut connected = false;
            let result = self
                .consume_connected(&config, &handler, &shutdown, &mut connected)
                .await;
            match result {
                Ok(()) => return Ok(()),
                Err(error) => {
                    if connected {
                        delay = Duration::from_millis(200);
                    }
                    tracing::warn!(queue = %config.queue, %error, ?delay, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        _ = shutdown.wait() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                }
            }
        }
    }

    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        let (connection, _) = self.connect().await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let mut found = Vec::new();
        let mut held = Vec::new();
        while found.len() < max {
            let got = channel
                .basic_get(
                    dead_letter_queue(queue).as_str().into(),
                    BasicGetOptions::default(),
                )
                .await
                .map_err(unavailable)?;
            let Some(got) = got else { break };
            let delivery = got.delivery;
            let mut message = to_message(
                &delivery.routing_key,
                &delivery.properties,
                delivery.data.clone(),
            );
            let reason = message
                .headers
                .remove(FAILURE_REASON_HEADER)
                .unwrap_or_default();
            found.push(DeadLetter { message, reason });
            held.push(delivery);
        }
        // Reading is not removing: put every message back.
        for delivery in held {
            let options = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            delivery.nack(options).await.map_err(unavailable)?;
        }
        let _ = connection.close(200, "done".into()).await;
        Ok(found)
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.publisher_channel().await.map(|_| ())
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        self.publisher_channel().await?;
        // A passive declare of a missing queue closes its channel: use a channel of its own.
        let channel = match self.publisher.lock().await.as_ref() {
            Some((connection, _)) => connection.create_channel().await.map_err(unavailable)?,
            None => return Err(unavailable("not connected")),
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .map_err(|error| match error.to_string().contains("NOT_FOUND") {
                true => BusError::NoSuchQueue(queue.to_owned()),
                false => unavailable(error),
            })?;
        let _ = channel.close(200, "done".into()).await;
        Ok(declared.message_count().into())
    }

    async fn exists(&self, queue: &str) -> Result<bool, BusError> {
        match self.depth(queue).await {
            Ok(_) => Ok(true),
            Err(BusError::NoSuchQueue(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Hands deliveries that arrived together to the handler, then settles each.
async fn process(
    config: &ConsumerConfig,
    handler: &Arc<dyn Handler>,
    confirms: &Channel,
    waiting: Vec<lapin::message::Delivery>,
) -> Result<(), BusError> {
    let received: Vec<Delivery> = waiting
        .iter()
        .map(|delivery| {
            let message = to_message(
                &delivery.routing_key,
                &delivery.properties,
                delivery.data.clone(),
            );
            let attempt = message
                .headers
                .get(ATTEMPT_HEADER)
                .and_then(|a| a.parse().ok())
                .unwrap_or(1);
            Delivery { message, attempt }
        })
        .collect();
    let outcomes = super::outcomes_of(handler.as_ref(), &received).await;
    for ((delivery, received), outcome) in waiting.iter().zip(received).zip(outcomes) {
        settle(config, confirms, delivery, received, outcome).await?;
    }
    Ok(())
}

/// Settles a delivery: acknowledged, re-published to a retry queue, or dead-lettered
/// with the reason. Re-publishing comes before the acknowledgement: a crash in between
/// delivers twice, never zero times (consumers deduplicate by message id).
async fn settle(
    config: &ConsumerConfig,
    confirms: &Channel,
    delivery: &lapin::message::Delivery,
    Delivery { message, attempt }: Delivery,
    outcome: Outcome,
) -> Result<(), BusError> {
    let target = match outcome {
        Outcome::Ack => None,
        Outcome::Retry(reason) if attempt < config.max_attempts => {
            let mut again = message;
            again
                .headers
                .insert(ATTEMPT_HEADER.into(), (attempt + 1).to_string());
            again.headers.insert(FAILURE_REASON_HEADER.into(), reason);
            Some((retry_queue(config, attempt), again))
        }
        Outcome::Retry(reason) | Outcome::DeadLetter(reason) => {
            tracing::warn!(queue = %config.queue, %reason, "message dead-lettered");
            let mut dead = message;
            dead.headers.insert(FAILURE_REASON_HEADER.into(), reason);
            Some((dead_letter_queue(&config.queue), dead))
        }
    };
    if let Some((queue, mut message)) = target {
        message
            .headers
            .insert(ROUTING_KEY_HEADER.into(), message.routing_key.clone());
        publish_confirmed(confirms, "", &[(queue, message)], true).await?;
    }
    delivery
        .ack(BasicAckOptions::default())
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[cfg(test)]
mod tests;
