//! Customer search and reindexing, served by crm-search-indexer.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerStatus, Segment};
use crm_proto::{
    convert::{segment_to_proto, status_to_proto, timestamp},
    v1,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    customers::decode,
    error::{Error, Problem, Result},
    extract::{JsonBody, parse_uuid},
    paging::checked_limit,
};

/// A search: free text and filters. Every field is optional: `{}` lists every customer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Free text over e-mail, phone (its last 4+ digits too), first, last and full name;
    /// typos tolerated (one edit for words of 3-5 letters, two for longer).
    #[serde(default)]
    pub query: String,
    pub segment: Option<Segment>,
    /// Deleted customers are only found when this is `deleted`.
    pub status: Option<CustomerStatus>,
    /// Customers with any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Customers created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Hits to skip (offset + limit at most 10,000).
    #[serde(default)]
    pub offset: u32,
    /// 1-100 (default 20).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitView {
    pub customer: Customer,
    /// Relevance; hits come best first, then most recently active.
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Every match, not only this page.
    pub total: u64,
    pub hits: Vec<SearchHitView>,
}

/// Search customers: typo-tolerant text, filters, pages.
#[utoipa::path(
    post, path = "/api/customers/search", tag = "search",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Best first", body = SearchResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (limit, offset, tags, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Search is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search_customers(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<SearchRequest>,
) -> Result<Json<SearchResponse>> {
    let request = v1::SearchCustomersRequest {
        query: request.query,
        segment: request.segment.map(|s| segment_to_proto(s) as i32),
        status: request.status.map(|s| status_to_proto(s) as i32),
        tags: request.tags,
        created_after: request.created_after.map(timestamp),
        offset: request.offset,
        limit: checked_limit(request.limit)?,
    };
    let found = state
        .search
        .clone()
        .search_customers(request)
        .await?
        .into_inner();
    let hits = found
        .hits
        .into_iter()
        .map(|hit| {
            let customer = hit
                .customer
                .ok_or_else(|| Error::internal("the search indexer sent a hit without customer"))?;
            let customer = decode(customer, "the search indexer")?;
            Ok(SearchHitView {
                customer,
                score: hit.score,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Json(SearchResponse {
        total: found.total,
        hits,
    }))
}

/// Rebuild the search index from customer-core; searches keep answering meanwhile and
/// read the new index once it is complete.
#[utoipa::path(
    post, path = "/api/search/reindex", tag = "search",
    responses(
        (status = 202, description = "Started; follow the Location", body = crm_domain::Job,
         headers(("Location" = String, description = "/api/search/reindex/{id}"))),
        (status = 409, description = "A reindex is already running (its id in the detail)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_reindex(State(state): State<AppState>) -> Result<Response> {
    let job = state
        .search
        .clone()
        .reindex(v1::ReindexRequest {})
        .await?
        .into_inner();
    crate::jobs::started("/api/search/reindex", job, "search-indexer")
}

/// A reindex's progress.
#[utoipa::path(
    get, path = "/api/search/reindex/{id}", tag = "search",
    params(("id" = String, Path, description = "Job id (UUID)")),
    responses(
        (status = 200, description = "The job", body = crm_domain::Job),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown job (or the indexer restarted since)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reindex_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crm_domain::Job>> {
    let id = parse_uuid(&id, "a job id")?;
    let job = state
        .search
        .clone()
        .get_reindex_job(v1::GetReindexJobRequest { id: id.to_string() })
        .await?
        .into_inner();
    Ok(Json(crate::jobs::decode(job, "search-indexer")?))
}
