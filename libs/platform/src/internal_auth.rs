//! How the services know each other: the internal token every call between them carries
//! (`CRM_INTERNAL_TOKEN`) and mutual TLS (`CRM_TLS_CERT`, `CRM_TLS_KEY`, `CRM_TLS_CA`).
//! Read once into typed settings, checked at start, then handed to what serves and calls
//! gRPC: nothing here reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{
        Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
    },
};
use tonic_health::server::HealthReporter;

use crate::{
    Error, Result,
    grpc::{self, GrpcRouter},
    settings::{Secret, constant_time_eq},
};

/// The settings every service flattens into its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalAuthSettings {
    /// What every call between the services carries, and what every service demands
    /// when it is set (the same value for the whole deployment).
    pub internal_token: Option<Secret>,
    /// Mutual TLS: this service's certificate and key, and the CA that signs its peers'.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
}

impl InternalAuthSettings {
    /// For a binary that runs the services in one process (`crm`): unless a token is
    /// set, the services demand one made for this process only, so no other local
    /// process can reach their gRPC (and go around the REST API's credentials).
    pub fn kept_to_this_process(mut self) -> Self {
        let set = self
            .internal_token
            .as_ref()
            .is_some_and(|token| !token.expose().trim().is_empty());
        if !set {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            self.internal_token = Some(Secret::new(token));
        }
        self
    }

    /// Reads the certificates and checks the token; why not, as the start's refusal.
    pub fn load(&self) -> Result<InternalAuth> {
        let given = |path: &Option<PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        let read = |name: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| Error::Refused(format!("{name} ({path:?}): {e}")))
        };
        let tls = match (
            given(&self.tls_cert),
            given(&self.tls_key),
            given(&self.tls_ca),
        ) {
            (None, None, None) => None,
            (Some(certificate), Some(key), Some(ca)) => Some(InternalTls::from_pem(
                read("CRM_TLS_CERT", &certificate)?,
                read("CRM_TLS_KEY", &key)?,
                read("CRM_TLS_CA", &ca)?,
            )?),
            _ => {
                return Err(Error::Refused(
                    "CRM_TLS_CERT, CRM_TLS_KEY and CRM_TLS_CA go together: set all three or none"
                        .into(),
                ));
            }
        };
        let token = self
            .internal_token
            .as_ref()
            .map(|token| token.expose().trim())
            .filter(|token| !token.is_empty());
        InternalAuth { token: None, tls }.with_token(token)
    }
}

/// Mutual TLS between the services: a service shows its certificate to its callers and
/// to the services it calls, and accepts only peers whose certificate the CA signed.
#[derive(Debug, Clone)]
pub struct InternalTls {
    server: ServerTlsConfig,
    client: ClientTlsConfig,
}

impl InternalTls {
    /// One certificate (with its key) for serving and calling, and the CA that signs
    /// peers'.
    pub fn from_pem(
        certificate: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        ca: impl AsRef<[u8]>,
    ) -> Result<Self> {
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
}

/// tonic's TLS errors say what went wrong only in their sources.
pub(crate) fn unusable(error: &dyn std::error::Error) -> Error {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    Error::Refused(format!(
        "the TLS certificates (CRM_TLS_*) are unusable: {reason}"
    ))
}

/// The internal token and mutual TLS of this process, ready to serve and call with.
#[derive(Debug, Clone, Default)]
pub struct InternalAuth {
    /// `Bearer <token>`.
    token: Option<MetadataValue<Ascii>>,
    tls: Option<InternalTls>,
}

impl InternalAuth {
    /// No token, no TLS: gRPC on loopback only (development, tests).
    pub fn none() -> Self {
        Self::default()
    }

    /// The same with `token` demanded and sent (`None` keeps none).
    pub fn with_token(mut self, token: Option<&str>) -> Result<Self> {
        self.token = match token {
            None => None,
            Some(token) => Some(format!("Bearer {token}").parse().map_err(|_| {
                Error::Refused("CRM_INTERNAL_TOKEN holds characters a header cannot carry".into())
            })?),
        };
        Ok(self)
    }

    /// A service may serve gRPC to unauthenticated callers only on loopback (the
    /// standalone binary, a developer's machine): anywhere else it demands the internal
    /// token or mutual TLS, or refuses to start.
    pub fn check_exposure(&self, grpc_addr: SocketAddr) -> Result<()> {
        static WARNED: std::sync::Once = std::sync::Once::new();
        if self.token.is_some() || self.tls.is_some() {
            return Ok(());
        }
        if !grpc_addr.ip().is_loopback() {
            return Err(Error::Refused(format!(
                "neither CRM_INTERNAL_TOKEN nor CRM_TLS_* is set and gRPC would listen on \
                 {grpc_addr}, beyond loopback"
            )));
        }
        // Once per process: `crm` runs several services.
        WARNED.call_once(|| {
            tracing::warn!(%grpc_addr, "CRM_INTERNAL_TOKEN is not set: gRPC accepts any local caller");
        });
        Ok(())
    }

    /// A server with health and reflection already added; add the service's own next.
    /// With certificates it speaks only mutual TLS; with a token, every call must carry
    /// it.
    pub fn server_with_health(&self) -> Result<(GrpcRouter, HealthReporter)> {
        let check = RequireInternalToken(self.token.clone());
        grpc::server_with_health_over(self.tls.as_ref().map(|t| &t.server), check)
    }

