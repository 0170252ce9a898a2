//! What clients send to create or change a customer: raw values, validated into a
//! [`Customer`](crate::Customer) by `Customer::create` and `Customer::patched`, which
//! report every bad field at once. The serde shapes double as the REST request bodies.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::{Address, AddressKind, CustomerStatus};

/// The body of `POST /api/customers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerDraft {
    #[schema(example = "katherine.johnson@example.com")]
    pub email: String,
    #[schema(example = "+14155550123")]
    pub phone: Option<String>,
    #[schema(example = "Katherine")]
    pub first_name: Option<String>,
    #[schema(example = "Johnson")]
    pub last_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<AddressDraft>,
    #[serde(default)]
    pub preferences: PreferencesPatch,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressDraft {
    /// `shipping` when absent.
    pub kind: Option<AddressKind>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "DE")]
    pub country: String,
    #[serde(default)]
    pub is_default: bool,
}

impl From<Address> for AddressDraft {
    fn from(a: Address) -> Self {
        Self {
            kind: Some(a.kind),
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country.into(),
            is_default: a.is_default,
        }
    }
}

/// Preferences to set; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    /// BCP 47 language tag.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(example = "en")]
    pub language: Option<String>,
    /// ISO 4217 currency code.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub newsletter: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub sms_notifications: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub categories: Option<Vec<String>>,
}

/// A JSON merge patch (RFC 7396) of a customer: absent fields stay, `null` clears the
/// optional ones (`phone`, names; `tags` and `addresses` become empty).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[serde(default, deserialize_with = "non_null")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    /// `active`, `inactive` or `blocked`; deleting is `DELETE`.
    #[serde(default, deserialize_with = "non_null")]
    pub status: Option<CustomerStatus>,
    #[serde(default, deserialize_with = "empty_if_null")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "empty_if_null")]
    pub addresses: Option<Vec<AddressDraft>>,
    #[serde(default, deserialize_with = "non_null")]
    pub preferences: Option<PreferencesPatch>,
}

/// Present-and-null becomes `Some(None)`, so a patch can clear a field.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Fields that cannot be cleared refuse `null` instead of silently ignoring it.
fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("must not be null")),
    }
}

fn empty_if_null<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(
        Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_tells_absent_from_null() {
        let patch: CustomerPatch =
            serde_json::from_str(r#"{"phone": null, "tags": null}"#).unwrap();
        assert_eq!(patch.phone, Some(None));
        assert_eq!(patch.first_name, None);
        assert_eq!(patch.tags, Some(vec![]));
    }

    #[test]
    fn null_is_refused_where_a_field_cannot_be_cleared() {
        let err = serde_json::from_str::<CustomerPatch>(r#"{"email": null}"#).unwrap_err();
        assert!(err.to_string().contains("must not be null"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CustomerDraft>(r#"{"email":"a@b.co","segment":"vip"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `segment`"));
    }
}
