//! Events end to end, in both modes: sent through the REST API, validated and
//! deduplicated by ingest, applied by customer-core to metrics and activity.

use crm_e2e::{StatusCode, TestApp, assert_problem, invalid_fields, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    events_change_metrics_and_activity,
    the_same_batch_twice_changes_nothing,
    each_bad_event_is_rejected_with_its_reasons,
    malformed_requests_are_refused_whole,
    the_activity_feed_pages_and_filters,
    purchases_are_counted_per_day_and_segment,
    events_for_unknown_customers_are_counted,
    orders_move_a_customer_to_vip_and_the_change_is_in_its_activity,
);

async fn orders_move_a_customer_to_vip_and_the_change_is_in_its_activity(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let orders = [
        crm_e2e::completed_order(&id, "o-1", 600.0),
        crm_e2e::completed_order(&id, "o-2", 400.0),
    ];

    app.send_events(&json!({ "events": orders })).await;

    let customer = app
        .eventually("the customer to become VIP", || async {
            let c = customer_json(&app, &id).await;
            (c["segment"] == "vip").then_some(c)
        })
        .await;
    assert_eq!(
        customer["metrics"]["lifetime_value"], 1000.0,
        "exactly the threshold"
    );
    let feed: Value = app
        .list_events(&id, "?type=customer.segment_changed")
        .await
        .json()
        .await
        .unwrap();
    let changes = feed["items"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{feed}");
    assert_eq!(changes[0]["data"]["old_segment"], "new");
    assert_eq!(changes[0]["data"]["new_segment"], "vip");
    assert!(
        changes[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("VIP threshold")
    );
}

async fn events_for_unknown_customers_are_counted(app: TestApp) {
    let stranger = "01a20df5-a41c-776f-9af3-8d4642c2bb6b";
    let event =
        json!({ "customer_id": stranger, "type": "product.viewed", "data": { "product_id": "p" } });

    let answer: Value = app.send_events(&event).await.json().await.unwrap();

    assert_eq!(answer["accepted"], 1, "ingest cannot know every customer");
    app.eventually("the metric", || async {
        let metrics = reqwest::get(&app.metrics_url)
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .contains("crm_events_unknown_customer_total 1")
            .then_some(())
    })
    .await;
    assert_problem(app.list_events(stranger, "").await, StatusCode::NOT_FOUND).await;
}

async fn purchases_are_counted_per_day_and_segment(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let mut usd = order(&id, "o-3", 10.0, "2026-11-21T23:59:59Z");
    usd["data"]["currency"] = json!("usd");
    let events = [
        order(&id, "o-1", 30.0, "2026-11-20T00:00:00Z"),
        order(&id, "o-2", 60.0, "2026-11-20T23:00:00+00:00"),
        usd,
    ];
    app.send_events(&json!({ "events": events })).await;
    orders_applied(&app, &id, 3).await;

    let report: Value = app
        .get("/api/analytics/daily-sales?from=2026-11-20&to=2026-11-21")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        report["items"],
        json!([
            { "day": "2026-11-20", "segment": "new", "currency": "EUR", "orders": 2, "revenue": 90.0 },
            { "day": "2026-11-21", "segment": "new", "currency": "USD", "orders": 1, "revenue": 10.0 },
        ])
    );
    for query in [
        "from=2026-11-22&to=2026-11-21",
        "from=yesterday",
        "from=2024-01-01&to=2026-01-01",
    ] {
        let response = app
            .get(&format!("/api/analytics/daily-sales?{query}"))
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["from"], "{query}");
    }
}

fn order(customer: &str, order_id: &str, total: f64, at: &str) -> Value {
    let mut event = crm_e2e::completed_order(customer, order_id, total);
    event["source"] = json!("website");
    event["timestamp"] = json!(at);
    event
}

async fn customer_json(app: &TestApp, id: &str) -> Value {
    app.get_customer(id).await.json().await.unwrap()
}

