//! The SQL both adapters share (`$n` placeholders work on PostgreSQL and SQLite alike),
//! the row types, and the batch's generated statements.

use chrono::{DateTime, Utc};
use crm_domain::{
    CustomerId,
    rfm::{Quintiles, RfmBounds, RfmScore},
};
use uuid::Uuid;

use super::{JobStatus, Profile, RecomputeJob, ScoredRfm};
use crate::{Error, Result};

pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| Error::Corrupt(format!("time {us}")))
}

macro_rules! profile_columns {
    () => {
        "customer_id, version, deleted, segment, created_at_us, total_orders, total_spent, \
         lifetime_value, last_order_at_us, categories, rfm_recency, rfm_frequency, \
         rfm_monetary, rfm_segment, rfm_computed_us"
    };
}

/// Only a newer snapshot replaces the stored one; RFM scores are replaced when given.
pub const UPSERT_PROFILE: &str = "insert into profiles (customer_id, version, deleted, segment, \
     created_at_us, total_orders, total_spent, lifetime_value, last_order_at_us, categories, \
     rfm_recency, rfm_frequency, rfm_monetary, rfm_segment, rfm_computed_us) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     on conflict (customer_id) do update set \
     version = excluded.version, deleted = excluded.deleted, segment = excluded.segment, \
     created_at_us = excluded.created_at_us, total_orders = excluded.total_orders, \
     total_spent = excluded.total_spent, lifetime_value = excluded.lifetime_value, \
     last_order_at_us = excluded.last_order_at_us, categories = excluded.categories, \
     rfm_recency = coalesce(excluded.rfm_recency, profiles.rfm_recency), \
     rfm_frequency = coalesce(excluded.rfm_frequency, profiles.rfm_frequency), \
     rfm_monetary = coalesce(excluded.rfm_monetary, profiles.rfm_monetary), \
     rfm_segment = coalesce(excluded.rfm_segment, profiles.rfm_segment), \
     rfm_computed_us = coalesce(excluded.rfm_computed_us, profiles.rfm_computed_us) \
     where profiles.version < excluded.version";

pub const SELECT_PROFILE: &str = concat!(
    "select ",
    profile_columns!(),
    " from profiles where customer_id = $1"
);

pub const COUNT_BY_SEGMENT: &str =
    "select segment, count(*) from profiles where not deleted group by segment";
pub const COUNT_BY_RFM_SEGMENT: &str = "select rfm_segment, count(*) from profiles \
     where not deleted and rfm_segment is not null group by rfm_segment";
pub const COUNT_LIVE: &str = "select count(*) from profiles where not deleted";

pub const SELECT_BOUNDS: &str = "select bounds from rfm_bounds where id = 1";
pub const SAVE_BOUNDS: &str = "insert into rfm_bounds (id, bounds) values (1, $1) \
     on conflict (id) do update set bounds = excluded.bounds";

/// `$1` = now in µs. Days as the domain counts them: whole days, never negative.
macro_rules! days_since {
    ($column:literal) => {
        concat!(
            "(case when $1 < ",
            $column,
            " then 0 else ($1 - ",
            $column,
            ") / 86400000000 end)"
        )
    };
}

/// The value RFM ranks for each dimension, and which rows it ranks.
pub const RECENCY: &str = days_since!("last_order_at_us");
pub const FREQUENCY: &str = "total_orders";
pub const MONETARY: &str = "total_spent";

/// The quintile cut points of `value` over the live base (only customers who ordered
/// when `only_ordered`), one row of four values, NULL for an empty base. The ranks are
/// the nearest ranks `Quintiles::of` picks: `ceil(p * n / 100)`, at least 1.
pub fn quintiles(value: &str, only_ordered: bool) -> String {
    let filter = if only_ordered {
        " and last_order_at_us is not null"
    } else {
        ""
    };
    let at = |p: u32| format!("max(case when rn = ({p} * n + 99) / 100 then v end)");
    format!(
        "select {}, {}, {}, {} from (select cast({value} as double precision) as v, \
         row_number() over (order by {value}) as rn, count(*) over () as n from profiles \
         where not deleted{filter}) ranked",
        at(20),
        at(40),
        at(60),
        at(80)
    )
}

