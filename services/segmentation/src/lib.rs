//! crm-segmentation: rule segments (the seed's segmenter), and later RFM scores and
//! recommendations. Today it recomputes a customer's segment whenever customer-core
//! announces a change, and stores a changed segment through customer-core.

pub mod consumer;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use crm_domain::segmentation::SegmentConfig;
use crm_platform::{
    Shutdown,
    bus::{EventBus, RabbitBus},
    health::Readiness,
};
use crm_proto::v1::{
    customer_service_client::CustomerServiceClient,
    segmentation_service_server::{SegmentationService, SegmentationServiceServer},
};
use tokio::net::TcpListener;

pub use settings::Settings;

/// The gRPC contract; its RPCs answer UNIMPLEMENTED until the batch, RFM and
/// recommendations are built.
pub struct SegmentationGrpc;

impl SegmentationService for SegmentationGrpc {}

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: Option<TcpListener>,
    bus: Arc<dyn EventBus>,
    rules: SegmentConfig,
    customers: CustomerServiceClient<tonic::transport::Channel>,
}

impl Application {
    pub async fn build(settings: &Settings) -> crm_platform::Result<Self> {
        let bus = Arc::new(RabbitBus::new(settings.amqp_url.clone()));
        let customer_core = crm_platform::grpc::channel(&settings.customer_core_url)?;
        Self::with_bus(
            bus,
            customer_core,
            settings.rules(),
            settings.grpc_addr,
            Some(settings.http_addr),
        )
        .await
    }

    pub async fn with_bus(
        bus: Arc<dyn EventBus>,
        customer_core: tonic::transport::Channel,
        rules: SegmentConfig,
        grpc_addr: SocketAddr,
        http_addr: Option<SocketAddr>,
    ) -> crm_platform::Result<Self> {
        Ok(Self {
            grpc_listener: crm_platform::grpc::bind(grpc_addr).await?,
            http_listener: crm_platform::grpc::bind_optional(http_addr).await?,
            bus,
            rules,
            customers: CustomerServiceClient::new(customer_core),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub async fn run(self, shutdown: Shutdown) -> crm_platform::Result<()> {
        let config = consumer::config();
        if let Err(error) = self.bus.declare(&config).await {
            tracing::warn!(%error, "cannot declare the segmentation queue yet; the consumer will retry");
        }
        let http = self
            .http_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok());
        let http_text = http.map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(grpc = %self.grpc_addr(), http = http_text, "segmentation listening");
        let (router, health) = crm_platform::grpc::server_with_health();
        health
            .set_serving::<SegmentationServiceServer<SegmentationGrpc>>()
            .await;
        let router = router.add_service(SegmentationServiceServer::new(SegmentationGrpc));
        let recompute = Arc::new(consumer::Recompute::new(self.rules, self.customers));
        let consuming = {
            let (bus, shutdown) = (self.bus.clone(), shutdown.clone());
            async move {
                bus.consume(config, recompute, shutdown)
                    .await
                    .map_err(|e| crm_platform::Error::Serve(e.to_string()))
            }
        };
        let grpc = crm_platform::grpc::serve(router, self.grpc_listener, shutdown.clone());
        let http = async {
            if let Some(listener) = self.http_listener {
                let health = crm_platform::health::router(Readiness::default());
                crm_platform::http::serve(listener, health, shutdown).await?;
            }
            Ok(())
        };
        tokio::try_join!(grpc, http, consuming)?;
        Ok(())
    }
}
