//! Validation of incoming events: the `CustomerEvent` envelope and, per
//! type, its `data`. Every bad field is reported (`data.items[0].quantity`), so a
//! rejected event says exactly what to fix.
//!
//! | type | `data` |
//! |---|---|
//! | `order.placed`, `order.completed` | `order_id`, `total` ≥ 0, `currency` (ISO 4217), `items`: 1-1,000 of `{product_id, quantity ≥ 1, price ≥ 0, optional category}` |
//! | `cart.abandoned` | `cart_id`, `cart_value` ≥ 0, `items` (as above, may be empty) |
//! | `product.viewed` | `product_id`, optional `category` |
//! | `review.submitted` | `product_id`, `rating` 1-5, optional `text` |
//! | `support.ticket` | `ticket_id`, `subject`, optional `status` (`open`, `pending`, `closed`) |
//! | `newsletter.subscribed` | optional `subscribed` (bool, default true) |
//!
//! `customer.*` events are emitted by the platform itself and cannot be ingested.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Currency, CustomerEvent, CustomerEventType, CustomerId, ValidationErrors};

/// How far in the future a timestamp may lie (clock skew of the sender).
pub const MAX_FUTURE: Duration = Duration::hours(24);
pub const MAX_ITEMS: usize = 1_000;
const MAX_TEXT: usize = 10_000;
const MAX_ID: usize = 200;

/// An event as a client sends it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventDraft {
    /// UUID; assigned by the server when absent. Events are idempotent by id.
    pub id: Option<String>,
    pub customer_id: String,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "order.completed"))]
    pub event_type: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    /// Where the event comes from (`website`, `pos`, ...); `api` when absent.
    pub source: Option<String>,
    /// RFC 3339; the time of receipt when absent.
    pub timestamp: Option<String>,
}

impl CustomerEvent {
    /// A valid event from a draft, or every reason it is not.
    pub fn validate(draft: EventDraft, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let id = match draft.id.as_deref().map(str::trim) {
            None | Some("") => Some(Uuid::now_v7()),
            Some(raw) => errors.check(
                "id",
                Uuid::parse_str(raw).map_err(|_| "must be a UUID".into()),
            ),
        };
        let customer_id = errors.check("customer_id", draft.customer_id.parse::<CustomerId>());
        let event_type = errors.check("type", draft.event_type.parse::<CustomerEventType>());
        if let Some(event_type) = event_type.filter(CustomerEventType::is_derived) {
            errors.push(
                "type",
                format!("{event_type} events are emitted by the platform, not ingested"),
            );
        }
        let source = match draft.source.as_deref().map(str::trim) {
            None | Some("") => Some("api".to_owned()),
            Some(source) => errors.check("source", short_text(source, 100)),
        };
        let timestamp = match draft.timestamp.as_deref() {
            None => Some(now),
            Some(raw) => errors.check("timestamp", timestamp(raw, now)),
        };
        let data = match draft.data {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            _ => {
                errors.push("data", "must be an object");
                Map::new()
            }
        };
        if let Some(event_type) = event_type {
            check_data(event_type, &data, &mut errors);
        }
        let (Some(id), Some(customer_id), Some(event_type), Some(source), Some(timestamp)) =
            (id, customer_id, event_type, source, timestamp)
        else {
            return Err(errors);
        };
        errors.finish(|| CustomerEvent {
            id,
            customer_id,
            event_type,
            data: Value::Object(data),
            source,
            timestamp: timestamp.trunc_subsecs(6),
        })
    }
}

/// An RFC 3339 timestamp, in UTC.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp, e.g. 2026-11-24T12:00:00Z".to_owned())
}

fn timestamp(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let at = parse_timestamp(raw)?;
    if at > now + MAX_FUTURE {
        return Err("must not be more than 24 hours in the future".into());
    }
    Ok(at)
}

fn short_text(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err("must not be empty".into())
    } else if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

/// Checks the fields of one `data` object, recording errors under `data.<path>`.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
    errors: &'a mut ValidationErrors,
}

