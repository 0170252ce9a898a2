//! crm-event-ingest: the one door for events. It validates each event against its
//! type's rules, drops duplicates by id, publishes to `crm.events` and answers only
//! after the broker confirmed.

mod error;
pub mod grpc;
pub mod seen;
pub mod service;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use crm_platform::{
    Shutdown,
    bus::RabbitBus,
    health::Readiness,
    listeners::{Listen, Listeners},
};

pub use error::{Error, Result};
pub use service::Ingestor;
pub use settings::Settings;

use crate::grpc::IngestGrpc;

pub struct Application {
    listeners: Listeners,
    ingestor: Ingestor,
    readiness: Readiness,
}

impl Application {
    /// The production wiring: RabbitMQ and Redis.
    pub async fn build(settings: &Settings) -> Result<Self> {
        let bus = Arc::new(RabbitBus::new(settings.bus.amqp_url.clone()));
        let seen = Arc::new(seen::RedisSeen::new(&settings.redis)?);
        // Without Redis, ids are not checked before the broker (customer-core still
        // applies each once): degraded, not out of service.
        let dedupe = {
            let seen = seen.clone();
            crm_platform::health::probe("redis", false, move || {
                let seen = seen.clone();
                async move { seen.ping().await }
            })
        };
        let listen = settings.listen.listen(settings.internal.load()?);
        let mut app = Self::with_ingestor(Ingestor::new(bus.clone(), seen), listen).await?;
        app.readiness = Readiness::new(vec![crm_platform::bus::broker_probe(bus), dedupe]);
        Ok(app)
    }

    pub async fn with_ingestor(ingestor: Ingestor, listen: Listen) -> Result<Self> {
        Ok(Self {
            listeners: Listeners::bind(listen).await?,
            ingestor,
            readiness: Readiness::default(),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let (router, health) = self.listeners.grpc_server()?;
        health
            .set_serving::<crm_proto::v1::ingest_service_server::IngestServiceServer<IngestGrpc>>()
            .await;
        let router = router.add_service(IngestGrpc::new(self.ingestor).into_server());
        self.listeners
            .serve("event-ingest", router, self.readiness, shutdown)
            .await?;
        Ok(())
    }
}
