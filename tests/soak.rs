//! `make soak`: the distributed platform, two replicas of every binary, under mixed load
//! for `SOAK_SECONDS` (600) while random faults from the toolkit come and go (the broker,
//! Redis or PostgreSQL cut or slowed, a replica killed and restarted). Then everything is
//! restored and the platform is checked against itself: the log of accepted events
//! against what PostgreSQL applied, and the search index against PostgreSQL. It prints
//! what it did and fails unless nothing was lost and nothing applied twice. Not part of
//! `make test` (it runs for minutes); `make soak` runs it.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crm_e2e::{
    StatusCode, TestApp,
    cluster::{BINARIES, Options},
    json,
    load::{
        answered, applied_orders, order, send_until_accepted, until_search_has_the_last_versions,
    },
};
use serde_json::Value;

/// A small deterministic generator (xorshift), seeded from `SOAK_SEED` (printed), so a
/// failing run can be replayed with the same faults.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    faults: BTreeMap<&'static str, u64>,
    accepted: BTreeMap<String, Vec<Value>>,
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "runs for minutes: make soak"]
async fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").map_or(600, |s| s.parse().expect("seconds"));
    let seed: u64 = std::env::var("SOAK_SEED").map_or_else(
        |_| u64::from(std::process::id()) * 2_654_435_761 + 1,
        |s| s.parse().expect("a seed"),
    );
    println!("soak: {seconds} s, SOAK_SEED={seed}");
    let mut dice = Dice(seed.max(1));
    let app = TestApp::cluster(Options {
        proxied: true,
        replicas: 2,
        ..Options::default()
    })
    .await;
    let proxies = app.proxies.as_ref().unwrap();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", app.base_url);
    let ids: Vec<String> = app.given_customers("soak", 50).await;
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_secs(5);
    let mut event = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        if Instant::now() >= next_fault {
            let fault = match dice.roll(6) {
                0 => {
                    proxies.broker.cut();
                    proxies
                        .broker
                        .restore_after(Duration::from_secs(2 + dice.roll(6)));
                    "broker cut"
                }
                1 => {
                    proxies.redis.cut();
                    proxies
                        .redis
                        .restore_after(Duration::from_secs(2 + dice.roll(6)));
                    "redis cut"
                }
                2 => {
                    proxies.postgres.cut();
                    proxies
                        .postgres
                        .restore_after(Duration::from_secs(1 + dice.roll(3)));
                    "postgres cut"
                }
                3 => {
                    proxies.postgres.delay(Duration::from_millis(50));
                    proxies.postgres.restore_after(Duration::from_secs(3));
                    "postgres slowed"
                }
                _ => {
                    let binary = BINARIES[dice.roll(BINARIES.len() as u64) as usize];
                    let replica = dice.roll(2) as usize;
                    app.kill(binary, replica).await;
                    app.restart(binary, replica).await;
                    "replica killed and restarted"
                }
            };
            *tally.faults.entry(fault).or_default() += 1;
            next_fault = Instant::now() + Duration::from_secs(5 + dice.roll(10));
        }
        // A batch of orders, a change and a read of a few customers.
        let batch: Vec<(String, Value)> = (0..50)
            .map(|_| {
                event += 1;
                let customer = &ids[dice.roll(ids.len() as u64) as usize];
                (
                    customer.clone(),
                    order(customer, event, 1.0 + dice.roll(100) as f64),
                )
            })
            .collect();
        let events: Vec<Value> = batch.iter().map(|(_, e)| e.clone()).collect();
        send_until_accepted(&app, &events).await;
        tally.requests += 1;
        for (customer, event) in batch {
            tally.accepted.entry(customer).or_default().push(event);
        }
        for _ in 0..3 {
            let id = &ids[dice.roll(ids.len() as u64) as usize];
            let patch = json!({ "first_name": format!("Soak{}", dice.roll(1000)) });
            let path = format!("/api/customers/{id}");
            let (status, answer) = answered(|| {
                client
                    .patch(url(&path))
                    .bearer_auth(crm_e2e::ADMIN_KEY)
                    .header("content-type", "application/merge-patch+json")
                    .body(patch.to_string())
            })
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            let (status, _) =
                answered(|| client.get(url(&path)).bearer_auth(crm_e2e::ADMIN_KEY)).await;
            assert_eq!(status, StatusCode::OK);
            tally.requests += 2;
        }
    }
    for proxy in [&proxies.broker, &proxies.redis, &proxies.postgres] {
        proxy.restore();
    }

    // The check: applied against accepted, per customer, once the platform is quiet.
    let (mut accepted, mut applied, mut lost, mut twice) = (0, 0, 0, 0);
    for (customer, events) in &tally.accepted {
        let count = events.len();
        let settled = app
            .eventually_within(
                Duration::from_secs(300),
                "the accepted events to apply",
                || async {
                    let read: Value = app.get_customer(customer).await.json().await.ok()?;
                    let orders = read["metrics"]["total_orders"].as_u64()?;
                    (orders >= count as u64).then_some(orders)
                },
            )
            .await;
        let ids = applied_orders(&app, customer).await;
        let sent: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        accepted += count;
        applied += ids.len();
        lost += sent
            .iter()
            .filter(|id| !ids.iter().any(|a| a == *id))
            .count();
        twice += usize::try_from(settled).unwrap() - count.min(settled as usize);
    }
    println!(
        "soak done in {} s: {} requests; faults {:?}; events accepted {accepted}, applied \
         {applied}, duplicated {twice}, lost {lost}",
        started.elapsed().as_secs(),
        tally.requests,
        tally.faults,
    );
    assert_eq!((lost, twice), (0, 0), "lost and double-applied events");
    assert_eq!(applied, accepted);
    // The index against PostgreSQL: every customer at its last version.
    until_search_has_the_last_versions(&app, &ids, Duration::from_secs(120)).await;
    println!("search: every customer at its last version");
}