    /// What adds the token to every call of a client.
    pub fn token_adder(&self) -> WithInternalToken {
        WithInternalToken(self.token.clone())
    }

    /// A lazily connecting channel: the caller starts even when the service is not up
    /// yet, and every call has a deadline of 10 s.
    pub fn channel(&self, url: &str) -> Result<InternalChannel> {
        self.channel_with_deadline(url, Duration::from_secs(10))
    }

    /// As [`Self::channel`], for long calls (a bulk import streams for as long as its
    /// upload).
    pub fn channel_with_deadline(&self, url: &str, deadline: Duration) -> Result<InternalChannel> {
        Ok(InterceptedService::new(
            self.lazy_channel(url, deadline)?,
            self.token_adder(),
        ))
    }

    /// The bare channel under [`Self::channel_with_deadline`], for a client with an
    /// interceptor of its own (which must add the token with [`Self::token_adder`]).
    /// With certificates the channel speaks mutual TLS, whether `url` says `http` or
    /// `https`.
    pub fn lazy_channel(&self, url: &str, deadline: Duration) -> Result<Channel> {
        grpc::lazy_channel_over(url, deadline, self.tls.as_ref().map(|t| &t.client))
    }
}

/// A channel to another service of the platform: calls carry the internal token.
pub type InternalChannel = InterceptedService<Channel, WithInternalToken>;

/// Adds the internal token (when there is one) to every call of a client.
#[derive(Debug, Clone, Default)]
pub struct WithInternalToken(Option<MetadataValue<Ascii>>);

impl Interceptor for WithInternalToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// Refuses calls without the internal token (when one is configured).
#[derive(Debug, Clone)]
pub struct RequireInternalToken(Option<MetadataValue<Ascii>>);

impl Interceptor for RequireInternalToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        let given = request.metadata().get("authorization");
        if given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            Ok(request)
        } else {
            Err(tonic::Status::unauthenticated(
                "missing or invalid internal token",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use std::net::SocketAddr;

    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

    use super::*;
    use crate::{Shutdown, testing::TestCa};

    fn with_tls(tls: InternalTls) -> InternalAuth {
        InternalAuth {
            token: None,
            tls: Some(tls),
        }
    }

    /// A server speaking mutual TLS with certificates of `ca`; its address.
    async fn mutual_tls_server(ca: &TestCa, shutdown: Shutdown) -> SocketAddr {
        let (certificate, key) = ca.issue();
        let auth = with_tls(InternalTls::from_pem(certificate, key, ca.pem()).unwrap());
        let (router, _health) = auth.server_with_health().unwrap();
        let listener = grpc::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(grpc::serve(router, listener, shutdown));
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

    async fn check_health(url: &str, auth: &InternalAuth) -> Result<(), tonic::Status> {
        let channel = auth.lazy_channel(url, Duration::from_secs(5)).unwrap();
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
        let peer = with_tls(InternalTls::from_pem(certificate, key, ca.pem()).unwrap());
        check_health(&url, &peer)
            .await
            .expect("a peer with a certificate of the CA is served");

        let stranger_ca = TestCa::new("another ca");
        let (certificate, key) = stranger_ca.issue();
        let stranger = with_tls(InternalTls::from_pem(certificate, key, ca.pem()).unwrap());
        assert_refused(check_health(&url, &stranger).await);
        assert_refused(check_health(&url, &InternalAuth::none()).await);

        check_health(&url, &peer)
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

    #[test]
    fn settings_say_what_is_wrong_at_start() {
        let blank = InternalAuthSettings {
            internal_token: Some(Secret::new("  ")),
            ..Default::default()
        };
        let open = blank.load().expect("a blank token is no token");
        assert!(open.check_exposure(([0, 0, 0, 0], 50051).into()).is_err());
        assert!(open.check_exposure(([127, 0, 0, 1], 50051).into()).is_ok());

        let unsendable = InternalAuthSettings {
            internal_token: Some(Secret::new("a\nb")),
            ..Default::default()
        };
        assert!(
            unsendable
                .load()
                .unwrap_err()
                .to_string()
                .contains("header")
        );

        let half = InternalAuthSettings {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        assert!(half.load().unwrap_err().to_string().contains("go together"));

        let token = InternalAuthSettings {
            internal_token: Some(Secret::new("s3cret")),
            ..Default::default()
        };
        let closed = token.load().unwrap();
        assert!(closed.check_exposure(([0, 0, 0, 0], 50051).into()).is_ok());
    }

    #[tokio::test]
    async fn with_a_token_only_callers_that_carry_it_get_in() {
        let auth = InternalAuth::none().with_token(Some("s3cret")).unwrap();
        let (router, _health) = auth.server_with_health().unwrap();
        let listener = grpc::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = Shutdown::new();
        tokio::spawn(grpc::serve(router, listener, shutdown.clone()));
        let health = |auth: &InternalAuth| {
            let channel = auth.channel(&url).unwrap();
            async move {
                tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .map(drop)
            }
        };
        health(&auth).await.expect("the token opens");
        let stranger = InternalAuth::none().with_token(Some("guess")).unwrap();
        let refused = health(&stranger).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let refused = health(&InternalAuth::none()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        shutdown.trigger();
    }
}
