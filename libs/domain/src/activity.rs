//! What customer-core projects from a customer's events (orders, support tickets) and
//! the timeline of the 360 view, which merges them with the events, newest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CustomerEvent, CustomerEventType};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub order_id: String,
    /// `placed` or `completed`.
    pub status: String,
    pub total: f64,
    pub currency: String,
    /// The items as the order event listed them.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub items: serde_json::Value,
    pub placed_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Order {
    /// When the order last changed: completed, else placed.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.completed_at.or(self.placed_at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SupportTicket {
    pub ticket_id: String,
    pub subject: String,
    /// `open`, `pending` or `closed` (as the ticket system says).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SupportTicket {
    pub fn is_open(&self) -> bool {
        self.status != "closed"
    }
}

/// Open tickets first, each group newest first.
pub fn open_first(tickets: &mut [SupportTicket]) {
    tickets.sort_by(|a, b| {
        (b.is_open(), b.updated_at, &b.ticket_id).cmp(&(a.is_open(), a.updated_at, &a.ticket_id))
    });
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// `order`, `ticket` or `event`.
    pub kind: String,
    /// The order, ticket or event id.
    pub id: String,
    pub summary: String,
    pub at: DateTime<Utc>,
}

/// Orders, tickets and events in one list, newest first. An order or ticket event is
/// shown as its order or ticket (once, in its latest state) when that is in the list.
pub fn timeline(
    orders: &[Order],
    events: &[CustomerEvent],
    tickets: &[SupportTicket],
) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = Vec::new();
    for order in orders {
        let Some(at) = order.at() else { continue };
        entries.push(TimelineEntry {
            kind: "order".into(),
            id: order.order_id.clone(),
            summary: format!(
                "order {} {}: {:.2} {}",
                order.order_id, order.status, order.total, order.currency
            ),
            at,
        });
    }
    for ticket in tickets {
        entries.push(TimelineEntry {
            kind: "ticket".into(),
            id: ticket.ticket_id.clone(),
            summary: format!(
                "ticket {} ({}): {}",
                ticket.ticket_id, ticket.status, ticket.subject
            ),
            at: ticket.updated_at,
        });
    }
    for event in events {
        let shown = match (event.order(), event.ticket()) {
            (Some(order), _) => orders.iter().any(|o| o.order_id == order.order_id),
            (_, Some(ticket)) => tickets.iter().any(|t| t.ticket_id == ticket.ticket_id),
            _ => false,
        };
        if !shown {
            entries.push(TimelineEntry {
                kind: "event".into(),
                id: event.id.to_string(),
                summary: event_summary(event),
                at: event.timestamp,
            });
        }
    }
    entries.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    entries
}

fn event_summary(event: &CustomerEvent) -> String {
    use CustomerEventType as T;
    let text = |field: &str| {
        event
            .data
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
    };
    match event.event_type {
        T::ProductViewed => format!("viewed product {}", text("product_id")),
        T::CartAbandoned => format!("abandoned cart {}", text("cart_id")),
        T::ReviewSubmitted => format!("reviewed product {}", text("product_id")),
        T::CustomerSegmentChanged => {
            format!("segment {} → {}", text("old_segment"), text("new_segment"))
        }
        T::CustomerMerged => format!("merged with {}", text("secondary_id")),
        other => other.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::CustomerId;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()
    }

    fn event(event_type: CustomerEventType, data: serde_json::Value, hour: u32) -> CustomerEvent {
        CustomerEvent {
            id: Uuid::now_v7(),
            customer_id: CustomerId::generate(),
            event_type,
            data,
            source: "web".into(),
            timestamp: at(hour),
        }
    }

    fn ticket(id: &str, status: &str, hour: u32) -> SupportTicket {
        SupportTicket {
            ticket_id: id.into(),
            subject: "where is my parcel".into(),
            status: status.into(),
            created_at: at(1),
            updated_at: at(hour),
        }
    }

    #[test]
    fn the_timeline_is_newest_first_and_shows_each_order_once() {
        let order = Order {
            order_id: "o-1".into(),
            status: "completed".into(),
            total: 12.5,
            currency: "EUR".into(),
            items: json!([]),
            placed_at: Some(at(2)),
            completed_at: Some(at(3)),
        };
        let order_json = json!({"order_id": "o-1", "total": 12.5, "currency": "EUR", "items": []});
        let events = [
            event(CustomerEventType::OrderPlaced, order_json.clone(), 2),
            event(CustomerEventType::OrderCompleted, order_json, 3),
            event(
                CustomerEventType::ProductViewed,
                json!({"product_id": "p-9"}),
                5,
            ),
        ];
        let tickets = [ticket("t-1", "open", 4)];
        let entries = timeline(&[order], &events, &tickets);
        let summaries: Vec<&str> = entries.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "viewed product p-9",
                "ticket t-1 (open): where is my parcel",
                "order o-1 completed: 12.50 EUR",
            ]
        );
    }

    #[test]
    fn open_tickets_come_first() {
        let mut tickets = [
            ticket("a", "closed", 9),
            ticket("b", "open", 2),
            ticket("c", "pending", 5),
        ];
        open_first(&mut tickets);
        let ids: Vec<&str> = tickets.iter().map(|t| t.ticket_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }
}
