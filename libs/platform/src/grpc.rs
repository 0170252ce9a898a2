//! gRPC server scaffolding shared by every service: `grpc.health.v1` and server
//! reflection (so `grpcurl` and `buf curl` work), graceful shutdown, and clients.

use std::{net::SocketAddr, sync::LazyLock, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint, Server, server::Router},
};
use tonic_health::server::HealthReporter;

use crate::{Error, Result, Shutdown, settings::constant_time_eq};

type CheckToken = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A service's gRPC server: every call passes the internal-token check.
pub type GrpcRouter = Router<
    tower::layer::util::Stack<
        tonic::service::InterceptorLayer<CheckToken>,
        tower::layer::util::Identity,
    >,
>;

/// A server with health and reflection already added; add the service's own next.
pub fn server_with_health() -> (GrpcRouter, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let router = Server::builder()
        .trace_fn(request_span)
        .layer(tonic::service::InterceptorLayer::new(
            require_internal_token as CheckToken,
        ))
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
pub async fn serve(router: GrpcRouter, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.wait().await
        })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

/// `CRM_INTERNAL_TOKEN`: what every call between the services carries, and what every
/// service demands when it is set (the same value for the whole deployment).
enum InternalToken {
    Unset,
    /// `Bearer <token>`.
    Set(MetadataValue<Ascii>),
    /// Not a possible header value: the service refuses to start.
    Invalid,
}

static INTERNAL_TOKEN: LazyLock<InternalToken> = LazyLock::new(|| {
    let token = std::env::var("CRM_INTERNAL_TOKEN").unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return InternalToken::Unset;
    }
    format!("Bearer {token}")
        .parse()
        .map_or(InternalToken::Invalid, InternalToken::Set)
});

/// A service may serve gRPC without the internal token only on loopback (the standalone
/// binary, a developer's machine): anywhere else it refuses to start.
pub fn check_exposure(grpc_addr: SocketAddr) -> Result<()> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    match &*INTERNAL_TOKEN {
        InternalToken::Set(_) => Ok(()),
        InternalToken::Invalid => Err(Error::Refused(
            "CRM_INTERNAL_TOKEN holds characters a header cannot carry".into(),
        )),
        InternalToken::Unset if grpc_addr.ip().is_loopback() => {
            // Once per process: `crm` runs several services.
            WARNED.call_once(|| {
                tracing::warn!(%grpc_addr, "CRM_INTERNAL_TOKEN is not set: gRPC accepts any local caller");
            });
            Ok(())
        }
        InternalToken::Unset => Err(Error::Refused(format!(
            "CRM_INTERNAL_TOKEN is not set and gRPC would listen on {grpc_addr}, beyond loopback"
        ))),
    }
}

/// Refuses calls without the internal token (when one is configured).
fn require_internal_token(
    request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let expected = match &*INTERNAL_TOKEN {
        InternalToken::Unset => return Ok(request),
        InternalToken::Set(expected) => expected.as_bytes(),
        InternalToken::Invalid => b"",
    };
    let given = request.metadata().get("authorization");
    if given
        .is_some_and(|given| !expected.is_empty() && constant_time_eq(given.as_bytes(), expected))
    {
        Ok(request)
    } else {
        Err(tonic::Status::unauthenticated(
            "missing or invalid internal token",
        ))
    }
}

/// Adds the internal token to every call of a client.
#[derive(Debug, Clone, Copy, Default)]
pub struct WithInternalToken;

impl Interceptor for WithInternalToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let InternalToken::Set(token) = &*INTERNAL_TOKEN {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A channel to another service of the platform: calls carry the internal token.
pub type InternalChannel = InterceptedService<Channel, WithInternalToken>;

/// A lazily connecting channel: the caller starts even when the service is not up yet,
/// and every call has a deadline of 10 s.
pub fn channel(url: &str) -> Result<InternalChannel> {
    channel_with_deadline(url, Duration::from_secs(10))
}

/// As [`channel`], for long calls (a bulk import streams for as long as its upload).
pub fn channel_with_deadline(url: &str, deadline: Duration) -> Result<InternalChannel> {
    Ok(InterceptedService::new(
        lazy_channel(url, deadline)?,
        WithInternalToken,
    ))
}

/// The bare channel under [`channel_with_deadline`], for a client with an interceptor of
/// its own (which must add the token with [`WithInternalToken`]).
pub fn lazy_channel(url: &str, deadline: Duration) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| Error::Connect {
        what: "gRPC service",
        reason: format!("{url}: {e}"),
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(deadline)
        .connect_lazy())
}
