//! Logging for every binary: `RUST_LOG` filter (default `info`), human-readable text or
//! JSON lines (`CRM_LOG_FORMAT=json`) for log shippers; always on stderr, so stdout
//! stays for what a command prints for its user.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Keeps telemetry alive; flushes on drop once exporters are added.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard(());

/// Installs the global subscriber once; later calls (tests starting several apps) are
/// no-ops, because the subscriber is process-wide.
pub fn init_telemetry(service_name: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CRM_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        let layer = fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr);
        registry.with(layer).try_init()
    } else {
        let layer = fmt::layer()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        registry.with(layer).try_init()
    };
    if installed.is_ok() {
        tracing::debug!(service = service_name, "telemetry initialised");
    }
    TelemetryGuard(())
}
