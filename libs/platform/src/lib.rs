//! What every CRM binary shares: typed settings, telemetry, graceful shutdown, the
//! health endpoints, the gRPC server scaffolding and the cache adapters.

pub mod bus;
pub mod cache;
pub mod database;
pub mod dialect;
pub mod error;
pub mod grpc;
pub mod health;
pub mod http;
pub mod internal_auth;
pub mod listeners;
pub mod metrics;
pub mod redis;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};
/// The allocator of every program built on the platform (services, `crm`, tests,
/// benchmarks): glibc's malloc took a tenth of the CPU under load (benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The wait before try `attempt + 1` (`attempt` from 1): `first`, doubled for each later
/// try, at most `max`.
pub fn backoff(
    first: std::time::Duration,
    max: std::time::Duration,
    attempt: u32,
) -> std::time::Duration {
    first
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(max)
}
pub use shutdown::Shutdown;
