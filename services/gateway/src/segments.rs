//! Segments, RFM scores and recommendations, kept by crm-segmentation.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use crm_domain::Segment;
use crm_proto::{
    convert::{datetime, segment_from_proto},
    v1,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{Problem, Result},
    extract::parse_id,
    extract::{QueryParams, parse_uuid},
    paging::nonzero_limit,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct RfmView {
    /// 1-5, 5 = ordered most recently.
    pub recency: i32,
    /// 1-5, 5 = most orders.
    pub frequency: i32,
    /// 1-5, 5 = spent most.
    pub monetary: i32,
    /// champions, loyal, potential_loyalist, new, promising, needs_attention,
    /// about_to_sleep, at_risk, cannot_lose, hibernating or lost.
    pub segment: String,
}

impl From<v1::RfmScore> for RfmView {
    fn from(rfm: v1::RfmScore) -> Self {
        Self {
            recency: rfm.recency,
            frequency: rfm.frequency,
            monetary: rfm.monetary,
            segment: rfm.segment_name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSegmentView {
    pub customer_id: String,
    pub segment: Option<Segment>,
    /// The customer version segmentation has seen last: compare with the customer's
    /// `version` to know whether it is up to date (0: none yet; the segment is then
    /// customer-core's).
    pub version: i64,
    /// Absent until a recompute has computed the RFM bounds of the base.
    pub rfm: Option<RfmView>,
    /// When the RFM scores were computed.
    pub computed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentCountsView {
    /// Live customers per rule segment.
    pub by_segment: BTreeMap<String, u64>,
    /// Live customers per RFM segment (scored ones).
    pub by_rfm_segment: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationView {
    pub product_id: String,
    /// Higher first: co-occurrence weight, or units sold for best sellers.
    pub score: f64,
    /// e.g. "bought together with p-42", "best seller in shoes".
    pub reason: String,
}

impl From<v1::Product> for RecommendationView {
    fn from(p: v1::Product) -> Self {
        Self {
            product_id: p.product_id,
            score: p.score,
            reason: p.reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationsView {
    pub items: Vec<RecommendationView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendationParams {
    /// 1-10 (default 10).
    limit: Option<u32>,
}

/// A customer's rule segment and RFM scores.
#[utoipa::path(
    get, path = "/api/customers/{id}/segment", tag = "segments",
    params(("id" = String, Path, description = "Customer id (UUID)")),
    responses(
        (status = 200, description = "Segment and RFM", body = CustomerSegmentView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted customer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn customer_segment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerSegmentView>> {
    let id = parse_id(&id)?;
    let request = v1::GetCustomerSegmentRequest {
        customer_id: id.to_string(),
    };
    let found = match state
        .segmentation
        .clone()
        .get_customer_segment(request)
        .await
    {
        Ok(found) => found.into_inner(),
        // Segmentation has not seen the customer's first snapshot yet: what customer-core
        // knows is the answer (its segment; no RFM, and version 0: nothing seen yet).
        Err(status) if status.code() == tonic::Code::NotFound => {
            let customer = known_customer(&state, id).await?;
            return Ok(Json(CustomerSegmentView {
                customer_id: customer.id.to_string(),
                segment: Some(customer.segment),
                version: 0,
                rfm: None,
                computed_at: None,
            }));
        }
        Err(status) => return Err(status.into()),
    };
    Ok(Json(CustomerSegmentView {
        customer_id: found.customer_id,
        segment: segment_from_proto(found.segment),
        version: found.version,
        computed_at: datetime(found.computed_at.as_ref()),
        rfm: found.rfm.map(Into::into),
    }))
}

/// How many customers are in each segment and RFM segment.
#[utoipa::path(
    get, path = "/api/segments", tag = "segments",
    responses((status = 200, description = "Counts", body = SegmentCountsView))
)]
pub async fn segment_counts(State(state): State<AppState>) -> Result<Json<SegmentCountsView>> {
    let counts = state
        .segmentation
        .clone()
        .get_segment_counts(v1::GetSegmentCountsRequest {})
        .await?
        .into_inner();
    Ok(Json(SegmentCountsView {
        by_segment: counts.by_segment.into_iter().collect(),
        by_rfm_segment: counts.by_rfm_segment.into_iter().collect(),
    }))
}

/// Start recomputing every customer's segment and RFM (the scheduled batch, now).
#[utoipa::path(
    post, path = "/api/segments/recompute", tag = "segments",
    responses(
        (status = 202, description = "Started; follow the Location", body = crm_domain::Job,
         headers(("Location" = String, description = "/api/segments/jobs/{id}"))),
        (status = 409, description = "A recompute is already running (its id in the detail)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_recompute(State(state): State<AppState>) -> Result<Response> {
    let job = state
        .segmentation
        .clone()
        .start_recompute(v1::StartRecomputeRequest {})
        .await?
        .into_inner();
    crate::jobs::started("/api/segments/jobs", job, "segmentation")
}

/// A recompute's progress.
#[utoipa::path(
    get, path = "/api/segments/jobs/{id}", tag = "segments",
    params(("id" = String, Path, description = "Job id (UUID)")),
    responses(
        (status = 200, description = "The job", body = crm_domain::Job),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn recompute_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crm_domain::Job>> {
    let id = parse_uuid(&id, "a job id")?;
    let job = state
        .segmentation
        .clone()
        .get_recompute_job(v1::GetRecomputeJobRequest { id: id.to_string() })
        .await?
        .into_inner();
    Ok(Json(crate::jobs::decode(job, "segmentation")?))
}

/// Up to 10 products for a customer, each with why.
#[utoipa::path(
    get, path = "/api/customers/{id}/recommendations", tag = "segments",
    params(("id" = String, Path, description = "Customer id (UUID)"), RecommendationParams),
    responses(
        (status = 200, description = "Best first", body = RecommendationsView),
        (status = 400, description = "Malformed id or query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn recommendations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<RecommendationParams>,
) -> Result<Json<RecommendationsView>> {
    let id = parse_id(&id)?;
    let request = v1::GetRecommendationsRequest {
        customer_id: id.to_string(),
        limit: nonzero_limit(params.limit, "must be 1 to 10", "limit out of range")?,
    };
    let found = state
        .segmentation
        .clone()
        .get_recommendations(request)
        .await?
        .into_inner();
    // Best sellers for a customer segmentation has not seen yet, only if customer-core
    // knows the customer (else 404).
    if !found.customer_seen {
        known_customer(&state, id).await?;
    }
    let items = found.products.into_iter().map(Into::into).collect();
    Ok(Json(RecommendationsView { items }))
}

/// The customer as customer-core has it: 404 when unknown or deleted.
async fn known_customer(
    state: &AppState,
    id: crm_domain::CustomerId,
) -> Result<crm_domain::Customer> {
    let request = v1::GetCustomerRequest { id: id.to_string() };
    let customer = state
        .customers
        .clone()
        .get_customer(request)
        .await?
        .into_inner();
    let customer = crate::customers::decode(customer, "customer-core")?;
    if customer.is_deleted() {
        return Err(crate::error::Error::Service(
            crm_proto::status::ServiceError::new(
                crm_proto::status::ErrorKind::NotFound,
                format!("customer {id} is deleted"),
            ),
        ));
    }
    Ok(customer)
}
