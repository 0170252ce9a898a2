//! The person behind the records, end to end in both modes: the 360 view (also with a
//! part failing), duplicates, merging them (and every refusal), erasure and export.

use crm_e2e::{StatusCode, TestApp, assert_problem, completed_order, invalid_fields, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    a_merge_moves_orders_and_events_to_the_primary,
    merges_that_cannot_be_are_refused,
    an_erased_person_leaves_nothing_behind,
);

/// Segmentation's parts get no time at all: they fail, the rest is served.
const NO_TIME_FOR_SEGMENTATION: (&str, &str) = ("CRM_SEGMENTATION_TIMEOUT_MS", "0");

#[tokio::test]
async fn standalone_the_360_view_lists_a_failing_part_and_serves_the_rest() {
    let (key, value) = NO_TIME_FOR_SEGMENTATION;
    let app = TestApp::standalone_with_env(&[(key, value.to_owned())]).await;
    the_360_view_lists_a_failing_part_and_serves_the_rest(app).await;
}

#[tokio::test]
async fn distributed_the_360_view_lists_a_failing_part_and_serves_the_rest() {
    let (key, value) = NO_TIME_FOR_SEGMENTATION;
    let app = TestApp::distributed_with_env(&[("crm-gateway", key, value.to_owned())]).await;
    the_360_view_lists_a_failing_part_and_serves_the_rest(app).await;
}

async fn json_of(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn created(app: &TestApp, body: Value) -> String {
    let response = app.create_customer(&body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let customer: Value = response.json().await.expect("json");
    customer["id"].as_str().expect("id").to_owned()
}

/// Waits until customer-core has applied `orders` completed orders of `id`.
async fn until_orders(app: &TestApp, id: &str, orders: u64) {
    app.eventually(&format!("{orders} orders of {id}"), || async {
        let (_, customer) = json_of(app, &format!("/api/customers/{id}")).await;
        (customer["metrics"]["total_orders"] == orders).then_some(())
    })
    .await;
}

/// Waits until customer-core has recorded `count` events of `id` (they are applied
/// concurrently, in any order).
async fn until_events(app: &TestApp, id: &str, count: usize) {
    app.eventually(&format!("{count} events of {id}"), || async {
        let (_, page) = json_of(app, &format!("/api/customers/{id}/events?limit=100")).await;
        (page["items"].as_array()?.len() == count).then_some(())
    })
    .await;
}

/// `key` of every item of the array `items`.
fn each<'a>(items: &'a Value, key: &str) -> Vec<&'a str> {
    let items = items.as_array().expect("an array");
    items
        .iter()
        .map(|item| item[key].as_str().expect(key))
        .collect()
}

fn ticket(id: &str, ticket_id: &str, status: &str, subject: &str) -> Value {
    json!({ "customer_id": id, "type": "support.ticket",
            "data": { "ticket_id": ticket_id, "status": status, "subject": subject } })
}

fn viewed(id: &str, product: &str) -> Value {
    json!({ "customer_id": id, "type": "product.viewed", "data": { "product_id": product } })
}

