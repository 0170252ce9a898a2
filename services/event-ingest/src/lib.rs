//! crm-event-ingest: the one door for events. It validates each event against its
//! type's rules, drops duplicates by id, publishes to `crm.events` and answers only
//! after the broker confirmed.

mod error;
pub mod grpc;
pub mod seen;
pub mod service;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use crm_platform::{Shutdown, bus::RabbitBus, health::Readiness};
use tokio::net::TcpListener;

pub use error::{Error, Result};
pub use service::Ingestor;
pub use settings::Settings;

use crate::grpc::IngestGrpc;

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: Option<TcpListener>,
    ingestor: Ingestor,
}

impl Application {
    /// The production wiring: RabbitMQ and Redis.
    pub async fn build(settings: &Settings) -> Result<Self> {
        let bus = Arc::new(RabbitBus::new(settings.amqp_url.clone()));
        let seen = Arc::new(seen::RedisSeen::new(
            &settings.redis_url,
            &settings.redis_key_prefix,
        )?);
        Self::with_ingestor(
            Ingestor::new(bus, seen),
            settings.grpc_addr,
            Some(settings.http_addr),
        )
        .await
    }

    pub async fn with_ingestor(
        ingestor: Ingestor,
        grpc_addr: SocketAddr,
        http_addr: Option<SocketAddr>,
    ) -> Result<Self> {
        let grpc_listener = crm_platform::grpc::bind(grpc_addr).await?;
        let http_listener = crm_platform::grpc::bind_optional(http_addr).await?;
        Ok(Self {
            grpc_listener,
            http_listener,
            ingestor,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let (router, health) = crm_platform::grpc::server_with_health();
        health
            .set_serving::<crm_proto::v1::ingest_service_server::IngestServiceServer<IngestGrpc>>()
            .await;
        let http = self
            .http_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok());
        let http_text = http.map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(grpc = %self.grpc_addr(), http = http_text, "event-ingest listening");
        let router = router.add_service(IngestGrpc::new(self.ingestor).into_server());
        let grpc = crm_platform::grpc::serve(router, self.grpc_listener, shutdown.clone());
        match self.http_listener {
            Some(listener) => {
                let health = crm_platform::health::router(Readiness::default());
                let http = crm_platform::http::serve(listener, health, shutdown);
                tokio::try_join!(grpc, http)?;
            }
            None => grpc.await?,
        }
        Ok(())
    }
}
