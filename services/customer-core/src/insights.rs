//! What the 360 view asks segmentation for: the RFM score and recommendations. A port,
//! so the view can be tested with a part that fails, and an adapter over gRPC.

use std::sync::OnceLock;

use async_trait::async_trait;
use crm_domain::CustomerId;
use crm_platform::grpc::InternalChannel;
use crm_proto::v1::{self, segmentation_service_client::SegmentationServiceClient};
use tonic::Code;

/// Errors are the reason shown under `degraded`: short, nothing internal.
#[async_trait]
pub trait Insights: Send + Sync {
    /// `None` while segmentation has not scored the customer yet.
    async fn rfm(&self, id: CustomerId) -> Result<Option<v1::RfmScore>, String>;

    async fn recommendations(&self, id: CustomerId, limit: u32)
    -> Result<Vec<v1::Product>, String>;
}

/// No segmentation service configured: both parts are degraded, saying so.
pub struct NotConfigured;

const NOT_CONFIGURED: &str = "segmentation is not configured (CRM_SEGMENTATION_URL)";

#[async_trait]
impl Insights for NotConfigured {
    async fn rfm(&self, _: CustomerId) -> Result<Option<v1::RfmScore>, String> {
        Err(NOT_CONFIGURED.into())
    }

    async fn recommendations(&self, _: CustomerId, _: u32) -> Result<Vec<v1::Product>, String> {
        Err(NOT_CONFIGURED.into())
    }
}

/// The segmentation service over gRPC. Connected once its address is known: in `crm`
/// segmentation starts after customer-core, since it needs customer-core's address.
#[derive(Default)]
pub struct Segmentation {
    channel: OnceLock<InternalChannel>,
}

impl Segmentation {
    pub fn connected(url: &str) -> crm_platform::Result<Self> {
        let segmentation = Self::default();
        segmentation.connect(url)?;
        Ok(segmentation)
    }

    /// Sets the address; later calls keep the first.
    pub fn connect(&self, url: &str) -> crm_platform::Result<()> {
        let _ = self.channel.set(crm_platform::grpc::channel(url)?);
        Ok(())
    }

    fn client(&self) -> Result<SegmentationServiceClient<InternalChannel>, String> {
        let channel = self
            .channel
            .get()
            .ok_or("segmentation has not started yet")?;
        Ok(SegmentationServiceClient::new(channel.clone()))
    }
}

/// A reason fit for a client: the status message only when segmentation chose it.
fn reason(status: tonic::Status) -> String {
    match status.code() {
        Code::Unavailable => "segmentation is unavailable".into(),
        Code::DeadlineExceeded => "segmentation did not answer in time".into(),
        Code::InvalidArgument | Code::FailedPrecondition => status.message().to_owned(),
        code => format!("segmentation failed ({code:?})"),
    }
}

#[async_trait]
impl Insights for Segmentation {
    async fn rfm(&self, id: CustomerId) -> Result<Option<v1::RfmScore>, String> {
        let request = v1::GetCustomerSegmentRequest {
            customer_id: id.to_string(),
        };
        match self.client()?.get_customer_segment(request).await {
            Ok(found) => Ok(found.into_inner().rfm),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(reason(status)),
        }
    }

    async fn recommendations(
        &self,
        id: CustomerId,
        limit: u32,
    ) -> Result<Vec<v1::Product>, String> {
        let request = v1::GetRecommendationsRequest {
            customer_id: id.to_string(),
            limit,
        };
        match self.client()?.get_recommendations(request).await {
            Ok(found) => Ok(found.into_inner().products),
            Err(status) if status.code() == Code::NotFound => Ok(Vec::new()),
            Err(status) => Err(reason(status)),
        }
    }
}
