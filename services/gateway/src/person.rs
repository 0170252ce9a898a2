//! The person behind a customer record: the 360 view, likely duplicates, merging them,
//! and the personal-data rights (export here; erasure is `DELETE ...?erase=true`).

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use crm_domain::{Customer, CustomerEvent, Order, SupportTicket, TimelineEntry};
use crm_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    customers::decode,
    error::{Error, Problem, Result},
    extract::parse_id,
    extract::{JsonBody, QueryParams},
    paging::nonzero_limit,
    segments::{RecommendationView, RfmView},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct DegradedPart {
    /// recent_orders, recent_activity, support_tickets, rfm or recommendations.
    pub part: String,
    pub reason: String,
}

/// Everything about one customer at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer360View {
    pub customer: Customer,
    /// The 10 most recent, newest first.
    pub recent_orders: Vec<Order>,
    /// The 50 most recent events, newest first.
    pub recent_activity: Vec<CustomerEvent>,
    /// Open ones first, each group newest first.
    pub support_tickets: Vec<SupportTicket>,
    /// Up to 10.
    pub recommendations: Vec<RecommendationView>,
    /// Absent until segmentation has scored the customer.
    pub rfm: Option<RfmView>,
    /// Orders, tickets and other events in one list, newest first.
    pub timeline: Vec<TimelineEntry>,
    /// Parts that failed or missed their deadline (the rest is served): empty when all
    /// is there.
    pub degraded: Vec<DegradedPart>,
}

fn from_core<T, U: TryFrom<T, Error = String>>(items: Vec<T>) -> Result<Vec<U>> {
    items
        .into_iter()
        .map(|item| {
            U::try_from(item)
                .map_err(|e| Error::internal(format!("customer-core sent an unreadable part: {e}")))
        })
        .collect()
}

/// Recommendations in the 360 view.
const RECOMMENDATIONS: u32 = 10;

/// The customer with recent orders and activity, support tickets, RFM score,
/// recommendations and a timeline; a part that fails is listed under `degraded`.
/// customer-core answers for the customer's own parts, segmentation for its two.
#[utoipa::path(
    get, path = "/api/customers/{id}/360", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)")),
    responses(
        (status = 200, description = "The view (see `degraded` for missing parts)", body = Customer360View),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn customer_360(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Customer360View>> {
    let id = parse_id(&id)?;
    let request = v1::GetCustomer360Request { id: id.to_string() };
    let deadline = state.segmentation_deadline;
    let mut customers = state.customers.clone();
    let (view, rfm, recommendations) = tokio::join!(
        customers.get_customer360(request),
        segmentation_part(deadline, rfm_of(&state, id)),
        segmentation_part(deadline, recommended_for(&state, id)),
    );
    let view = view?.into_inner();
    let mut degraded: Vec<DegradedPart> = view
        .degraded
        .into_iter()
        .map(|d| DegradedPart {
            part: d.part,
            reason: d.reason,
        })
        .collect();
    let rfm = kept(&mut degraded, "rfm", rfm);
    let recommendations = kept(&mut degraded, "recommendations", recommendations);
    let customer = view
        .customer
        .ok_or_else(|| Error::internal("customer-core sent a 360 view without the customer"))?;
    Ok(Json(Customer360View {
        customer: decode(customer, "customer-core")?,
        recent_orders: view.recent_orders.into_iter().map(Into::into).collect(),
        recent_activity: from_core(view.recent_activity)?,
        support_tickets: from_core(view.support_tickets)?,
        recommendations: recommendations.into_iter().map(Into::into).collect(),
        rfm: rfm.map(Into::into),
        timeline: from_core(view.timeline)?,
        degraded,
    }))
}

/// A part's answer, or its empty value with the part listed as degraded.
fn kept<T: Default>(
    degraded: &mut Vec<DegradedPart>,
    part: &str,
    got: std::result::Result<T, String>,
) -> T {
    got.unwrap_or_else(|reason| {
        degraded.push(DegradedPart {
            part: part.to_owned(),
            reason,
        });
        T::default()
    })
}

/// One of segmentation's parts under its deadline; the reason it is missing otherwise.
async fn segmentation_part<T>(
    deadline: std::time::Duration,
    fetch: impl std::future::Future<Output = std::result::Result<T, tonic::Status>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(deadline, fetch).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(status)) => Err(segmentation_failed(status)),
        Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
    }
}

/// A reason fit for a client: the status message only when segmentation chose it.
fn segmentation_failed(status: tonic::Status) -> String {
    use tonic::Code;
    match status.code() {
        Code::Unavailable => "segmentation is unavailable".into(),
        Code::DeadlineExceeded => "segmentation did not answer in time".into(),
        Code::InvalidArgument | Code::FailedPrecondition => status.message().to_owned(),
        code => format!("segmentation failed ({code:?})"),
    }
}

