//! Every gateway error, and its one mapping to an RFC 9457 `application/problem+json`
//! answer. gRPC statuses from the services map through the shared error-kind table.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use crm_domain::FieldError;
use crm_proto::status::{ErrorKind, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String, Vec<FieldError>),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("no such resource")]
    RouteNotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// No credential, or one that is not valid: never says which.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("the credential does not allow this request")]
    Forbidden,
    /// An open (credential-less) API was asked for by a host name that is not loopback.
    #[error("this server answers only requests for localhost or a loopback address")]
    MisdirectedHost,
    #[error("too many requests; retry after {} s", retry_after_secs(.0))]
    RateLimited(std::time::Duration),
    #[error("the gateway is at capacity; retry shortly")]
    Overloaded,
    #[error("{}", .0.message)]
    Service(ServiceError),
}

impl Error {
    /// A 422 naming one field.
    pub fn field(field: &str, message: impl Into<String>, detail: &str) -> Self {
        let error = FieldError {
            field: field.into(),
            message: message.into(),
        };
        Error::Invalid(detail.into(), vec![error])
    }

    /// A 500: a service answered something the gateway cannot read (a bug there).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Service(ServiceError::new(ErrorKind::Internal, message))
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Service(ServiceError::from(&status))
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type, one of `/problems/` + malformed-request,
    /// validation-failed, payload-too-large, unsupported-media-type, not-found,
    /// method-not-allowed, conflict, precondition-failed, unauthenticated, forbidden, misdirected-request,
    /// rate-limited, overloaded, not-implemented, service-unavailable, internal-error.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation-failed")]
    pub problem_type: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: String,
    /// The invalid fields (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request's `X-Request-Id`, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Error {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        let kind = match self {
            Error::Malformed(_) => ErrorKind::Malformed,
            Error::Invalid(..) => ErrorKind::Invalid,
            Error::RouteNotFound => ErrorKind::NotFound,
            Error::Unauthenticated => ErrorKind::Unauthenticated,
            Error::Forbidden => ErrorKind::Forbidden,
            Error::Service(e) => e.kind,
            // Only HTTP has these.
            Error::PayloadTooLarge(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
            }
            Error::UnsupportedMediaType(_) => {
                return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
            }
            Error::MethodNotAllowed => {
                return (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
            }
            Error::MisdirectedHost => {
                return (StatusCode::MISDIRECTED_REQUEST, "misdirected-request");
            }
            Error::RateLimited(_) => return (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            Error::Overloaded => return (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        };
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, kind.problem_type())
    }

    pub fn into_problem(self) -> (StatusCode, Problem) {
        let (status, slug) = self.status_and_type();
        let (detail, errors) = match self {
            Error::Invalid(detail, errors) => (detail, errors),
            Error::Service(e) if status.is_server_error() => {
                tracing::error!(kind = ?e.kind, message = %e.message, "service call failed");
                let detail = match e.kind {
                    ErrorKind::Unimplemented => "this feature is not available yet".into(),
                    _ => "a service behind the gateway is unavailable, try again later".into(),
                };
                (detail, Vec::new())
            }
            Error::Service(e) => (e.message, e.fields),
            other => (other.to_string(), Vec::new()),
        };
        let problem = Problem {
            problem_type: format!("/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            request_id: crate::request_id::current_request_id(),
        };
        (status, problem)
    }
}

/// Whole seconds, at least 1, as `Retry-After` says them.
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let extra = match &self {
            Error::Unauthenticated => Some((header::WWW_AUTHENTICATE, "Bearer".to_owned())),
            Error::RateLimited(wait) => {
                Some((header::RETRY_AFTER, retry_after_secs(wait).to_string()))
            }
            Error::Overloaded => Some((header::RETRY_AFTER, "1".to_owned())),
            _ => None,
        };
        let (status, problem) = self.into_problem();
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some((name, value)) = extra
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_client() {
        let status = tonic::Status::internal("relation \"customers\" does not exist");
        let (code, problem) = Error::from(status).into_problem();
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!problem.detail.contains("relation"));
    }

    #[test]
    fn a_stale_version_is_412() {
        let status = tonic::Status::failed_precondition("customer has version 3");
        let (code, problem) = Error::from(status).into_problem();
        assert_eq!(code, StatusCode::PRECONDITION_FAILED);
        assert_eq!(problem.problem_type, "/problems/precondition-failed");
    }
}
