//! crm-search-indexer: the customers search index and its query API. It consumes
//! customer-core's `customer.*` events (each carries the snapshot and its version) into
//! the index, answers `SearchService` over gRPC, rebuilds the index from customer-core
//! without downtime, and reports how far behind it is.

pub mod clients;
pub mod consumer;
pub mod error;
pub mod generations;
pub mod grpc;
pub mod index;
pub mod reindex;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use chrono::Utc;
use crm_platform::{
    Shutdown,
    bus::{EventBus, Handler, RabbitBus},
    health::{Readiness, probe, reporting_probe},
    listeners::{Listen, Listeners},
};
use crm_proto::v1::search_service_server::SearchServiceServer;

pub use error::{Error, Result};
pub use settings::Settings;

use crate::{
    clients::CustomerCore,
    consumer::Lag,
    generations::Generations,
    grpc::SearchGrpc,
    index::{IndexCatalog, TantivyCatalog},
    reindex::{CustomerSource, MemoryJobBoard, Reindexer},
    settings::Backend,
};

/// How often the lag gauges of `/metrics` are refreshed.
const LAG_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The adapters behind the service's ports; the standalone binary passes embedded ones.
pub struct Adapters {
    pub bus: Arc<dyn EventBus>,
    pub catalog: Arc<dyn IndexCatalog>,
    pub customers: Arc<dyn CustomerSource>,
    /// This replica's name when it keeps an index of its own (tantivy): it then has a
    /// queue of its own and sees every event (`consumer::config_for`).
    pub replica: Option<String>,
}

/// The name of the replica whose tantivy index lives in `dir`: made once, kept in the
/// directory, so that a restarted replica finds its queue again.
fn replica_of(dir: &std::path::Path) -> Result<String> {
    let file = dir.join("replica-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        return Ok(id.trim().to_owned());
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(&file, &id).map(|()| id)
        })
        .map_err(|e| {
            let reason = format!("cannot keep the replica id in {dir:?}: {e}");
            Error::Platform(crm_platform::Error::Refused(reason))
        })
}

pub struct Application {
    listeners: Listeners,
    adapters: Adapters,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self> {
        let (catalog, replica): (Arc<dyn IndexCatalog>, _) = match settings.search_backend {
            Backend::Tantivy => (
                Arc::new(TantivyCatalog::on_disk(&settings.search_index_dir)),
                Some(replica_of(&settings.search_index_dir)?),
            ),
            Backend::Elasticsearch => (
                Arc::new(index::elasticsearch::ElasticCatalog::new(
                    settings.elasticsearch_url.expose(),
                    &settings.elasticsearch_index,
                )?),
                None,
            ),
        };
        let internal = settings.internal.load()?;
        let adapters = Adapters {
            bus: Arc::new(RabbitBus::new(settings.bus.amqp_url.clone())),
            catalog,
            customers: Arc::new(CustomerCore::new(
                internal.channel(&settings.customer_core_url)?,
            )),
            replica,
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
            catalog,
            customers,
            replica,
        } = self.adapters;
        let (live, mut created) = catalog.open_live().await?;
        let shared_jobs = catalog.shared_jobs();
        let generations = Arc::new(Generations::new(
            live,
            shared_jobs.clone().map(|jobs| (jobs, catalog.clone())),
        ));
        let jobs = shared_jobs.unwrap_or_else(|| Arc::new(MemoryJobBoard::default()));
        let reindexer = Arc::new(Reindexer::new(
            catalog,
            generations.clone(),
            customers,
            jobs,
        ));
        let config = consumer::config_for(replica.as_deref());
        // A replica whose own queue is gone (away longer than the broker kept it) missed
        // events: it rebuilds its index as a new one would.
        if replica.is_some() && !created && !bus.exists(&config.queue).await.unwrap_or(true) {
            tracing::warn!(queue = %config.queue, "this replica's queue is gone; rebuilding its index");
            created = true;
        }
        let lag = Arc::new(Lag::of(&config.queue));
        let snapshots: Arc<dyn Handler> = Arc::new(consumer::Snapshots::new(
            generations.clone(),
            lag.clone(),
            shutdown.clone(),
            config.clone(),
        ));
        let consuming = crm_platform::bus::start_consumers(
            bus.clone(),
            vec![(config, snapshots)],
            shutdown.clone(),
        )
        .await;
        tokio::spawn(consumer::sample_lag(
            lag.clone(),
            bus.clone(),
            LAG_SAMPLE_EVERY,
            shutdown.clone(),
        ));
        if created {
            // A new index (first start, or a lost disk): fill it from customer-core,
            // unless another replica sharing the engine already does.
            match reindexer.start().await {
                Ok(_) | Err(Error::AlreadyRunning(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let (router, health) = self.listeners.grpc_server()?;
        health
            .set_serving::<SearchServiceServer<SearchGrpc>>()
            .await;
        let grpc = SearchGrpc::new(generations.clone(), reindexer);
        let router = router.add_service(SearchServiceServer::new(grpc));
        let engine = probe("search engine", true, move || {
            let live = generations.live();
            async move { live.ping().await.map_err(|e| e.to_string()) }
        });
        // Reported, never a reason to take the indexer out of service.
        let lag = reporting_probe("lag", false, move || {
            let (lag, bus) = (lag.clone(), bus.clone());
            async move {
                let report = lag.report(bus.as_ref(), Utc::now()).await?;
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
        });
        let readiness = Readiness::new(vec![engine, lag]);
        let serving = self
            .listeners
            .serve("search-indexer", router, readiness, shutdown);
        tokio::try_join!(serving, consuming)?;
        Ok(())
    }
}
