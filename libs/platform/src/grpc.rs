//! gRPC server scaffolding shared by every service: `grpc.health.v1` and server
//! reflection (so `grpcurl` and `buf curl` work), graceful shutdown, and clients.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server, server::Router};
use tonic_health::server::HealthReporter;

use crate::{Error, Result, Shutdown};

/// A server with health and reflection already added; add the service's own next.
pub fn server_with_health() -> (Router, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let router = Server::builder()
        .trace_fn(request_span)
        .add_service(health)
        .add_service(reflection);
    (router, reporter)
}

/// The header that carries the caller's request id from the gateway to the services.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Every call runs in a span with the caller's request id, so a service's log lines for
/// one REST request can be found by the id the client saw.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("grpc", request_id, method = %request.uri().path())
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(router: Router, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.wait().await
        })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

/// A lazily connecting channel: the caller starts even when the service is not up yet,
/// and every call has a deadline of 10 s.
pub fn channel(url: &str) -> Result<Channel> {
    channel_with_deadline(url, Duration::from_secs(10))
}

/// As [`channel`], for long calls (a bulk import streams for as long as its upload).
pub fn channel_with_deadline(url: &str, deadline: Duration) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| Error::Connect {
        what: "gRPC service",
        reason: format!("{url}: {e}"),
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(deadline)
        .connect_lazy())
}
