//! The customer REST API end to end: every case runs against the standalone binary and
//! against the distributed binaries (gateway → customer-core on PostgreSQL and Redis).

use crm_e2e::{StatusCode, TestApp, assert_problem, invalid_fields, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    create_answers_201_with_location_etag_and_defaults,
    get_answers_200_with_etag_and_304_when_unchanged,
    patch_merges_and_null_clears,
    stale_if_match_is_412_and_changes_nothing,
    delete_is_204_and_the_customer_stays_readable,
    list_pages_through_live_customers_with_a_cursor,
    malformed_input_is_400,
    unknown_ids_are_404,
    a_used_email_is_409,
    invalid_fields_are_422_and_each_is_named,
    a_body_over_one_mebibyte_is_413,
    a_body_that_is_not_json_is_415,
    api_documents_and_health_are_served,
);

async fn create_answers_201_with_location_etag_and_defaults(app: TestApp) {
    let response = app
        .create_customer(&json!({
            "email": "Katherine.Johnson@Example.com",
            "first_name": "  Katherine ",
            "last_name": "Johnson",
            "phone": "+1 (415) 555-0123",
            "tags": ["VIP", " vip", "space"],
            "preferences": { "language": "en_us", "currency": "usd" }
        }))
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let customer: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/customers/{}", customer["id"].as_str().unwrap())
    );
    assert_eq!(customer["email"], "katherine.johnson@example.com");
    assert_eq!(customer["first_name"], "Katherine");
    assert_eq!(customer["phone"], "+14155550123");
    assert_eq!(customer["tags"], json!(["vip", "space"]));
    assert_eq!(customer["status"], "active");
    assert_eq!(customer["segment"], "new");
    assert_eq!(customer["version"], 1);
    assert_eq!(customer["preferences"]["language"], "en-US");
    assert_eq!(customer["metrics"]["total_orders"], 0);
    assert_eq!(customer["metrics"]["nps"], Value::Null);
    assert!(customer["created_at"].is_string() && customer["updated_at"].is_string());

    let read = app.get(&location).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.unwrap(), customer);
}

async fn get_answers_200_with_etag_and_304_when_unchanged(app: TestApp) {
    let customer = app.given_customer("ada@example.com").await;
    let id = customer["id"].as_str().unwrap();

    let response = app.get_customer(id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");

    let client = app.client().clone();
    let url = format!("{}/api/customers/{id}", app.base_url);
    let unchanged = client
        .get(&url)
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    let changed = client
        .get(&url)
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
}

async fn patch_merges_and_null_clears(app: TestApp) {
    let created = app
        .create_customer(&json!({
            "email": "ada@example.com", "first_name": "Ada", "phone": "+442079460958",
            "preferences": { "newsletter": false, "language": "en" }
        }))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    let response = app
        .patch_customer(
            id,
            &json!({ "last_name": "Lovelace", "phone": null, "preferences": { "newsletter": true } }),
            Some("\"1\""),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["first_name"], "Ada", "absent fields stay");
    assert_eq!(patched["last_name"], "Lovelace");
    assert_eq!(patched["phone"], Value::Null, "null clears");
    assert_eq!(patched["preferences"]["newsletter"], true);
    assert_eq!(
        patched["preferences"]["language"], "en",
        "nested absent fields stay"
    );
    assert_eq!(patched["version"], 2);
    let read: Value = app.get_customer(id).await.json().await.unwrap();
    assert_eq!(read, patched, "a read after the write sees the write");

    // The same patch again changes nothing, so it is not a new version.
    let again = app
        .patch_customer(id, &json!({ "last_name": "Lovelace" }), None)
        .await;
    assert_eq!(again.json::<Value>().await.unwrap()["version"], 2);
}

async fn stale_if_match_is_412_and_changes_nothing(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;
    let first = app
        .patch_customer(&id, &json!({ "last_name": "A" }), Some("\"1\""))
        .await;
    assert_eq!(first.status(), StatusCode::OK);

    let stale = app
        .patch_customer(&id, &json!({ "last_name": "B" }), Some("\"1\""))
        .await;

    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let read: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["last_name"], "A");
    assert_eq!(read["version"], 2);
}

async fn delete_is_204_and_the_customer_stays_readable(app: TestApp) {
    let id = app.given_customer_id("ada@example.com").await;

    let response = app.delete_customer(&id).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let read = app.get_customer(&id).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["status"], "deleted");
    assert_eq!(read["version"], 2);
    // Deleting again changes nothing; changing a deleted customer is a conflict.
    assert_eq!(
        app.delete_customer(&id).await.status(),
        StatusCode::NO_CONTENT
    );
    let patch = app
        .patch_customer(&id, &json!({ "first_name": "X" }), None)
        .await;
    assert_problem(patch, StatusCode::CONFLICT).await;
    // The e-mail is free for a new customer.
    app.given_customer("ada@example.com").await;
}

