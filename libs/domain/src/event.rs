//! Customer events: the envelope and its types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

    /// The routing keys of the derived events: each carries the customer's snapshot
    /// (see [`CustomerEvent::snapshot`]), what projections of customers consume.
    pub fn snapshot_keys() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|t| t.is_derived())
            .map(|t| t.as_str())
            .collect()
    }
}

/// The `CustomerEvent` envelope; `id` makes every event idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerEvent {
    pub id: Uuid,
    pub customer_id: CustomerId,
    #[serde(rename = "type")]
    pub event_type: CustomerEventType,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
    pub source: String,
    pub timestamp: DateTime<Utc>,
}

/// What an order event says about the order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderFacts<'a> {
    pub order_id: &'a str,
    pub total: f64,
    pub currency: &'a str,
    pub items: &'a serde_json::Value,
}

/// What a `support.ticket` event says about the ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFacts<'a> {
    pub ticket_id: &'a str,
    pub subject: &'a str,
    /// `open` when the event does not say.
    pub status: &'a str,
}

impl CustomerEvent {
    /// The event customer-core emits for a change of `customer`: its full snapshot and
    /// version, so consumers never read back and can ignore older versions.
    pub fn customer_changed(
        event_type: CustomerEventType,
        customer: &crate::Customer,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            customer_id: customer.id,
            event_type,
            data: serde_json::json!({ "version": customer.version, "customer": customer }),
            source: "customer-core".into(),
            // Stored with microseconds, as every timestamp.
            timestamp: chrono::SubsecRound::trunc_subsecs(at, 6),
        }
    }

    /// `customer.segment_changed` for `customer` (already in its new segment): the old
    /// and the new segment (consumers see both), why, and
    /// the snapshot.
    pub fn segment_changed(
        customer: &crate::Customer,
        old: crate::Segment,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut event =
            Self::customer_changed(CustomerEventType::CustomerSegmentChanged, customer, at);
        event.data["old_segment"] = serde_json::json!(old);
        event.data["new_segment"] = serde_json::json!(customer.segment);
        event.data["reason"] = serde_json::json!(reason);
        event
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.data.get(field)?.as_str()
    }

    /// The order of an `order.placed` / `order.completed` event; `None` for other types
    /// or data that lacks the fields (ingest validates them, so only a foreign publisher
    /// gets there).
    pub fn order(&self) -> Option<OrderFacts<'_>> {
        use CustomerEventType as T;
        matches!(self.event_type, T::OrderPlaced | T::OrderCompleted).then_some(())?;
        Some(OrderFacts {
            order_id: self.text("order_id")?,
            total: self.data.get("total")?.as_f64()?,
            currency: self.text("currency")?,
            items: self.data.get("items")?,
        })
    }

    pub fn ticket(&self) -> Option<TicketFacts<'_>> {
        (self.event_type == CustomerEventType::SupportTicket).then_some(())?;
        Some(TicketFacts {
            ticket_id: self.text("ticket_id")?,
            subject: self.text("subject")?,
            status: self.text("status").unwrap_or("open"),
        })
    }

    /// The customer as the change left it, carried by every derived (`customer.*`) event.
    pub fn snapshot(&self) -> Result<crate::Customer, serde_json::Error> {
        crate::Customer::deserialize(&self.data["customer"])
    }

    /// `(product_id, category)` of a `product.viewed` event.
    pub fn viewed_product(&self) -> Option<(&str, Option<&str>)> {
        (self.event_type == CustomerEventType::ProductViewed).then_some(())?;
        Some((self.text("product_id")?, self.text("category")))
    }

    /// Whether the event's data has what its type needs to be applied.
    pub fn is_applicable(&self) -> bool {
        use CustomerEventType as T;
        match self.event_type {
            T::OrderPlaced | T::OrderCompleted => self.order().is_some(),
            T::SupportTicket => self.ticket().is_some(),
            T::ProductViewed => self.viewed_product().is_some(),
            _ => true,
        }
    }
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
