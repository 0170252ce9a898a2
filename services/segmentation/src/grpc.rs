//! `SegmentationService` over gRPC.

use std::sync::Arc;

use chrono::Utc;
use crm_domain::{CustomerId, ValidationErrors};
use crm_proto::{
    convert::{segment_to_proto, timestamp},
    v1::{self, segmentation_service_server::SegmentationService},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{Error, batch::Batch, recommend::recommend, store::SegmentStore};

pub struct SegmentationGrpc {
    store: Arc<dyn SegmentStore>,
    batch: Arc<Batch>,
}

impl SegmentationGrpc {
    pub fn new(store: Arc<dyn SegmentStore>, batch: Arc<Batch>) -> Self {
        Self { store, batch }
    }
}

fn parse_id<T: From<Uuid>>(field: &str, raw: &str) -> Result<T, Error> {
    Uuid::parse_str(raw.trim())
        .map(T::from)
        .map_err(|_| ValidationErrors::single(field, "must be a UUID").into())
}

#[tonic::async_trait]
impl SegmentationService for SegmentationGrpc {
    async fn get_customer_segment(
        &self,
        request: Request<v1::GetCustomerSegmentRequest>,
    ) -> Result<Response<v1::CustomerSegment>, Status> {
        let id: CustomerId = parse_id("customer_id", &request.into_inner().customer_id)?;
        let profile = self
            .store
            .profile(id)
            .await?
            .filter(|p| !p.deleted)
            .ok_or(Error::NotFound(id))?;
        // Scores the last batch found unchanged kept their time; the batch's time says
        // they still hold.
        let bounds_at = self.store.bounds().await?.map(|b| b.computed_at);
        let rfm = profile.rfm.map(|rfm| v1::RfmScore {
            recency: rfm.score.recency.into(),
            frequency: rfm.score.frequency.into(),
            monetary: rfm.score.monetary.into(),
            segment_name: rfm.segment.as_str().into(),
            computed_at: Some(timestamp(
                bounds_at.map_or(rfm.computed_at, |at| at.max(rfm.computed_at)),
            )),
        });
        Ok(Response::new(v1::CustomerSegment {
            customer_id: id.to_string(),
            segment: segment_to_proto(profile.segment) as i32,
            version: profile.version,
            computed_at: rfm.as_ref().and_then(|r| r.computed_at),
            rfm,
        }))
    }

    async fn get_segment_counts(
        &self,
        _: Request<v1::GetSegmentCountsRequest>,
    ) -> Result<Response<v1::SegmentCounts>, Status> {
        let counts = self.store.counts().await?;
        Ok(Response::new(v1::SegmentCounts {
            by_segment: counts.by_segment.into_iter().collect(),
            by_rfm_segment: counts.by_rfm_segment.into_iter().collect(),
        }))
    }

    async fn start_recompute(
        &self,
        _: Request<v1::StartRecomputeRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let job = self.batch.start().await?;
        Ok(Response::new(job.into()))
    }

    async fn get_recompute_job(
        &self,
        request: Request<v1::GetRecomputeJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let id: Uuid = parse_id("id", &request.into_inner().id)?;
        let job = self.store.job(id).await?.ok_or(Error::JobNotFound(id))?;
        Ok(Response::new(job.into()))
    }

    async fn get_recommendations(
        &self,
        request: Request<v1::GetRecommendationsRequest>,
    ) -> Result<Response<v1::Recommendations>, Status> {
        let request = request.into_inner();
        let id: CustomerId = parse_id("customer_id", &request.customer_id)?;
        let picked = recommend(self.store.as_ref(), id, request.limit, Utc::now()).await?;
        let products = picked
            .products
            .into_iter()
            .map(|r| v1::Product {
                product_id: r.product_id,
                score: r.score,
                reason: r.reason,
            })
            .collect();
        Ok(Response::new(v1::Recommendations {
            products,
            customer_seen: picked.customer_seen,
        }))
    }
}
