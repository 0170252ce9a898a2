//! The segment recompute over every customer, beside one set-based statement computing
//! the same segments into a new table.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Api;
use crate::{
    report::{Row, idle_percent, median},
    servers::Platform,
};

/// The segment rules with their default thresholds (`crm_domain::SegmentConfig`), as
/// one statement over the same customers.
const SEGMENTS_AT_ONCE: &str = "create table bench_segments as
select id, case
    when lifetime_value >= 1000 then 'vip'
    when floor(extract(epoch from now() - coalesce(last_order_date, created_at)) / 86400) > 180
        then 'churned'
    when floor(extract(epoch from now() - coalesce(last_order_date, created_at)) / 86400) > 90
        then 'at_risk'
    when floor(extract(epoch from now() - created_at) / 86400) <= 30 then 'new'
    else 'regular' end as segment
from customers where status <> 'deleted'";

/// Three recomputes (`POST /api/segments/recompute`, followed to its end), each beside
/// the statement; milliseconds each took.
pub async fn recompute(api: &Api, platform: &Platform) -> Row {
    println!("bench: segment recompute over every customer");
    let database = platform.database(1).await;
    let (mut ours, mut base, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    let mut customers = 0;
    for _ in 0..3 {
        idle.push(idle_percent(Duration::from_secs(1)).await);
        let started = Instant::now();
        let job = api.post_json("/api/segments/recompute", &json!({})).await;
        let path = format!(
            "/api/segments/jobs/{}",
            job["id"].as_str().expect("a job id")
        );
        let job = loop {
            let job = api.get_json(&path).await;
            if job["status"] != "running" {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(job["status"], "completed", "{job}");
        customers = job["progress"]["done"].as_u64().unwrap_or_default();
        let mine = started.elapsed().as_secs_f64() * 1_000.0;

        sqlx::raw_sql("drop table if exists bench_segments")
            .execute(&database)
            .await
            .expect("drop");
        let started = Instant::now();
        sqlx::raw_sql(SEGMENTS_AT_ONCE)
            .execute(&database)
            .await
            .expect("the segments at once");
        let theirs = started.elapsed().as_secs_f64() * 1_000.0;
        println!("bench:     ours {mine:.1} ms | baseline {theirs:.1} ms");
        ours.push(mine);
        base.push(theirs);
    }
    let (ours, base) = (median(ours), median(base));
    Row {
        what: format!(
            "segment recompute over every customer ({customers}), POST /api/segments/recompute"
        ),
        baseline: "one statement computing the same segments into a new table".into(),
        unit: "ms",
        ours,
        base,
        ratio: base / ours,
        target: "≤ 3× its time (ratio ≥ 0.33)".into(),
        note: String::new(),
        idle_before: median(idle),
    }
}
