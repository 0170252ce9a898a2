//! Merging a duplicate (the secondary) into the customer who stays (the primary), and
//! erasing a person (the right to be forgotten). Both are rules on snapshots; the store
//! moves the rows and runs them in one transaction.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{
    Address, Customer, CustomerEventType, CustomerMetrics, CustomerStatus, Email, Preferences,
    customer::{MAX_ADDRESSES, stored_precision},
    tag::MAX_TAGS,
    validation::ValidationErrors,
};

/// Why two customers cannot be merged.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeRefusal {
    /// Merging a customer into itself, or a result that breaks a limit (422).
    Invalid(ValidationErrors),
    /// One of them is merged away or deleted already (409).
    Conflict(String),
}

/// What the completed orders of both customers add up to, as the store counts them
/// after moving the secondary's orders to the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OrderTotals {
    pub orders: i64,
    pub spent: f64,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl Customer {
    /// Checks that `secondary` may be merged into `self`.
    pub fn check_merge(&self, secondary: &Customer) -> Result<(), MergeRefusal> {
        if self.id == secondary.id {
            let errors =
                ValidationErrors::single("secondary_id", "must not be the customer itself");
            return Err(MergeRefusal::Invalid(errors));
        }
        for (role, customer) in [("primary", self), ("secondary", secondary)] {
            if let Some(into) = customer.merged_into {
                let message = format!("the {role} {} was merged into {into}", customer.id);
                return Err(MergeRefusal::Conflict(message));
            }
            if customer.is_deleted() {
                let message = format!("the {role} {} is deleted", customer.id);
                return Err(MergeRefusal::Conflict(message));
            }
        }
        Ok(())
    }

    /// The primary after absorbing `secondary`, and the secondary after it: the
    /// primary keeps its id and non-empty fields, the secondary fills the blanks; tags,
    /// addresses and preferred categories are united without duplicates (the primary's
    /// first); metrics come from the orders of both (`totals`); the secondary becomes a
    /// deleted record that names the primary. Each is one version later.
    pub fn merged_with(
        &self,
        secondary: &Customer,
        totals: OrderTotals,
        now: DateTime<Utc>,
    ) -> Result<(Customer, Customer), MergeRefusal> {
        self.check_merge(secondary)?;
        let now = stored_precision(now);
        let mut errors = ValidationErrors::default();
        let tags = union(&self.tags, &secondary.tags);
        if tags.len() > MAX_TAGS {
            errors.push(
                "tags",
                format!("together they have more than {MAX_TAGS} tags"),
            );
        }
        let addresses = united_addresses(&self.addresses, &secondary.addresses);
        if addresses.len() > MAX_ADDRESSES {
            let message = format!("together they have more than {MAX_ADDRESSES} addresses");
            errors.push("addresses", message);
        }
        let categories = union(
            &self.preferences.categories,
            &secondary.preferences.categories,
        );
        if categories.len() > MAX_TAGS {
            let message = format!("together they have more than {MAX_TAGS} preferred categories");
            errors.push("preferences.categories", message);
        }
        if !errors.is_empty() {
            return Err(MergeRefusal::Invalid(errors));
        }
        let primary = Customer {
            phone: self.phone.clone().or_else(|| secondary.phone.clone()),
            first_name: self
                .first_name
                .clone()
                .or_else(|| secondary.first_name.clone()),
            last_name: self
                .last_name
                .clone()
                .or_else(|| secondary.last_name.clone()),
            tags,
            addresses,
            preferences: Preferences {
                categories,
                ..self.preferences.clone()
            },
            metrics: CustomerMetrics {
                total_orders: totals.orders,
                total_spent: totals.spent,
                average_order: if totals.orders > 0 {
                    totals.spent / totals.orders as f64
                } else {
                    0.0
                },
                first_order_date: totals.first.map(stored_precision),
                last_order_date: totals.last.map(stored_precision),
                lifetime_value: totals.spent,
                nps: self.metrics.nps.or(secondary.metrics.nps),
            },
            created_at: self.created_at.min(secondary.created_at),
            last_activity_at: self.last_activity_at.max(secondary.last_activity_at),
            version: self.version + 1,
            updated_at: now,
            ..self.clone()
        };
        let merged_away = Customer {
            status: CustomerStatus::Deleted,
            merged_into: Some(self.id),
            version: secondary.version + 1,
            updated_at: now,
            ..secondary.clone()
        };
        Ok((primary, merged_away))
    }

    /// The tombstone left when the person is erased: the id, the dates and the order
    /// metrics stay (they are not personal once nothing links them to a person); every
    /// personal field is emptied and the e-mail becomes a placeholder no one owns.
    pub fn erased(&self, now: DateTime<Utc>) -> Customer {
        let now = stored_precision(now);
        Customer {
            email: Email::parse(&format!(
                "erased-{}@erased.invalid",
                self.id.as_uuid().simple()
            ))
            .expect("the placeholder is a valid address"),
            phone: None,
            first_name: None,
            last_name: None,
            status: CustomerStatus::Deleted,
            tags: Vec::new(),
            addresses: Vec::new(),
            preferences: Preferences::default(),
            metrics: CustomerMetrics {
                nps: None,
                ..self.metrics.clone()
            },
            version: self.version + 1,
            updated_at: now,
            erased_at: Some(now),
            ..self.clone()
        }
    }

    pub fn is_erased(&self) -> bool {
        self.erased_at.is_some()
    }
}

