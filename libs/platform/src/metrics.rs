//! Prometheus metrics on `/metrics` of every binary. The recorder is process-wide, so
//! it is installed once, however many services one process runs.

use std::sync::OnceLock;

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder (installed on first use); `None` when another recorder was
/// installed first, in which case `/metrics` answers empty.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Installs the recorder now, so that counters from the start are kept.
pub fn init() {
    let _ = handle();
}

/// `GET /metrics` in the Prometheus text format.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async { handle().map(PrometheusHandle::render).unwrap_or_default() }),
    )
}
