//! The customer record, with the rules for creating, changing and deleting it.

use std::{fmt, str::FromStr};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    CountryCode, Currency, Email, Language, PersonName, Phone, Tag,
    customer_input::{AddressDraft, CustomerDraft, CustomerPatch, PreferencesPatch},
    tag::normalize_tags,
    validation::ValidationErrors,
};

/// A customer's id: a UUIDv7, so ids sort in creation order and make a stable cursor.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
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
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Address {
    pub kind: AddressKind,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    #[schema(value_type = String, example = "DE")]
    pub country: CountryCode,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preferences {
    #[schema(value_type = String, example = "en")]
    pub language: Language,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    pub newsletter: bool,
    pub sms_notifications: bool,
    #[schema(value_type = Vec<String>)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    #[schema(value_type = Option<String>, example = "+14155550123")]
    pub phone: Option<Phone>,
    #[schema(value_type = Option<String>)]
    pub first_name: Option<PersonName>,
    #[schema(value_type = Option<String>)]
    pub last_name: Option<PersonName>,
    pub status: CustomerStatus,
    pub segment: Segment,
    #[schema(value_type = Vec<String>)]
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

/// Blank optional text means "none": forms send "" for an empty field.
fn optional<T>(
    value: Option<&str>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some),
    }
}

fn parse_addresses(drafts: &[AddressDraft], errors: &mut ValidationErrors) -> Vec<Address> {
    if drafts.len() > MAX_ADDRESSES {
        errors.push(
            "addresses",
            format!("at most {MAX_ADDRESSES} addresses are allowed"),
        );
        return Vec::new();
    }
    let addresses: Vec<Address> = drafts
        .iter()
        .enumerate()
        .filter_map(|(i, draft)| draft.parse(&format!("addresses[{i}]"), errors))
        .collect();
    for kind in AddressKind::ALL {
        let defaults = addresses
            .iter()
            .filter(|a| a.kind == *kind && a.is_default)
            .count();
        if defaults > 1 {
            errors.push(
                "addresses",
                format!("only one default {kind} address is allowed"),
            );
        }
    }
    addresses
}

impl AddressDraft {
    fn parse(&self, path: &str, errors: &mut ValidationErrors) -> Option<Address> {
        let before = errors.0.len();
        let mut field = |name: &str, value: Option<&str>, max: usize, required: bool| {
            let result = text(value, max, required);
            errors.check(&format!("{path}.{name}"), result).flatten()
        };
        let line1 = field("line1", Some(&self.line1), 200, true);
        let line2 = field("line2", self.line2.as_deref(), 200, false);
        let city = field("city", Some(&self.city), 100, true);
        let region = field("region", self.region.as_deref(), 100, false);
        let postal_code = field("postal_code", self.postal_code.as_deref(), 20, false);
        let country = errors.check(
            &format!("{path}.country"),
            CountryCode::parse(&self.country),
        );
        if errors.0.len() > before {
            return None;
        }
        Some(Address {
            kind: self.kind.unwrap_or(AddressKind::Shipping),
            line1: line1?,
            line2,
            city: city?,
            region,
            postal_code,
            country: country?,
            is_default: self.is_default,
        })
    }
}

/// Trimmed free text of at most `max` characters, without control characters.
fn text(value: Option<&str>, max: usize, required: bool) -> Result<Option<String>, String> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return if required {
            Err("must not be empty".into())
        } else {
            Ok(None)
        };
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(value.to_owned()))
}

impl PreferencesPatch {
    fn apply_to(&self, mut current: Preferences, errors: &mut ValidationErrors) -> Preferences {
        let language = self.language.as_deref().map(Language::parse);
        update(
            errors,
            "preferences.language",
            &mut current.language,
            language,
        );
        let currency = self.currency.as_deref().map(Currency::parse);
        update(
            errors,
            "preferences.currency",
            &mut current.currency,
            currency,
        );
        let categories = self.categories.as_deref().map(normalize_tags);
        update(
            errors,
            "preferences.categories",
            &mut current.categories,
            categories,
        );
        if let Some(newsletter) = self.newsletter {
            current.newsletter = newsletter;
        }
        if let Some(sms) = self.sms_notifications {
            current.sms_notifications = sms;
        }
        current
    }
}

/// Sets `slot` to a requested value that parsed, or records why it did not.
fn update<T>(
    errors: &mut ValidationErrors,
    field: &str,
    slot: &mut T,
    requested: Option<Result<T, String>>,
) {
    if let Some(value) = requested.and_then(|parsed| errors.check(field, parsed)) {
        *slot = value;
    }
}

#[cfg(test)]
mod tests;
