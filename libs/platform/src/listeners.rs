//! A service's listeners: gRPC, and HTTP for `/healthz`, `/readyz` and `/metrics` (none
//! inside the standalone binary, where only the gateway serves HTTP).

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::{
    Result, Shutdown, grpc, grpc::GrpcRouter, health::Readiness, internal_auth::InternalAuth,
};

/// Where a service listens, and who may call its gRPC.
#[derive(Debug, Clone)]
pub struct Listen {
    pub grpc_addr: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`; none inside the standalone binary.
    pub http_addr: Option<SocketAddr>,
    pub internal: InternalAuth,
}

impl Listen {
    /// gRPC on a free loopback port, no HTTP, no internal token or TLS (tests).
    pub fn loopback() -> Self {
        Self {
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            http_addr: None,
            internal: InternalAuth::none(),
        }
    }
}

pub struct Listeners {
    grpc: TcpListener,
    http: Option<TcpListener>,
    internal: InternalAuth,
}

impl Listeners {
    /// Binds both (port 0 picks a free port); refuses to expose gRPC beyond loopback
    /// without the internal token or mutual TLS.
    pub async fn bind(listen: Listen) -> Result<Self> {
        listen.internal.check_exposure(listen.grpc_addr)?;
        let grpc = grpc::bind(listen.grpc_addr).await?;
        let http = match listen.http_addr {
            Some(addr) => Some(grpc::bind(addr).await?),
            None => None,
        };
        Ok(Self {
            grpc,
            http,
            internal: listen.internal,
        })
    }

    /// The gRPC server for these listeners (health and reflection added, the internal
    /// token or mutual TLS demanded); add the service's own next.
    pub fn grpc_server(&self) -> Result<(GrpcRouter, tonic_health::server::HealthReporter)> {
        self.internal.server_with_health()
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Logs `<name> listening` with both addresses (operators and the end-to-end tests
    /// read them there), then serves `router` and the health routes until `shutdown`.
    pub async fn serve(
        self,
        name: &str,
        router: GrpcRouter,
        readiness: Readiness,
        shutdown: Shutdown,
    ) -> Result<()> {
        let http = self.http_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(grpc = %self.grpc_addr(), http, "{name} listening");
        let grpc = grpc::serve(router, self.grpc, shutdown.clone());
        let health = async {
            match self.http {
                Some(listener) => {
                    crate::http::serve(listener, crate::health::router(readiness), shutdown).await
                }
                None => Ok(()),
            }
        };
        tokio::try_join!(grpc, health)?;
        Ok(())
    }
}