async fn list_pages_through_live_customers_with_a_cursor(app: TestApp) {
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(app.given_customer(&format!("c{i}@example.com")).await["id"].clone());
    }
    let deleted = app.given_customer_id("gone@example.com").await;
    app.delete_customer(&deleted).await;

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page: Value = app.list_customers(&query).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|c| c["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "every live customer once, in creation order"
    );

    let default_page: Value = app.list_customers("").await.json().await.unwrap();
    assert_eq!(default_page["items"].as_array().unwrap().len(), 5);
    assert_eq!(default_page["next_cursor"], Value::Null);
}

async fn malformed_input_is_400(app: TestApp) {
    let broken = app
        .post_raw(
            "/api/customers",
            "application/json",
            b"{\"email\": ".to_vec(),
        )
        .await;
    assert_problem(broken, StatusCode::BAD_REQUEST).await;

    assert_problem(
        app.get_customer("not-a-uuid").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let patch = app.patch_customer("42", &json!({}), None).await;
    assert_problem(patch, StatusCode::BAD_REQUEST).await;
    assert_problem(app.delete_customer("42").await, StatusCode::BAD_REQUEST).await;
    assert_problem(
        app.list_customers("?cursor=%21%21").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_problem(
        app.list_customers("?limit=many").await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let id = app.given_customer_id("ada@example.com").await;
    let bad_etag = app.patch_customer(&id, &json!({}), Some("version-1")).await;
    assert_problem(bad_etag, StatusCode::BAD_REQUEST).await;
}

async fn unknown_ids_are_404(app: TestApp) {
    let unknown = "01a20df5-a41c-776f-9af3-8d4642c2bb6b";
    assert_problem(app.get_customer(unknown).await, StatusCode::NOT_FOUND).await;
    let patch = app
        .patch_customer(unknown, &json!({ "first_name": "X" }), None)
        .await;
    assert_problem(patch, StatusCode::NOT_FOUND).await;
    assert_problem(app.delete_customer(unknown).await, StatusCode::NOT_FOUND).await;
    assert_problem(app.get("/api/nothing-here").await, StatusCode::NOT_FOUND).await;
}

async fn a_used_email_is_409(app: TestApp) {
    app.given_customer("ada@example.com").await;
    let twin = app
        .create_customer(&json!({ "email": "ADA@example.com" }))
        .await;
    assert_problem(twin, StatusCode::CONFLICT).await;

    let other = app.given_customer_id("bob@example.com").await;
    let steal = app
        .patch_customer(&other, &json!({ "email": "ada@example.com" }), None)
        .await;
    assert_problem(steal, StatusCode::CONFLICT).await;
}

async fn invalid_fields_are_422_and_each_is_named(app: TestApp) {
    let response = app
        .create_customer(&json!({
            "email": "not-an-email",
            "phone": "555-0123",
            "first_name": "x".repeat(101),
            "tags": ["ok", "not ok!"],
            "addresses": [{ "line1": "1 Main St", "city": "", "country": "Atlantis" }],
            "preferences": { "currency": "EURO", "language": "english language" }
        }))
        .await;
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut fields = invalid_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        [
            "addresses[0].city",
            "addresses[0].country",
            "email",
            "first_name",
            "phone",
            "preferences.currency",
            "preferences.language",
            "tags",
        ]
    );

    let wrong_type = app.create_customer(&json!({ "email": 42 })).await;
    let problem = assert_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["email"]);

    let missing = app.create_customer(&json!({ "first_name": "Ada" })).await;
    let problem = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["email"]);

    let id = app.given_customer_id("ada@example.com").await;
    for (patch, field) in [
        (json!({ "segment": "vip" }), "segment"),
        (json!({ "status": "deleted" }), "status"),
        (json!({ "email": null }), "email"),
        (
            json!({ "tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
            "tags",
        ),
    ] {
        let response = app.patch_customer(&id, &patch, None).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), [field], "{patch}");
    }
    let limit = app.list_customers("?limit=101").await;
    let problem = assert_problem(limit, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["limit"]);
}

async fn a_body_over_one_mebibyte_is_413(app: TestApp) {
    let huge = format!(
        "{{\"email\": \"a@example.com\", \"last_name\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let response = app
        .post_raw("/api/customers", "application/json", huge.into_bytes())
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    // The limit is on bytes, not on the declared length: a chunked body is cut off too.
    let chunk = vec![b' '; 64 * 1024];
    let chunks =
        futures::stream::iter((0..17).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let response = app
        .client()
        .post(format!("{}/api/customers", app.base_url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

async fn a_body_that_is_not_json_is_415(app: TestApp) {
    let response = app
        .post_raw("/api/customers", "text/plain", b"email=a@b.co".to_vec())
        .await;
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

async fn api_documents_and_health_are_served(app: TestApp) {
    let openapi: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/customers", "/api/customers/{id}"] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(app.get("/docs").await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    let status = ready.status();
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"]["customer-core"], "ok");
}
