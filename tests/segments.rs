//! Segmentation end to end, in both modes: segments and RFM through the REST API, the
//! recompute batch with its job, and recommendations learned from orders and views.

use crm_e2e::{StatusCode, TestApp, assert_problem, invalid_fields, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    a_recompute_scores_everyone_and_reports_progress,
    recommendations_come_from_what_others_bought_and_viewed,
    bad_requests_are_problems,
);

fn order(customer: &str, order_id: &str, products: &[(&str, &str)]) -> Value {
    order_at(customer, order_id, products, None)
}

fn order_at(customer: &str, order_id: &str, products: &[(&str, &str)], at: Option<&str>) -> Value {
    let items: Vec<Value> = products
        .iter()
        .map(|(product, category)| {
            json!({ "product_id": product, "quantity": 1, "price": 20.0, "category": category })
        })
        .collect();
    let mut event = json!({
        "customer_id": customer, "type": "order.completed",
        "data": { "order_id": order_id, "total": 20.0 * products.len() as f64,
                  "currency": "EUR", "items": items }
    });
    if let Some(at) = at {
        event["timestamp"] = json!(at);
    }
    event
}

async fn json_of(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_recompute_scores_everyone_and_reports_progress(app: TestApp) {
    let big = app.given_customer_id("big@example.com").await;
    let small = app.given_customer_id("small@example.com").await;
    let orders = [
        order(&big, "o-1", &[("tent", "outdoor"), ("stove", "outdoor")]),
        order(&big, "o-2", &[("boots", "outdoor")]),
        order(&small, "o-3", &[("socks", "clothing")]),
    ];
    app.send_events(&json!({ "events": orders })).await;
    // The batch scores what segmentation knows: wait until it has seen the orders.
    for (id, orders) in [(&big, 2), (&small, 1)] {
        app.eventually("segmentation to see the orders", || async {
            let (_, customer) = json_of(&app, &format!("/api/customers/{id}")).await;
            let (_, segment) = json_of(&app, &format!("/api/customers/{id}/segment")).await;
            (customer["metrics"]["total_orders"] == orders
                && segment["version"] == customer["version"])
                .then_some(())
        })
        .await;
    }

    let started = app
        .post_raw("/api/segments/recompute", "application/json", vec![])
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = started.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/segments/jobs/{}", job["id"].as_str().unwrap())
    );
    let done = app
        .eventually("the recompute to complete", || async {
            let (_, job) = json_of(&app, &location).await;
            (job["status"] != "running").then_some(job)
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            done["progress"]["total"].as_u64(),
            done["progress"]["done"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(done["phase"], "done");

    let (_, big_segment) = json_of(&app, &format!("/api/customers/{big}/segment")).await;
    let (_, small_segment) = json_of(&app, &format!("/api/customers/{small}/segment")).await;
    assert_eq!(big_segment["segment"], "new", "{big_segment}");
    let (big_rfm, small_rfm) = (&big_segment["rfm"], &small_segment["rfm"]);
    assert!(
        big_rfm["frequency"].as_i64() > small_rfm["frequency"].as_i64(),
        "two orders beat one: {big_rfm} vs {small_rfm}"
    );
    assert!(big_rfm["monetary"].as_i64() > small_rfm["monetary"].as_i64());
    assert!(big_rfm["segment"].is_string());
    assert!(big_segment["computed_at"].is_string());

    let (status, counts) = json_of(&app, "/api/segments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts["by_segment"]["new"], 2, "{counts}");
    let scored: u64 = counts["by_rfm_segment"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(scored, 2);
}

async fn recommendations_come_from_what_others_bought_and_viewed(app: TestApp) {
    let body = json!({ "email": "me@example.com", "preferences": { "categories": ["outdoor"] } });
    let created: Value = app.create_customer(&body).await.json().await.unwrap();
    let me = created["id"].as_str().unwrap().to_owned();
    let other = app.given_customer_id("other@example.com").await;
    // My view is more recent than my order, so what goes with the view ranks first.
    let view = |who: &str, product: &str| {
        json!({ "customer_id": who, "type": "product.viewed", "timestamp": "2026-11-10T00:00:00Z",
                "data": { "product_id": product, "category": "outdoor" } })
    };
    let events = [
        order_at(
            &me,
            "o-1",
            &[("tent", "outdoor")],
            Some("2026-11-01T00:00:00Z"),
        ),
        order(&other, "o-2", &[("tent", "outdoor"), ("stove", "outdoor")]),
        order(&other, "o-3", &[("lamp", "outdoor")]),
        view(&me, "boots"),
        view(&other, "boots"),
        view(&other, "map"),
    ];
    app.send_events(&json!({ "events": events })).await;

    let path = format!("/api/customers/{me}/recommendations");
    let picked = app
        .eventually("recommendations from all six events", || async {
            let (status, body) = json_of(&app, &path).await;
            let items = body["items"].as_array()?.clone();
            // All six applied: my own order (no tent any more), others' orders and views;
            // and my profile (its preferred categories), which reaches segmentation with
            // my snapshot, on another path than the events.
            let has = |product: &str| items.iter().any(|i| i["product_id"] == product);
            let profile_known = items
                .iter()
                .any(|i| i["reason"] == "best seller in outdoor");
            (status == StatusCode::OK
                && items.len() == 3
                && has("map")
                && !has("tent")
                && profile_known)
                .then_some(items)
        })
        .await;
    let picked: Vec<(&str, &str)> = picked
        .iter()
        .map(|p| {
            (
                p["product_id"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        picked,
        [
            ("map", "viewed together with boots"),
            ("stove", "bought together with tent"),
            ("lamp", "best seller in outdoor"),
        ],
        "never the tent, already bought"
    );
    let (_, one) = json_of(&app, &format!("{path}?limit=1")).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
}

async fn bad_requests_are_problems(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    for (path, status) in [
        (
            "/api/customers/nope/segment".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/segments/jobs/nope".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/segments/jobs/01a20df5-a41c-776f-9af3-8d4642c2bb6b".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/customers/01a20df5-a41c-776f-9af3-8d4642c2bb6b/segment".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/customers/{id}/recommendations?limit=x"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_problem(app.get(&path).await, status).await;
    }
    for limit in [0, 11] {
        let path = format!("/api/customers/{id}/recommendations?limit={limit}");
        let problem = assert_problem(app.get(&path).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["limit"]);
    }
}

/// A customer customer-core knows is never "not found" at segmentation's routes, even
/// before segmentation has seen it (here it never does: its broker is unreachable).
#[tokio::test]
async fn a_customer_segmentation_has_not_seen_yet_is_answered_from_what_is_known() {
    let unreachable = "amqp://guest:guest@127.0.0.1:1/%2f".to_owned();
    let app =
        TestApp::distributed_with_env(&[("crm-segmentation", "CRM_AMQP_URL", unreachable)]).await;
    let id = app.given_customer_id("brand-new@example.com").await;

    let (status, segment) = json_of(&app, &format!("/api/customers/{id}/segment")).await;
    assert_eq!(status, StatusCode::OK, "{segment}");
    assert_eq!(segment["segment"], "new");
    assert_eq!(
        segment["version"], 0,
        "segmentation has seen no version yet"
    );
    assert_eq!(segment["rfm"], Value::Null);
    let (status, recommended) =
        json_of(&app, &format!("/api/customers/{id}/recommendations")).await;
    assert_eq!(status, StatusCode::OK, "{recommended}");
    assert!(recommended["items"].is_array());

    let unknown = "01a20df5-a41c-776f-9af3-8d4642c2bb6b";
    for path in ["segment", "recommendations"] {
        let response = app.get(&format!("/api/customers/{unknown}/{path}")).await;
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
}
