//! The customer record, with the rules for creating, changing and deleting it.

use std::{fmt, str::FromStr};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    CountryCode, Currency, Email, Language, PersonName, Phone, Tag,
    customer_input::{CustomerDraft, CustomerPatch, optional, parse_addresses, update},
    tag::normalize_tags,
    validation::ValidationErrors,
};

/// A customer's id: a UUIDv7, so ids sort in creation order and make a stable cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct CustomerId(Uuid);

impl CustomerId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for CustomerId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl FromStr for CustomerId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| "must be a UUID".to_owned())
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Defines a string-valued enum with its wire names, `as_str`, `FromStr` and `ALL`.
macro_rules! wire_enum {
    // `$wire` is a `tt`, not a `literal`: a `literal` fragment reaches derive macros
    // wrapped in a group that utoipa does not look into, and the API document then showed
    // the variant names instead of the wire names.
    ($(#[$meta:meta])* $name:ident, $expected:literal { $($variant:ident = $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// Each variant's wire name, as serde writes it (checked by a test).
            #[cfg(test)]
            pub(crate) fn wire_names_match_serde() {
                $(assert_eq!(
                    serde_json::to_value($name::$variant).unwrap(),
                    serde_json::json!($wire)
                );)+
            }

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(format!("must be one of {}", $expected)),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// Lifecycle of a customer record; `deleted` is a soft delete.
    CustomerStatus, "active, inactive, blocked, deleted" {
        Active = "active",
        Inactive = "inactive",
        Blocked = "blocked",
        Deleted = "deleted",
    }
);

wire_enum!(
    /// The rule segment (computed by segmentation, never set by clients).
    Segment, "new, regular, vip, churned, at_risk" {
        New = "new",
        Regular = "regular",
        Vip = "vip",
        Churned = "churned",
        AtRisk = "at_risk",
    }
);

wire_enum!(
    AddressKind, "shipping, billing" {
        Shipping = "shipping",
        Billing = "billing",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Address {
    pub kind: AddressKind,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "DE"))]
    pub country: CountryCode,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preferences {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "en"))]
    pub language: Language,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    pub newsletter: bool,
    pub sms_notifications: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub categories: Vec<Tag>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            language: Language::parse(Self::DEFAULT_LANGUAGE).expect("default language is valid"),
            currency: Currency::parse(Self::DEFAULT_CURRENCY).expect("default currency is valid"),
            newsletter: false,
            sms_notifications: false,
            categories: Vec::new(),
        }
    }
}

impl Preferences {
    pub const DEFAULT_LANGUAGE: &str = "en";
    pub const DEFAULT_CURRENCY: &str = "EUR";
}

/// Order metrics, maintained from order events. Dates are absent until the first order
/// (a zero date would make never-ordered customers look ancient).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerMetrics {
    pub total_orders: i64,
    pub total_spent: f64,
    pub average_order: f64,
    pub first_order_date: Option<DateTime<Utc>>,
    pub last_order_date: Option<DateTime<Utc>>,
    pub lifetime_value: f64,
    /// Net promoter score answer, 0-10, when the customer gave one.
    pub nps: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub id: CustomerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Email))]
    pub email: Email,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "+14155550123"))]
    pub phone: Option<Phone>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub first_name: Option<PersonName>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_name: Option<PersonName>,
    pub status: CustomerStatus,
    pub segment: Segment,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub tags: Vec<Tag>,
    pub addresses: Vec<Address>,
    pub preferences: Preferences,
    pub metrics: CustomerMetrics,
    /// Grows by one with every change; the `ETag` of the REST API.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// Set when this customer was merged into another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<CustomerId>,
    /// Set when the person was erased: this is a tombstone without personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
}

impl CustomerMetrics {
    /// The metrics after a completed order of `total` at `at`; lifetime value is what the customer has spent so far.
    pub fn with_completed_order(&self, total: f64, at: DateTime<Utc>) -> Self {
        let total_orders = self.total_orders + 1;
        let total_spent = self.total_spent + total;
        Self {
            total_orders,
            total_spent,
            average_order: total_spent / total_orders as f64,
            first_order_date: Some(self.first_order_date.map_or(at, |first| first.min(at))),
            last_order_date: Some(self.last_order_date.map_or(at, |last| last.max(at))),
            lifetime_value: total_spent,
            nps: self.nps,
        }
    }
}

/// At most this many addresses per customer.
pub const MAX_ADDRESSES: usize = 20;