/// Waits until the customer has `orders` completed orders.
async fn orders_applied(app: &TestApp, id: &str, orders: i64) -> Value {
    app.eventually("the orders to be applied", || async {
        let customer = customer_json(app, id).await;
        (customer["metrics"]["total_orders"] == orders).then_some(customer)
    })
    .await
}

async fn events_change_metrics_and_activity(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;

    let response = app
        .send_events(&json!({ "events": [
            order(&id, "o-1", 30.0, "2026-11-20T10:00:00Z"),
            order(&id, "o-2", 60.0, "2026-11-21T10:00:00Z"),
            { "customer_id": id, "type": "product.viewed", "data": { "product_id": "p-7" } },
        ]}))
        .await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        answer["ids"].as_array().unwrap().len(),
        3,
        "ids are assigned where missing"
    );
    let customer = orders_applied(&app, &id, 2).await;
    let metrics = &customer["metrics"];
    assert_eq!(metrics["total_spent"], 90.0);
    assert_eq!(metrics["average_order"], 45.0);
    assert_eq!(metrics["lifetime_value"], 90.0);
    assert_eq!(metrics["first_order_date"], "2026-11-20T10:00:00Z");
    assert_eq!(metrics["last_order_date"], "2026-11-21T10:00:00Z");
    // Orders dated before the customer existed do not move its activity back; the view,
    // stamped on receipt, moves it forward.
    let created_at = customer["created_at"].clone();
    let customer = app
        .eventually("the view to be applied", || async {
            let c = customer_json(&app, &id).await;
            (c["last_activity_at"] != created_at).then_some(c)
        })
        .await;
    assert!(customer["last_activity_at"].as_str() > created_at.as_str());
    assert!(
        customer["version"].as_i64().unwrap() >= 3,
        "every change is a new version"
    );

    let feed: Value = app.list_events(&id, "").await.json().await.unwrap();
    let types: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["product.viewed", "order.completed", "order.completed"],
        "newest first"
    );
    assert_eq!(feed["items"][1]["source"], "website");
    assert_eq!(feed["items"][1]["data"]["order_id"], "o-2");
}

