//! crm-customer-core: the system of record for customers, served over gRPC.
//!
//! `Application::build` wires the production adapters (PostgreSQL, Redis);
//! `Application::with_service` takes any adapters (the standalone binary uses SQLite and
//! an in-process cache).

pub mod consumer;
mod error;
pub mod freshness;
pub mod grpc;
pub mod import;
pub mod outbox;
pub mod person;
mod reads;
pub mod repo;
pub mod service;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use crm_platform::{
    Shutdown,
    bus::{EventBus, Handler, RabbitBus},
    cache::{RedisCache, VersionedCache},
    health::{Probe, Readiness, probe},
    listeners::{Listen, Listeners},
};

pub use error::{Error, Result};
pub use service::CustomerService;
pub use settings::Settings;

use crate::grpc::CustomerGrpc;

pub struct Application {
    listeners: Listeners,
    service: CustomerService,
    bus: Arc<dyn EventBus>,
    readiness: Readiness,
}

impl Application {
    /// The production wiring: PostgreSQL (migrated at start), Redis and RabbitMQ.
    pub async fn build(settings: &Settings) -> Result<Self> {
        let repo = repo::PostgresRepository::connect(
            settings.database.database_url.expose(),
            settings.database.limits(),
        )
        .await?;
        let cache = Arc::new(RedisCache::new(settings.redis.cache())?);
        let freshness = freshness::Freshness::shared(repo.pool().clone(), cache.clone());
        let service = CustomerService::new(Arc::new(repo), cache.clone())
            .with_freshness(freshness)
            .with_view_deadlines(settings.view_deadlines());
        // Redis is optional for correctness: reported by `/readyz`, never blocking it.
        let cache_probe = probe("redis", false, move || {
            let cache = cache.clone();
            async move { cache.ping().await }
        });
        let bus = Arc::new(RabbitBus::new(settings.bus.amqp_url.clone()));
        let broker_probe = crm_platform::bus::broker_probe(bus.clone());
        let listen = settings.listen.listen(settings.internal.load()?);
        Self::with_service(service, bus, listen, vec![cache_probe, broker_probe]).await
    }

    /// Binds the listeners (port 0 picks a free port) around a ready service.
    pub async fn with_service(
        service: CustomerService,
        bus: Arc<dyn EventBus>,
        listen: Listen,
        mut probes: Vec<Arc<dyn Probe>>,
    ) -> Result<Self> {
        let repo = service.repository();
        probes.push(probe("database", true, move || {
            let repo = repo.clone();
            async move { repo.ping().await.map_err(|e| e.to_string()) }
        }));
        Ok(Self {
            listeners: Listeners::bind(listen).await?,
            service,
            bus,
            readiness: Readiness::new(probes),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves gRPC (and HTTP health) and consumes events until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let relay = outbox::relay(
            self.service.repository(),
            self.bus.clone(),
            self.service.outbox_signal(),
            shutdown.clone(),
        );
        let freshness = self.service.freshness().run(shutdown.clone());
        let relaying = async {
            tokio::join!(relay, freshness);
            Ok::<_, Error>(())
        };
        let activity: Arc<dyn Handler> =
            Arc::new(consumer::ActivityConsumer::new(self.service.clone()));
        let consuming = crm_platform::bus::start_consumers(
            self.bus.clone(),
            vec![(consumer::config(), activity)],
            shutdown.clone(),
        )
        .await;
        let consuming = async { Ok::<_, Error>(consuming.await?) };
        let (router, health) = self.listeners.grpc_server()?;
        health
            .set_serving::<crm_proto::v1::customer_service_server::CustomerServiceServer<CustomerGrpc>>()
            .await;
        let router = router.add_service(CustomerGrpc::new(self.service).into_server());
        let serving = async {
            let serve =
                self.listeners
                    .serve("customer-core", router, self.readiness, shutdown.clone());
            Ok::<_, Error>(serve.await?)
        };
        tokio::try_join!(serving, consuming, relaying)?;
        Ok(())
    }
}
