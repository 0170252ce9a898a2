//! What every CRM binary shares: typed settings, telemetry, graceful shutdown, the
//! health endpoints, the gRPC server scaffolding and the cache adapters.

pub mod bus;
pub mod cache;
pub mod database;
pub mod error;
pub mod grpc;
pub mod health;
pub mod http;
pub mod listeners;
pub mod metrics;
pub mod redis;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};
pub use shutdown::Shutdown;