async fn the_same_batch_twice_changes_nothing(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let mut batch = vec![order(&id, "o-1", 30.0, "2026-11-20T10:00:00Z")];
    batch[0]["id"] = json!("0194f8a0-0000-7000-8000-0000000000e1");
    batch.push(json!({ "id": "0194f8a0-0000-7000-8000-0000000000e2", "customer_id": id,
                       "type": "support.ticket", "data": { "ticket_id": "t-1", "subject": "Late" } }));
    let body = json!({ "events": batch });

    let first: Value = app.send_events(&body).await.json().await.unwrap();
    assert_eq!(first["accepted"], 2);
    orders_applied(&app, &id, 1).await;
    app.eventually("the ticket", || async {
        let feed: Value = app.list_events(&id, "").await.json().await.unwrap();
        (feed["items"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let before = customer_json(&app, &id).await;

    let second = app.send_events(&body).await;

    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        (second["accepted"].as_u64(), second["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(customer_json(&app, &id).await, before, "no second effect");
    let feed: Value = app.list_events(&id, "").await.json().await.unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), 2);
}

async fn each_bad_event_is_rejected_with_its_reasons(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let good = order(&id, "o-1", 10.0, "2026-11-20T10:00:00Z");
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({ "customer_id": id, "type": "order.completed",
                 "data": { "total": -5, "currency": "EURO", "items": [{ "product_id": "p", "quantity": 0, "price": 1 }] } }),
            vec![
                "data.order_id",
                "data.total",
                "data.currency",
                "data.items[0].quantity",
            ],
        ),
        (
            json!({ "customer_id": id, "type": "cart.abandoned", "data": { "cart_value": 3 } }),
            vec!["data.cart_id", "data.items"],
        ),
        (
            json!({ "customer_id": id, "type": "product.viewed", "data": {}, "timestamp": "2999-01-01T00:00:00Z" }),
            vec!["data.product_id", "timestamp"],
        ),
        (
            json!({ "customer_id": "nobody", "type": "order.shipped", "data": {} }),
            vec!["customer_id", "type"],
        ),
        (
            json!({ "customer_id": id, "type": "customer.created", "data": {} }),
            vec!["type"],
        ),
        (
            json!({ "customer_id": id, "type": "product.viewed", "data": [1] }),
            vec!["data"],
        ),
        (
            json!({ "customer_id": id, "type": "product.viewed", "data": { "product_id": "p" }, "timestamp": "soon" }),
            vec!["timestamp"],
        ),
        (
            json!({ "id": "not-a-uuid", "customer_id": id, "type": "product.viewed", "data": { "product_id": "p" } }),
            vec!["id"],
        ),
        (json!({ "customer_id": id, "type": 7 }), vec!["type"]),
        (json!(42), vec!["event"]),
    ];
    let mut events = vec![good];
    events.extend(cases.iter().map(|(event, _)| event.clone()));

    let response = app.send_events(&json!({ "events": events })).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), cases.len(), "{answer}");
    for (i, (rejection, (_, fields))) in rejected.iter().zip(&cases).enumerate() {
        assert_eq!(rejection["index"], i + 1, "{rejection}");
        let mut named: Vec<&str> = rejection["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        let mut expected = fields.clone();
        named.sort();
        expected.sort();
        assert_eq!(named, expected, "{rejection}");
    }
    assert_eq!(
        rejected[7]["id"], "not-a-uuid",
        "a rejected event keeps its id"
    );
}

async fn malformed_requests_are_refused_whole(app: TestApp) {
    let broken = app
        .post_raw(
            "/api/events",
            "application/json",
            b"{\"events\": [".to_vec(),
        )
        .await;
    assert_problem(broken, StatusCode::BAD_REQUEST).await;

    for body in [json!({ "events": "many" }), json!([1, 2]), json!("event")] {
        let problem = assert_problem(
            app.send_events(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(invalid_fields(&problem), ["events"], "{body}");
    }
    let too_many = vec![json!({}); 1001];
    let problem = assert_problem(
        app.send_events(&json!({ "events": too_many })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1000")
    );
}

async fn the_activity_feed_pages_and_filters(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let mut events: Vec<Value> = (1..=5)
        .map(|day| {
            order(
                &id,
                &format!("o-{day}"),
                1.0,
                &format!("2026-11-0{day}T10:00:00Z"),
            )
        })
        .collect();
    events.push(
        json!({ "customer_id": id, "type": "product.viewed", "data": { "product_id": "p" },
                        "timestamp": "2026-11-09T10:00:00Z" }),
    );
    app.send_events(&json!({ "events": events })).await;
    orders_applied(&app, &id, 5).await;
    app.eventually("the view", || async {
        let feed: Value = app.list_events(&id, "").await.json().await.unwrap();
        (feed["items"].as_array().unwrap().len() == 6).then_some(())
    })
    .await;

    let mut days = Vec::new();
    let mut query = "?type=order.completed&limit=2".to_owned();
    loop {
        let page: Value = app.list_events(&id, &query).await.json().await.unwrap();
        days.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["data"]["order_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?type=order.completed&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(days, ["o-5", "o-4", "o-3", "o-2", "o-1"]);

    let unknown = "01a20df5-a41c-776f-9af3-8d4642c2bb6b";
    assert_problem(app.list_events(unknown, "").await, StatusCode::NOT_FOUND).await;
    assert_problem(
        app.list_events(&id, "?cursor=xyz").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_problem(app.list_events("nope", "").await, StatusCode::BAD_REQUEST).await;
    let problem = assert_problem(
        app.list_events(&id, "?type=order.lost").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(invalid_fields(&problem), ["type"]);
}