/// `first` then what `second` adds, without duplicates.
fn union<T: Clone + PartialEq>(first: &[T], second: &[T]) -> Vec<T> {
    let mut all = first.to_vec();
    for item in second {
        if !all.contains(item) {
            all.push(item.clone());
        }
    }
    all
}

/// The primary's addresses, then the secondary's it lacks (the same place is the same
/// address, default or not); the primary's defaults stay the only defaults of their kind.
fn united_addresses(primary: &[Address], secondary: &[Address]) -> Vec<Address> {
    let mut all = primary.to_vec();
    for address in secondary {
        if all.iter().any(|a| same_place(a, address)) {
            continue;
        }
        let default_taken = all.iter().any(|a| a.kind == address.kind && a.is_default);
        all.push(Address {
            is_default: address.is_default && !default_taken,
            ..address.clone()
        });
    }
    all
}

pub(crate) fn same_place(a: &Address, b: &Address) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let postal = |a: &Address| a.postal_code.as_deref().map(norm);
    a.kind == b.kind
        && norm(&a.line1) == norm(&b.line1)
        && a.line2.as_deref().map(norm) == b.line2.as_deref().map(norm)
        && norm(&a.city) == norm(&b.city)
        && postal(a) == postal(b)
        && a.country == b.country
}

/// The data of an erased person's event: only what identifies the order, ticket or
/// product and the amounts stay; every other field (free text such as a ticket's
/// subject, a review, a search query, a URL) is wiped.
pub fn erased_event_data(event_type: CustomerEventType, data: &Value) -> Value {
    use CustomerEventType as T;
    let kept: &[&str] = match event_type {
        T::OrderPlaced | T::OrderCompleted => &["order_id", "total", "currency", "items"],
        T::ProductViewed => &["product_id", "category"],
        T::CartAbandoned => &["cart_id", "cart_value", "items"],
        T::SupportTicket => &["ticket_id", "status"],
        T::ReviewSubmitted => &["product_id", "rating"],
        T::CustomerSegmentChanged => &["old_segment", "new_segment", "reason"],
        _ => &[],
    };
    let mut erased = Map::new();
    for key in kept {
        if let Some(value) = data.get(*key) {
            erased.insert((*key).to_owned(), scrub(value));
        }
    }
    erased.insert("erased".into(), Value::Bool(true));
    Value::Object(erased)
}

