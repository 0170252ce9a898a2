//! The platform's promises under faults, on the distributed binaries: an accepted event
//! or write is never lost nor applied twice, and a read after a write never shows the
//! older record. Each scenario breaks the world (cuts a connection through a proxy of
//! its own, kills a process) and asserts its pass criterion; none stops the shared
//! servers, so they run in parallel with everything else.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crm_e2e::{
    StatusCode, TestApp, assert_problem,
    cluster::Options,
    json,
    load::{
        answered, applied_orders, order, searched_version, send_until_accepted,
        until_search_has_the_last_versions,
    },
};
use serde_json::Value;

fn proxied() -> Options {
    Options {
        proxied: true,
        ..Options::default()
    }
}

async fn readiness(app: &TestApp, binary: &str) -> Value {
    let url = format!("{}/readyz", app.http_url(binary, 0));
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Rows of customer-core's outbox not yet published.
async fn outbox_backlog(app: &TestApp) -> i64 {
    use sqlx::Connection;
    let url = app.database_url.as_deref().expect("distributed");
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

/// How long the applied orders may stop growing before a scenario calls them lost: a
/// slow machine takes longer, a lost event never arrives.
const NO_PROGRESS_FOR: Duration = Duration::from_secs(90);

/// Orders applied to `customers` so far, as their metrics count them.
async fn orders_applied(app: &TestApp, customers: impl Iterator<Item = &String>) -> u64 {
    let mut total = 0;
    for customer in customers {
        let read: Option<Value> = app.get_customer(customer).await.json().await.ok();
        total += read
            .and_then(|r| r["metrics"]["total_orders"].as_u64())
            .unwrap_or(0);
    }
    total
}

/// Waits until every customer's metrics hold exactly the orders accepted for it (as
/// long as they keep growing), then checks the applied event ids against the accepted
/// ones.
async fn assert_applied_once(app: &TestApp, accepted: &BTreeMap<String, Vec<Value>>) {
    let expected: u64 = accepted.values().map(|events| events.len() as u64).sum();
    let (mut seen, mut since) = (0, tokio::time::Instant::now());
    loop {
        let applied = orders_applied(app, accepted.keys()).await;
        if applied >= expected {
            break;
        }
        if applied > seen {
            (seen, since) = (applied, tokio::time::Instant::now());
        }
        assert!(
            since.elapsed() < NO_PROGRESS_FOR,
            "{applied} of {expected} accepted orders applied, none more for {NO_PROGRESS_FOR:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (customer, events) in accepted {
        let count = events.len();
        let spent: f64 = events
            .iter()
            .map(|e| e["data"]["total"].as_f64().unwrap())
            .sum();
        let metrics = app
            .eventually_within(
                Duration::from_secs(180),
                "every accepted order applied",
                || async {
                    let read: Value = app.get_customer(customer).await.json().await.ok()?;
                    (read["metrics"]["total_orders"] == count).then_some(read["metrics"].clone())
                },
            )
            .await;
        assert_eq!(
            metrics["total_spent"].as_f64().unwrap(),
            spent,
            "{customer}"
        );
        let applied: BTreeSet<String> = applied_orders(app, customer).await.into_iter().collect();
        let sent: BTreeSet<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(applied, sent, "applied ids of {customer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_cut_loses_nothing_and_applies_nothing_twice() {
    let app = TestApp::cluster(proxied()).await;
    let proxies = app.proxies.as_ref().unwrap();
    let customers: Vec<String> = app.given_customers("buyer", 20).await;
    let mut accepted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let events: Vec<(String, Value)> = (0..10_000)
        .map(|n| {
            let customer = &customers[n % customers.len()];
            (customer.clone(), order(customer, n, (n % 7 + 1) as f64))
        })
        .collect();
    let batches: Vec<&[(String, Value)]> = events.chunks(250).collect();
    let mut outage = None;
    for (number, batch) in batches.iter().enumerate() {
        if number == batches.len() / 3 {
            proxies.broker.cut();
            outage = Some(proxies.broker.restore_after(Duration::from_secs(10)));
            app.eventually("readiness to report the broker away", || async {
                let mut degraded = true;
                for binary in ["crm-event-ingest", "crm-customer-core", "crm-segmentation"] {
                    degraded &= readiness(&app, binary).await["status"] == "degraded";
                }
                degraded.then_some(())
            })
            .await;
        }
        let sent: Vec<Value> = batch.iter().map(|(_, e)| e.clone()).collect();
        send_until_accepted(&app, &sent).await;
        for (customer, event) in batch.iter() {
            accepted
                .entry(customer.clone())
                .or_default()
                .push(event.clone());
        }
    }
    outage.expect("the broker was cut").await.unwrap();

    assert_applied_once(&app, &accepted).await;
    app.eventually("the outbox to drain", || async {
        (outbox_backlog(&app).await == 0).then_some(())
    })
    .await;
    let ready = readiness(&app, "crm-event-ingest").await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_core_killed_during_an_ingest_stream_loses_nothing() {
    let app = TestApp::cluster(Options::default()).await;
    let customers: Vec<String> = app.given_customers("stream", 5).await;
    let mut accepted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for round in 0..20 {
        if round == 8 {
            app.kill("crm-customer-core", 0).await;
        }
        if round == 12 {
            app.restart("crm-customer-core", 0).await;
        }
        let batch: Vec<(String, Value)> = (0..100)
            .map(|n| {
                let customer = &customers[n % customers.len()];
                (customer.clone(), order(customer, round * 100 + n, 2.5))
            })
            .collect();
        let events: Vec<Value> = batch.iter().map(|(_, e)| e.clone()).collect();
        send_until_accepted(&app, &events).await;
        for (customer, event) in batch {
            accepted.entry(customer).or_default().push(event);
        }
    }
    assert_applied_once(&app, &accepted).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_with_one_if_match_one_wins_one_is_told() {
    let app = TestApp::cluster(Options::default()).await;
    let id = app.given_customer_id("contested@example.com").await;
    let write = |name: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.patch_customer(&id, &json!({ "first_name": name }), Some("\"1\""))
                .await
                .status()
        }
    };
    let (one, two) = tokio::join!(write("One"), write("Two"));
    let mut statuses = [one, two];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let read: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["version"], 2, "one change, not two");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_cut_for_five_seconds_refuses_writes_then_serves_them_without_a_restart() {
    let app = TestApp::cluster(proxied()).await;
    let id = app.given_customer_id("steady@example.com").await;
    let postgres = &app.proxies.as_ref().unwrap().postgres;
    postgres.cut();
    let started = std::time::Instant::now();
    let refused = app
        .patch_customer(&id, &json!({ "first_name": "Cut" }), None)
        .await;
    let problem = assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["type"], "/problems/service-unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the timeout"
    );
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(started.elapsed())).await;
    postgres.restore();

    let written = app
        .eventually("writes to be served again", || async {
            let response = app
                .patch_customer(&id, &json!({ "first_name": "Back" }), None)
                .await;
            (response.status() == StatusCode::OK).then_some(())
        })
        .await;
    let () = written;
    let read: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["first_name"], "Back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_cut_costs_reads_nothing_and_no_read_after_it_is_older_than_a_write() {
    let app = TestApp::cluster(proxied()).await;
    let redis = &app.proxies.as_ref().unwrap().redis;
    let ids: Vec<String> = app.given_customers("cached", 5).await;
    // Warm: every customer's version 1 sits in Redis.
    for id in &ids {
        assert_eq!(app.get_customer(id).await.status(), StatusCode::OK);
        assert_eq!(app.get_customer(id).await.status(), StatusCode::OK);
    }
    redis.cut();
    app.eventually("event-ingest to report its Redis away", || async {
        let ready = readiness(&app, "crm-event-ingest").await;
        (ready["status"] == "degraded").then_some(())
    })
    .await;
    let mut last_written = BTreeMap::new();
    for round in 0..3 {
        for id in &ids {
            let read = app.get_customer(id).await;
            assert_eq!(
                read.status(),
                StatusCode::OK,
                "reads answer while Redis is away"
            );
            let written = app
                .patch_customer(id, &json!({ "first_name": format!("Round{round}") }), None)
                .await;
            assert_eq!(written.status(), StatusCode::OK);
            let written: Value = written.json().await.unwrap();
            last_written.insert(id.clone(), written["version"].as_i64().unwrap());
        }
    }
    redis.restore();
    // Right after the outage and for a while on, every read is at least the last write
    // (Redis still holds every customer's version 1).
    for _ in 0..10 {
        for (id, version) in &last_written {
            let read = app.get_customer(id).await;
            assert_eq!(read.status(), StatusCode::OK);
            let read: Value = read.json().await.unwrap();
            assert!(
                read["version"].as_i64().unwrap() >= *version,
                "read version {} after writing {version}",
                read["version"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_retried_a_few_times_then_dead_lettered_and_the_rest_flows() {
    use crm_platform::bus::{EVENTS_EXCHANGE, EventBus, Message, RabbitBus};
    let app = TestApp::cluster(Options::default()).await;
    let id = app.given_customer_id("poisoned@example.com").await;
    let vhost = app.vhost.as_ref().unwrap();
    let bus = RabbitBus::new(crm_platform::settings::Secret::new(&vhost.url));
    // An order id far past what an index row may hold (random, so it does not
    // compress): every attempt fails in the database, as a message no retry can help.
    let huge: String = (0..400)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let mut poison = crm_e2e::completed_order(&id, &huge, 1.0);
    let poison_id = uuid::Uuid::new_v4().to_string();
    poison["id"] = json!(poison_id);
    poison["timestamp"] = json!("2026-12-01T10:00:00Z");
    poison["source"] = json!("test");
    let message = Message::new(
        poison_id.clone(),
        "order.completed",
        serde_json::to_vec(&poison).unwrap(),
    );
    bus.publish(EVENTS_EXCHANGE, &[message]).await.unwrap();
    send_until_accepted(&app, &[order(&id, 1, 5.0)]).await;

    let dead = app
        .eventually_within(
            Duration::from_secs(120),
            "the poison in the dead-letter queue",
            || async {
                let dead = bus.dead_letters("customer-core.events", 10).await.ok()?;
                dead.into_iter().find(|d| d.message.id == poison_id)
            },
        )
        .await;
    assert!(!dead.reason.is_empty(), "the reason is kept");
    assert_eq!(
        dead.message.headers[crm_platform::bus::ATTEMPT_HEADER],
        "5",
        "tried five times, then set aside"
    );
    let read: Value = app
        .eventually("the next event applied", || async {
            let read: Value = app.get_customer(&id).await.json().await.ok()?;
            (read["metrics"]["total_orders"] == 1).then_some(read)
        })
        .await;
    assert_eq!(read["metrics"]["total_spent"], 5.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_reads_of_one_uncached_customer_cost_one_database_read() {
    let options = Options {
        extra: vec![(
            "crm-gateway".into(),
            "CRM_RATE_LIMIT_BURST".into(),
            "2000".into(),
        )],
        ..Options::default()
    };
    let app = TestApp::cluster(options).await;
    let core_metric = |name: &'static str, labels: &'static str| {
        let app = &app;
        async move { app.metric("crm-customer-core", 0, name, labels).await }
    };
    // Reads use the cache once the replica trusts it: shown by a warm-up read served
    // from it.
    let warm = app.given_customer_id("warm@example.com").await;
    app.eventually("reads served from the cache", || async {
        app.get_customer(&warm).await;
        let hits = core_metric("crm_customer_cache_lookups_total", "outcome=\"hit\"").await;
        (hits > 0.0).then_some(())
    })
    .await;
    let id = app.given_customer_id("popular@example.com").await;
    let misses_before = core_metric("crm_customer_cache_lookups_total", "outcome=\"miss\"").await;
    let reads_before = core_metric("crm_customer_database_reads_total", "").await;

    // The customers table is held, so that every read misses the cache while the first
    // one waits for the database.
    let database = app.database_url.as_deref().unwrap();
    let mut holder = crm_platform::testing::lock_table(database, "customers").await;
    let reads = tokio::spawn({
        let (client, url) = (
            reqwest::Client::new(),
            format!("{}/api/customers/{id}", app.base_url),
        );
        async move {
            let reads = (0..500).map(|_| client.get(&url).bearer_auth(crm_e2e::ADMIN_KEY).send());
            futures::future::join_all(reads).await
        }
    });
    app.eventually_within(
        Duration::from_secs(60),
        "every read to miss the cache",
        || async {
            let misses = core_metric("crm_customer_cache_lookups_total", "outcome=\"miss\"").await;
            (misses - misses_before >= 500.0).then_some(())
        },
    )
    .await;
    sqlx::query("rollback").execute(&mut holder).await.unwrap();
    for read in reads.await.unwrap() {
        assert_eq!(read.unwrap().status(), StatusCode::OK);
    }
    let reads = core_metric("crm_customer_database_reads_total", "").await - reads_before;
    assert_eq!(reads, 1.0, "database reads");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_after_the_broker_confirmed_publishes_again_and_nothing_changes_twice() {
    use crm_platform::bus::EVENTS_EXCHANGE;
    let app = TestApp::cluster(proxied()).await;
    let id = app.given_customer_id("relayed@example.com").await;
    let search = |version: i64| {
        let (app, id) = (&app, &id);
        async move {
            let found = searched_version(app, "relayed@example.com", id).await;
            (found == Some(version)).then_some(())
        }
    };
    app.eventually("the customer in the index", || search(1))
        .await;
    let stale = || {
        app.metric(
            "crm-search-indexer",
            0,
            "crm_search_events_applied_total",
            "stale",
        )
    };
    let stale_before = stale().await;
    let mut published = app.subscribe(EVENTS_EXCHANGE, "customer.updated").await;

    // Each exchange with the database takes 0.6 s: the relay's delete of the row it
    // published is still on its way when the message reaches the broker.
    let postgres = &app.proxies.as_ref().unwrap().postgres;
    postgres.delay(Duration::from_millis(300));
    let patch = json!({ "first_name": "Once" });
    let write = app.patch_customer(&id, &patch, None);
    let kill_once_published = async {
        let (_, first) = published.next(1).await.remove(0);
        app.kill("crm-customer-core", 0).await;
        first
    };
    // The write itself may or may not have been answered before the kill.
    let (_, first) = tokio::join!(write, kill_once_published);
    postgres.restore();
    app.restart("crm-customer-core", 0).await;

    // The row was not marked: it goes out again, and the second copy changes nothing.
    let (_, again) = published.next(1).await.remove(0);
    assert_eq!(again["id"], first["id"], "the same message again");
    app.eventually("the indexer to absorb the duplicate", || async {
        (stale().await > stale_before).then_some(())
    })
    .await;
    let read: Value = app.get_customer(&id).await.json().await.unwrap();
    assert_eq!(read["version"], 2);
    assert_eq!(read["first_name"], "Once");
    app.eventually("the index at version 2", || search(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_finishes_what_is_in_flight_and_applies_nothing_by_halves() {
    let app = TestApp::cluster(Options::default()).await;
    let ids: Vec<String> = app.given_customers("draining", 5).await;
    // Held at the database: writes and event applies queue there, in flight.
    let database = app.database_url.as_deref().unwrap();
    let mut holder = crm_platform::testing::lock_table(database, "customers").await;
    let events: Vec<Value> = (0..50)
        .map(|n| order(&ids[n % ids.len()], n, 3.0))
        .collect();
    let writes = futures::future::join_all(ids.iter().map(|id| {
        let app = &app;
        async move {
            let patch = json!({ "last_name": "Drained" });
            app.patch_customer(id, &patch, None).await.status()
        }
    }));
    let terminate_while_held = async {
        // Every write's read waits at the database; then events arrive, and their
        // applies queue behind the writes.
        app.eventually("the writes to wait at the database", || async {
            (lock_waits(database, "%for update%").await >= 5).then_some(())
        })
        .await;
        send_until_accepted(&app, &events).await;
        let terminating = app.terminate("crm-customer-core", 0);
        let release = async {
            app.eventually("customer-core to stop taking work", || async {
                let logs = app.logs();
                logs.iter()
                    .any(|l| l.contains("shutdown requested"))
                    .then_some(())
            })
            .await;
            sqlx::query("rollback").execute(&mut holder).await.unwrap();
        };
        tokio::join!(terminating, release).0
    };
    let (statuses, exit) = tokio::join!(writes, terminate_while_held);
    assert!(exit.success(), "a clean exit after draining: {exit}");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "every write in flight finished: {statuses:?}"
    );

    app.restart("crm-customer-core", 0).await;
    let mut accepted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events {
        let customer = event["customer_id"].as_str().unwrap().to_owned();
        accepted.entry(customer).or_default().push(event);
    }
    assert_applied_once(&app, &accepted).await;
    for id in &ids {
        let read: Value = app.get_customer(id).await.json().await.unwrap();
        assert_eq!(read["last_name"], "Drained");
    }
}

/// Statements of the database waiting for a lock, but for those like `except`.
async fn lock_waits(database: &str, except: &str) -> i64 {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database).await.unwrap();
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() \
         and wait_event_type = 'Lock' and query not like $1",
    )
    .bind(except)
    .fetch_one(&mut connection)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_of_everything_lose_one_each_half_way_and_keep_every_promise() {
    use crm_e2e::cluster::BINARIES;
    let app = TestApp::cluster(Options {
        replicas: 2,
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", app.base_url);
    let ids: Vec<String> = app.given_customers("replicated", 10).await;
    let mut accepted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut recomputes = 0;
    for round in 0..20 {
        if round == 10 {
            for binary in BINARIES {
                app.kill_for_good(binary, 0).await;
            }
        }
        // Orders, a change of every customer, and a recompute now and then.
        let events: Vec<Value> = (0..100)
            .map(|n| order(&ids[n % ids.len()], round * 100 + n, 1.5))
            .collect();
        let body = json!({ "events": events });
        let (status, answer) = answered(|| {
            client
                .post(url("/api/events"))
                .bearer_auth(crm_e2e::ADMIN_KEY)
                .json(&body)
        })
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        for event in events {
            let customer = event["customer_id"].as_str().unwrap().to_owned();
            accepted.entry(customer).or_default().push(event);
        }
        for id in &ids {
            let patch = json!({ "first_name": format!("Round{round}") });
            let (status, answer) = answered(|| {
                client
                    .patch(url(&format!("/api/customers/{id}")))
                    .bearer_auth(crm_e2e::ADMIN_KEY)
                    .header("content-type", "application/merge-patch+json")
                    .body(patch.to_string())
            })
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        if round % 4 == 0 {
            let (status, _) = answered(|| {
                client
                    .post(url("/api/segments/recompute"))
                    .bearer_auth(crm_e2e::ADMIN_KEY)
            })
            .await;
            assert!(
                [StatusCode::ACCEPTED, StatusCode::CONFLICT].contains(&status),
                "{status}"
            );
            recomputes += usize::from(status == StatusCode::ACCEPTED);
        }
    }
    assert!(recomputes > 0);

    assert_applied_once(&app, &accepted).await;
    // One recompute at a time: no two jobs ran over the same moment.
    let jobs = recompute_jobs(app.database_url.as_deref().unwrap()).await;
    for pair in jobs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "recomputes overlapped: {jobs:?}");
    }
    // Search finds the last version of every customer, from either indexer (the one
    // left works through both replicas' snapshots; a busy machine takes a while).
    until_search_has_the_last_versions(&app, &ids, Duration::from_secs(120)).await;
}

/// Every recompute job's (start, end) in microseconds, oldest first (end: now for one
/// still running).
async fn recompute_jobs(database: &str) -> Vec<(i64, i64)> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database).await.unwrap();
    sqlx::query_as(
        "select started_at_us, coalesce(finished_at_us, 9223372036854775807) \
         from segmentation.recompute_jobs order by started_at_us",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap()
}