/// `1 + how many cut points value is above`, as `Quintiles::rank`.
fn rank(value: &str, quintiles: &Quintiles) -> String {
    let above: Vec<String> = quintiles
        .0
        .iter()
        .map(|cut| format!("case when {value} > {cut:?} then 1 else 0 end"))
        .collect();
    format!("(1 + {})", above.join(" + "))
}

/// Scores every live customer against `bounds` and names its RFM segment, in one
/// statement; unchanged scores are not rewritten (they keep their time: the bounds' time
/// says they still hold). `$1` = now in µs.
pub fn score_all(bounds: &RfmBounds) -> String {
    let recency = match &bounds.recency {
        Some(q) => format!(
            "(case when last_order_at_us is null then 1 else 6 - {} end)",
            rank(RECENCY, q)
        ),
        None => "1".into(),
    };
    let frequency = rank(FREQUENCY, &bounds.frequency);
    let monetary = rank(MONETARY, &bounds.monetary);
    format!(
        "update profiles set rfm_recency = {recency}, rfm_frequency = {frequency}, \
         rfm_monetary = {monetary}, rfm_segment = {}, rfm_computed_us = $1 \
         where not deleted and (rfm_recency is distinct from {recency} \
         or rfm_frequency is distinct from {frequency} or rfm_monetary is distinct from {monetary})",
        rfm_names(&recency, &frequency, &monetary)
    )
}

/// The documented RFM map (`RfmScore::segment`) as a SQL expression over the scores.
fn rfm_names(recency: &str, frequency: &str, monetary: &str) -> String {
    let mut branches = String::new();
    for r in 1..=5u8 {
        for f in 1..=5u8 {
            for m in 1..=5u8 {
                let score = RfmScore {
                    recency: r,
                    frequency: f,
                    monetary: m,
                };
                let code = u32::from(r) * 100 + u32::from(f) * 10 + u32::from(m);
                branches += &format!(" when {code} then '{}'", score.segment().as_str());
            }
        }
    }
    format!("(case {recency} * 100 + {frequency} * 10 + {monetary}{branches} end)")
}

/// The segment rules of `SegmentConfig::decide` as one SQL expression. `$1` = now in µs,
/// `$2` VIP threshold, `$3` churn days, `$4` at-risk days, `$5` new-customer days.
macro_rules! wanted_segment {
    () => {
        concat!(
            "case when lifetime_value >= $2 then 'vip' when ",
            days_since!("coalesce(last_order_at_us, created_at_us)"),
            " > $3 then 'churned' when ",
            days_since!("coalesce(last_order_at_us, created_at_us)"),
            " > $4 then 'at_risk' when ",
            days_since!("created_at_us"),
            " <= $5 then 'new' else 'regular' end"
        )
    };
}

/// Binds `$1`..`$5` of the statements built on `wanted_segment!`.
macro_rules! bind_rules {
    ($query:expr, $rules:expr, $now:expr) => {{
        let rules: &crm_domain::segmentation::SegmentConfig = $rules;
        $query
            .bind($crate::store::sql::micros($now))
            .bind(rules.vip_threshold)
            .bind(rules.churn_days)
            .bind(rules.at_risk_days)
            .bind(rules.new_customer_days)
    }};
}
pub(crate) use bind_rules;

/// Live customers whose stored segment differs from the rules'.
pub const PENDING_CHANGES: &str = concat!(
    "select ",
    profile_columns!(),
    " from profiles where not deleted and segment <> ",
    wanted_segment!()
);

pub const COUNT_PENDING: &str = concat!(
    "select count(*) from profiles where not deleted and segment <> ",
    wanted_segment!()
);

/// The same rule work as one hand-written UPDATE: the benchmark's baseline (it stores
/// segments without events, RFM or customer-core, so it is not a way to run the batch).
pub const UPDATE_ALL_SEGMENTS: &str = concat!(
    "update profiles set segment = ",
    wanted_segment!(),
    " where not deleted and segment <> ",
    wanted_segment!()
);