/// Items keep their product ids, quantities and prices, nothing else.
fn scrub(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(scrub).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "product_id" | "quantity" | "price"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::{AddressDraft, AddressKind, CustomerDraft, CustomerId, PreferencesPatch};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
    }

    fn address(line1: &str, is_default: bool) -> AddressDraft {
        AddressDraft {
            kind: Some(AddressKind::Shipping),
            line1: line1.into(),
            city: "Berlin".into(),
            country: "DE".into(),
            is_default,
            ..Default::default()
        }
    }

    fn customer(draft: CustomerDraft, day: u32) -> Customer {
        Customer::create(CustomerId::generate(), draft, at(day)).unwrap()
    }

    #[test]
    fn the_primary_keeps_its_fields_and_the_secondary_fills_the_blanks() {
        let primary = customer(
            CustomerDraft {
                email: "ada@example.com".into(),
                first_name: Some("Ada".into()),
                tags: vec!["vip".into(), "b2b".into()],
                addresses: vec![address("Main St 1", true)],
                preferences: PreferencesPatch {
                    categories: Some(vec!["books".into()]),
                    ..Default::default()
                },
                ..Default::default()
            },
            10,
        );
        let secondary = customer(
            CustomerDraft {
                email: "ada.l@example.com".into(),
                phone: Some("+14155550123".into()),
                first_name: Some("Adelaide".into()),
                last_name: Some("Lovelace".into()),
                tags: vec!["B2B".into(), "newsletter".into()],
                addresses: vec![address("main st  1", false), address("Side St 2", true)],
                preferences: PreferencesPatch {
                    categories: Some(vec!["books".into(), "games".into()]),
                    ..Default::default()
                },
            },
            3,
        );
        let totals = OrderTotals {
            orders: 3,
            spent: 90.0,
            first: Some(at(4)),
            last: Some(at(11)),
        };
        let (merged, away) = primary.merged_with(&secondary, totals, at(12)).unwrap();
        assert_eq!(merged.id, primary.id);
        assert_eq!(merged.email, primary.email);
        assert_eq!(merged.first_name.unwrap().as_str(), "Ada");
        assert_eq!(merged.last_name.unwrap().as_str(), "Lovelace");
        assert_eq!(merged.phone, secondary.phone);
        let tags: Vec<&str> = merged.tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, ["vip", "b2b", "newsletter"]);
        let lines: Vec<(&str, bool)> = merged
            .addresses
            .iter()
            .map(|a| (a.line1.as_str(), a.is_default))
            .collect();
        assert_eq!(lines, [("Main St 1", true), ("Side St 2", false)]);
        let categories: Vec<&str> = merged
            .preferences
            .categories
            .iter()
            .map(|t| t.as_str())
            .collect();
        assert_eq!(categories, ["books", "games"]);
        assert_eq!(merged.metrics.total_orders, 3);
        assert_eq!(merged.metrics.average_order, 30.0);
        assert_eq!(
            merged.created_at, secondary.created_at,
            "customer since the earlier"
        );
        assert_eq!(merged.version, primary.version + 1);
        assert_eq!(away.status, CustomerStatus::Deleted);
        assert_eq!(away.merged_into, Some(primary.id));
        assert_eq!(away.version, secondary.version + 1);
    }

    #[test]
    fn merging_itself_merged_or_deleted_customers_is_refused() {
        let a = customer(
            CustomerDraft {
                email: "a@example.com".into(),
                ..Default::default()
            },
            1,
        );
        let b = customer(
            CustomerDraft {
                email: "b@example.com".into(),
                ..Default::default()
            },
            1,
        );
        assert!(matches!(a.check_merge(&a), Err(MergeRefusal::Invalid(_))));
        let (_, away) = a.merged_with(&b, OrderTotals::default(), at(2)).unwrap();
        assert!(matches!(
            a.check_merge(&away),
            Err(MergeRefusal::Conflict(_))
        ));
        assert!(matches!(
            away.check_merge(&a),
            Err(MergeRefusal::Conflict(_))
        ));
        let deleted = b.deleted(at(3));
        assert!(matches!(
            a.check_merge(&deleted),
            Err(MergeRefusal::Conflict(_))
        ));
    }

    #[test]
    fn too_many_tags_together_refuse_the_merge() {
        let tags = |prefix: &str| (0..30).map(|i| format!("{prefix}{i}")).collect();
        let a = customer(
            CustomerDraft {
                email: "a@example.com".into(),
                tags: tags("a"),
                ..Default::default()
            },
            1,
        );
        let b = customer(
            CustomerDraft {
                email: "b@example.com".into(),
                tags: tags("b"),
                ..Default::default()
            },
            1,
        );
        let refused = a.merged_with(&b, OrderTotals::default(), at(2));
        assert!(matches!(refused, Err(MergeRefusal::Invalid(e)) if e.0[0].field == "tags"));
    }

    #[test]
    fn an_erased_customer_keeps_nothing_personal() {
        let person = customer(
            CustomerDraft {
                email: "grace@example.com".into(),
                phone: Some("+14155550123".into()),
                first_name: Some("Grace".into()),
                last_name: Some("Hopper".into()),
                tags: vec!["navy".into()],
                addresses: vec![address("Main St 1", true)],
                ..Default::default()
            },
            1,
        );
        let erased = person.erased(at(2));
        let text = serde_json::to_string(&erased).unwrap();
        for personal in ["grace", "Hopper", "5550123", "navy", "Main St"] {
            assert!(!text.contains(personal), "{personal} survived: {text}");
        }
        assert!(erased.is_erased() && erased.is_deleted());
        assert_eq!(erased.id, person.id);
        assert_eq!(erased.version, person.version + 1);
    }

    #[test]
    fn erased_event_data_keeps_ids_and_amounts_only() {
        let order = json!({
            "order_id": "o-1", "total": 12.5, "currency": "EUR", "note": "leave at door",
            "items": [{"product_id": "p-1", "quantity": 1, "price": 12.5, "gift_message": "hi"}],
        });
        let erased = erased_event_data(CustomerEventType::OrderCompleted, &order);
        assert_eq!(
            erased,
            json!({
                "order_id": "o-1", "total": 12.5, "currency": "EUR", "erased": true,
                "items": [{"product_id": "p-1", "quantity": 1, "price": 12.5}],
            })
        );
        let ticket = json!({"ticket_id": "t-1", "subject": "my address is ...", "status": "open"});
        assert_eq!(
            erased_event_data(CustomerEventType::SupportTicket, &ticket),
            json!({"ticket_id": "t-1", "status": "open", "erased": true})
        );
        let subscribed = json!({"email": "grace@example.com"});
        assert_eq!(
            erased_event_data(CustomerEventType::NewsletterSubscribed, &subscribed),
            json!({"erased": true})
        );
    }
}
