//! What clients send to create or change a customer: raw values, validated into a
//! [`Customer`](crate::Customer) by `Customer::create` and `Customer::patched`, which
//! report every bad field at once (with the parsing helpers at the end of this file). The
//! serde shapes double as the REST request bodies.

use serde::{Deserialize, Deserializer};

use crate::{
    Address, AddressKind, CountryCode, Currency, CustomerStatus, Language, Preferences,
    customer::MAX_ADDRESSES, tag::normalize_tags, validation::ValidationErrors,
};

/// The body of `POST /api/customers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerDraft {
    #[cfg_attr(feature = "openapi", schema(example = "katherine.johnson@example.com"))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(example = "+14155550123"))]
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "Katherine"))]
    pub first_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "Johnson"))]
    pub last_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<AddressDraft>,
    #[serde(default)]
    pub preferences: PreferencesPatch,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(example = "DE"))]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    /// BCP 47 language tag.
    #[serde(default, deserialize_with = "non_null")]
    #[cfg_attr(feature = "openapi", schema(example = "en"))]
    pub language: Option<String>,
    /// ISO 4217 currency code.
    #[serde(default, deserialize_with = "non_null")]
    #[cfg_attr(feature = "openapi", schema(example = "EUR"))]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[serde(default, deserialize_with = "non_null")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
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

/// Blank optional text means "none": forms send "" for an empty field.
pub(crate) fn optional<T>(
    value: Option<&str>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some),
    }
}

pub(crate) fn parse_addresses(
    drafts: &[AddressDraft],
    errors: &mut ValidationErrors,
) -> Vec<Address> {
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
    pub(crate) fn apply_to(
        &self,
        mut current: Preferences,
        errors: &mut ValidationErrors,
    ) -> Preferences {
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
pub(crate) fn update<T>(
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