/// Marks a running job that stopped beating as failed. `$1` = beat before this.
pub const FAIL_STALE_JOBS: &str = "update recompute_jobs set status = 'failed', \
     error = 'abandoned: its process stopped', phase = 'done', finished_at_us = heartbeat_us \
     where status = 'running' and heartbeat_us < $1";

pub const JOB_HEARTBEAT: &str =
    "update recompute_jobs set heartbeat_us = $2 where id = $1 and status = 'running'";

pub const INSERT_JOB: &str = "insert into recompute_jobs (id, status, phase, total, processed, \
     changed, error, started_at_us, heartbeat_us, finished_at_us) values ($1, $2, $3, $4, $5, \
     $6, $7, $8, $9, $10)";

pub const UPDATE_JOB: &str = "update recompute_jobs set status = $2, phase = $3, total = $4, \
     processed = $5, changed = $6, error = $7, heartbeat_us = $8, finished_at_us = $9 \
     where id = $1";

macro_rules! job_columns {
    () => {
        "id, status, phase, total, processed, changed, error, started_at_us, finished_at_us"
    };
}

pub const SELECT_JOB: &str = concat!(
    "select ",
    job_columns!(),
    " from recompute_jobs where id = $1"
);
pub const SELECT_RUNNING_JOB: &str = concat!(
    "select ",
    job_columns!(),
    " from recompute_jobs where status = 'running'"
);

/// A transaction that records `event_id` as applied; returns `Ok(())` from the calling
/// function when it was applied before (a redelivery).
macro_rules! begin_first_time {
    ($pool:expr, $event_id:expr) => {{
        let mut tx = $pool.begin().await?;
        let first = sqlx::query($crate::store::sql::INSERT_APPLIED)
            .bind($event_id)
            .execute(&mut *tx)
            .await?;
        if first.rows_affected() == 0 {
            return Ok(());
        }
        tx
    }};
}
pub(crate) use begin_first_time;

pub const INSERT_APPLIED: &str =
    "insert into applied_events (id) values ($1) on conflict do nothing";
pub const INSERT_PURCHASE: &str = "insert into purchases (customer_id, order_id, product_id, \
     quantity, at_us) values ($1, $2, $3, $4, $5) on conflict (customer_id, order_id, product_id) \
     do update set quantity = purchases.quantity + excluded.quantity";
pub const UPSERT_PRODUCT: &str = "insert into products (product_id, category) values ($1, $2) \
     on conflict (product_id) do update set category = excluded.category";

/// `$1` = the customer, `$2` = how many anchors.
pub const BOUGHT_TOGETHER: &str = "select mine.product_id, mine.at_us, other.product_id, \
     count(*) from (select product_id, max(at_us) as at_us from purchases where customer_id = $1 \
     group by product_id order by max(at_us) desc, product_id limit $2) mine \
     join purchases hit on hit.product_id = mine.product_id \
     join purchases other on other.customer_id = hit.customer_id \
     and other.order_id = hit.order_id and other.product_id <> hit.product_id \
     group by mine.product_id, mine.at_us, other.product_id";

pub const VIEWED_TOGETHER: &str = "select mine.product_id, mine.last_at_us, other.product_id, \
     count(*) from (select product_id, last_at_us from product_views where customer_id = $1 \
     order by last_at_us desc, product_id limit $2) mine \
     join product_views hit on hit.product_id = mine.product_id and hit.customer_id <> $1 \
     join product_views other on other.customer_id = hit.customer_id \
     and other.product_id <> hit.product_id \
     group by mine.product_id, mine.last_at_us, other.product_id";

pub const PURCHASED: &str = "select distinct product_id from purchases where customer_id = $1";

/// A view counts once; the latest time stays (`case`, since PostgreSQL says `greatest`
/// and SQLite `max`).
pub const UPSERT_VIEW: &str = "insert into product_views (customer_id, product_id, views, \
     last_at_us) values ($1, $2, 1, $3) on conflict (customer_id, product_id) do update \
     set views = product_views.views + 1, \
     last_at_us = case when excluded.last_at_us > product_views.last_at_us \
     then excluded.last_at_us else product_views.last_at_us end";