impl Fields<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn fail(&mut self, name: &str, message: impl Into<String>) {
        let field = self.field(name);
        self.errors.push(field, message);
    }

    fn id(&mut self, name: &str) {
        self.text(name, MAX_ID, true);
    }

    fn text(&mut self, name: &str, max: usize, required: bool) {
        match self.object.get(name) {
            None | Some(Value::Null) if !required => {}
            None | Some(Value::Null) => self.fail(name, "is required"),
            Some(Value::String(text)) => {
                if let Err(message) = short_text(text, max) {
                    self.fail(name, message);
                }
            }
            Some(_) => self.fail(name, "must be a string"),
        }
    }

    fn number(&mut self, name: &str, min: f64, max: f64, integer: bool) {
        let kind = if integer { "an integer" } else { "a number" };
        match self.object.get(name) {
            None | Some(Value::Null) => self.fail(name, "is required"),
            Some(Value::Number(n)) => {
                let ok = if integer {
                    n.as_i64().map(|v| v as f64)
                } else {
                    n.as_f64()
                };
                match ok {
                    Some(v) if (min..=max).contains(&v) => {}
                    Some(_) => self.fail(name, format!("must be between {min} and {max}")),
                    None => self.fail(name, format!("must be {kind}")),
                }
            }
            Some(_) => self.fail(name, format!("must be {kind}")),
        }
    }

    fn currency(&mut self, name: &str) {
        match self.object.get(name) {
            Some(Value::String(code)) => {
                if let Err(message) = Currency::parse(code) {
                    self.fail(name, message);
                }
            }
            None | Some(Value::Null) => self.fail(name, "is required"),
            Some(_) => self.fail(name, "must be a string"),
        }
    }

    fn one_of(&mut self, name: &str, allowed: &[&str]) {
        match self.object.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
            Some(_) => self.fail(name, format!("must be one of {}", allowed.join(", "))),
        }
    }

    fn boolean(&mut self, name: &str) {
        if !matches!(
            self.object.get(name),
            None | Some(Value::Null | Value::Bool(_))
        ) {
            self.fail(name, "must be true or false");
        }
    }

    fn items(&mut self, name: &str, min: usize) {
        let Some(value) = self.object.get(name) else {
            return self.fail(name, "is required");
        };
        let Value::Array(items) = value else {
            return self.fail(name, "must be a list");
        };
        if items.len() < min || items.len() > MAX_ITEMS {
            return self.fail(name, format!("must have {min} to {MAX_ITEMS} items"));
        }
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}.{name}[{i}]", self.path);
            let Value::Object(object) = item else {
                self.errors.push(path, "must be an object");
                continue;
            };
            let mut item = Fields {
                object,
                path,
                errors: self.errors,
            };
            item.id("product_id");
            item.number("quantity", 1.0, 1_000_000.0, true);
            item.number("price", 0.0, 1e12, false);
            item.text("category", MAX_ID, false);
        }
    }
}

