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
    listeners::Listeners,
};
use crm_proto::v1::{
    customer_service_client::CustomerServiceClient,
    segmentation_service_server::{SegmentationService, SegmentationServiceServer},
};

pub use settings::Settings;

/// The gRPC contract; its RPCs answer UNIMPLEMENTED until the batch, RFM and
/// recommendations are built.
pub struct SegmentationGrpc;

impl SegmentationService for SegmentationGrpc {}

pub struct Application {
    listeners: Listeners,
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
            listeners: Listeners::bind(grpc_addr, http_addr).await?,
            bus,
            rules,
            customers: CustomerServiceClient::new(customer_core),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners.grpc_addr()
    }

    pub async fn run(self, shutdown: Shutdown) -> crm_platform::Result<()> {
        let config = consumer::config();
        if let Err(error) = self.bus.declare(&config).await {
            tracing::warn!(%error, "cannot declare the segmentation queue yet; the consumer will retry");
        }
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
        let serving = self
            .listeners
            .serve("segmentation", router, Readiness::default(), shutdown);
        tokio::try_join!(serving, consuming)?;
        Ok(())
    }
}
