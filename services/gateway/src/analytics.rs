//! `/api/analytics`: purchase analytics kept by customer-core.

use axum::{Json, extract::State};
use crm_domain::Segment;
use crm_proto::{convert::segment_from_proto, v1};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{Problem, Result},
    extract::QueryParams,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesParams {
    /// First day, YYYY-MM-DD (default: 30 days before `to`).
    from: Option<String>,
    /// Last day, YYYY-MM-DD, inclusive (default: today, UTC).
    to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DailySales {
    #[schema(example = "2026-11-24")]
    pub day: String,
    /// The customer's segment when the order completed.
    pub segment: Option<Segment>,
    pub currency: String,
    pub orders: i64,
    pub revenue: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SalesReport {
    pub items: Vec<DailySales>,
}

/// Completed orders and revenue per day, customer segment and currency.
#[utoipa::path(
    get, path = "/api/analytics/daily-sales", tag = "analytics",
    params(SalesParams),
    responses(
        (status = 200, description = "One row per day, segment and currency", body = SalesReport),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad dates or a range over 366 days", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn daily_sales(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<SalesParams>,
) -> Result<Json<SalesReport>> {
    let request = v1::GetDailySalesRequest {
        from: params.from.unwrap_or_default(),
        to: params.to.unwrap_or_default(),
    };
    let rows = state
        .customers
        .clone()
        .get_daily_sales(request)
        .await?
        .into_inner()
        .rows;
    let items = rows
        .into_iter()
        .map(|row| DailySales {
            day: row.day,
            segment: segment_from_proto(row.segment),
            currency: row.currency,
            orders: row.orders,
            revenue: row.revenue,
        })
        .collect();
    Ok(Json(SalesReport { items }))
}
