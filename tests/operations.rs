//! How the platform behaves as a deployment: restarts, a cache outage, and the services
//! that later issues fill in.

use crm_e2e::{StatusCode, TestApp, completed_order, json};
use crm_platform::bus::{EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE};
use serde_json::Value;

#[tokio::test]
async fn the_standalone_binary_keeps_its_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::standalone_in(dir.path()).await;
    let id = app.given_customer_id("ada@example.com").await;
    app.patch_customer(&id, &json!({ "last_name": "Lovelace" }), None)
        .await;
    drop(app);

    let restarted = TestApp::standalone_in(dir.path()).await;

    let read: Value = restarted.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["last_name"], "Lovelace");
    assert_eq!(read["version"], 2);
}

#[tokio::test]
async fn customer_core_serves_from_the_database_while_redis_is_down_and_warns_once() {
    // Nothing listens on port 1: every cache call fails.
    let app = TestApp::distributed_with_redis("redis://127.0.0.1:1").await;

    let id = app.given_customer_id("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.get_customer(&id).await.status(), StatusCode::OK);
    }
    let patched = app
        .patch_customer(&id, &json!({ "last_name": "Lovelace" }), None)
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let read: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["last_name"], "Lovelace");

    // Each process that uses Redis (customer-core's cache, the gateway's rate limits)
    // warns once per outage, not per request.
    let warnings = || {
        app.logs()
            .iter()
            .filter(|line| line.contains("dependency unreachable"))
            .count()
    };
    let after_the_first_requests = warnings();
    assert!(
        (1..=2).contains(&after_the_first_requests),
        "{after_the_first_requests}"
    );
    for _ in 0..5 {
        assert_eq!(app.get_customer(&id).await.status(), StatusCode::OK);
    }
    assert_eq!(
        warnings(),
        after_the_first_requests,
        "no warning per request"
    );
}

