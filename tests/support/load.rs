//! Load for the fault scenarios and the soak: events a client resends until accepted,
//! requests sent again when a replica died under them, and what was applied.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{StatusCode, TestApp};

/// An order event with a fixed id, so a resend is recognised.
pub fn order(customer: &str, n: usize, total: f64) -> Value {
    let mut event = crate::completed_order(customer, &format!("o-{n}"), total);
    event["id"] = json!(uuid::Uuid::new_v4().to_string());
    event
}

/// Sends `events` as one batch until it is accepted, as a client that retries does
/// (every event valid: once answered 202, all of them are accepted, some maybe by an
/// earlier send whose answer was lost, which this one counts as duplicates).
pub async fn send_until_accepted(app: &TestApp, events: &[Value]) {
    let body = json!({ "events": events });
    let url = format!("{}/api/events", app.base_url);
    let (status, answer) = answered(|| app.client().post(&url).json(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["rejected"], json!([]), "{answer}");
}

/// The ids of a customer's applied orders, from its activity feed.
pub async fn applied_orders(app: &TestApp, customer: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let query = format!("?type=order.completed&limit=100&cursor={cursor}");
        let page: Value = app
            .list_events(customer, &query)
            .await
            .json()
            .await
            .unwrap();
        for event in page["items"].as_array().unwrap() {
            ids.push(event["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return ids,
        }
    }
}

/// Sends until the platform answers (a request cut off with a killed replica is sent
/// again, as a client does); its status and body.
pub async fn answered(request: impl Fn() -> reqwest::RequestBuilder) -> (StatusCode, Value) {
    for _ in 0..600 {
        match request().send().await {
            Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
                let status = response.status();
                return (status, response.json().await.unwrap_or(Value::Null));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the platform never answered");
}

/// The version of the customer `id` as a search for its e-mail finds it (`None`: not
/// among the hits).
pub async fn searched_version(app: &TestApp, email: &str, id: &str) -> Option<i64> {
    let body = json!({ "query": email });
    let found: Value = app
        .post_json("/api/customers/search", &body)
        .await
        .json()
        .await
        .ok()?;
    let hits = found["hits"].as_array()?;
    let hit = hits.iter().find(|h| h["customer"]["id"] == id)?;
    hit["customer"]["version"].as_i64()
}

/// Waits until search finds every customer of `ids` at the version PostgreSQL has.
pub async fn until_search_has_the_last_versions(app: &TestApp, ids: &[String], limit: Duration) {
    for id in ids {
        let current: Value = app.get_customer(id).await.json().await.unwrap();
        let email = current["email"].as_str().unwrap_or_default().to_owned();
        let version = current["version"].as_i64();
        app.eventually_within(limit, "search at the last version", || async {
            (searched_version(app, &email, id).await == version).then_some(())
        })
        .await;
    }
}
