//! The one table of error kinds, mapped to both gRPC codes and HTTP statuses. Services
//! turn their errors into a `tonic::Status` here; the gateway turns the status back into
//! an HTTP problem with the same table, so both ends always agree.

use crm_domain::{FieldError, ValidationErrors};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Syntactically malformed input (a bad id or cursor).
    Malformed,
    /// Well-formed input that breaks a rule; carries the bad fields.
    Invalid,
    NotFound,
    Conflict,
    PreconditionFailed,
    Unauthenticated,
    Forbidden,
    Unimplemented,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn grpc_code(self) -> Code {
        match self {
            Self::Malformed | Self::Invalid => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::Conflict => Code::AlreadyExists,
            Self::PreconditionFailed => Code::FailedPrecondition,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::Forbidden => Code::PermissionDenied,
            Self::Unimplemented => Code::Unimplemented,
            Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::Malformed => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PreconditionFailed => 412,
            Self::Invalid => 422,
            Self::Internal => 500,
            Self::Unimplemented => 501,
            Self::Unavailable => 503,
        }
    }

    /// The problem type an HTTP answer names (`/problems/` + this).
    pub fn problem_type(self) -> &'static str {
        match self {
            Self::Malformed => "malformed-request",
            Self::Invalid => "validation-failed",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Unimplemented => "not-implemented",
            Self::Unavailable => "service-unavailable",
            Self::Internal => "internal-error",
        }
    }

    /// INVALID_ARGUMENT with field violations is a validation failure (422); without
    /// them the request itself was malformed (400).
    fn from_status(status: &Status, has_fields: bool) -> Self {
        match status.code() {
            Code::InvalidArgument if has_fields => Self::Invalid,
            Code::InvalidArgument | Code::OutOfRange => Self::Malformed,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists | Code::Aborted => Self::Conflict,
            Code::FailedPrecondition => Self::PreconditionFailed,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::Forbidden,
            Code::Unimplemented => Self::Unimplemented,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                Self::Unavailable
            }
            _ => Self::Internal,
        }
    }
}

/// An error as it crosses a service boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// What a service answers for an `error` of `kind`: its own words when the caller
    /// can act on them; for internal and unavailable errors only `unavailable`, the
    /// details going to the log.
    pub fn outward(kind: ErrorKind, error: &dyn std::fmt::Display, unavailable: &str) -> Self {
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %error, "request failed");
            Self::new(kind, unavailable)
        } else {
            Self::new(kind, error.to_string())
        }
    }

    pub fn invalid(errors: ValidationErrors) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            message: "the request has invalid fields".into(),
            fields: errors.0,
        }
    }
}

/// A service's error enum as the table sees it. With this, `into_status` is the one way
/// a service's errors become a `tonic::Status` (each crate's `From` calls it).
pub trait Failure: std::fmt::Display + Sized {
    /// What callers read in place of an internal or unavailable error's details.
    const UNAVAILABLE: &'static str;
    /// Its row in the table.
    fn kind(&self) -> ErrorKind;
    /// The fields a validation failure names; any other error back.
    fn into_invalid_fields(self) -> Result<ValidationErrors, Self>;
}

/// The one place where a service's errors leave it: the fields of a validation failure,
/// its own words when the caller can act on them, internals only in the log.
pub fn into_status<E: Failure>(error: E) -> Status {
    let kind = error.kind();
    let service_error = match error.into_invalid_fields() {
        Ok(fields) => ServiceError::invalid(fields),
        Err(other) => ServiceError::outward(kind, &other, E::UNAVAILABLE),
    };
    service_error.into()
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        if error.fields.is_empty() {
            return Status::new(error.kind.grpc_code(), error.message);
        }
        let violations: Vec<FieldViolation> = error
            .fields
            .into_iter()
            .map(|f| FieldViolation::new(f.field, f.message))
            .collect();
        Status::with_error_details(
            error.kind.grpc_code(),
            error.message,
            ErrorDetails::with_bad_request(violations),
        )
    }
}

impl From<&Status> for ServiceError {
    fn from(status: &Status) -> Self {
        let fields: Vec<FieldError> = status
            .get_error_details()
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| FieldError {
                        field: v.field.clone(),
                        message: v.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            kind: ErrorKind::from_status(status, !fields.is_empty()),
            message: status.message().to_owned(),
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_survive_the_grpc_round_trip() {
        let sent = ServiceError::invalid(ValidationErrors::single("email", "must be valid"));
        let status = Status::from(sent.clone());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(ServiceError::from(&status), sent);
    }

    #[test]
    fn invalid_argument_without_fields_is_malformed() {
        let status = Status::invalid_argument("cursor is not valid");
        let error = ServiceError::from(&status);
        assert_eq!(error.kind, ErrorKind::Malformed);
        assert_eq!(error.kind.http_status(), 400);
    }

    #[test]
    fn every_kind_maps_back_to_itself() {
        use ErrorKind::*;
        for kind in [
            Malformed,
            NotFound,
            Conflict,
            PreconditionFailed,
            Unauthenticated,
            Forbidden,
            Unimplemented,
            Unavailable,
            Internal,
        ] {
            let status = Status::from(ServiceError::new(kind, "x"));
            assert_eq!(ServiceError::from(&status).kind, kind, "{kind:?}");
        }
    }
}
