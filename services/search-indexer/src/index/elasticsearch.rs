//! The Elasticsearch adapter, through the official client: the customers mapping (plus
//! `full_name`, the phone's endings and the stored snapshot), an alias over versioned
//! indices `<alias>-<n>`, bulk writes with external versions (a late, older snapshot
//! gets a 409 and changes nothing), and the search query. 429 and 5xx answers and lost
//! connections are retried with backoff before the caller sees an error.

use std::time::Duration;

use async_trait::async_trait;
use crm_domain::{Customer, CustomerStatus};
use elasticsearch::{
    BulkParts, Elasticsearch, SearchParts,
    http::{
        StatusCode,
        request::JsonBody,
        response::Response,
        transport::{SingleNodeConnectionPool, TransportBuilder},
    },
    indices::IndicesRefreshParts,
};
use serde_json::{Value, json};

use super::{
    Applied, Generation, IndexCatalog, IndexError, MERGED, Result, SearchHit, SearchIndex,
    SearchQuery, SearchResults, elastic_jobs::ElasticJobBoard, engine, phone_suffixes,
};

mod catalog;

pub use catalog::ElasticCatalog;

const ATTEMPTS: u32 = 5;
/// The wait after the first failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The customers mapping, plus `full_name`, the phone as its digit endings (so the last
/// digits find it) and the snapshot itself, stored but not indexed.
pub fn index_body(alias: Option<&str>) -> Value {
    let mut body = json!({
        // Findable within a second of being applied.
        "settings": { "index": { "refresh_interval": "500ms" } },
        "mappings": {
            "dynamic": false,
            "properties": {
                "id": { "type": "keyword" },
                "email": { "type": "text", "fields": { "keyword": { "type": "keyword" } } },
                "phone": { "type": "keyword" },
                "first_name": { "type": "text" },
                "last_name": { "type": "text" },
                "full_name": { "type": "text" },
                "segment": { "type": "keyword" },
                "tags": { "type": "keyword" },
                "status": { "type": "keyword" },
                "metrics": {
                    "properties": {
                        "total_orders": { "type": "integer" },
                        "total_spent": { "type": "float" },
                        "lifetime_value": { "type": "float" }
                    }
                },
                "created_at": { "type": "date" },
                "last_activity_at": { "type": "date" },
                "customer": { "type": "object", "enabled": false }
            }
        }
    });
    if let Some(alias) = alias {
        body["aliases"] = json!({ alias: {} });
    }
    body
}

/// The document of a snapshot; a merged-away customer is a bare tombstone.
pub fn document(customer: &Customer) -> Value {
    if super::is_tombstone(customer) {
        return json!({ "id": customer.id, "status": MERGED });
    }
    json!({
        "id": customer.id,
        "email": customer.email,
        "phone": customer.phone.iter().flat_map(|p| phone_suffixes(p.as_str())).collect::<Vec<_>>(),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "full_name": customer.full_name(),
        "segment": customer.segment.as_str(),
        "tags": customer.tags,
        "status": customer.status.as_str(),
        "metrics": {
            "total_orders": customer.metrics.total_orders,
            "total_spent": customer.metrics.total_spent,
            "lifetime_value": customer.metrics.lifetime_value,
        },
        "created_at": customer.created_at,
        "last_activity_at": customer.last_activity_at,
        "customer": customer,
    })
}

/// The search query: multi_match best_fields with fuzziness AUTO, term filters,
/// relevance then the most recent activity.
pub fn query_body(query: &SearchQuery) -> Value {
    let must = if query.text.is_empty() {
        json!([{ "match_all": {} }])
    } else {
        json!([{
            "multi_match": {
                "query": query.text,
                "fields": ["email", "phone", "first_name", "last_name", "full_name"],
                "type": "best_fields",
                "fuzziness": "AUTO"
            }
        }])
    };
    let mut filter = Vec::new();
    if let Some(segment) = query.segment {
        filter.push(json!({ "term": { "segment": segment.as_str() } }));
    }
    let mut must_not = vec![json!({ "term": { "status": MERGED } })];
    match query.status {
        Some(status) => filter.push(json!({ "term": { "status": status.as_str() } })),
        None => must_not.push(json!({ "term": { "status": CustomerStatus::Deleted.as_str() } })),
    }
    if !query.tags.is_empty() {
        filter.push(json!({ "terms": { "tags": query.tags } }));
    }
    if let Some(after) = query.created_after {
        filter.push(json!({ "range": { "created_at": { "gte": after } } }));
    }
    json!({
        "query": { "bool": { "must": must, "filter": filter, "must_not": must_not } },
        "sort": [{ "_score": "desc" }, { "last_activity_at": "desc" }],
        "from": query.offset,
        "size": query.limit.max(1),
        "track_total_hits": true
    })
}

pub(super) fn client(url: &str) -> Result<Elasticsearch> {
    let url = url.parse().map_err(engine)?;
    let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(REQUEST_TIMEOUT)
        .disable_proxy()
        .build()
        .map_err(engine)?;
    Ok(Elasticsearch::new(transport))
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to wait before attempt `attempt + 1`: the server's `Retry-After` when it
/// gave one (capped), else doubling from `FIRST_BACKOFF`.
fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    retry_after
        .map(Duration::from_secs)
        .unwrap_or_else(|| crm_platform::backoff(FIRST_BACKOFF, MAX_BACKOFF, attempt))
        .min(MAX_BACKOFF)
}

