//! Search end to end, in both modes: customers become findable through the indexer
//! (typos, e-mail parts, phone endings), filters and pages give exact sets, changes and
//! deletions follow, a reindex rebuilds the index while searches keep answering, and the
//! indexer reports its lag.

use crm_e2e::{StatusCode, TestApp, assert_problem, invalid_fields, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    katherine_is_found_by_typos_and_parts,
    filters_and_pages_give_exact_sets,
    a_reindex_rebuilds_the_index_and_searches_keep_answering,
    bad_searches_are_problems,
);

async fn search(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/customers/search", &body).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    response.json().await.expect("json")
}

fn ids(found: &Value) -> Vec<String> {
    let mut ids: Vec<String> = found["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["customer"]["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until `body` finds exactly `expected` (ids, any order).
async fn until_found(app: &TestApp, body: Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let what = format!("{body} to find {expected:?}");
    app.eventually(&what, || {
        let body = body.clone();
        let expected = expected.clone();
        async move { (ids(&search(app, body).await) == expected).then_some(()) }
    })
    .await;
}

async fn create(app: &TestApp, body: Value) -> Value {
    let response = app.create_customer(&body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("json")
}

async fn katherine(app: &TestApp) -> String {
    let created = create(
        app,
        json!({ "email": "katherine.johnson@nasa.example", "first_name": "Katherine",
                "last_name": "Johnson", "phone": "+1 202 555 0123", "tags": ["scientist"] }),
    )
    .await;
    created["id"].as_str().expect("id").to_owned()
}

async fn katherine_is_found_by_typos_and_parts(app: TestApp) {
    let katherine = katherine(&app).await;
    let dorothy = create(
        &app,
        json!({ "email": "dorothy@nasa.example", "first_name": "Dorothy", "last_name": "Vaughan" }),
    )
    .await;
    let dorothy = dorothy["id"].as_str().expect("id");
    until_found(&app, json!({ "query": "Katherin" }), &[&katherine]).await;
    for query in ["jonson", "katherine.johnson", "0123", "5550123"] {
        let found = search(&app, json!({ "query": query })).await;
        assert_eq!(ids(&found), std::slice::from_ref(&katherine), "{query}");
        assert!(found["hits"][0]["score"].as_f64().expect("score") > 0.0);
        assert_eq!(found["hits"][0]["customer"]["last_name"], "Johnson");
    }
    assert_eq!(search(&app, json!({ "query": "zebra" })).await["total"], 0);

    // A change is searchable, and the old name no longer finds her.
    let response = app
        .patch_customer(&katherine, &json!({ "first_name": "Kathy" }), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until_found(&app, json!({ "query": "kathy" }), &[&katherine]).await;

    // Deleted: gone from searches, found only when asked for.
    let response = app.delete_customer(&katherine).await;
    assert!(response.status().is_success());
    until_found(&app, json!({ "query": "kathy" }), &[]).await;
    until_found(&app, json!({}), &[dorothy]).await;
    let deleted = search(&app, json!({ "query": "johnson", "status": "deleted" })).await;
    assert_eq!(ids(&deleted), [katherine]);
}

async fn filters_and_pages_give_exact_sets(app: TestApp) {
    let katherine = katherine(&app).await;
    let dorothy = create(
        &app,
        json!({ "email": "dorothy@nasa.example", "first_name": "Dorothy", "tags": ["manager"] }),
    )
    .await;
    let mary = create(
        &app,
        json!({ "email": "mary@nasa.example", "first_name": "Mary" }),
    )
    .await;
    let (dorothy_id, mary_id) = (
        dorothy["id"].as_str().expect("id"),
        mary["id"].as_str().expect("id"),
    );
    until_found(&app, json!({}), &[&katherine, dorothy_id, mary_id]).await;

    let tagged = search(&app, json!({ "tags": ["Scientist", "manager"] })).await;
    assert_eq!(ids(&tagged).len(), 2, "any of the tags, case-insensitive");
    assert!(!ids(&tagged).contains(&mary_id.to_owned()));
    let since = search(&app, json!({ "created_after": dorothy["created_at"] })).await;
    let mut expected = vec![dorothy_id.to_owned(), mary_id.to_owned()];
    expected.sort();
    assert_eq!(ids(&since), expected, "created at or after Dorothy");
    let new = search(&app, json!({ "segment": "new", "status": "active" })).await;
    assert_eq!(new["total"], 3);
    assert_eq!(search(&app, json!({ "segment": "vip" })).await["total"], 0);

    // Pages: the total every time, no customer twice, none missing.
    let first = search(&app, json!({ "limit": 2 })).await;
    let second = search(&app, json!({ "limit": 2, "offset": 2 })).await;
    assert_eq!(
        (first["total"].clone(), second["total"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!((ids(&first).len(), ids(&second).len()), (2, 1));
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3);
    let past_the_end = search(&app, json!({ "offset": 3 })).await;
    assert_eq!(
        (past_the_end["total"].clone(), ids(&past_the_end).len()),
        (json!(3), 0)
    );
}

async fn a_reindex_rebuilds_the_index_and_searches_keep_answering(app: TestApp) {
    let katherine = katherine(&app).await;
    let gone = app.given_customer_id("gone@example.com").await;
    assert!(app.delete_customer(&gone).await.status().is_success());
    until_found(&app, json!({ "query": "katherine" }), &[&katherine]).await;

    let response = app.post_json("/api/search/reindex", &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    // Searches answer while the new generation is built.
    assert_eq!(
        ids(&search(&app, json!({ "query": "katherine" })).await),
        std::slice::from_ref(&katherine)
    );
    let job: Value = app
        .eventually("the reindex to complete", || async {
            let job: Value = app.get(&location).await.json().await.expect("json");
            assert_ne!(job["status"], "failed", "{job}");
            (job["status"] == "completed").then_some(job)
        })
        .await;
    assert_eq!(
        job["progress"]["done"], 2,
        "the deleted customer is reindexed too: {job}"
    );
    assert!(job["finished_at"].is_string());
    assert_eq!(
        ids(&search(&app, json!({ "query": "katherine" })).await),
        [katherine]
    );
    let deleted = search(&app, json!({ "status": "deleted" })).await;
    assert_eq!(ids(&deleted), [gone]);

    // Later changes reach the new generation.
    let mary = create(
        &app,
        json!({ "email": "mary@nasa.example", "first_name": "Mary" }),
    )
    .await;
    until_found(
        &app,
        json!({ "query": "mary" }),
        &[mary["id"].as_str().expect("id")],
    )
    .await;

    let unknown = app
        .get("/api/search/reindex/00000000-0000-0000-0000-000000000000")
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND).await;

    // The lag, in readiness and metrics.
    let ready: Value = app
        .get_url(&format!("{}/readyz", app.search_health_url))
        .await
        .json()
        .await
        .expect("json");
    if app.vhost.is_some() {
        // The indexer's own /readyz (the standalone's gateway only says it answers).
        assert_eq!(ready["checks"]["lag"]["events_behind"], 0, "{ready}");
        assert!(ready["checks"]["lag"]["seconds_behind"].is_u64(), "{ready}");
    }
    app.eventually("the lag in /metrics", || async {
        let metrics = app
            .get_url(&format!("{}/metrics", app.search_health_url))
            .await
            .text()
            .await
            .expect("text");
        metrics.contains("crm_search_events_behind").then_some(())
    })
    .await;
}

async fn bad_searches_are_problems(app: TestApp) {
    let cases = [
        (json!({ "limit": 101 }), "limit"),
        (json!({ "limit": 0 }), "limit"),
        (json!({ "offset": 9_999, "limit": 2 }), "offset"),
        (json!({ "segment": "gold" }), "segment"),
        (json!({ "tags": [""] }), "tags[0]"),
        (json!({ "unknown": 1 }), "unknown"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/customers/search", &body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), [field], "{body}");
    }
    let malformed = app
        .post_raw("/api/customers/search", "application/json", b"{".to_vec())
        .await;
    assert_problem(malformed, StatusCode::BAD_REQUEST).await;
}
