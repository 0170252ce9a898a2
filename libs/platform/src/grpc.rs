//! gRPC server scaffolding shared by every service: `grpc.health.v1` and server
//! reflection (so `grpcurl` and `buf curl` work), graceful shutdown, and channels. Who
//! may call is `internal_auth`'s.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Channel, ClientTlsConfig, Endpoint, Server, ServerTlsConfig, server::Router,
};
use tonic_health::server::HealthReporter;

pub use crate::internal_auth::{InternalChannel, WithInternalToken};
use crate::{
    Error, Result, Shutdown,
    internal_auth::{RequireInternalToken, unusable},
};

/// A service's gRPC server: every call passes the internal-token check.
pub type GrpcRouter = Router<
    tower::layer::util::Stack<
        tonic::service::InterceptorLayer<RequireInternalToken>,
        tower::layer::util::Identity,
    >,
>;

/// A server with health and reflection already added, speaking mutual TLS when `tls` is
/// given; see `InternalAuth::server_with_health`.
pub(crate) fn server_with_health_over(
    tls: Option<&ServerTlsConfig>,
    check: RequireInternalToken,
) -> Result<(GrpcRouter, HealthReporter)> {
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls.clone()).map_err(|e| unusable(&e))?;
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let router = server
        .trace_fn(request_span)
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_service(health)
        .add_service(reflection);
    Ok((router, reporter))
}

/// The metadata key carrying the REST request's id to the services.
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

/// The connections `listener` accepts, sending without delay (see
/// `http::without_delay`): a gRPC answer is a HEADERS and a DATA frame, written apart.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(router: GrpcRouter, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    router
        .serve_with_incoming_shutdown(incoming(listener), async move { shutdown.wait().await })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

/// A lazily connecting channel with a deadline on every call; mutual TLS when `tls` is
/// given (an `http` URL is then upgraded); see `InternalAuth::lazy_channel`.
pub(crate) fn lazy_channel_over(
    url: &str,
    deadline: Duration,
    tls: Option<&ClientTlsConfig>,
) -> Result<Channel> {
    let url = match (tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_owned(),
    };
    let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| Error::Connect {
        what: "gRPC service",
        reason: format!("{url}: {e}"),
    })?;
    let endpoint = match tls {
        Some(tls) => endpoint.tls_config(tls.clone()).map_err(|e| unusable(&e))?,
        None => endpoint,
    };
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(deadline)
        .connect_lazy())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpStream;
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = incoming(listener);
        let (accepted, _client) = tokio::join!(incoming.next(), TcpStream::connect(addr));
        assert!(accepted.unwrap().unwrap().nodelay().unwrap());
    }
}
