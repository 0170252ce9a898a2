//! crm-segmentation: lifecycle segments (the rules of `crm_domain::segmentation`), RFM scores and
//! recommendations. It keeps its own projection of customer-core's snapshots, recomputes
//! a customer's segment and RFM on every change, recomputes everyone in a set-based
//! batch on a schedule, and stores changed segments through customer-core.

pub mod batch;
pub mod clients;
pub mod consumer;
pub mod error;
pub mod grpc;
pub mod recommend;
pub mod settings;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crm_domain::segmentation::SegmentConfig;
use crm_platform::{
    Shutdown,
    bus::{EventBus, Handler, RabbitBus},
    health::{Readiness, probe},
    listeners::{Listen, Listeners},
};
use crm_proto::v1::segmentation_service_server::SegmentationServiceServer;

pub use error::{Error, Result};
pub use settings::Settings;

use crate::{
    batch::Batch,
    clients::CustomerCoreWriter,
    grpc::SegmentationGrpc,
    store::{PostgresStore, SegmentStore},
};

/// The adapters behind the service's ports; the standalone binary passes embedded ones.
pub struct Adapters {
    pub bus: Arc<dyn EventBus>,
    pub store: Arc<dyn SegmentStore>,
    /// customer-core, which stores changed segments.
    pub customer_core: crm_platform::grpc::InternalChannel,
    pub rules: SegmentConfig,
    pub recompute_every: Option<Duration>,
}

pub struct Application {
    listeners: Listeners,
    adapters: Adapters,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self> {
        let store = PostgresStore::connect(
            settings.database.database_url.expose(),
            settings.database.limits(),
            Duration::from_millis(settings.recompute_statement_timeout_ms),
        )
        .await?;
        let internal = settings.internal.load()?;
        let adapters = Adapters {
            bus: Arc::new(RabbitBus::new(settings.bus.amqp_url.clone())),
            store: Arc::new(store),
            customer_core: internal.channel(&settings.customer_core_url)?,
            rules: settings.rules(),
            recompute_every: settings.recompute_every(),
        };
        Self::with_adapters(adapters, settings.listen.listen(internal)).await
    }

    pub async fn with_adapters(adapters: Adapters, listen: Listen) -> Result<Self> {
        Ok(Self {
            listeners: Listeners::bind(listen).await?,
            adapters,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let Adapters {
            bus,
            store,
            customer_core,
            rules,
            recompute_every,
        } = self.adapters;
        let writer = Arc::new(CustomerCoreWriter::new(customer_core));
        let batch = Arc::new(Batch::new(store.clone(), writer.clone(), rules.clone()));
        let snapshots: Arc<dyn Handler> =
            Arc::new(consumer::Snapshots::new(store.clone(), writer, rules));
        let activity: Arc<dyn Handler> = Arc::new(consumer::Activity::new(store.clone()));
        let consumers = vec![
            (consumer::customers_config(), snapshots),
            (consumer::activity_config(), activity),
        ];
        // Without the broker no change reaches segmentation, but what it has still answers.
        let broker = crm_platform::bus::broker_probe(bus.clone());
        let consuming = crm_platform::bus::start_consumers(bus, consumers, shutdown.clone()).await;
        if let Some(every) = recompute_every {
            tokio::spawn(batch.clone().run_every(every, shutdown.clone()));
        }
        let (router, health) = self.listeners.grpc_server()?;
        health
            .set_serving::<SegmentationServiceServer<SegmentationGrpc>>()
            .await;
        let grpc = SegmentationGrpc::new(store.clone(), batch);
        let router = router.add_service(SegmentationServiceServer::new(grpc));
        let database = probe("database", true, move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        });
        let readiness = Readiness::new(vec![database, broker]);
        let serving = self
            .listeners
            .serve("segmentation", router, readiness, shutdown);
        tokio::try_join!(serving, consuming)?;
        Ok(())
    }
}