#[tokio::test]
async fn every_accepted_event_is_applied_once_across_a_broker_connection_cut() {
    let app = TestApp::distributed().await;
    let id = app.given_customer_id("ada@example.com").await;
    let orders = 30;

    for n in 0..orders {
        if n == orders / 2 {
            // Every client connection of the vhost dies, as in a broker restart.
            app.vhost.as_ref().expect("distributed").close_connections();
        }
        let mut event = completed_order(&id, &format!("o-{n}"), 10.0);
        event["id"] = json!(format!("0194f8a0-0000-7000-8000-{n:012}"));
        // A client resends until the event is accepted (or known as a duplicate).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let response = app.send_events(&event).await;
            if response.status() == StatusCode::ACCEPTED {
                let answer: Value = response.json().await.unwrap();
                assert_eq!(answer["rejected"], json!([]), "{answer}");
                break;
            }
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(attempts < 50, "ingest never recovered");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    let customer = app
        .eventually("every order to be applied", || async {
            let c: Value = app.get_customer(&id).await.json().await.unwrap();
            (c["metrics"]["total_orders"] == orders).then_some(c)
        })
        .await;
    assert_eq!(customer["metrics"]["total_spent"], 10.0 * orders as f64);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let later: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(
        later["metrics"]["total_orders"], orders,
        "nothing applied twice"
    );
    let feed: Value = app
        .list_events(&id, "?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), orders as usize);

    // The cut really happened in the middle, to both sides.
    let logs = app.logs().join("\n");
    assert!(
        logs.contains("consumer lost the broker"),
        "the consumer reconnected"
    );
    assert!(
        logs.contains(r#""reconnect":true"#),
        "the publisher reconnected"
    );
}

#[tokio::test]
async fn customer_changes_are_published_through_the_outbox_with_their_snapshot() {
    let app = TestApp::distributed().await;
    let mut changes = app.subscribe(EVENTS_EXCHANGE, "customer.#").await;

    let id = app.given_customer_id("ada@example.com").await;
    app.patch_customer(&id, &json!({ "last_name": "Lovelace" }), None)
        .await;
    app.delete_customer(&id).await;

    let events = changes.next(3).await;
    let types: Vec<&str> = events.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        types,
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    for ((_, event), version) in events.iter().zip(1..) {
        assert_eq!(event["customer_id"], id.as_str());
        assert_eq!(event["data"]["version"], version);
        assert_eq!(event["data"]["customer"]["version"], version);
    }
    assert_eq!(events[1].1["data"]["customer"]["last_name"], "Lovelace");
    assert_eq!(events[2].1["data"]["customer"]["status"], "deleted");
}

#[tokio::test]
async fn milestones_and_abandoned_carts_notify_the_notification_service() {
    let app = TestApp::distributed().await;
    let mut notifications = app.subscribe(NOTIFICATIONS_EXCHANGE, "#").await;
    // Opted out (the default): its milestone and cart come first and send nothing.
    let opted_out = app.given_customer_id("out@example.com").await;
    let silent = [
        completed_order(&opted_out, "o-0", 1500.0),
        json!({ "customer_id": opted_out, "type": "cart.abandoned",
                "data": { "cart_id": "c-0", "cart_value": 1.0, "items": [] } }),
    ];
    app.send_events(&json!({ "events": silent })).await;
    app.eventually("the opted-out customer's order", || async {
        let customer: Value = app.get_customer(&opted_out).await.json().await.ok()?;
        (customer["metrics"]["total_orders"] == 1).then_some(())
    })
    .await;
    let created = app
        .create_customer(&json!({ "email": "ada@example.com",
                                  "preferences": { "newsletter": true } }))
        .await;
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let order = |n: u32, total: f64| completed_order(&id, &format!("o-{n}"), total);
    let cart = json!({ "customer_id": id, "type": "cart.abandoned",
                       "data": { "cart_id": "c-1", "cart_value": 42.5, "items": [] } });
    app.send_events(&json!({ "events": [order(1, 1500.0), order(2, 10.0), cart] }))
        .await;

    // Events are applied concurrently, so only the messages of one event keep their order.
    let mut received = notifications.next(3).await;
    received.sort_by(|a, b| a.0.cmp(&b.0));
    let summary: Vec<(&str, &str)> = received
        .iter()
        .map(|(key, body)| (key.as_str(), body["milestone"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(
        summary,
        [
            ("cart.abandoned.flow", "-"),
            ("milestone.reached", "first_order"),
            ("milestone.reached", "lifetime_value"),
        ]
    );
    assert_eq!(received[0].1["cart_value"], 42.5);
    assert_eq!(received[2].1["threshold"], 1000.0);
    assert_eq!(received[2].1["order_id"], "o-1");
    assert_eq!(received[2].1["channels"], json!(["email"]));
    assert!(
        received
            .iter()
            .all(|(_, body)| body["customer_id"] == id.as_str())
    );
}

#[tokio::test]
async fn the_import_command_uploads_a_file_and_prints_the_outcome() {
    let app = TestApp::standalone().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customers.csv");
    std::fs::write(
        &file,
        "email,first_name\nada@example.com,Ada\nnot-an-email,Bob\n",
    )
    .unwrap();

    let output = tokio::process::Command::new(crm_e2e::binary("crm"))
        .args(["import", file.to_str().unwrap(), "--url", &app.base_url])
        .output()
        .await
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("completed; 1 created, 0 updated, 0 unchanged, 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("line 3: email:"), "{stdout}");

    let missing = tokio::process::Command::new(crm_e2e::binary("crm"))
        .args(["import", "nowhere.csv", "--url", &app.base_url])
        .output()
        .await
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));
}

/// Runs `crm import` with `args`: (succeeded, stdout, stderr).
async fn crm_import(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(crm_e2e::binary("crm"))
        .arg("import")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn crm_import_sends_an_api_key_over_https_and_imports_a_file_once() {
    let writer = format!(
        "writer:{}:customers:write",
        crm_gateway::auth::hash_key("writer-key")
    );
    let keys = [writer, crm_e2e::ADMIN_KEY_ENTRY.to_owned()].join(";");
    let app = TestApp::standalone_with_env(&[("CRM_API_KEYS", keys)]).await;
    let ca = crm_platform::testing::TestCa::new("import ca");
    let (certificate, key) = ca.issue();
    let plain: std::net::SocketAddr = app.base_url.trim_start_matches("http://").parse().unwrap();
    let https = crm_e2e::faults::TlsTerminator::start(plain, &certificate, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let (file, ca_file) = (dir.path().join("people.csv"), dir.path().join("ca.pem"));
    std::fs::write(&file, "email\nonce@example.com\n").unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let (file, ca_file, url) = (
        file.to_str().unwrap(),
        ca_file.to_str().unwrap(),
        https.url(),
    );

    let (ok, _, stderr) = crm_import(&[file, "--url", &url, "--ca-cert", ca_file]).await;
    assert!(!ok && stderr.contains("401"), "without a key: {stderr}");
    let unknown_ca = [
        file,
        "--url",
        &url,
        "--api-key",
        "writer-key",
        "--attempts",
        "1",
    ];
    let (ok, _, stderr) = crm_import(&unknown_ca).await;
    assert!(!ok, "a certificate of an unknown CA is refused: {stderr}");

    let once = [
        file,
        "--url",
        &url,
        "--ca-cert",
        ca_file,
        "--api-key",
        "writer-key",
    ];
    let keyed = [&once[..], &["--idempotency-key", "upload-1"]].concat();
    let (ok, first, stderr) = crm_import(&keyed).await;
    assert!(ok, "{first}{stderr}");
    assert!(first.contains("1 created"), "{first}");
    // The same upload sent again (a retry after a broken connection, say) is the same
    // import: nothing is imported twice.
    let (ok, again, stderr) = crm_import(&keyed).await;
    assert!(ok, "{again}{stderr}");
    assert_eq!(again, first, "the first import's answer again");
    let listed: Value = app.list_customers("").await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn events_accepted_just_before_the_standalone_process_is_killed_are_applied_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::standalone_in(dir.path()).await;
    let id = app.given_customer_id("ada@example.com").await;
    let events: Vec<Value> = (0..200)
        .map(|n| completed_order(&id, &format!("o-{n}"), 1.0))
        .collect();
    let answer: Value = app
        .send_events(&json!({ "events": events }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["accepted"], 200);
    drop(app); // SIGKILL, right after the answer

    let restarted = TestApp::standalone_in(dir.path()).await;

    restarted
        .eventually("every accepted order to be applied", || async {
            let c: Value = restarted.get_customer(&id).await.json().await.unwrap();
            (c["metrics"]["total_orders"] == 200).then_some(())
        })
        .await;
}

#[tokio::test]
async fn the_request_id_reaches_the_log_lines_of_the_services() {
    let app = TestApp::distributed().await;

    let response = app
        .client()
        .post(format!("{}/api/customers", app.base_url))
        .header("x-request-id", "e2e-trace-7")
        .json(&json!({ "email": "traced@example.com" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "e2e-trace-7");
    let logs = app.logs();
    let created = logs
        .iter()
        .find(|line| line.contains("customer created"))
        .expect("customer-core logged the creation");
    assert!(created.contains("e2e-trace-7"), "{created}");
}
