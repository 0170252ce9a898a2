//! The segment recompute batch on a generated base in the real PostgreSQL (default
//! 1,000,000 customers, `BENCH_CUSTOMERS` to change), beside a single hand-written SQL
//! `UPDATE` doing the same rule work on the same rows in the same run.
//!
//! The base's segments are right as of yesterday, so today's run moves the customers
//! who crossed a boundary overnight. The batch does more than the baseline: it computes
//! the RFM bounds and scores everyone, and each changed customer gets a new version and
//! a `customer.segment_changed` event in customer-core (activity + outbox, relayed to
//! RabbitMQ meanwhile) over gRPC. Its second run, an hour later, shows the hourly
//! schedule's steady state: few scores change, and the segment changes are stored
//! already (customer-core skips them; no consumer updates the profiles here).

use std::{sync::Arc, time::Instant};

use chrono::{Duration, Utc};
use crm_domain::{JobStatus, segmentation::SegmentConfig};
use crm_platform::{
    Shutdown,
    bus::EventBus,
    settings::{BusSettings, DatabaseSettings, ListenSettings, RedisSettings, Secret},
    testing::TestVhost,
};
use crm_segmentation::{
    batch::{Batch, CHANGED},
    clients::CustomerCoreWriter,
    store::{PostgresStore, RecomputeStore},
};

/// Customers with pseudo-random but repeatable metrics: created up to two years ago,
/// 0-11 orders, the last one between creation and now, up to 199 per order.
const GENERATE_PROFILES: &str = "insert into segmentation.profiles (customer_id, version, \
     deleted, segment, created_at_us, total_orders, total_spent, lifetime_value, \
     last_order_at_us, categories) \
     select md5(i::text)::uuid, 1, false, 'new', $1 - c.days * 86400000000, o.n, o.spent, \
     o.spent, case when o.n = 0 then null \
     else $1 - (abs(hashtext('l' || i)) % (c.days + 1)) * 86400000000 end, '[]' \
     from generate_series(1, $2) as i, \
     lateral (select abs(hashtext('c' || i)) % 730 as days) c, \
     lateral (select abs(hashtext('o' || i)) % 12 as n, \
              (abs(hashtext('o' || i)) % 12) * (abs(hashtext('s' || i)) % 200)::float8 as spent) o";

/// customer-core's rows for the same customers, in the segments of the profiles.
const COPY_TO_CUSTOMER_CORE: &str = "insert into public.customers (id, email, status, segment, \
     tags, addresses, preferences, total_orders, total_spent, average_order, first_order_date, \
     last_order_date, lifetime_value, version, created_at, updated_at, last_activity_at) \
     select customer_id, 'c-' || customer_id || '@bench.example', 'active', segment, '[]', '[]', \
     $1::jsonb, total_orders, total_spent, \
     case when total_orders = 0 then 0 else total_spent / total_orders end, \
     to_timestamp(last_order_at_us / 1e6), to_timestamp(last_order_at_us / 1e6), \
     lifetime_value, 1, to_timestamp(created_at_us / 1e6), to_timestamp(created_at_us / 1e6), \
     to_timestamp(created_at_us / 1e6) from segmentation.profiles";

