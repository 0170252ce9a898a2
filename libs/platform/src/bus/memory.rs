//! The in-process bus of the standalone binary: the same routing, retry and
//! dead-letter rules as RabbitMQ, on tokio channels. It keeps nothing across restarts;
//! durability comes from the outbox table that feeds it.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    BusError, ConsumerConfig, DeadLetter, Delivery, EventBus, Handler, Message, Outcome,
    topic_matches,
};
use crate::Shutdown;

#[derive(Clone, Default)]
pub struct MemoryBus {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// (exchange, pattern, queue)
    bindings: Vec<(String, String, String)>,
    queues: HashMap<String, Queue>,
}

struct Queue {
    inbox: Inbox,
    /// Shared, so that several consumers of one queue take turns, as replicas do.
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>>,
    dead: Vec<DeadLetter>,
}

/// A queue's sending end, counting what waits in it.
#[derive(Clone)]
struct Inbox {
    sender: mpsc::UnboundedSender<Delivery>,
    waiting: Arc<AtomicU64>,
}

impl Inbox {
    fn send(&self, delivery: Delivery) {
        // Counted before it can be received (and taken off the count), so the count
        // never goes below zero; the receiver lives as long as the queue.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(delivery).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl MemoryBus {
    /// After the handler: a retry comes back after its backoff, a failure for good goes
    /// to the dead letters.
    fn settle(&self, config: &ConsumerConfig, inbox: &Inbox, delivery: Delivery, outcome: Outcome) {
        let reason = match outcome {
            Outcome::Ack => return,
            Outcome::Retry(reason) if delivery.attempt < config.max_attempts => {
                let delay = config.backoff(delivery.attempt);
                let inbox = inbox.clone();
                let again = Delivery {
                    attempt: delivery.attempt + 1,
                    ..delivery
                };
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    inbox.send(again);
                });
                tracing::debug!(queue = %config.queue, %reason, "delivery will be retried");
                return;
            }
            Outcome::Retry(reason) | Outcome::DeadLetter(reason) => reason,
        };
        tracing::warn!(queue = %config.queue, %reason, "message dead-lettered");
        let mut state = self.lock();
        if let Some(queue) = state.queues.get_mut(&config.queue) {
            queue.dead.push(DeadLetter {
                message: delivery.message,
                reason,
            });
        }
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// The queues each message goes to; with `routed`, a message no queue takes fails
    /// the whole batch.
    pub fn targets(
        &self,
        exchange: &str,
        messages: &[Message],
        routed: bool,
    ) -> Result<Vec<Vec<String>>, BusError> {
        let state = self.lock();
        messages
            .iter()
            .map(|message| {
                let mut queues: Vec<String> = state
                    .bindings
                    .iter()
                    .filter(|(x, pattern, _)| {
                        x == exchange && topic_matches(pattern, &message.routing_key)
                    })
                    .map(|(_, _, queue)| queue.clone())
                    .collect();
                queues.dedup();
                if queues.is_empty() && routed {
                    return Err(BusError::Unroutable {
                        exchange: exchange.to_owned(),
                        routing_key: message.routing_key.clone(),
                    });
                }
                Ok(queues)
            })
            .collect()
    }

    /// Puts a message into a declared queue (a redelivery after a restart, say).
    pub fn deliver(&self, queue: &str, message: Message) {
        if let Some(queue) = self.lock().queues.get(queue) {
            queue.inbox.send(Delivery {
                message,
                attempt: 1,
            });
        }
    }

    fn route(&self, exchange: &str, messages: &[Message], routed: bool) -> Result<(), BusError> {
        // Every message is checked first: a batch is delivered whole or not at all.
        let targets = self.targets(exchange, messages, routed)?;
        for (message, queues) in messages.iter().zip(targets) {
            for queue in queues {
                self.deliver(&queue, message.clone());
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A handler never runs under this lock, so poisoning means a bug in this file.
        self.state.lock().expect("memory bus state")
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn declare(&self, config: &ConsumerConfig) -> Result<(), BusError> {
        let mut state = self.lock();
        state.queues.entry(config.queue.clone()).or_insert_with(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            Queue {
                inbox: Inbox {
                    sender,
                    waiting: Arc::default(),
                },
                receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
                dead: Vec::new(),
            }
        });
        for pattern in &config.bindings {
            let binding = (
                config.exchange.clone(),
                pattern.clone(),
                config.queue.clone(),
            );
            if !state.bindings.contains(&binding) {
                state.bindings.push(binding);
            }
        }
        Ok(())
    }

    async fn publish(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.route(exchange, messages, true)
    }

    async fn broadcast(&self, exchange: &str, messages: &[Message]) -> Result<(), BusError> {
        self.route(exchange, messages, false)
    }

    async fn consume(
        &self,
        config: ConsumerConfig,
        handler: Arc<dyn Handler>,
        shutdown: Shutdown,
    ) -> Result<(), BusError> {
        self.declare(&config).await?;
        let (receiver, inbox) = {
            let state = self.lock();
            let queue = &state.queues[&config.queue];
            (queue.receiver.clone(), queue.inbox.clone())
        };
        let batch = config.batch.max(1);
        loop {
            // What is waiting goes to the handler together (up to `batch`).
            let waiting = tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                next = async {
                    let mut receiver = receiver.lock().await;
                    let mut waiting = vec![receiver.recv().await?];
                    while waiting.len() < batch {
                        let Ok(more) = receiver.try_recv() else { break };
                        waiting.push(more);
                    }
                    Some(waiting)
                } => match next {
                    Some(waiting) => waiting,
                    None => return Ok(()),
                },
            };
            inbox
                .waiting
                .fetch_sub(waiting.len() as u64, Ordering::Relaxed);
            let outcomes = super::outcomes_of(handler.as_ref(), &waiting).await;
            for (delivery, outcome) in waiting.into_iter().zip(outcomes) {
                self.settle(&config, &inbox, delivery, outcome);
            }
        }
    }

    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        let state = self.lock();
        Ok(state
            .queues
            .get(queue)
            .map(|q| q.dead.iter().take(max).cloned().collect())
            .unwrap_or_default())
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        let state = self.lock();
        Ok(state
            .queues
            .get(queue)
            .map_or(0, |q| q.inbox.waiting.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        super::super::contract::run(Arc::new(MemoryBus::new()), "memory").await;
    }
}