/// `None` while segmentation has not scored the customer yet.
async fn rfm_of(
    state: &AppState,
    id: crm_domain::CustomerId,
) -> std::result::Result<Option<v1::RfmScore>, tonic::Status> {
    let request = v1::GetCustomerSegmentRequest {
        customer_id: id.to_string(),
    };
    match state
        .segmentation
        .clone()
        .get_customer_segment(request)
        .await
    {
        Ok(found) => Ok(found.into_inner().rfm),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

async fn recommended_for(
    state: &AppState,
    id: crm_domain::CustomerId,
) -> std::result::Result<Vec<v1::Product>, tonic::Status> {
    let request = v1::GetRecommendationsRequest {
        customer_id: id.to_string(),
        limit: RECOMMENDATIONS,
    };
    match state
        .segmentation
        .clone()
        .get_recommendations(request)
        .await
    {
        Ok(found) => Ok(found.into_inner().products),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(Vec::new()),
        Err(status) => Err(status),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParams {
    /// 1-50 (default 10).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateView {
    pub customer: Customer,
    /// 0-1: how likely the same person.
    pub score: f64,
    /// What matched: same e-mail (ignoring dots and +tags), same phone, same name and
    /// address, same or near-identical name.
    pub evidence: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatesView {
    /// Most likely first.
    pub items: Vec<DuplicateView>,
}

/// Live customers who are likely the same person, with the evidence.
#[utoipa::path(
    get, path = "/api/customers/{id}/duplicates", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)"), DuplicateParams),
    responses(
        (status = 200, description = "Likely duplicates", body = DuplicatesView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn duplicates(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<DuplicateParams>,
) -> Result<Json<DuplicatesView>> {
    let id = parse_id(&id)?;
    let request = v1::FindDuplicatesRequest {
        id: id.to_string(),
        limit: nonzero_limit(params.limit, "must be 1 to 50", "limit out of range")?,
    };
    let found = state
        .customers
        .clone()
        .find_duplicates(request)
        .await?
        .into_inner();
    let items = found
        .candidates
        .into_iter()
        .map(|c| {
            let customer = c.customer.ok_or_else(|| {
                Error::internal("customer-core sent a candidate without customer")
            })?;
            Ok(DuplicateView {
                customer: decode(customer, "customer-core")?,
                score: c.score,
                evidence: c.evidence,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Json(DuplicatesView { items }))
}

/// What to merge into what.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The duplicate that is merged away (UUID).
    pub secondary_id: String,
}

#[derive(Debug, Deserialize, serde::Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MergeParams {
    /// Answer with the merged customer as it would be, changing nothing.
    dry_run: Option<bool>,
}

/// Merge a duplicate into this customer, in one transaction: this customer keeps its
/// id and non-empty fields, the secondary fills the blanks; tags, addresses and
/// preferred categories are united; orders, tickets and events move here; metrics are
/// counted again (segment and RFM follow); the secondary becomes `deleted` with
/// `merged_into` set, and its later events are applied here.
#[utoipa::path(
    post, path = "/api/customers/{id}/merge", tag = "customers",
    request_body = MergeRequest,
    params(("id" = String, Path, description = "The customer who stays (UUID)"), MergeParams,
           ("Idempotency-Key" = Option<String>, Header,
            description = "Makes retries safe: the same key and body within 24 h get the first answer again and merge nothing twice; the same key with another body is a 422")),
    responses(
        (status = 200, description = "The merged customer (as it would be, with dry_run)", body = Customer),
        (status = 400, description = "Malformed id or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Either customer is merged away or deleted already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Merging a customer into itself, or the merged record would break a limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<MergeParams>,
    JsonBody(body): JsonBody<MergeRequest>,
) -> Result<Json<Customer>> {
    let primary = parse_id(&id)?;
    let secondary: crm_domain::CustomerId =
        body.secondary_id.parse().map_err(|message: String| {
            Error::field("secondary_id", message, "the request has invalid fields")
        })?;
    let request = v1::MergeCustomersRequest {
        primary_id: primary.to_string(),
        secondary_id: secondary.to_string(),
        dry_run: params.dry_run.unwrap_or(false),
    };
    let merged = state
        .customers
        .clone()
        .merge_customers(request)
        .await?
        .into_inner();
    let customer = merged
        .merged
        .ok_or_else(|| Error::internal("customer-core sent a merge without the customer"))?;
    Ok(Json(decode(customer, "customer-core")?))
}

/// Everything stored about the person as one JSON document (right of access): the
/// record, records merged into it, orders, tickets, events, product views and the
/// erasure record. Needs the `admin` scope.
#[utoipa::path(
    get, path = "/api/customers/{id}/export", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)")),
    responses(
        (status = 200, description = "The document", body = Object,
         headers(("Content-Disposition" = String, description = "attachment; filename=\"customer-<id>.json\""))),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn export(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let id = parse_id(&id)?;
    let request = v1::ExportCustomerRequest { id: id.to_string() };
    let exported = state
        .customers
        .clone()
        .export_customer(request)
        .await?
        .into_inner();
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        exported.document_json,
    )
        .into_response();
    let disposition = format!("attachment; filename=\"customer-{id}.json\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
