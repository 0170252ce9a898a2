//! A service's listeners: gRPC, and HTTP for `/healthz`, `/readyz` and `/metrics` (none
//! inside the standalone binary, where only the gateway serves HTTP).

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::{Result, Shutdown, grpc, health::Readiness};

pub struct Listeners {
    grpc: TcpListener,
    http: Option<TcpListener>,
}

impl Listeners {
    /// Binds both (port 0 picks a free port); refuses to expose gRPC beyond loopback
    /// without the internal token.
    pub async fn bind(grpc_addr: SocketAddr, http_addr: Option<SocketAddr>) -> Result<Self> {
        grpc::check_exposure(grpc_addr)?;
        let grpc = grpc::bind(grpc_addr).await?;
        let http = match http_addr {
            Some(addr) => Some(grpc::bind(addr).await?),
            None => None,
        };
        Ok(Self { grpc, http })
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
        router: crate::grpc::GrpcRouter,
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