fn check_data(
    event_type: CustomerEventType,
    data: &Map<String, Value>,
    errors: &mut ValidationErrors,
) {
    use CustomerEventType as T;
    let mut fields = Fields {
        object: data,
        path: "data".into(),
        errors,
    };
    match event_type {
        T::OrderPlaced | T::OrderCompleted => {
            fields.id("order_id");
            fields.number("total", 0.0, 1e12, false);
            fields.currency("currency");
            fields.items("items", 1);
        }
        T::CartAbandoned => {
            fields.id("cart_id");
            fields.number("cart_value", 0.0, 1e12, false);
            fields.items("items", 0);
        }
        T::ProductViewed => {
            fields.id("product_id");
            fields.text("category", MAX_ID, false);
        }
        T::ReviewSubmitted => {
            fields.id("product_id");
            fields.number("rating", 1.0, 5.0, true);
            fields.text("text", MAX_TEXT, false);
        }
        T::SupportTicket => {
            fields.id("ticket_id");
            fields.text("subject", 500, true);
            fields.one_of("status", &["open", "pending", "closed"]);
        }
        T::NewsletterSubscribed => fields.boolean("subscribed"),
        T::CustomerCreated
        | T::CustomerUpdated
        | T::CustomerDeleted
        | T::CustomerSegmentChanged
        | T::CustomerMerged => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn order(data: Value) -> EventDraft {
        EventDraft {
            customer_id: "01a20df5-a41c-776f-9af3-8d4642c2bb6b".into(),
            event_type: "order.completed".into(),
            data,
            ..EventDraft::default()
        }
    }

    fn valid_order() -> Value {
        json!({ "order_id": "o-1", "total": 30.5, "currency": "eur",
                "items": [{ "product_id": "p-1", "quantity": 2, "price": 15.25 }] })
    }

    fn fields(draft: EventDraft) -> Vec<String> {
        let errors = CustomerEvent::validate(draft, now()).unwrap_err();
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_order_gets_an_id_a_source_and_the_time_of_receipt() {
        let event = CustomerEvent::validate(order(valid_order()), now()).unwrap();
        assert_eq!(event.event_type, CustomerEventType::OrderCompleted);
        assert_eq!(event.source, "api");
        assert_eq!(event.timestamp, now());
        assert_eq!(event.id.get_version_num(), 7);
    }

    #[test]
    fn a_given_id_is_kept() {
        let id = "0194f8a0-0000-7000-8000-000000000001";
        let draft = EventDraft {
            id: Some(id.into()),
            ..order(valid_order())
        };
        assert_eq!(
            CustomerEvent::validate(draft, now())
                .unwrap()
                .id
                .to_string(),
            id
        );
    }

    #[test]
    fn every_bad_order_field_is_named() {
        let data = json!({ "total": -1, "currency": "EURO",
                           "items": [{ "product_id": "p", "quantity": 0, "price": "9" }, 3] });
        assert_eq!(
            fields(order(data)),
            [
                "data.order_id",
                "data.total",
                "data.currency",
                "data.items[0].quantity",
                "data.items[0].price",
                "data.items[1]"
            ]
        );
        assert_eq!(
            fields(order(
                json!({ "order_id": "o", "total": 1, "currency": "EUR", "items": [] })
            )),
            ["data.items"]
        );
    }

    #[test]
    fn the_envelope_is_checked_too() {
        let draft = EventDraft {
            id: Some("nope".into()),
            customer_id: "x".into(),
            event_type: "order.exploded".into(),
            source: Some("x".repeat(101)),
            timestamp: Some("yesterday".into()),
            ..EventDraft::default()
        };
        assert_eq!(
            fields(draft),
            ["id", "customer_id", "type", "source", "timestamp"]
        );
    }

    #[test]
    fn up_to_24_hours_ahead_is_clock_skew_beyond_is_refused() {
        let at = |t: DateTime<Utc>| EventDraft {
            timestamp: Some(t.to_rfc3339()),
            ..order(valid_order())
        };
        assert!(CustomerEvent::validate(at(now() + MAX_FUTURE), now()).is_ok());
        let too_far = at(now() + MAX_FUTURE + Duration::seconds(1));
        assert_eq!(fields(too_far), ["timestamp"]);
    }

    #[test]
    fn platform_events_cannot_be_ingested() {
        let draft = EventDraft {
            event_type: "customer.created".into(),
            ..order(json!({}))
        };
        assert_eq!(fields(draft), ["type"]);
    }

    #[test]
    fn each_type_requires_its_fields() {
        let cases = [
            (
                "cart.abandoned",
                json!({}),
                vec!["data.cart_id", "data.cart_value", "data.items"],
            ),
            (
                "product.viewed",
                json!({ "category": 5 }),
                vec!["data.product_id", "data.category"],
            ),
            (
                "review.submitted",
                json!({ "product_id": "p", "rating": 6 }),
                vec!["data.rating"],
            ),
            (
                "support.ticket",
                json!({ "ticket_id": "t", "status": "lost" }),
                vec!["data.subject", "data.status"],
            ),
            (
                "newsletter.subscribed",
                json!({ "subscribed": "yes" }),
                vec!["data.subscribed"],
            ),
        ];
        for (event_type, data, expected) in cases {
            let draft = EventDraft {
                event_type: event_type.into(),
                ..order(data)
            };
            assert_eq!(fields(draft), expected, "{event_type}");
        }
        let ok = EventDraft {
            event_type: "newsletter.subscribed".into(),
            ..order(Value::Null)
        };
        assert!(CustomerEvent::validate(ok, now()).is_ok());
    }
}
