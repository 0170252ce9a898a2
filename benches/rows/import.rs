//! The import, beside `COPY` of the same rows into the same table and indexes.

use std::time::Instant;

use chrono::Utc;
use crm_domain::{Customer, CustomerDraft, CustomerEvent, CustomerEventType, CustomerId};
use sqlx::Connection;

use super::{Api, settle};
use crate::{
    data,
    report::{Row, median},
    servers::Platform,
};

/// The columns a new customer fills; the rest keep their defaults.
const COLUMNS: &str = "id, email, phone, first_name, last_name, status, segment, tags, \
    addresses, preferences, version, created_at, updated_at, last_activity_at, email_key, \
    first_name_key, last_name_key";

/// Three uploads of `rows` new customers each (`POST /api/imports`, NDJSON), beside
/// `COPY` of the same customers and their `customer.created` outbox rows into copies of
/// `customers` and `outbox` with all their indexes, in one transaction. `first` numbers
/// the first customer of the data not loaded yet. The platform settles (its outbox
/// relayed, the machine idle) before each side.
pub async fn import(api: &Api, platform: &Platform, first: u64, rows: u64) -> Row {
    let pool = platform.database(1).await;
    let mut database = pool.acquire().await.expect("a connection");
    let (mut ours, mut base, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let from = first + round * rows;
        let drafts: Vec<serde_json::Value> = (from..from + rows).map(data::customer).collect();
        let upload: String = drafts.iter().map(|d| format!("{d}\n")).collect();
        let (customers, outbox) = copy_text(&drafts);

        idle.push(settle(platform).await);
        let run = async {
            let started = Instant::now();
            let job = api.import(upload).await;
            (job, rows as f64 / started.elapsed().as_secs_f64())
        };
        let (job, mine) = crate::profile::during("import", round == 0, run).await;
        assert_eq!(job["counts"]["created"], rows, "every row created: {job}");

        empty_copies(&mut database).await;
        settle(platform).await;
        let started = Instant::now();
        copy(&mut database, &customers, &outbox).await;
        let theirs = rows as f64 / started.elapsed().as_secs_f64();
        println!("bench:     ours {mine:.0} rows/s | baseline {theirs:.0} rows/s");
        ours.push(mine);
        base.push(theirs);
    }
    let (ours, base) = (median(ours), median(base));
    Row {
        what: format!("import, POST /api/imports, NDJSON uploads of {rows} new customers"),
        baseline: "COPY of the same rows into a copy of customers (all indexes) and outbox".into(),
        unit: "rows/s",
        ours,
        base,
        ratio: ours / base,
        target: "≥ 0.5×".into(),
        note: String::new(),
        idle_before: median(idle),
    }
}

/// The customers and their outbox rows as `COPY ... (format csv)` text.
fn copy_text(drafts: &[serde_json::Value]) -> (String, String) {
    let now = Utc::now();
    let (mut customers, mut outbox) = (String::new(), String::new());
    for draft in drafts {
        let draft: CustomerDraft = serde_json::from_value(draft.clone()).expect("a draft");
        let c = Customer::create(CustomerId::generate(), draft, now).expect("a valid customer");
        let keys = c.match_keys();
        let text = |value: &str| Some(value.to_owned());
        let cells = [
            Some(c.id.to_string()),
            text(c.email.as_str()),
            c.phone.as_ref().map(|p| p.as_str().to_owned()),
            c.first_name.as_ref().map(|n| n.as_str().to_owned()),
            c.last_name.as_ref().map(|n| n.as_str().to_owned()),
            text(c.status.as_str()),
            text(c.segment.as_str()),
            serde_json::to_string(&c.tags).ok(),
            serde_json::to_string(&c.addresses).ok(),
            serde_json::to_string(&c.preferences).ok(),
            Some(c.version.to_string()),
            Some(c.created_at.to_rfc3339()),
            Some(c.updated_at.to_rfc3339()),
            Some(c.last_activity_at.to_rfc3339()),
            Some(keys.email),
            keys.first_name,
            keys.last_name,
        ];
        push_record(&mut customers, &cells);
        let event = CustomerEvent::customer_changed(CustomerEventType::CustomerCreated, &c, now);
        let cells = [
            Some(event.id.to_string()),
            text(crm_platform::bus::EVENTS_EXCHANGE),
            text("customer.created"),
            serde_json::to_string(&event).ok(),
            Some(now.to_rfc3339()),
        ];
        push_record(&mut outbox, &cells);
    }
    (customers, outbox)
}

/// One CSV record: every value quoted, NULL as an unquoted empty cell.
fn push_record(text: &mut String, cells: &[Option<String>]) {
    let quoted: Vec<String> = cells
        .iter()
        .map(|cell| match cell {
            None => String::new(),
            Some(value) => format!("\"{}\"", value.replace('"', "\"\"")),
        })
        .collect();
    text.push_str(&quoted.join(","));
    text.push('\n');
}

/// Fresh copies of `customers` and `outbox`: every index, no rows.
async fn empty_copies(database: &mut sqlx::PgConnection) {
    for statement in [
        "drop table if exists bench_customers, bench_outbox",
        "create table bench_customers (like customers including all)",
        "create table bench_outbox (like outbox including all)",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *database)
            .await
            .expect("the COPY tables");
    }
}

/// Both COPYs, in one transaction.
async fn copy(database: &mut sqlx::PgConnection, customers: &str, outbox: &str) {
    let mut tx = database.begin().await.expect("begin");
    let targets = [
        (
            format!("copy bench_customers ({COLUMNS}) from stdin (format csv)"),
            customers,
        ),
        (
            "copy bench_outbox (id, exchange, routing_key, payload, created_at) from stdin \
             (format csv)"
                .to_owned(),
            outbox,
        ),
    ];
    for (statement, text) in targets {
        let mut copy = tx.copy_in_raw(&statement).await.expect("COPY");
        copy.send(text.as_bytes()).await.expect("COPY rows");
        copy.finish().await.expect("COPY done");
    }
    tx.commit().await.expect("commit");
}
