//! Messages for the notification service outside this project (exchange
//! `crm.notifications`): a milestone reached by a completed order, and the start of the
//! abandoned-cart flow. Which messages an applied event produces is decided here.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Customer, CustomerEvent, CustomerEventType, milestone};

pub const MILESTONE_REACHED: &str = "milestone.reached";
pub const CART_ABANDONED_FLOW: &str = "cart.abandoned.flow";

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Uuid,
    pub routing_key: &'static str,
    pub payload: Value,
}

impl Notification {
    fn new(routing_key: &'static str, mut payload: Value) -> Self {
        let id = Uuid::now_v7();
        payload["id"] = json!(id);
        Self {
            id,
            routing_key,
            payload,
        }
    }
}

/// The channels the customer agreed to be messaged on (`preferences`): e-mail with the
/// newsletter consent, SMS with the SMS consent and a phone number.
pub fn consented_channels(customer: &Customer) -> Vec<&'static str> {
    let mut channels = Vec::new();
    if customer.preferences.newsletter {
        channels.push("email");
    }
    if customer.preferences.sms_notifications && customer.phone.is_some() {
        channels.push("sms");
    }
    channels
}

/// The notifications of `event`, applied to a customer who was `before` and is `after`;
/// none for a customer who consented to no channel (each message names the channels).
pub fn notifications_for(
    event: &CustomerEvent,
    before: &Customer,
    after: &Customer,
) -> Vec<Notification> {
    let channels = consented_channels(after);
    if channels.is_empty() {
        return Vec::new();
    }
    let common = |extra: Value| {
        let mut payload = json!({
            "customer_id": event.customer_id,
            "event_id": event.id,
            "at": event.timestamp,
            "channels": channels,
        });
        if let (Value::Object(target), Value::Object(extra)) = (&mut payload, extra) {
            target.extend(extra);
        }
        payload
    };
    match event.event_type {
        CustomerEventType::OrderCompleted => milestone::crossed(&before.metrics, &after.metrics)
            .into_iter()
            .map(|reached| {
                let mut payload = common(serde_json::to_value(reached).unwrap_or_default());
                payload["order_id"] = event.data.get("order_id").cloned().unwrap_or_default();
                payload["lifetime_value"] = json!(after.metrics.lifetime_value);
                payload["total_orders"] = json!(after.metrics.total_orders);
                Notification::new(MILESTONE_REACHED, payload)
            })
            .collect(),
        CustomerEventType::CartAbandoned => {
            let field = |name: &str| event.data.get(name).cloned().unwrap_or_default();
            let payload = common(json!({
                "cart_id": field("cart_id"),
                "cart_value": field("cart_value"),
                "items": field("items"),
            }));
            vec![Notification::new(CART_ABANDONED_FLOW, payload)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{CustomerDraft, CustomerId};

    fn customer() -> Customer {
        let draft = CustomerDraft {
            email: "n@example.com".into(),
            preferences: crate::PreferencesPatch {
                newsletter: Some(true),
                ..Default::default()
            },
            ..CustomerDraft::default()
        };
        Customer::create(CustomerId::generate(), draft, Utc::now()).unwrap()
    }

    fn event(event_type: CustomerEventType, data: Value, customer: &Customer) -> CustomerEvent {
        CustomerEvent {
            id: Uuid::now_v7(),
            customer_id: customer.id,
            event_type,
            data,
            source: "test".into(),
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn a_first_big_order_reaches_the_first_order_and_value_milestones() {
        let before = customer();
        let order = event(
            CustomerEventType::OrderCompleted,
            json!({ "order_id": "o-1" }),
            &before,
        );
        let after = before.after_activity(order.timestamp, Some(1_500.0), Utc::now());
        let sent = notifications_for(&order, &before, &after);
        let names: Vec<&str> = sent
            .iter()
            .map(|n| n.payload["milestone"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["first_order", "lifetime_value"]);
        assert!(sent.iter().all(|n| n.routing_key == MILESTONE_REACHED));
        assert_eq!(sent[1].payload["threshold"], 1000.0);
        assert_eq!(sent[0].payload["order_id"], "o-1");
        assert_eq!(sent[0].payload["id"], json!(sent[0].id));
        assert_eq!(sent[0].payload["channels"], json!(["email"]));
    }

    #[test]
    fn a_customer_who_consented_to_nothing_gets_no_message() {
        let mut opted_out = customer();
        opted_out.preferences.newsletter = false;
        opted_out.preferences.sms_notifications = true; // but no phone
        let order = event(CustomerEventType::OrderCompleted, json!({}), &opted_out);
        let after = opted_out.after_activity(order.timestamp, Some(1_500.0), Utc::now());
        assert!(notifications_for(&order, &opted_out, &after).is_empty());
        let cart = event(CustomerEventType::CartAbandoned, json!({}), &opted_out);
        assert!(notifications_for(&cart, &opted_out, &opted_out).is_empty());
        let mut sms_only = opted_out.clone();
        sms_only.phone = Some(crate::Phone::parse("+14155550123").unwrap());
        let sent = notifications_for(&cart, &sms_only, &sms_only);
        assert_eq!(sent[0].payload["channels"], json!(["sms"]));
    }

    #[test]
    fn an_abandoned_cart_starts_the_flow_and_other_events_send_nothing() {
        let customer = customer();
        let cart = event(
            CustomerEventType::CartAbandoned,
            json!({ "cart_id": "c-1", "cart_value": 42.0, "items": [] }),
            &customer,
        );
        let sent = notifications_for(&cart, &customer, &customer);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].routing_key, CART_ABANDONED_FLOW);
        assert_eq!(sent[0].payload["cart_id"], "c-1");
        let view = event(
            CustomerEventType::ProductViewed,
            json!({ "product_id": "p" }),
            &customer,
        );
        assert!(notifications_for(&view, &customer, &customer).is_empty());
    }
}
