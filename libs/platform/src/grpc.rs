//! gRPC server scaffolding shared by every service: `grpc.health.v1` and server
//! reflection (so `grpcurl` and `buf curl` work), graceful shutdown, and clients.

use std::{net::SocketAddr, sync::LazyLock, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{
        Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
        server::Router,
    },
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
/// With certificates configured it speaks only mutual TLS.
pub fn server_with_health() -> Result<(GrpcRouter, HealthReporter)> {
    server_with_health_over(internal_tls()?)
}

fn server_with_health_over(tls: Option<&InternalTls>) -> Result<(GrpcRouter, HealthReporter)> {
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls.server.clone())
            .map_err(|e| Error::Refused(unusable(&e)))?;
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let router = server
        .trace_fn(request_span)
        .layer(tonic::service::InterceptorLayer::new(
            require_internal_token as CheckToken,
        ))
        .add_service(health)
        .add_service(reflection);
    Ok((router, reporter))
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
    let Some(token) = setting("CRM_INTERNAL_TOKEN").or_else(|| PROCESS_TOKEN.get().cloned()) else {
        return InternalToken::Unset;
    };
    format!("Bearer {token}")
        .parse()
        .map_or(InternalToken::Invalid, InternalToken::Set)
});

/// An environment variable's value, trimmed; `None` when unset or blank.
fn setting(name: &str) -> Option<String> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Mutual TLS between the services, from the PEM files `CRM_TLS_CERT`, `CRM_TLS_KEY` and
/// `CRM_TLS_CA`: a service shows its certificate to its callers and to the services it
/// calls, and accepts only peers whose certificate the CA signed.
#[derive(Debug, Clone)]
pub struct InternalTls {
    server: ServerTlsConfig,
    client: ClientTlsConfig,
}

impl InternalTls {
    /// One certificate (with its key) for serving and calling, and the CA that signs peers'.
    pub fn from_pem(
        certificate: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        ca: impl AsRef<[u8]>,
    ) -> Result<Self> {
        Self::from_pem_or_reason(certificate, key, ca).map_err(Error::Refused)
    }

    fn from_pem_or_reason(
        certificate: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        ca: impl AsRef<[u8]>,
    ) -> std::result::Result<Self, String> {
        let identity = Identity::from_pem(certificate, key);
        let ca = Certificate::from_pem(ca);
        let tls = Self {
            server: ServerTlsConfig::new()
                .identity(identity.clone())
                .client_ca_root(ca.clone()),
            client: ClientTlsConfig::new().identity(identity).ca_certificate(ca),
        };
        // Unreadable PEM shows up here, at start, not at the first call.
        Server::builder()
            .tls_config(tls.server.clone())
            .map_err(|e| unusable(&e))?;
        Endpoint::from_static("https://localhost")
            .tls_config(tls.client.clone())
            .map_err(|e| unusable(&e))?;
        Ok(tls)
    }

    /// `None` when none of the three is set; why not, as the start's refusal.
    fn from_env() -> std::result::Result<Option<Self>, String> {
        let read = |name: &str, path: &str| {
            std::fs::read(path).map_err(|e| format!("{name} ({path}): {e}"))
        };
        match (
            setting("CRM_TLS_CERT"),
            setting("CRM_TLS_KEY"),
            setting("CRM_TLS_CA"),
        ) {
            (None, None, None) => Ok(None),
            (Some(certificate), Some(key), Some(ca)) => Self::from_pem_or_reason(
                read("CRM_TLS_CERT", &certificate)?,
                read("CRM_TLS_KEY", &key)?,
                read("CRM_TLS_CA", &ca)?,
            )
            .map(Some),
            _ => Err(
                "CRM_TLS_CERT, CRM_TLS_KEY and CRM_TLS_CA go together: set all three or none"
                    .into(),
            ),
        }
    }
}

/// tonic's TLS errors say what went wrong only in their sources.
fn unusable(error: &dyn std::error::Error) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    format!("the TLS certificates (CRM_TLS_*) are unusable: {reason}")
}

/// This process's mutual-TLS settings, read once; `None` when none are configured.
fn internal_tls() -> Result<Option<&'static InternalTls>> {
    static INTERNAL_TLS: LazyLock<std::result::Result<Option<InternalTls>, String>> =
        LazyLock::new(InternalTls::from_env);
    INTERNAL_TLS
        .as_ref()
        .map(Option::as_ref)
        .map_err(|reason| Error::Refused(reason.clone()))
}

static PROCESS_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// For a binary that runs the services in one process (`crm`): unless `CRM_INTERNAL_TOKEN`
/// is set, the services demand a random token made for this process only, so no other
/// local process can reach their gRPC (and go around the REST API's credentials). Call it
/// before any service starts; later it changes nothing.
pub fn keep_grpc_to_this_process() {
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let _ = PROCESS_TOKEN.set(token);
}

