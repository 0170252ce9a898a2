//! Bulk import end to end, in both modes: CSV and NDJSON uploads, upsert by e-mail,
//! errors by line, and the `crm import` command.

use crm_e2e::{StatusCode, TestApp, assert_problem, json};
use serde_json::Value;

crm_e2e::in_both_modes!(
    ten_thousand_rows_with_ten_bad_lines_report_exactly_those,
    ndjson_rows_update_customers_with_the_same_email,
    refused_uploads_say_why,
);

async fn ten_thousand_rows_with_ten_bad_lines_report_exactly_those(app: TestApp) {
    let mut csv = String::from("email,first_name,last_name,tags,newsletter\n");
    let mut bad_lines = Vec::new();
    for row in 0..10_000u64 {
        let line = row + 2; // the header is line 1
        if row % 1_000 == 999 {
            bad_lines.push(line);
            csv.push_str(&format!("broken-{row},First,Last,,\n"));
        } else {
            csv.push_str(&format!(
                "user{row}@example.com,First{row},Last{row},vip|tier{},yes\n",
                row % 3
            ));
        }
    }

    let response = app
        .post_raw("/api/imports", "text/csv", csv.into_bytes())
        .await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["counts"]["created"].as_u64(),
            job["counts"]["failed"].as_u64()
        ),
        (Some(9_990), Some(10))
    );
    let lines: Vec<u64> = job["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad_lines);
    assert!(
        job["failures"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("email:")
    );
    let read: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(read, job, "the job reads back as answered");
    let page: Value = app.list_customers("?limit=1").await.json().await.unwrap();
    assert_eq!(page["items"][0]["email"], "user0@example.com");
    assert_eq!(page["items"][0]["tags"], json!(["vip", "tier0"]));
    assert_eq!(page["items"][0]["preferences"]["newsletter"], true);
}

async fn ndjson_rows_update_customers_with_the_same_email(app: TestApp) {
    let ada = app.given_customer("ada@example.com").await;
    let ndjson = concat!(
        "{\"email\": \"ADA@example.com\", \"last_name\": \"Lovelace\"}\n",
        "{\"email\": \"grace@example.com\", \"first_name\": \"Grace\", \"tags\": [\"navy\"]}\n",
        "{\"email\": \"ada@example.com\", \"last_name\": \"Lovelace\"}\n",
    );

    let response = app
        .post_raw(
            "/api/imports",
            "application/x-ndjson",
            ndjson.as_bytes().to_vec(),
        )
        .await;

    let job: Value = response.json().await.unwrap();
    let counts =
        ["created", "updated", "unchanged", "failed"].map(|k| job["counts"][k].as_u64().unwrap());
    assert_eq!(counts, [1, 1, 1, 0], "{job}");
    let read: Value = app
        .get_customer(ada["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["last_name"], "Lovelace");
    assert_eq!(read["first_name"], "Ada", "fields the row leaves out stay");
    assert_eq!(read["version"], 2);
}

async fn refused_uploads_say_why(app: TestApp) {
    let wrong_type = app
        .post_raw("/api/imports", "application/pdf", b"%PDF".to_vec())
        .await;
    assert_problem(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let unknown_column = app
        .post_raw(
            "/api/imports",
            "text/csv",
            b"email,shoe_size\na@b.co,42\n".to_vec(),
        )
        .await;
    assert_eq!(unknown_column.status(), StatusCode::ACCEPTED);
    let job: Value = unknown_column.json().await.unwrap();
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("shoe_size"),
        "{job}"
    );

    let unknown = "/api/imports/01a20df5-a41c-776f-9af3-8d4642c2bb6b";
    assert_problem(app.get(unknown).await, StatusCode::NOT_FOUND).await;
    assert_problem(app.get("/api/imports/42").await, StatusCode::BAD_REQUEST).await;
}
