//! `/api/customers`: the customer record over REST, served by customer-core over gRPC.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use crm_domain::{Customer, CustomerDraft, CustomerPatch};
use crm_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{Error, Problem, Result},
    extract::QueryParams,
    extract::{JsonBody, parse_id},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    pub items: Vec<Customer>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a number is a valid header")
}

/// The version an `If-Match` / `If-None-Match` header names; `None` for `*` or absent.
fn version_precondition(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<i64>> {
    let Some(value) = headers.get(&name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            Error::Malformed(format!("{name} must be an ETag of this API, such as \"3\""))
        })
}

/// A customer from a service (`from`); one that does not parse is that service's bug
/// (500).
pub(crate) fn decode(customer: v1::Customer, from: &str) -> Result<Customer> {
    Customer::try_from(customer)
        .map_err(|e| Error::internal(format!("{from} sent an unreadable customer: {e}")))
}

fn customer_response(status: StatusCode, customer: v1::Customer) -> Result<Response> {
    let customer = decode(customer, "customer-core")?;
    let mut response = (status, Json(&customer)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(customer.version));
    if status == StatusCode::CREATED {
        let location = format!("/api/customers/{}", customer.id);
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

/// Create a customer: status `active`, segment `new`, version 1.
#[utoipa::path(
    post, path = "/api/customers", tag = "customers",
    request_body = CustomerDraft,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Makes retries safe: the same key and body within 24 h get the first answer again (with `Idempotent-Replayed: true`) and create nothing; the same key with another body is a 422")),
    responses(
        (status = 201, description = "Created", body = Customer,
         headers(("Location" = String, description = "The new customer's URL"),
                 ("ETag" = String, description = "The version, e.g. \"1\""))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "E-mail already used, or the first request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_customer(
    State(state): State<AppState>,
    JsonBody(draft): JsonBody<CustomerDraft>,
) -> Result<Response> {
    let request = v1::CreateCustomerRequest {
        customer: Some(draft.into()),
    };
    let customer = state
        .customers
        .clone()
        .create_customer(request)
        .await?
        .into_inner();
    customer_response(StatusCode::CREATED, customer)
}

/// Read a customer (deleted ones too, with status `deleted`).
#[utoipa::path(
    get, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag; 304 when unchanged")),
    responses(
        (status = 200, description = "The customer", body = Customer,
         headers(("ETag" = String, description = "The version, e.g. \"3\""))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let request = v1::GetCustomerRequest { id: id.to_string() };
    let customer = state
        .customers
        .clone()
        .get_customer(request)
        .await?
        .into_inner();
    if version_precondition(&headers, header::IF_NONE_MATCH)? == Some(customer.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response
            .headers_mut()
            .insert(header::ETAG, etag(customer.version));
        return Ok(response);
    }
    customer_response(StatusCode::OK, customer)
}

/// Change a customer with a JSON merge patch (RFC 7396).
#[utoipa::path(
    patch, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)"),
           ("If-Match" = Option<String>, Header, description = "The ETag read; 412 when stale")),
    request_body(content = CustomerPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed customer", body = Customer,
         headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "E-mail already used, or the customer is deleted", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<CustomerPatch>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let request = v1::UpdateCustomerRequest {
        id: id.to_string(),
        patch: Some(patch.into()),
        expected_version: version_precondition(&headers, header::IF_MATCH)?,
    };
    let customer = state
        .customers
        .clone()
        .update_customer(request)
        .await?
        .into_inner();
    customer_response(StatusCode::OK, customer)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Erase the person (right to be forgotten; `admin` scope): personal fields and
    /// free-text event data are wiped in the database, the cache and the search index,
    /// the id stays as a tombstone that refuses later events, and an audit record of who
    /// erased it and when remains.
    erase: Option<bool>,
}

impl DeleteParams {
    /// Personal data goes only for admins.
    pub fn scope(&self) -> crate::auth::Scope {
        match self.erase {
            Some(true) => crate::auth::Scope::Admin,
            _ => crate::auth::Scope::CustomersWrite,
        }
    }
}

/// Soft-delete a customer: its status becomes `deleted`; it stays readable by id. With
/// `erase=true`, erase the person.
#[utoipa::path(
    delete, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id (UUID)"), DeleteParams,
           ("If-Match" = Option<String>, Header, description = "The ETag read; 412 when stale (not with erase)")),
    responses(
        (status = 204, description = "Deleted (or erased)"),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<DeleteParams>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let id = parse_id(&id)?;
    // Only admins get here to erase (see `DeleteParams::scope`).
    let requested_by = principal.map_or_else(|| "anonymous".to_owned(), |p| p.0.name);
    let request = v1::DeleteCustomerRequest {
        id: id.to_string(),
        expected_version: version_precondition(&headers, header::IF_MATCH)?,
        erase: params.erase.unwrap_or(false),
        requested_by,
    };
    state.customers.clone().delete_customer(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List live customers, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/api/customers", tag = "customers",
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = CustomerList),
        (status = 400, description = "Malformed cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_customers(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<CustomerList>> {
    let request = v1::ListCustomersRequest {
        page: Some(v1::Page {
            limit: crate::paging::checked_limit(params.limit)?,
            cursor: params.cursor.unwrap_or_default(),
        }),
        include_deleted: false,
    };
    let page = state
        .customers
        .clone()
        .list_customers(request)
        .await?
        .into_inner();
    let items = page
        .customers
        .into_iter()
        .map(|customer| decode(customer, "customer-core"))
        .collect::<Result<_>>()?;
    let next_cursor = Some(page.next_cursor).filter(|c| !c.is_empty());
    Ok(Json(CustomerList { items, next_cursor }))
}
