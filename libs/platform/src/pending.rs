//! A service whose features later issues build: it starts, serves gRPC health and
//! reflection plus `/healthz` and `/readyz`, and says in its log that it does nothing yet.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::{Result, Shutdown, grpc, health};

pub struct PendingService {
    name: &'static str,
    grpc: TcpListener,
    http: TcpListener,
}

impl PendingService {
    pub async fn bind(
        name: &'static str,
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Result<Self> {
        Ok(Self {
            name,
            grpc: grpc::bind(grpc_addr).await?,
            http: grpc::bind(http_addr).await?,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        tracing::warn!(
            service = self.name,
            grpc = %self.grpc_addr(),
            http = %self.http_addr(),
            "{} has no features yet: it serves gRPC health and reflection only",
            self.name
        );
        let (router, _health) = grpc::server_with_health();
        let grpc = grpc::serve(router, self.grpc, shutdown.clone());
        let http = crate::http::serve(self.http, health::router(Default::default()), shutdown);
        tokio::try_join!(grpc, http)?;
        Ok(())
    }
}