impl Customer {
    /// A new active customer in segment `new`, version 1.
    pub fn create(
        id: CustomerId,
        draft: CustomerDraft,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let now = stored_precision(now);
        let mut errors = ValidationErrors::default();
        let email = errors.check("email", Email::parse(&draft.email));
        let phone = errors.check("phone", optional(draft.phone.as_deref(), Phone::parse));
        let first_name = errors.check(
            "first_name",
            optional(draft.first_name.as_deref(), PersonName::parse),
        );
        let last_name = errors.check(
            "last_name",
            optional(draft.last_name.as_deref(), PersonName::parse),
        );
        let tags = errors.check("tags", normalize_tags(&draft.tags));
        let addresses = parse_addresses(&draft.addresses, &mut errors);
        let preferences = draft
            .preferences
            .apply_to(Preferences::default(), &mut errors);
        let (Some(email), Some(phone), Some(first_name), Some(last_name), Some(tags)) =
            (email, phone, first_name, last_name, tags)
        else {
            return Err(errors);
        };
        errors.finish(|| Self {
            id,
            email,
            phone,
            first_name,
            last_name,
            status: CustomerStatus::Active,
            segment: Segment::New,
            tags,
            addresses,
            preferences,
            metrics: CustomerMetrics::default(),
            version: 1,
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            merged_into: None,
            erased_at: None,
        })
    }

    /// The customer after `patch`, one version later; unchanged (same version) when the
    /// patch changes nothing, so a repeated PATCH is not a new write.
    pub fn patched(
        &self,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut next = self.clone();
        let e = &mut errors;
        update(
            e,
            "email",
            &mut next.email,
            patch.email.as_deref().map(Email::parse),
        );
        let phone = patch
            .phone
            .as_ref()
            .map(|p| optional(p.as_deref(), Phone::parse));
        update(e, "phone", &mut next.phone, phone);
        let first = patch
            .first_name
            .as_ref()
            .map(|n| optional(n.as_deref(), PersonName::parse));
        update(e, "first_name", &mut next.first_name, first);
        let last = patch
            .last_name
            .as_ref()
            .map(|n| optional(n.as_deref(), PersonName::parse));
        update(e, "last_name", &mut next.last_name, last);
        let status = patch.status.map(|status| match status {
            CustomerStatus::Deleted => Err("use DELETE to delete a customer".to_owned()),
            other => Ok(other),
        });
        update(e, "status", &mut next.status, status);
        update(
            e,
            "tags",
            &mut next.tags,
            patch.tags.as_deref().map(normalize_tags),
        );
        if let Some(addresses) = &patch.addresses {
            next.addresses = parse_addresses(addresses, e);
        }
        if let Some(preferences) = &patch.preferences {
            next.preferences = preferences.apply_to(next.preferences, e);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if next == *self {
            return Ok(next);
        }
        next.version += 1;
        next.updated_at = stored_precision(now);
        Ok(next)
    }

    /// The soft-deleted customer: still readable by id, one version later.
    pub fn deleted(&self, now: DateTime<Utc>) -> Self {
        Self {
            status: CustomerStatus::Deleted,
            version: self.version + 1,
            updated_at: stored_precision(now),
            ..self.clone()
        }
    }

    /// The customer after an event of its activity: `last_activity_at` moves forward
    /// (never back, events arrive out of order), a completed order updates the metrics,
    /// and the version grows when anything changed.
    pub fn after_activity(
        &self,
        at: DateTime<Utc>,
        completed_order_total: Option<f64>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut next = self.clone();
        next.last_activity_at = self.last_activity_at.max(stored_precision(at));
        if let Some(total) = completed_order_total {
            next.metrics = self
                .metrics
                .with_completed_order(total, stored_precision(at));
        }
        if next != *self {
            next.version += 1;
            next.updated_at = stored_precision(now);
        }
        next
    }

    /// The customer in `segment`, one version later (segments are computed by the
    /// segmentation service, never patched by clients).
    pub fn with_segment(&self, segment: Segment, now: DateTime<Utc>) -> Self {
        Self {
            segment,
            version: self.version + 1,
            updated_at: stored_precision(now),
            ..self.clone()
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.status == CustomerStatus::Deleted
    }

    /// First and last name joined, as the search index's `full_name`.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(PersonName::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Timestamps keep microseconds, as PostgreSQL does, so a customer read back equals
/// the one written.
pub fn stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

#[cfg(test)]
mod tests;
