//! `/api/events` (ingest, through crm-event-ingest) and a customer's activity feed.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use crm_domain::{
    CustomerEvent, EventDraft, FieldError, event_validation::parse_timestamp,
    limits::MAX_EVENTS_PER_REQUEST,
};
use crm_proto::{convert::timestamp, json::json_to_struct, v1};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{Error, Problem, Result},
    extract::QueryParams,
    extract::parse_id,
    extract::{JsonBody, field_error},
};

/// One event, or `{"events": [...]}` with up to 1,000.
#[derive(Debug, ToSchema)]
#[schema(as = EventsRequest)]
#[allow(dead_code)] // documents the body; the handler reads it as JSON
pub enum EventsRequestDoc {
    One(EventDraft),
    Many { events: Vec<EventDraft> },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedEvent {
    /// Position in the request.
    pub index: usize,
    pub id: Option<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<RejectedEvent>,
    /// Ids of the accepted events, in request order (assigned where missing).
    pub ids: Vec<String>,
}

/// An item the gateway can already tell is wrong, before ingest sees it.
fn shape_error(index: usize, item: &Value, field: String, message: String) -> RejectedEvent {
    let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
    RejectedEvent {
        index,
        id,
        errors: vec![FieldError { field, message }],
    }
}

/// A JSON item as the proto event, or why it cannot be one.
fn to_proto(index: usize, item: Value) -> std::result::Result<v1::CustomerEvent, RejectedEvent> {
    let draft: EventDraft = serde_path_to_error::deserialize(&item).map_err(|error| {
        // When the whole item is wrong, it is named as the event.
        let path = error.path().to_string();
        let (field, message) = field_error(&path, &error.inner().to_string(), "event");
        shape_error(index, &item, field, message)
    })?;
    let data = match draft.data {
        Value::Object(object) => Some(json_to_struct(object)),
        Value::Null => None,
        _ => {
            return Err(shape_error(
                index,
                &item,
                "data".into(),
                "must be an object".into(),
            ));
        }
    };
    let at = match draft.timestamp.as_deref().map(parse_timestamp).transpose() {
        Ok(at) => at.map(timestamp),
        Err(message) => return Err(shape_error(index, &item, "timestamp".into(), message)),
    };
    Ok(v1::CustomerEvent {
        id: draft.id.unwrap_or_default(),
        customer_id: draft.customer_id,
        r#type: draft.event_type,
        data,
        source: draft.source.unwrap_or_default(),
        timestamp: at,
    })
}

/// Send events: validated per type, duplicates (by `id`) dropped, accepted only once the
/// message broker confirmed them. Each rejected event is listed with its errors.
#[utoipa::path(
    post, path = "/api/events", tag = "events",
    request_body = EventsRequestDoc,
    responses(
        (status = 202, description = "What was accepted, duplicate or rejected", body = IngestAnswer),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an event or a list of events, or over 1,000", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker is unavailable: nothing was accepted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ingest_events(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<IngestAnswer>)> {
    let invalid = |message: &str| {
        Error::field(
            "events",
            message,
            "the body is neither an event nor {\"events\": [...]}",
        )
    };
    let items = match body {
        Value::Object(mut object) if object.contains_key("events") => match object.remove("events")
        {
            Some(Value::Array(items)) => items,
            _ => return Err(invalid("must be a list of events")),
        },
        event @ Value::Object(_) => vec![event],
        _ => return Err(invalid("send one event object or {\"events\": [...]}")),
    };
    if items.len() > MAX_EVENTS_PER_REQUEST {
        return Err(invalid(&format!(
            "at most {MAX_EVENTS_PER_REQUEST} events per request"
        )));
    }
    let mut rejected = Vec::new();
    let mut forwarded = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match to_proto(index, item) {
            Ok(event) => {
                positions.push(index);
                forwarded.push(event);
            }
            Err(rejection) => rejected.push(rejection),
        }
    }
    let mut answer = IngestAnswer {
        accepted: 0,
        duplicates: 0,
        rejected: Vec::new(),
        ids: Vec::new(),
    };
    if !forwarded.is_empty() {
        let request = v1::IngestBatchRequest { events: forwarded };
        let result = state
            .ingest
            .clone()
            .ingest_batch(request)
            .await?
            .into_inner();
        answer.accepted = result.accepted as usize;
        answer.duplicates = result.duplicates as usize;
        answer.ids = result.accepted_ids;
        rejected.extend(result.rejected.into_iter().map(|r| {
            RejectedEvent {
                index: positions[r.index as usize],
                id: Some(r.id).filter(|id| !id.is_empty()),
                errors: r
                    .errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: e.field,
                        message: e.message,
                    })
                    .collect(),
            }
        }));
    }
    rejected.sort_by_key(|r| r.index);
    answer.rejected = rejected;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// Page size, 1-100 (default 20).
    limit: Option<u32>,
    /// Only events of this type, e.g. `order.completed`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<CustomerEvent>,
    pub next_cursor: Option<String>,
}

/// A customer's activity, newest first.
#[utoipa::path(
    get, path = "/api/customers/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Customer id (UUID)"), EventListParams),
    responses(
        (status = 200, description = "One page of events", body = EventList),
        (status = 400, description = "Malformed id, cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown type or limit out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<EventListParams>,
) -> Result<Json<EventList>> {
    let id = parse_id(&id)?;
    let request = v1::ListCustomerEventsRequest {
        customer_id: id.to_string(),
        page: Some(v1::Page {
            limit: crate::paging::checked_limit(params.limit)?,
            cursor: params.cursor.unwrap_or_default(),
        }),
        r#type: params.event_type,
    };
    let page = state
        .customers
        .clone()
        .list_customer_events(request)
        .await?
        .into_inner();
    let items = page
        .events
        .into_iter()
        .map(|e| {
            CustomerEvent::try_from(e).map_err(|e| {
                Error::internal(format!("customer-core sent an unreadable event: {e}"))
            })
        })
        .collect::<Result<_>>()?;
    Ok(Json(EventList {
        items,
        next_cursor: Some(page.next_cursor).filter(|c| !c.is_empty()),
    }))
}