#[tokio::main]
async fn main() {
    let customers: i64 = crm_benches::env_or("BENCH_CUSTOMERS", 1_000_000);
    let rules = SegmentConfig::default();
    let now = crm_domain::stored_precision(Utc::now());
    let shutdown = Shutdown::new();
    let vhost = TestVhost::create();
    let database_url = crm_platform::testing::fresh_postgres_url().await;

    // customer-core, in this process, on the real servers.
    let core_settings = crm_customer_core::Settings {
        listen: ListenSettings::loopback(0, 0),
        database: DatabaseSettings {
            database_url: Secret::new(&database_url),
            ..DatabaseSettings::default()
        },
        redis: RedisSettings {
            redis_key_prefix: format!("bench:{}:", uuid::Uuid::new_v4().simple()),
            ..RedisSettings::default()
        },
        bus: BusSettings {
            amqp_url: Secret::new(&vhost.url),
        },
        ..crm_customer_core::Settings::default()
    };
    let core = crm_customer_core::Application::build(&core_settings)
        .await
        .unwrap();
    let core_channel = crm_platform::internal_auth::InternalAuth::none()
        .channel(&format!("http://{}", core.grpc_addr()))
        .unwrap();
    tokio::spawn(core.run(shutdown.clone()));
    // segmentation's queue, so the relayed segment_changed events have somewhere to go.
    let bus = crm_platform::bus::RabbitBus::new(Secret::new(&vhost.url));
    bus.declare(&crm_segmentation::consumer::customers_config())
        .await
        .unwrap();

    let store = Arc::new(
        PostgresStore::connect(
            &database_url,
            // No statement timeout: the measured statements are the ones that grow with scale.
            crm_platform::database::PostgresLimits {
                statement_timeout: std::time::Duration::ZERO,
                ..Default::default()
            },
            std::time::Duration::ZERO,
        )
        .await
        .unwrap(),
    );
    eprintln!("generating {customers} customers ...");
    let setup = Instant::now();
    sqlx::query(GENERATE_PROFILES)
        .bind(now.timestamp_micros())
        .bind(customers)
        .execute(store.pool())
        .await
        .unwrap();
    let yesterday = now - Duration::days(1);
    store
        .update_all_segments_in_one_statement(&rules, yesterday)
        .await
        .unwrap();
    let preferences = serde_json::to_value(crm_domain::Preferences::default()).unwrap();
    sqlx::query(COPY_TO_CUSTOMER_CORE)
        .bind(preferences)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("analyze").execute(store.pool()).await.unwrap();
    eprintln!("generated in {:.1} s", setup.elapsed().as_secs_f64());

    // The batch, as the schedule runs it: first on an unscored base, then an hour later
    // (RFM scores mostly unchanged; the changed segments were already stored).
    let writer = Arc::new(CustomerCoreWriter::new(core_channel));
    let batch = Batch::new(store.clone(), writer, rules.clone());
    let mut runs = Vec::new();
    for at in [now, now + Duration::hours(1)] {
        let job = store
            .start_job(at, chrono::Duration::minutes(10))
            .await
            .unwrap();
        let started = Instant::now();
        let job = batch.run(job, at).await;
        assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
        runs.push((started.elapsed().as_secs_f64(), job));
    }

    // The baseline: the same rule work as one UPDATE of the same profiles.
    let started = Instant::now();
    let updated = store
        .update_all_segments_in_one_statement(&rules, now)
        .await
        .unwrap();
    let baseline_secs = started.elapsed().as_secs_f64();
    shutdown.trigger();

    println!(
        "segment recompute benchmark: {} customers in PostgreSQL, segments right as of yesterday",
        runs[0].1.progress.total.unwrap_or_default()
    );
    println!("| measure                                         | seconds | changed | vs UPDATE |");
    println!("|-------------------------------------------------|--------:|--------:|----------:|");
    println!(
        "| one hand-written SQL UPDATE (baseline)          | {baseline_secs:>7.2} | {updated:>7} |     1.00x |"
    );
    let labels = [
        "batch, first run (scores everyone)             ",
        "batch, an hour later                           ",
    ];
    for (label, (secs, job)) in labels.iter().zip(&runs) {
        println!(
            "| {label} | {secs:>7.2} | {:>7} | {:>8.2}x |",
            job.count(CHANGED),
            secs / baseline_secs
        );
    }
    // The base is large: drop it now rather than at the next `make test`.
    store.pool().close().await;
    let name = database_url.rsplit('/').next().unwrap();
    let server = crm_platform::testing::postgres_server_url();
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
    let drop = format!("drop database if exists {name} with (force)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await
        .ok();
}
