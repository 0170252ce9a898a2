//! Conversions between prost messages and domain types. Inputs (drafts, patches) convert
//! losslessly both ways; a stored `Customer` coming back from the wire is re-parsed, and a
//! value that does not parse is a bug on the sending side, reported as an error string.

use chrono::{DateTime, Utc};
use crm_domain as domain;
use prost_types::Timestamp;

mod activity;
mod job;

pub use activity::{order_to_proto, ticket_to_proto};

use crate::v1;

pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

pub fn datetime(at: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

fn required_datetime(at: Option<&Timestamp>, field: &str) -> Result<DateTime<Utc>, String> {
    datetime(at).ok_or_else(|| format!("{field} is missing"))
}

pub fn status_to_proto(status: domain::CustomerStatus) -> v1::CustomerStatus {
    use domain::CustomerStatus as S;
    match status {
        S::Active => v1::CustomerStatus::Active,
        S::Inactive => v1::CustomerStatus::Inactive,
        S::Blocked => v1::CustomerStatus::Blocked,
        S::Deleted => v1::CustomerStatus::Deleted,
    }
}

pub fn status_from_proto(status: i32) -> Option<domain::CustomerStatus> {
    use domain::CustomerStatus as S;
    match v1::CustomerStatus::try_from(status).ok()? {
        v1::CustomerStatus::Unspecified => None,
        v1::CustomerStatus::Active => Some(S::Active),
        v1::CustomerStatus::Inactive => Some(S::Inactive),
        v1::CustomerStatus::Blocked => Some(S::Blocked),
        v1::CustomerStatus::Deleted => Some(S::Deleted),
    }
}

pub fn segment_to_proto(segment: domain::Segment) -> v1::Segment {
    use domain::Segment as S;
    match segment {
        S::New => v1::Segment::New,
        S::Regular => v1::Segment::Regular,
        S::Vip => v1::Segment::Vip,
        S::Churned => v1::Segment::Churned,
        S::AtRisk => v1::Segment::AtRisk,
    }
}

pub fn segment_from_proto(segment: i32) -> Option<domain::Segment> {
    use domain::Segment as S;
    match v1::Segment::try_from(segment).ok()? {
        v1::Segment::Unspecified => None,
        v1::Segment::New => Some(S::New),
        v1::Segment::Regular => Some(S::Regular),
        v1::Segment::Vip => Some(S::Vip),
        v1::Segment::Churned => Some(S::Churned),
        v1::Segment::AtRisk => Some(S::AtRisk),
    }
}

fn kind_to_proto(kind: Option<domain::AddressKind>) -> i32 {
    (match kind {
        None => v1::AddressKind::Unspecified,
        Some(domain::AddressKind::Shipping) => v1::AddressKind::Shipping,
        Some(domain::AddressKind::Billing) => v1::AddressKind::Billing,
    }) as i32
}

fn kind_from_proto(kind: i32) -> Option<domain::AddressKind> {
    match v1::AddressKind::try_from(kind).ok()? {
        v1::AddressKind::Unspecified => None,
        v1::AddressKind::Shipping => Some(domain::AddressKind::Shipping),
        v1::AddressKind::Billing => Some(domain::AddressKind::Billing),
    }
}

impl From<domain::AddressDraft> for v1::Address {
    fn from(a: domain::AddressDraft) -> Self {
        Self {
            kind: kind_to_proto(a.kind),
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
            is_default: a.is_default,
        }
    }
}

impl From<v1::Address> for domain::AddressDraft {
    fn from(a: v1::Address) -> Self {
        Self {
            kind: kind_from_proto(a.kind),
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
            is_default: a.is_default,
        }
    }
}

impl From<domain::PreferencesPatch> for v1::PreferencesPatch {
    fn from(p: domain::PreferencesPatch) -> Self {
        Self {
            language: p.language,
            currency: p.currency,
            newsletter: p.newsletter,
            sms_notifications: p.sms_notifications,
            categories: p.categories.map(|values| v1::StringList { values }),
        }
    }
}

impl From<v1::PreferencesPatch> for domain::PreferencesPatch {
    fn from(p: v1::PreferencesPatch) -> Self {
        Self {
            language: p.language,
            currency: p.currency,
            newsletter: p.newsletter,
            sms_notifications: p.sms_notifications,
            categories: p.categories.map(|list| list.values),
        }
    }
}

impl From<domain::CustomerDraft> for v1::CustomerInput {
    fn from(d: domain::CustomerDraft) -> Self {
        Self {
            email: d.email,
            phone: d.phone,
            first_name: d.first_name,
            last_name: d.last_name,
            tags: d.tags,
            addresses: d.addresses.into_iter().map(Into::into).collect(),
            preferences: Some(d.preferences.into()),
        }
    }
}

impl From<v1::CustomerInput> for domain::CustomerDraft {
    fn from(d: v1::CustomerInput) -> Self {
        Self {
            email: d.email,
            phone: d.phone,
            first_name: d.first_name,
            last_name: d.last_name,
            tags: d.tags,
            addresses: d.addresses.into_iter().map(Into::into).collect(),
            preferences: d.preferences.map(Into::into).unwrap_or_default(),
        }
    }
}

/// Names in `CustomerPatch.clear`.
const CLEARABLE: [&str; 3] = ["phone", "first_name", "last_name"];

impl From<domain::CustomerPatch> for v1::CustomerPatch {
    fn from(p: domain::CustomerPatch) -> Self {
        let mut clear = Vec::new();
        let mut set = |name: &str, value: Option<Option<String>>| match value {
            Some(None) => {
                clear.push(name.to_owned());
                None
            }
            other => other.flatten(),
        };
        let phone = set(CLEARABLE[0], p.phone);
        let first_name = set(CLEARABLE[1], p.first_name);
        let last_name = set(CLEARABLE[2], p.last_name);
        Self {
            email: p.email,
            phone,
            first_name,
            last_name,
            status: p.status.map(|s| status_to_proto(s) as i32),
            tags: p.tags.map(|values| v1::StringList { values }),
            addresses: p.addresses.map(|list| v1::AddressList {
                values: list.into_iter().map(Into::into).collect(),
            }),
            preferences: p.preferences.map(Into::into),
            clear,
        }
    }
}

impl TryFrom<v1::CustomerPatch> for domain::CustomerPatch {
    type Error = domain::ValidationErrors;

    fn try_from(p: v1::CustomerPatch) -> Result<Self, Self::Error> {
        let mut errors = domain::ValidationErrors::default();
        for name in &p.clear {
            if !CLEARABLE.contains(&name.as_str()) {
                errors.push("clear", format!("{name} cannot be cleared"));
            }
        }
        let field = |name: &str, value: Option<String>| {
            if p.clear.iter().any(|c| c == name) {
                Some(None)
            } else {
                value.map(Some)
            }
        };
        let status = match p.status {
            None => None,
            Some(raw) => {
                let status = status_from_proto(raw);
                if status.is_none() {
                    errors.push("status", "must be a known customer status");
                }
                status
            }
        };
        let patch = Self {
            email: p.email,
            phone: field("phone", p.phone.clone()),
            first_name: field("first_name", p.first_name.clone()),
            last_name: field("last_name", p.last_name.clone()),
            status,
            tags: p.tags.map(|list| list.values),
            addresses: p
                .addresses
                .map(|list| list.values.into_iter().map(Into::into).collect()),
            preferences: p.preferences.map(Into::into),
        };
        errors.finish(|| patch)
    }
}

impl From<domain::Customer> for v1::Customer {
    fn from(c: domain::Customer) -> Self {
        Self {
            id: c.id.to_string(),
            email: c.email.into(),
            phone: c.phone.map(Into::into),
            first_name: c.first_name.map(Into::into),
            last_name: c.last_name.map(Into::into),
            status: status_to_proto(c.status) as i32,
            segment: segment_to_proto(c.segment) as i32,
            tags: c.tags.into_iter().map(Into::into).collect(),
            addresses: c
                .addresses
                .into_iter()
                .map(|a| domain::AddressDraft::from(a).into())
                .collect(),
            preferences: Some(v1::Preferences {
                language: c.preferences.language.into(),
                currency: c.preferences.currency.into(),
                newsletter: c.preferences.newsletter,
                sms_notifications: c.preferences.sms_notifications,
                categories: c
                    .preferences
                    .categories
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            }),
            metrics: Some(v1::CustomerMetrics {
                total_orders: c.metrics.total_orders,
                total_spent: c.metrics.total_spent,
                average_order: c.metrics.average_order,
                first_order_date: c.metrics.first_order_date.map(timestamp),
                last_order_date: c.metrics.last_order_date.map(timestamp),
                lifetime_value: c.metrics.lifetime_value,
                nps: c.metrics.nps,
            }),
            version: c.version,
            created_at: Some(timestamp(c.created_at)),
            updated_at: Some(timestamp(c.updated_at)),
            last_activity_at: Some(timestamp(c.last_activity_at)),
            merged_into: c.merged_into.map(|id| id.to_string()),
            erased_at: c.erased_at.map(timestamp),
        }
    }
}

impl TryFrom<v1::Customer> for domain::Customer {
    type Error = String;

    fn try_from(c: v1::Customer) -> Result<Self, String> {
        let prefs = c.preferences.unwrap_or_default();
        let metrics = c.metrics.unwrap_or_default();
        let addresses = c
            .addresses
            .into_iter()
            .map(|a| {
                Ok(domain::Address {
                    kind: kind_from_proto(a.kind).unwrap_or(domain::AddressKind::Shipping),
                    line1: a.line1,
                    line2: a.line2,
                    city: a.city,
                    region: a.region,
                    postal_code: a.postal_code,
                    country: domain::CountryCode::parse(&a.country)?,
                    is_default: a.is_default,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            id: c.id.parse()?,
            email: domain::Email::parse(&c.email)?,
            phone: c.phone.as_deref().map(domain::Phone::parse).transpose()?,
            first_name: c
                .first_name
                .as_deref()
                .map(domain::PersonName::parse)
                .transpose()?,
            last_name: c
                .last_name
                .as_deref()
                .map(domain::PersonName::parse)
                .transpose()?,
            status: status_from_proto(c.status).ok_or("status is missing")?,
            segment: segment_from_proto(c.segment).ok_or("segment is missing")?,
            tags: c
                .tags
                .iter()
                .map(|t| domain::Tag::parse(t))
                .collect::<Result<_, _>>()?,
            addresses,
            preferences: domain::Preferences {
                language: domain::Language::parse(&prefs.language)?,
                currency: domain::Currency::parse(&prefs.currency)?,
                newsletter: prefs.newsletter,
                sms_notifications: prefs.sms_notifications,
                categories: prefs
                    .categories
                    .iter()
                    .map(|t| domain::Tag::parse(t))
                    .collect::<Result<_, _>>()?,
            },
            metrics: domain::CustomerMetrics {
                total_orders: metrics.total_orders,
                total_spent: metrics.total_spent,
                average_order: metrics.average_order,
                first_order_date: datetime(metrics.first_order_date.as_ref()),
                last_order_date: datetime(metrics.last_order_date.as_ref()),
                lifetime_value: metrics.lifetime_value,
                nps: metrics.nps,
            },
            version: c.version,
            created_at: required_datetime(c.created_at.as_ref(), "created_at")?,
            updated_at: required_datetime(c.updated_at.as_ref(), "updated_at")?,
            last_activity_at: required_datetime(c.last_activity_at.as_ref(), "last_activity_at")?,
            merged_into: c.merged_into.as_deref().map(str::parse).transpose()?,
            erased_at: datetime(c.erased_at.as_ref()),
        })
    }
}

#[cfg(test)]
mod tests;
