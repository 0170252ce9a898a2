use crm_domain::ValidationErrors;
use crm_proto::status::{ErrorKind, Failure, into_status};
use uuid::Uuid;

use crate::index::IndexError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("reindex job {0} not found")]
    JobNotFound(Uuid),
    #[error("a reindex is already running (job {0})")]
    AlreadyRunning(Uuid),
    #[error("another indexer took reindex job {0} over")]
    TakenOver(Uuid),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("customer-core: {0}")]
    CustomerCore(#[from] tonic::Status),
    #[error(transparent)]
    Platform(#[from] crm_platform::Error),
}

impl Failure for Error {
    const UNAVAILABLE: &'static str = "search is unavailable, try again later";

    fn into_invalid_fields(self) -> std::result::Result<ValidationErrors, Self> {
        match self {
            Error::Invalid(errors) => Ok(errors),
            other => Err(other),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::JobNotFound(_) => ErrorKind::NotFound,
            Error::AlreadyRunning(_) | Error::TakenOver(_) => ErrorKind::Conflict,
            Error::Index(IndexError::Engine(_)) | Error::CustomerCore(_) => ErrorKind::Unavailable,
            Error::Index(IndexError::Corrupt(_) | IndexError::Rejected(_)) | Error::Platform(_) => {
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
