use crm_domain::ValidationErrors;
use crm_platform::bus::BusError;
use crm_proto::status::{ErrorKind, ServiceError};

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

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let service_error = match error {
            Error::Invalid(errors) => ServiceError::invalid(errors),
            Error::Bus(error) => {
                tracing::error!(%error, "events not accepted");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    "the event bus is unavailable; nothing was accepted, send again later",
                )
            }
            Error::Platform(error) => {
                tracing::error!(%error, "ingest failed");
                ServiceError::new(ErrorKind::Internal, "ingest failed")
            }
        };
        service_error.into()
    }
}
