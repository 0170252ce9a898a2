//! `crm`: the whole platform in one process on embedded storage (SQLite, an in-process
//! cache), so trying it needs nothing but Rust. The services talk gRPC over loopback
//! exactly as in the distributed mode, so both modes run the same code.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::Parser;
use crm_customer_core::{CustomerService, repo::SqliteRepository};
use crm_event_ingest::{Ingestor, seen::MemorySeen};
use crm_platform::{
    Shutdown, cache::MemoryCache, internal_auth::InternalAuthSettings, listeners::Listen,
};

/// Entries the in-process cache holds at most.
const CACHE_CAPACITY: u64 = 100_000;

pub mod import;
pub mod journal;

/// `crm` starts the platform; `crm import FILE` feeds a running one.
#[derive(Debug, Parser)]
#[command(
    name = "crm",
    version,
    about = "The CRM customer platform in one process"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start the platform (what `crm` alone does).
    Serve(Config),
    /// Import customers from a CSV or NDJSON file into a running platform.
    Import(import::ImportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the REST API.
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite database lives.
    #[arg(long, env = "CRM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

pub struct Standalone {
    core: crm_customer_core::Application,
    ingest: crm_event_ingest::Application,
    segmentation: crm_segmentation::Application,
    search: crm_search_indexer::Application,
    gateway: crm_gateway::Application,
}

impl Standalone {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let internal_settings =
            crm_platform::settings::load::<InternalAuthSettings>()?.kept_to_this_process();
        let internal = internal_settings.load()?;
        // Every part listens on loopback and serves no HTTP of its own.
        let listen = Listen {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: None,
            internal: internal.clone(),
        };
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {:?}", config.data_dir))?;
        let database = config.data_dir.join("crm.db");
        let repo = SqliteRepository::open(&database)
            .await
            .with_context(|| format!("cannot open {database:?}"))?;
        let cache = Arc::new(MemoryCache::new(CACHE_CAPACITY));
        // The 360 view's deadlines from the environment, as distributed.
        let core_settings: crm_customer_core::Settings = crm_platform::settings::load()?;
        let service = CustomerService::new(Arc::new(repo), cache)
            .with_view_deadlines(core_settings.view_deadlines());
        let bus_journal = config.data_dir.join("bus.db");
        let bus = Arc::new(
            journal::JournaledBus::open(&bus_journal)
                .await
                .with_context(|| format!("cannot open {bus_journal:?}"))?,
        );
        let core = crm_customer_core::Application::with_service(
            service,
            bus.clone(),
            listen.clone(),
            vec![],
        )
        .await?;
        // The segment rules and schedule come from the environment as in the
        // distributed mode.
        let segmentation_settings: crm_segmentation::Settings = crm_platform::settings::load()?;
        let segments_db = config.data_dir.join("segmentation.db");
        let segment_store = crm_segmentation::store::SqliteStore::open(&segments_db)
            .await
            .with_context(|| format!("cannot open {segments_db:?}"))?;
        let parts = crm_segmentation::Adapters {
            bus: bus.clone(),
            store: Arc::new(segment_store),
            customer_core: internal.channel(&format!("http://{}", core.grpc_addr()))?,
            rules: segmentation_settings.rules(),
            recompute_every: segmentation_settings.recompute_every(),
        };
        let segmentation =
            crm_segmentation::Application::with_adapters(parts, listen.clone()).await?;
        let search_parts = crm_search_indexer::Adapters {
            bus: bus.clone(),
            catalog: Arc::new(crm_search_indexer::index::TantivyCatalog::on_disk(
                config.data_dir.join("search"),
            )),
            customers: Arc::new(crm_search_indexer::clients::CustomerCore::new(
                internal.channel(&format!("http://{}", core.grpc_addr()))?,
            )),
            // One process: one index, one queue.
            replica: None,
        };
        let search =
            crm_search_indexer::Application::with_adapters(search_parts, listen.clone()).await?;
        let ingestor = Ingestor::new(bus, Arc::new(MemorySeen::new(CACHE_CAPACITY)));
        let ingest = crm_event_ingest::Application::with_ingestor(ingestor, listen).await?;
        let gateway_settings = crm_gateway::Settings {
            http_addr: config.listen,
            customer_core_url: format!("http://{}", core.grpc_addr()),
            event_ingest_url: format!("http://{}", ingest.grpc_addr()),
            segmentation_url: format!("http://{}", segmentation.grpc_addr()),
            search_indexer_url: format!("http://{}", search.grpc_addr()),
            // Without credentials, open, but only on loopback.
            open_on_loopback: true,
            internal: internal_settings,
            // The rest (CORS origins, credentials, limits) from the environment, as in
            // the distributed mode.
            ..crm_platform::settings::load::<crm_gateway::Settings>()?
        };
        let gateway = crm_gateway::Application::build(&gateway_settings, core.readiness())
            .await
            .context("cannot start the REST API")?;
        Ok(Self {
            core,
            ingest,
            segmentation,
            search,
            gateway,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        tracing::info!(http = %self.local_addr(), "crm listening");
        let core = async { anyhow::Ok(self.core.run(shutdown.clone()).await?) };
        let ingest = async { anyhow::Ok(self.ingest.run(shutdown.clone()).await?) };
        let segmentation = async { anyhow::Ok(self.segmentation.run(shutdown.clone()).await?) };
        let search = async { anyhow::Ok(self.search.run(shutdown.clone()).await?) };
        let gateway = async { anyhow::Ok(self.gateway.run(shutdown.clone()).await?) };
        tokio::try_join!(core, ingest, segmentation, search, gateway)?;
        Ok(())
    }
}