/// A service may serve gRPC to unauthenticated callers only on loopback (the standalone
/// binary, a developer's machine): anywhere else it demands the internal token or mutual
/// TLS, or refuses to start.
pub fn check_exposure(grpc_addr: SocketAddr) -> Result<()> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let mutual_tls = internal_tls()?.is_some();
    match &*INTERNAL_TOKEN {
        InternalToken::Set(_) => Ok(()),
        InternalToken::Invalid => Err(Error::Refused(
            "CRM_INTERNAL_TOKEN holds characters a header cannot carry".into(),
        )),
        // The handshake demands a certificate the CA signed.
        InternalToken::Unset if mutual_tls => Ok(()),
        InternalToken::Unset if grpc_addr.ip().is_loopback() => {
            // Once per process: `crm` runs several services.
            WARNED.call_once(|| {
                tracing::warn!(%grpc_addr, "CRM_INTERNAL_TOKEN is not set: gRPC accepts any local caller");
            });
            Ok(())
        }
        InternalToken::Unset => Err(Error::Refused(format!(
            "neither CRM_INTERNAL_TOKEN nor CRM_TLS_* is set and gRPC would listen on \
             {grpc_addr}, beyond loopback"
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
/// its own (which must add the token with [`WithInternalToken`]). With certificates
/// configured the channel speaks mutual TLS, whether `url` says `http` or `https`.
pub fn lazy_channel(url: &str, deadline: Duration) -> Result<Channel> {
    lazy_channel_over(url, deadline, internal_tls()?)
}

fn lazy_channel_over(url: &str, deadline: Duration, tls: Option<&InternalTls>) -> Result<Channel> {
    let url = match (tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_owned(),
    };
    let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| Error::Connect {
        what: "gRPC service",
        reason: format!("{url}: {e}"),
    })?;
    let endpoint = match tls {
        Some(tls) => endpoint
            .tls_config(tls.client.clone())
            .map_err(|e| Error::Refused(unusable(&e)))?,
        None => endpoint,
    };
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(deadline)
        .connect_lazy())
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use super::*;
    use crate::testing::TestCa;

    /// A server speaking mutual TLS with certificates of `ca`; its address.
    async fn mutual_tls_server(ca: &TestCa, shutdown: Shutdown) -> SocketAddr {
        let (certificate, key) = ca.issue();
        let tls = InternalTls::from_pem(certificate, key, ca.pem()).unwrap();
        let (router, _health) = server_with_health_over(Some(&tls)).unwrap();
        let listener = bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(router, listener, shutdown));
        addr
    }

    /// Refused at the connection: the handshake fails, or (TLS 1.3, where the server
    /// checks the client's certificate after the client finished) the connection breaks
    /// right after it.
    fn assert_refused(outcome: Result<(), tonic::Status>) {
        let status = outcome.expect_err("refused");
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ),
            "{status}"
        );
    }

    async fn check_health(url: &str, tls: Option<&InternalTls>) -> Result<(), tonic::Status> {
        let channel = lazy_channel_over(url, Duration::from_secs(5), tls).unwrap();
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(drop)
    }

    #[tokio::test]
    async fn with_certificates_only_peers_the_ca_signed_get_in() {
        let ca = TestCa::new("crm test ca");
        let shutdown = Shutdown::new();
        let addr = mutual_tls_server(&ca, shutdown.clone()).await;
        // Deployments keep their http:// URLs: the channel upgrades them.
        let url = format!("http://{addr}");

        let (certificate, key) = ca.issue();
        let peer = InternalTls::from_pem(certificate, key, ca.pem()).unwrap();
        check_health(&url, Some(&peer))
            .await
            .expect("a peer with a certificate of the CA is served");

        let stranger_ca = TestCa::new("another ca");
        let (certificate, key) = stranger_ca.issue();
        let stranger = InternalTls::from_pem(certificate, key, ca.pem()).unwrap();
        assert_refused(check_health(&url, Some(&stranger)).await);
        assert_refused(check_health(&url, None).await);

        check_health(&url, Some(&peer))
            .await
            .expect("refused handshakes leave the server serving");
        shutdown.trigger();
    }

    #[tokio::test]
    async fn a_caller_without_a_certificate_is_refused() {
        let ca = TestCa::new("crm test ca");
        let shutdown = Shutdown::new();
        let addr = mutual_tls_server(&ca, shutdown.clone()).await;
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())))
            .unwrap()
            .connect_lazy();
        let outcome = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await;
        assert_refused(outcome.map(drop));
        shutdown.trigger();
    }

    #[test]
    fn unusable_certificates_are_refused_at_start() {
        let ca = TestCa::new("crm test ca");
        let (certificate, _) = ca.issue();
        let refused = InternalTls::from_pem(certificate, "not a key", ca.pem()).unwrap_err();
        assert!(
            refused.to_string().contains("CRM_TLS_"),
            "names the settings: {refused}"
        );
    }
}
