//! The queues of one consumer (see the module above): its quorum queue bound to the
//! exchange, one retry queue per delay that dead-letters back into it, and its
//! dead-letter queue; all with the consumer's `expires` when it is a replica's own.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

use crate::bus::ConsumerConfig;

pub(super) fn retry_queue(config: &ConsumerConfig, attempt: u32) -> String {
    format!(
        "{}.retry.{}ms",
        config.queue,
        config.backoff(attempt).as_millis()
    )
}

pub(super) fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

pub(super) async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
}

pub(super) async fn declare_topology(
    channel: &Channel,
    config: &ConsumerConfig,
) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let quorum = || {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        if let Some(expires) = config.expires {
            let millis = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
        }
        args
    };
    declare_exchange(channel, &config.exchange).await?;
    channel
        .queue_declare(config.queue.as_str().into(), durable, quorum())
        .await?;
    for pattern in &config.bindings {
        channel
            .queue_bind(
                config.queue.as_str().into(),
                config.exchange.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for attempt in 1..config.max_attempts {
        let mut args = quorum();
        let ttl = i64::try_from(config.backoff(attempt).as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(config.queue.as_str().into()),
        );
        channel
            .queue_declare(retry_queue(config, attempt).as_str().into(), durable, args)
            .await?;
    }
    channel
        .queue_declare(
            dead_letter_queue(&config.queue).as_str().into(),
            durable,
            quorum(),
        )
        .await?;
    Ok(())
}
