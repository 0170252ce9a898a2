//! Messages on the wire: published with confirms, as persistent AMQP messages whose
//! headers carry the platform's own (attempt, failure reason, original routing key).

use std::collections::BTreeMap;

use lapin::{
    BasicProperties, Channel, Confirmation,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldTable, ShortString},
};

use super::unavailable;
use crate::bus::{BusError, Message};

/// Publishes `(routing key, message)` pairs and waits for every confirm. `mandatory`
/// makes an unroutable message come back (an error) instead of vanishing.
pub(super) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    messages: &[(String, Message)],
    mandatory: bool,
) -> Result<(), BusError> {
    let mut confirms = Vec::with_capacity(messages.len());
    for (routing_key, message) in messages {
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                &message.payload,
                properties(message),
            )
            .await
            .map_err(unavailable)?;
        confirms.push((routing_key, confirm));
    }
    for (routing_key, confirm) in confirms {
        match confirm.await.map_err(unavailable)? {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            Confirmation::Ack(Some(_)) => {
                return Err(BusError::Unroutable {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.clone(),
                });
            }
            Confirmation::Nack(_) => return Err(BusError::Refused),
        }
    }
    Ok(())
}

fn properties(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in &message.headers {
        headers.insert(
            key.as_str().into(),
            AMQPValue::LongString(value.as_str().into()),
        );
    }
    BasicProperties::default()
        .with_message_id(message.id.as_str().into())
        .with_content_type("application/json".into())
        // Persistent: survives a broker restart.
        .with_delivery_mode(2)
        .with_headers(headers)
}

pub(super) fn to_message(
    routing_key: &ShortString,
    properties: &BasicProperties,
    payload: Vec<u8>,
) -> Message {
    let headers: BTreeMap<String, String> = properties
        .headers()
        .as_ref()
        .map(|table| {
            table
                .inner()
                .iter()
                .filter_map(|(key, value)| {
                    let text = match value {
                        AMQPValue::LongString(s) => {
                            String::from_utf8_lossy(s.as_bytes()).into_owned()
                        }
                        AMQPValue::ShortString(s) => s.to_string(),
                        _ => return None,
                    };
                    Some((key.to_string(), text))
                })
                .collect()
        })
        .unwrap_or_default();
    let routing_key = headers
        .get(ROUTING_KEY_HEADER)
        .cloned()
        .unwrap_or_else(|| routing_key.to_string());
    Message {
        id: properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        routing_key,
        payload,
        headers: headers
            .into_iter()
            .filter(|(k, _)| k != ROUTING_KEY_HEADER)
            .collect(),
    }
}

/// A retried or dead-lettered message is re-published to a queue by name; its original
/// routing key travels here.
pub(super) const ROUTING_KEY_HEADER: &str = "x-crm-routing-key";
