//! Request extractors whose failures are problem documents: malformed JSON or query is
//! a 400, a body of the wrong shape a 422 naming the field, an oversized body a 413.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, Uri, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The request body size limit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body (`application/json`, `application/merge-patch+json` or any `+json`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let content_type = content_type(request.headers()).to_owned();
        if !is_json(&content_type) {
            return Err(Error::UnsupportedMediaType(format!(
                "expected a JSON body (Content-Type: application/json), got {:?}",
                content_type
            )));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(e)
                        if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                    {
                        Error::PayloadTooLarge(MAX_BODY_BYTES)
                    }
                    other => Error::Malformed(other.body_text()),
                })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Query parameters; a query that does not parse is a 400.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned> QueryParams<T> {
    /// The query of `uri` as `T`: what the handler reads, and what the route's policies
    /// decide by (`crate::policy`). Percent-encoding is decoded; a repeated parameter
    /// that `T` holds once is a 400.
    pub fn from_uri(uri: &Uri) -> Result<Self, Error> {
        let Query(params) =
            Query::try_from_uri(uri).map_err(|e| Error::Malformed(e.body_text()))?;
        Ok(QueryParams(params))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Self::from_uri(&parts.uri)
    }
}

/// The request's Content-Type, empty when absent.
pub fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A media type without its parameters, lower-cased: `text/csv; charset=utf-8` → `text/csv`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A path id that must be a UUID; `what` names it in the 400 ("a customer id").
pub fn parse_uuid(raw: &str, what: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| Error::Malformed(format!("{raw:?} is not {what} (a UUID)")))
}

fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let malformed =
        |e: serde_json::Error| Error::Malformed(format!("the request body is not valid JSON: {e}"));
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return malformed(inner);
        }
        let (field, message) = field_error(&path, &inner.to_string(), "body");
        Error::field(&field, message, "the request body has invalid fields")
    })?;
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

/// serde reports a missing or unknown field at the parent's path; name the field itself.
/// An error of the whole value is reported under `root`.
pub(crate) fn field_error(path: &str, message: &str, root: &str) -> (String, String) {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let quoted = message.split('`').nth(1).map(str::to_owned);
    let join = |name: String| {
        if path == "." {
            name
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match quoted {
        Some(name) if message.starts_with("missing field") => (join(name), "is required".into()),
        Some(name) if message.starts_with("unknown field") => (
            join(name),
            "is not a field of this resource (or is read-only)".into(),
        ),
        _ if path == "." => (root.to_owned(), message),
        _ => (path.to_owned(), message),
    }
}

/// A customer id from a path.
pub(crate) fn parse_id(raw: &str) -> Result<crm_domain::CustomerId, Error> {
    raw.parse()
        .map_err(|_| Error::Malformed(format!("{raw:?} is not a customer id (a UUID)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::{CustomerDraft, CustomerPatch, FieldError};

    fn invalid_fields<T: DeserializeOwned>(json: &str) -> Vec<FieldError> {
        match parse_json::<T>(json.as_bytes()) {
            Err(Error::Invalid(_, fields)) => fields,
            Err(other) => panic!("expected invalid, got {other:?}"),
            Ok(_) => panic!("expected invalid, got a value"),
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let fields = invalid_fields::<CustomerDraft>(r#"{"first_name": "Ada"}"#);
        assert_eq!(fields[0].field, "email");
    }

    #[test]
    fn a_wrong_type_deep_inside_is_named_by_its_path() {
        let fields = invalid_fields::<CustomerDraft>(
            r#"{"email": "a@b.co", "addresses": [{"line1": "x", "city": "y", "country": 7}]}"#,
        );
        assert_eq!(fields[0].field, "addresses[0].country");
    }

    #[test]
    fn read_only_fields_are_refused_by_name() {
        let fields = invalid_fields::<CustomerPatch>(r#"{"segment": "vip"}"#);
        assert_eq!(fields[0].field, "segment");
    }

    #[test]
    fn broken_json_is_malformed() {
        assert!(matches!(
            parse_json::<CustomerDraft>(b"{\"email\": "),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<CustomerDraft>(br#"{"email": "a@b.co"} x"#),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/merge-patch+json; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