async fn the_360_view_lists_a_failing_part_and_serves_the_rest(app: TestApp) {
    let id = created(
        &app,
        json!({ "email": "ada@example.com", "first_name": "Ada" }),
    )
    .await;
    let events = [
        completed_order(&id, "o-1", 30.0),
        ticket(&id, "t-1", "closed", "late parcel"),
        ticket(&id, "t-2", "open", "wrong size"),
        viewed(&id, "p-9"),
    ];
    app.send_events(&json!({ "events": events })).await;
    // The parts are read side by side, not in one transaction: a view asked while the
    // events commit may show the activity before the order, so wait for both.
    let view = app
        .eventually("the 360 view with every event", || async {
            let (status, view) = json_of(&app, &format!("/api/customers/{id}/360")).await;
            assert_eq!(status, StatusCode::OK, "{view}");
            let every = view["recent_activity"].as_array()?.len() == 4
                && view["recent_orders"].as_array()?.len() == 1
                && view["support_tickets"].as_array()?.len() == 2;
            every.then_some(view)
        })
        .await;
    assert_eq!(view["customer"]["id"], id.as_str());
    assert_eq!(view["recent_orders"][0]["order_id"], "o-1");
    let tickets = each(&view["support_tickets"], "ticket_id");
    assert_eq!(tickets, ["t-2", "t-1"], "open first");
    let kinds = each(&view["timeline"], "kind");
    assert_eq!(kinds.len(), 4, "one order, two tickets, one view: {view}");
    assert!(kinds.contains(&"order") && kinds.contains(&"ticket") && kinds.contains(&"event"));
    let degraded: Vec<(&str, &str)> = view["degraded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["part"].as_str().unwrap(), d["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        degraded,
        [
            ("rfm", "no answer within 0 ms"),
            ("recommendations", "no answer within 0 ms"),
        ]
    );
    assert_eq!(view["recommendations"], json!([]));
    let (status, _) = json_of(
        &app,
        "/api/customers/0195f0a4-7bd5-7cc2-b5d2-9b3c4f8e2a11/360",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_merge_moves_orders_and_events_to_the_primary(app: TestApp) {
    let primary = created(
        &app,
        json!({ "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
                "tags": ["vip"] }),
    )
    .await;
    let secondary = created(
        &app,
        json!({ "email": "countess@example.com", "first_name": "Ada", "last_name": "Lovelace",
                "phone": "+442071234567", "tags": ["newsletter", "VIP"] }),
    )
    .await;
    let events = [
        completed_order(&primary, "o-1", 30.0),
        viewed(&primary, "p-1"),
        completed_order(&secondary, "o-2", 20.0),
        completed_order(&secondary, "o-3", 10.0),
        viewed(&secondary, "p-2"),
    ];
    app.send_events(&json!({ "events": events })).await;
    until_events(&app, &primary, 2).await;
    until_events(&app, &secondary, 3).await;

    let (_, duplicates) = json_of(&app, &format!("/api/customers/{primary}/duplicates")).await;
    assert_eq!(duplicates["items"][0]["customer"]["id"], secondary.as_str());
    assert_eq!(duplicates["items"][0]["evidence"], json!(["same name"]));

    let merge_path = format!("/api/customers/{primary}/merge");
    let body = json!({ "secondary_id": secondary });
    let dry = app
        .post_json(&format!("{merge_path}?dry_run=true"), &body)
        .await;
    assert_eq!(dry.status(), StatusCode::OK);
    let would_be: Value = dry.json().await.unwrap();
    assert_eq!(would_be["metrics"]["total_orders"], 3);
    let (_, unchanged) = json_of(&app, &format!("/api/customers/{primary}")).await;
    assert_eq!(
        unchanged["metrics"]["total_orders"], 1,
        "a dry run changes nothing"
    );
    let (_, still) = json_of(&app, &format!("/api/customers/{secondary}")).await;
    assert_eq!(still["status"], "active");

    let merged = app.post_json(&merge_path, &body).await;
    assert_eq!(merged.status(), StatusCode::OK);
    let merged: Value = merged.json().await.unwrap();
    assert_eq!(merged["id"], primary.as_str());
    assert_eq!(
        merged["email"], "ada@example.com",
        "the primary's fields win"
    );
    assert_eq!(
        merged["phone"], "+442071234567",
        "the secondary fills the blanks"
    );
    assert_eq!(merged["tags"], json!(["vip", "newsletter"]));
    assert_eq!(merged["metrics"]["total_orders"], 3, "the sum of both");
    assert_eq!(merged["metrics"]["total_spent"], 60.0);
    assert_eq!(merged["metrics"]["average_order"], 20.0);
    assert_eq!(
        would_be["metrics"], merged["metrics"],
        "the dry run said so"
    );

    let (_, away) = json_of(&app, &format!("/api/customers/{secondary}")).await;
    assert_eq!(away["status"], "deleted");
    assert_eq!(away["merged_into"], primary.as_str());
    let (_, activity) = json_of(&app, &format!("/api/customers/{primary}/events?limit=100")).await;
    let types = each(&activity["items"], "type");
    assert_eq!(types.iter().filter(|t| **t == "order.completed").count(), 3);
    assert_eq!(types.iter().filter(|t| **t == "product.viewed").count(), 2);
    assert!(types.contains(&"customer.merged"), "{types:?}");
    let (_, view) = json_of(&app, &format!("/api/customers/{primary}/360")).await;
    assert_eq!(view["recent_orders"].as_array().unwrap().len(), 3);
    assert_eq!(view["degraded"], json!([]), "{view}");

    // Search finds one Ada Lovelace.
    app.eventually("search to drop the merged-away record", || async {
        let response = app
            .post_json("/api/customers/search", &json!({ "query": "Lovelace" }))
            .await;
        let found: Value = response.json().await.ok()?;
        let hits = found["hits"].as_array()?;
        (hits.len() == 1
            && hits[0]["customer"]["id"] == primary.as_str()
            && hits[0]["customer"]["metrics"]["total_orders"] == 3)
            .then_some(())
    })
    .await;

    // Segmentation recomputes from the merged record; the merged-away one leaves it.
    app.eventually("segmentation to see the merge", || async {
        let (_, segment) = json_of(&app, &format!("/api/customers/{primary}/segment")).await;
        let (_, current) = json_of(&app, &format!("/api/customers/{primary}")).await;
        let (gone, _) = json_of(&app, &format!("/api/customers/{secondary}/segment")).await;
        (segment["version"].as_i64()? >= merged["version"].as_i64()?
            && segment["segment"] == current["segment"]
            && gone == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;

    // A late event for the merged-away id lands on the primary.
    app.send_events(&completed_order(&secondary, "o-4", 40.0))
        .await;
    until_orders(&app, &primary, 4).await;
}

async fn merges_that_cannot_be_are_refused(app: TestApp) {
    let primary = created(&app, json!({ "email": "a@example.com" })).await;
    let secondary = created(&app, json!({ "email": "b@example.com" })).await;
    let app = &app;
    let merge = |id: &str, body: Value| {
        let path = format!("/api/customers/{id}/merge");
        async move { app.post_json(&path, &body).await }
    };

    let itself = merge(&primary, json!({ "secondary_id": primary })).await;
    let problem = assert_problem(itself, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["secondary_id"]);
    let unknown = json!({ "secondary_id": "0195f0a4-7bd5-7cc2-b5d2-9b3c4f8e2a11" });
    assert_problem(merge(&primary, unknown).await, StatusCode::NOT_FOUND).await;
    let not_an_id = merge(&primary, json!({ "secondary_id": "x" })).await;
    let problem = assert_problem(not_an_id, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["secondary_id"]);
    let stray = merge(
        &primary,
        json!({ "secondary_id": secondary, "force": true }),
    )
    .await;
    assert!(stray.status().is_client_error(), "{}", stray.status());

    // A retried merge with its Idempotency-Key is answered again, not refused.
    let path = format!("/api/customers/{primary}/merge");
    let send = |key: &str, body: Value| {
        let request = app
            .client()
            .post(format!("{}{path}", app.base_url))
            .header("Idempotency-Key", key)
            .json(&body);
        async move { request.send().await.expect("request") }
    };
    let body = json!({ "secondary_id": secondary });
    let first = send("merge-1", body.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let again = send("merge-1", body.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = send("merge-1", json!({ "secondary_id": primary })).await;
    assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Without the key, merging the merged-away record again is a conflict.
    let twice = merge(&primary, body).await;
    assert_problem(twice, StatusCode::CONFLICT).await;
    let from_merged = merge(&secondary, json!({ "secondary_id": primary })).await;
    assert_problem(from_merged, StatusCode::CONFLICT).await;
    let (_, kept) = json_of(app, &format!("/api/customers/{primary}")).await;
    assert_eq!(kept["status"], "active");
}

async fn an_erased_person_leaves_nothing_behind(app: TestApp) {
    let id = created(
        &app,
        json!({ "email": "grace.hopper@example.com", "first_name": "Grace",
                "last_name": "Hopper", "phone": "+14155550123",
                "addresses": [{ "line1": "1 Navy Way", "city": "Arlington", "country": "US" }] }),
    )
    .await;
    let events = [
        completed_order(&id, "o-1", 99.0),
        ticket(&id, "t-1", "open", "Grace here, call me on 555 0123"),
    ];
    app.send_events(&json!({ "events": events })).await;
    until_events(&app, &id, 2).await;
    app.eventually("search to find Grace", || async {
        let response = app
            .post_json("/api/customers/search", &json!({ "query": "Hopper" }))
            .await;
        let found: Value = response.json().await.ok()?;
        (found["total"] == 1).then_some(())
    })
    .await;
    let export_path = format!("/api/customers/{id}/export");
    let before = app.get(&export_path).await;
    assert_eq!(before.status(), StatusCode::OK);
    let before = before.text().await.unwrap();
    for kept in [
        "grace.hopper@example.com",
        "Hopper",
        "1 Navy Way",
        "o-1",
        "call me on",
    ] {
        assert!(before.contains(kept), "the export lacks {kept}: {before}");
    }

    let erased = app
        .client()
        .delete(format!("{}/api/customers/{id}?erase=true", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);

    let (_, tombstone) = json_of(&app, &format!("/api/customers/{id}")).await;
    assert_eq!(tombstone["status"], "deleted");
    assert!(tombstone["erased_at"].is_string(), "{tombstone}");
    let after = app.get(&export_path).await.text().await.unwrap();
    // (Not bare digits: ids are hex and may hold any.)
    let personal = [
        "grace",
        "Grace",
        "Hopper",
        "+14155550123",
        "Navy",
        "Arlington",
        "call me",
    ];
    for gone in personal {
        assert!(
            !after.contains(gone),
            "the export still holds {gone}: {after}"
        );
    }
    let document: Value = serde_json::from_str(&after).unwrap();
    assert!(document["erasure"]["erased_by"].is_string(), "{document}");
    assert_eq!(
        document["orders"][0]["order_id"], "o-1",
        "the order stays, anonymous"
    );
    for query in ["Hopper", "grace.hopper", "0123"] {
        app.eventually(&format!("search for {query} to find nothing"), || async {
            for status in [None, Some("deleted")] {
                let mut body = json!({ "query": query });
                if let Some(status) = status {
                    body["status"] = json!(status);
                }
                let response = app.post_json("/api/customers/search", &body).await;
                let found: Value = response.json().await.ok()?;
                if found["total"] != 0 {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    // Later events for the id are refused: counted, never recorded.
    app.send_events(&completed_order(&id, "o-2", 5.0)).await;
    app.eventually("the refusal", || async {
        let metrics = app.get_url(&app.metrics_url).await.text().await.ok()?;
        metrics
            .contains("crm_events_refused_total{reason=\"erased\"} 1")
            .then_some(())
    })
    .await;
    let (_, still) = json_of(&app, &format!("/api/customers/{id}")).await;
    assert_eq!(still["metrics"]["total_orders"], 1);
    let again = app.get(&export_path).await.text().await.unwrap();
    assert!(!again.contains("o-2"));
}