pub const BEST_SELLERS: &str = "select p.product_id, cast(sum(p.quantity) as bigint) as sold \
     from purchases p left join products pr on pr.product_id = p.product_id \
     where ($1 is null or pr.category = $1) group by p.product_id \
     order by sold desc, p.product_id limit $2";

#[derive(sqlx::FromRow)]
pub struct ProfileRow {
    customer_id: Uuid,
    version: i64,
    deleted: bool,
    segment: String,
    created_at_us: i64,
    total_orders: i64,
    total_spent: f64,
    lifetime_value: f64,
    last_order_at_us: Option<i64>,
    categories: String,
    rfm_recency: Option<i16>,
    rfm_frequency: Option<i16>,
    rfm_monetary: Option<i16>,
    rfm_segment: Option<String>,
    rfm_computed_us: Option<i64>,
}

impl TryFrom<ProfileRow> for Profile {
    type Error = Error;

    fn try_from(row: ProfileRow) -> Result<Self> {
        let score = |v: Option<i16>| v.and_then(|v| u8::try_from(v).ok());
        let rfm = match (
            score(row.rfm_recency),
            score(row.rfm_frequency),
            score(row.rfm_monetary),
            row.rfm_segment,
            row.rfm_computed_us,
        ) {
            (Some(recency), Some(frequency), Some(monetary), Some(name), Some(at)) => {
                Some(ScoredRfm {
                    score: RfmScore {
                        recency,
                        frequency,
                        monetary,
                    },
                    segment: name.parse().map_err(Error::Corrupt)?,
                    computed_at: from_micros(at)?,
                })
            }
            _ => None,
        };
        Ok(Self {
            customer_id: CustomerId::from(row.customer_id),
            version: row.version,
            deleted: row.deleted,
            segment: row.segment.parse().map_err(Error::Corrupt)?,
            created_at: from_micros(row.created_at_us)?,
            total_orders: row.total_orders,
            total_spent: row.total_spent,
            lifetime_value: row.lifetime_value,
            last_order_at: row.last_order_at_us.map(from_micros).transpose()?,
            categories: serde_json::from_str(&row.categories)
                .map_err(|e| Error::Corrupt(e.to_string()))?,
            rfm,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct JobRow {
    id: Uuid,
    status: String,
    phase: String,
    total: i64,
    processed: i64,
    changed: i64,
    error: Option<String>,
    started_at_us: i64,
    finished_at_us: Option<i64>,
}

impl TryFrom<JobRow> for RecomputeJob {
    type Error = Error;

    fn try_from(row: JobRow) -> Result<Self> {
        let status = match row.status.as_str() {
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            other => return Err(Error::Corrupt(format!("job status {other}"))),
        };
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(Self {
            id: row.id,
            status,
            phase: row.phase,
            total: count(row.total),
            processed: count(row.processed),
            changed: count(row.changed),
            error: row.error,
            started_at: from_micros(row.started_at_us)?,
            finished_at: row.finished_at_us.map(from_micros).transpose()?,
        })
    }
}

/// Binds a job to UPDATE_JOB.
macro_rules! bind_job {
    ($query:expr, $job:expr, $now:expr) => {{
        let job: &$crate::store::RecomputeJob = $job;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        $query
            .bind(job.id)
            .bind(job.status.as_str())
            .bind(job.phase.clone())
            .bind(count(job.total))
            .bind(count(job.processed))
            .bind(count(job.changed))
            .bind(job.error.clone())
            .bind($crate::store::sql::micros($now))
            .bind(job.finished_at.map($crate::store::sql::micros))
    }};
}
pub(crate) use bind_job;

/// Rows of BOUGHT_TOGETHER / VIEWED_TOGETHER.
pub fn co_occurrences(rows: Vec<(String, i64, String, i64)>) -> Result<Vec<super::CoOccurrence>> {
    rows.into_iter()
        .map(|(anchor, at, candidate, together)| {
            Ok(super::CoOccurrence {
                anchor,
                anchor_at: from_micros(at)?,
                candidate,
                together,
            })
        })
        .collect()
}
