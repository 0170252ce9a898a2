//! The seed's customer events: the envelope and its types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{CustomerId, customer::wire_enum};

wire_enum!(
    /// Every event type the platform knows; the routing key on the bus.
    CustomerEventType,
    "customer.created, customer.updated, customer.deleted, customer.segment_changed, \
     customer.merged, order.placed, order.completed, product.viewed, cart.abandoned, \
     review.submitted, support.ticket, newsletter.subscribed" {
        CustomerCreated = "customer.created",
        CustomerUpdated = "customer.updated",
        CustomerDeleted = "customer.deleted",
        CustomerSegmentChanged = "customer.segment_changed",
        CustomerMerged = "customer.merged",
        OrderPlaced = "order.placed",
        OrderCompleted = "order.completed",
        ProductViewed = "product.viewed",
        CartAbandoned = "cart.abandoned",
        ReviewSubmitted = "review.submitted",
        SupportTicket = "support.ticket",
        NewsletterSubscribed = "newsletter.subscribed",
    }
);

impl CustomerEventType {
    /// Events that customer-core derives from its own state changes, never ingested.
    pub fn is_derived(&self) -> bool {
        self.as_str().starts_with("customer.")
    }
}

/// The seed's `CustomerEvent` envelope; `id` makes every event idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerEvent {
    pub id: Uuid,
    pub customer_id: CustomerId,
    #[serde(rename = "type")]
    pub event_type: CustomerEventType,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub source: String,
    pub timestamp: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_use_the_seed_names_on_the_wire() {
        for event_type in CustomerEventType::ALL {
            let json = serde_json::to_string(event_type).unwrap();
            assert_eq!(json, format!("\"{}\"", event_type.as_str()));
            assert_eq!(
                event_type.as_str().parse::<CustomerEventType>(),
                Ok(*event_type)
            );
        }
        assert_eq!(CustomerEventType::ALL.len(), 12);
    }

    #[test]
    fn only_customer_events_are_derived() {
        assert!(CustomerEventType::CustomerMerged.is_derived());
        assert!(!CustomerEventType::OrderCompleted.is_derived());
    }
}
