//! No log line of any service holds an e-mail address or a phone number of the
//! customers it handled: every path that sees them runs here (create, conflicts,
//! invalid input, search, events, imports, delete), then the captured logs are searched.

use crm_e2e::{StatusCode, TestApp, completed_order, json};

crm_e2e::in_both_modes!(the_logs_hold_no_e_mail_address_or_phone_number);

/// With every debug line of every dependency too (request and SQL logs, say).
#[tokio::test]
async fn not_even_the_debug_logs_hold_them() {
    let app = TestApp::standalone_with_env(&[("RUST_LOG", "debug".into())]).await;
    let logs = exercise_then_search_the_logs(&app).await;
    let debug = logs.iter().filter(|l| l.contains("\"DEBUG\"")).count();
    assert!(debug > 10, "the debug lines were captured too ({debug})");
}

const EMAIL: &str = "grace.hopper@navy.example";
const OTHER_EMAIL: &str = "ada.lovelace@engine.example";
const PHONE: &str = "+1 202 555 0199";
const PHONE_DIGITS: &str = "2025550199";

async fn the_logs_hold_no_e_mail_address_or_phone_number(app: TestApp) {
    exercise_then_search_the_logs(&app).await;
}

/// Every path that sees personal data, then the logs; answers them.
async fn exercise_then_search_the_logs(app: &TestApp) -> Vec<String> {
    let created = app
        .create_customer(&json!({ "email": EMAIL, "phone": PHONE, "first_name": "Grace" }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A conflict, invalid input echoing personal data, a patch.
    let taken = app.create_customer(&json!({ "email": EMAIL })).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let invalid = app
        .create_customer(&json!({ "email": OTHER_EMAIL, "phone": "+1 202 555 01999999999" }))
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let patched = app
        .patch_customer(&id, &json!({ "email": OTHER_EMAIL }), None)
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    // Searches by e-mail and phone; events; an import with a bad row.
    for query in [OTHER_EMAIL, PHONE_DIGITS] {
        let found = app
            .post_json("/api/customers/search", &json!({ "query": query }))
            .await;
        assert_eq!(found.status(), StatusCode::OK);
    }
    let events = app
        .send_events(&json!({ "events": [completed_order(&id, "o-1", 42.0)] }))
        .await;
    assert_eq!(events.status(), StatusCode::ACCEPTED);
    let csv = format!("email,phone\n{EMAIL},{PHONE}\nnot-an-email,+1 202 555 0100\n");
    let import = app
        .post_raw("/api/imports", "text/csv", csv.into_bytes())
        .await;
    assert!(import.status().is_success());
    app.eventually("the order to reach the customer", || async {
        let customer: serde_json::Value = app.get_customer(&id).await.json().await.ok()?;
        (customer["metrics"]["total_orders"] == 1).then_some(())
    })
    .await;
    assert_eq!(
        app.delete_customer(&id).await.status(),
        StatusCode::NO_CONTENT
    );

    let logs = app.logs();
    assert!(!logs.is_empty());
    for secret in [
        EMAIL,
        OTHER_EMAIL,
        "grace.hopper",
        PHONE_DIGITS,
        "2025550100",
    ] {
        let leaked: Vec<&String> = logs.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "{secret} is in the logs: {leaked:#?}");
    }
    logs
}
