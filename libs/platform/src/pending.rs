//! A service whose features later issues build: it starts, serves gRPC health and
//! reflection plus `/healthz` and `/readyz`, and says in its log that it does nothing yet.

use std::net::SocketAddr;

use crate::{Result, Shutdown, grpc, listeners::Listeners};

pub struct PendingService {
    name: &'static str,
    listeners: Listeners,
}

impl PendingService {
    pub async fn bind(
        name: &'static str,
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Result<Self> {
        let listeners = Listeners::bind(grpc_addr, Some(http_addr)).await?;
        Ok(Self { name, listeners })
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        tracing::warn!(
            service = self.name,
            grpc = %self.listeners.grpc_addr(),
            http = %self.listeners.http_addr().map(|a| a.to_string()).unwrap_or_default(),
            "{} has no features yet: it serves gRPC health and reflection only",
            self.name
        );
        let (router, _health) = grpc::server_with_health();
        self.listeners
            .serve(self.name, router, Default::default(), shutdown)
            .await
    }
}
