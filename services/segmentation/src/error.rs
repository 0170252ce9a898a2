use crm_domain::{CustomerId, ValidationErrors};
use crm_proto::status::{ErrorKind, Failure, into_status};
use uuid::Uuid;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("customer {0} has no segment yet (unknown, or its first event is on its way)")]
    NotFound(CustomerId),
    #[error("recompute job {0} not found")]
    JobNotFound(Uuid),
    #[error("a recompute is already running{}", .0.map(|id| format!(" (job {id})")).unwrap_or_default())]
    AlreadyRunning(Option<Uuid>),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("customer-core: {0}")]
    CustomerCore(#[from] tonic::Status),
    #[error(transparent)]
    Platform(#[from] crm_platform::Error),
}

impl Failure for Error {
    const UNAVAILABLE: &'static str = "segmentation is unavailable, try again later";

    fn into_invalid_fields(self) -> std::result::Result<ValidationErrors, Self> {
        match self {
            Error::Invalid(errors) => Ok(errors),
            other => Err(other),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::JobNotFound(_) => ErrorKind::NotFound,
            Error::AlreadyRunning(_) => ErrorKind::Conflict,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Database(error) if crm_platform::database::is_transient(error) => {
                ErrorKind::Unavailable
            }
            Error::CustomerCore(_) => ErrorKind::Unavailable,
            Error::Database(_) | Error::Migration(_) | Error::Corrupt(_) | Error::Platform(_) => {
                ErrorKind::Internal
            }
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        into_status(error)
    }
}
