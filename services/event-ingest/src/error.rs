use crm_domain::ValidationErrors;
use crm_platform::bus::BusError;
use crm_proto::status::{ErrorKind, Failure, into_status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Nothing was accepted: the bus did not confirm.
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Platform(#[from] crm_platform::Error),
}

impl Failure for Error {
    const UNAVAILABLE: &'static str =
        "ingest is unavailable; nothing was accepted, send again later";

    fn into_invalid_fields(self) -> Result<ValidationErrors, Self> {
        match self {
            Error::Invalid(errors) => Ok(errors),
            other => Err(other),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Bus(_) => ErrorKind::Unavailable,
            Error::Platform(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        into_status(error)
    }
}
