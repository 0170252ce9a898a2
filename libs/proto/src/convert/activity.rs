//! Conversions of a customer's activity: events, orders, tickets and the timeline.

use super::*;

/// An event as a gRPC caller sent it, before validation.
impl From<v1::CustomerEvent> for domain::EventDraft {
    fn from(e: v1::CustomerEvent) -> Self {
        Self {
            id: Some(e.id).filter(|id| !id.is_empty()),
            customer_id: e.customer_id,
            event_type: e.r#type,
            data: e.data.map(crate::json::struct_to_json).unwrap_or_default(),
            source: Some(e.source).filter(|s| !s.is_empty()),
            timestamp: datetime(e.timestamp.as_ref()).map(|t| t.to_rfc3339()),
        }
    }
}

impl From<domain::CustomerEvent> for v1::CustomerEvent {
    fn from(e: domain::CustomerEvent) -> Self {
        let data = match e.data {
            serde_json::Value::Object(object) => Some(crate::json::json_to_struct(object)),
            _ => None,
        };
        Self {
            id: e.id.to_string(),
            customer_id: e.customer_id.to_string(),
            r#type: e.event_type.as_str().to_owned(),
            data,
            source: e.source,
            timestamp: Some(timestamp(e.timestamp)),
        }
    }
}

impl TryFrom<v1::CustomerEvent> for domain::CustomerEvent {
    type Error = String;

    fn try_from(e: v1::CustomerEvent) -> Result<Self, String> {
        Ok(Self {
            id: uuid::Uuid::parse_str(&e.id).map_err(|err| err.to_string())?,
            customer_id: e.customer_id.parse()?,
            event_type: e.r#type.parse()?,
            data: e.data.map(crate::json::struct_to_json).unwrap_or_default(),
            source: e.source,
            timestamp: required_datetime(e.timestamp.as_ref(), "timestamp")?,
        })
    }
}

/// An order of `customer`; its items as the order event listed them (product, quantity,
/// price).
pub fn order_to_proto(customer: domain::CustomerId, order: domain::Order) -> v1::Order {
    let items = order.items.as_array().cloned().unwrap_or_default();
    v1::Order {
        id: order.order_id,
        customer_id: customer.to_string(),
        status: order.status,
        total: order.total,
        currency: order.currency,
        items: items
            .iter()
            .map(|item| v1::OrderItem {
                product_id: item["product_id"].as_str().unwrap_or_default().to_owned(),
                quantity: item["quantity"]
                    .as_i64()
                    .and_then(|q| i32::try_from(q).ok())
                    .unwrap_or_default(),
                price: item["price"].as_f64().unwrap_or_default(),
            })
            .collect(),
        placed_at: order.placed_at.map(timestamp),
        completed_at: order.completed_at.map(timestamp),
    }
}

impl From<v1::Order> for domain::Order {
    fn from(order: v1::Order) -> Self {
        let items = order
            .items
            .into_iter()
            .map(|item| {
                serde_json::json!({
                    "product_id": item.product_id,
                    "quantity": item.quantity,
                    "price": item.price,
                })
            })
            .collect();
        Self {
            order_id: order.id,
            status: order.status,
            total: order.total,
            currency: order.currency,
            items: serde_json::Value::Array(items),
            placed_at: datetime(order.placed_at.as_ref()),
            completed_at: datetime(order.completed_at.as_ref()),
        }
    }
}

pub fn ticket_to_proto(
    customer: domain::CustomerId,
    ticket: domain::SupportTicket,
) -> v1::SupportTicket {
    v1::SupportTicket {
        id: ticket.ticket_id,
        customer_id: customer.to_string(),
        subject: ticket.subject,
        status: ticket.status,
        created_at: Some(timestamp(ticket.created_at)),
        updated_at: Some(timestamp(ticket.updated_at)),
    }
}

impl TryFrom<v1::SupportTicket> for domain::SupportTicket {
    type Error = String;

    fn try_from(ticket: v1::SupportTicket) -> Result<Self, String> {
        Ok(Self {
            ticket_id: ticket.id,
            subject: ticket.subject,
            status: ticket.status,
            created_at: required_datetime(ticket.created_at.as_ref(), "created_at")?,
            updated_at: required_datetime(ticket.updated_at.as_ref(), "updated_at")?,
        })
    }
}

impl From<domain::TimelineEntry> for v1::TimelineEntry {
    fn from(entry: domain::TimelineEntry) -> Self {
        Self {
            kind: entry.kind,
            id: entry.id,
            summary: entry.summary,
            at: Some(timestamp(entry.at)),
        }
    }
}

impl TryFrom<v1::TimelineEntry> for domain::TimelineEntry {
    type Error = String;

    fn try_from(entry: v1::TimelineEntry) -> Result<Self, String> {
        Ok(Self {
            kind: entry.kind,
            id: entry.id,
            summary: entry.summary,
            at: required_datetime(entry.at.as_ref(), "at")?,
        })
    }
}
