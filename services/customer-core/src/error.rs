use crm_domain::{CustomerId, ValidationErrors};
use crm_proto::status::{ErrorKind, Failure, into_status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("customer {0} not found")]
    NotFound(CustomerId),
    #[error("the e-mail address is already used by another customer")]
    EmailTaken,
    #[error("customer has version {current}, not the expected {expected}")]
    StaleVersion { expected: i64, current: i64 },
    /// The row changed between read and write (another writer won).
    #[error("customer changed concurrently")]
    VersionConflict,
    #[error("import {0} not found")]
    ImportNotFound(uuid::Uuid),
    #[error("customer {0} is deleted")]
    Deleted(CustomerId),
    #[error("{0}")]
    MergeConflict(String),
    #[error("{0}")]
    TooSlow(String),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    Malformed(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored customer is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Platform(#[from] crm_platform::Error),
    #[error(transparent)]
    Bus(#[from] crm_platform::bus::BusError),
}

impl Failure for Error {
    const UNAVAILABLE: &'static str = "the customer store is unavailable, try again later";

    fn into_invalid_fields(self) -> std::result::Result<ValidationErrors, Self> {
        match self {
            Error::Invalid(errors) => Ok(errors),
            other => Err(other),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::ImportNotFound(_) => ErrorKind::NotFound,
            Error::EmailTaken
            | Error::Deleted(_)
            | Error::MergeConflict(_)
            | Error::VersionConflict => ErrorKind::Conflict,
            Error::StaleVersion { .. } => ErrorKind::PreconditionFailed,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Malformed(_) => ErrorKind::Malformed,
            Error::Database(error) if crm_platform::database::is_transient(error) => {
                ErrorKind::Unavailable
            }
            Error::Bus(_) | Error::TooSlow(_) => ErrorKind::Unavailable,
            Error::Database(_) | Error::Migration(_) | Error::Corrupt(_) | Error::Platform(_) => {
                ErrorKind::Internal
            }
        }
    }
}

impl From<crm_domain::merge::MergeRefusal> for Error {
    fn from(refusal: crm_domain::merge::MergeRefusal) -> Self {
        match refusal {
            crm_domain::merge::MergeRefusal::Invalid(errors) => Error::Invalid(errors),
            crm_domain::merge::MergeRefusal::Conflict(reason) => Error::MergeConflict(reason),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        into_status(error)
    }
}