/// Sends a request (built anew for each attempt), retrying lost connections, 429 and
/// 5xx; answers the final status and JSON body.
pub(super) async fn send<F, Fut>(what: &str, request: F) -> Result<(StatusCode, Value)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<Response, elasticsearch::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match request().await {
            Ok(response) => {
                let status = response.status_code();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if !retryable(status) || attempt >= ATTEMPTS {
                    return Ok((status, body));
                }
                (format!("{status}: {}", reason(&body)), retry_after)
            }
            Err(error) if attempt >= ATTEMPTS => {
                return Err(engine(format!("{what}: {error}")));
            }
            Err(error) => (error.to_string(), None),
        };
        let delay = backoff(attempt, failure.1);
        tracing::warn!(
            what,
            attempt,
            ?delay,
            reason = failure.0,
            "elasticsearch failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Elasticsearch's own words for an error body.
fn reason(body: &Value) -> String {
    let error = &body["error"];
    match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ => body.to_string(),
    }
}

/// Fails unless `status` is a success.
pub(super) fn expect_success(what: &str, (status, body): (StatusCode, Value)) -> Result<Value> {
    let message = format!("{what}: {status}: {}", reason(&body));
    match status {
        _ if status.is_success() => Ok(body),
        // What is left after the retries of 429 and 5xx is for good.
        _ if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
            Err(IndexError::Rejected(message))
        }
        _ => Err(engine(message)),
    }
}

/// One index or alias of customers.
pub struct ElasticIndex {
    client: Elasticsearch,
    /// The alias (what searches read) or a generation being built.
    name: String,
}

impl ElasticIndex {
    pub fn new(client: Elasticsearch, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }
}

#[async_trait]
impl SearchIndex for ElasticIndex {
    async fn apply_all(&self, customers: &[Customer]) -> Result<Vec<Applied>> {
        let mut answers: Vec<Option<Applied>> = vec![None; customers.len()];
        // Items that failed for a passing reason (a full queue) are sent again alone.
        let mut pending: Vec<usize> = (0..customers.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let lines: Vec<Value> = pending
                .iter()
                .flat_map(|&i| {
                    let customer = &customers[i];
                    let action = json!({ "index": {
                        "_id": customer.id,
                        "version": customer.version,
                        "version_type": "external"
                    }});
                    [action, document(customer)]
                })
                .collect();
            let response = send("bulk", || async {
                let body: Vec<JsonBody<Value>> =
                    lines.iter().cloned().map(JsonBody::from).collect();
                self.client
                    .bulk(BulkParts::Index(&self.name))
                    .body(body)
                    .send()
                    .await
            })
            .await?;
            let body = expect_success("bulk", response)?;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            if items.len() != pending.len() {
                return Err(engine(format!(
                    "bulk: {} answers for {} documents",
                    items.len(),
                    pending.len()
                )));
            }
            let mut again = Vec::new();
            for (&i, item) in pending.iter().zip(&items) {
                let result = &item["index"];
                let status = result["status"].as_u64().unwrap_or(0) as u16;
                answers[i] = match status {
                    200 | 201 if super::is_tombstone(&customers[i]) => Some(Applied::Removed),
                    200 | 201 => Some(Applied::Indexed),
                    409 => Some(Applied::Stale),
                    429 | 500..=599 if attempt < ATTEMPTS => {
                        again.push(i);
                        None
                    }
                    _ => {
                        let message = format!(
                            "bulk item {}: {status}: {}",
                            customers[i].id,
                            reason(result)
                        );
                        return Err(if (400..500).contains(&status) && status != 429 {
                            IndexError::Rejected(message)
                        } else {
                            engine(message)
                        });
                    }
                };
            }
            if !again.is_empty() {
                tokio::time::sleep(backoff(attempt, None)).await;
            }
            pending = again;
        }
        answers
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| engine("bulk: an item was left without an answer"))
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let body = query_body(query);
        let response = send("search", || async {
            self.client
                .search(SearchParts::Index(&[&self.name]))
                .body(body.clone())
                .send()
                .await
        })
        .await?;
        let found = expect_success("search", response)?;
        let total = found["hits"]["total"]["value"]
            .as_u64()
            .ok_or_else(|| IndexError::Corrupt("search: no hits.total.value".into()))?;
        let hits = found["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|hit| {
                let customer = serde_json::from_value(hit["_source"]["customer"].clone())
                    .map_err(|e| IndexError::Corrupt(format!("hit {}: {e}", hit["_id"])))?;
                let score = hit["_score"].as_f64().unwrap_or(0.0) as f32;
                Ok(SearchHit { customer, score })
            })
            .collect::<Result<_>>()?;
        Ok(SearchResults { total, hits })
    }

    async fn refresh(&self) -> Result<()> {
        let response = send("refresh", || async {
            self.client
                .indices()
                .refresh(IndicesRefreshParts::Index(&[&self.name]))
                .send()
                .await
        })
        .await?;
        expect_success("refresh", response).map(drop)
    }

    async fn ping(&self) -> Result<()> {
        let response = self.client.ping().send().await.map_err(engine)?;
        let status = response.status_code();
        if status.is_success() {
            Ok(())
        } else {
            Err(engine(format!("ping: {status}")))
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod failures;
