//! The SQL both adapters share (`$n` placeholders work on PostgreSQL and SQLite alike):
//! one file per statement in `queries/`, named by what it does, a few composed here from
//! the fragments there (`profile_columns`, `job_columns`, `wanted_segment`); the batch's
//! statements generated from the RFM bounds; the row types.

use chrono::{DateTime, Utc};
use crm_domain::{
    CustomerId, Job, JobKind, JobStatus,
    rfm::{Quintiles, RfmBounds, RfmScore},
};
use uuid::Uuid;

use super::{Profile, ScoredRfm};
use crate::{Error, Result};

pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| Error::Corrupt(format!("time {us}")))
}

pub const UPSERT_PROFILE: &str = include_str!("queries/upsert_profile.sql");

pub const SELECT_PROFILE: &str = concat!(
    "select ",
    include_str!("queries/profile_columns.sql"),
    " from profiles where customer_id = $1"
);

pub const COUNT_BY_SEGMENT: &str = include_str!("queries/count_by_segment.sql");
pub const COUNT_BY_RFM_SEGMENT: &str = include_str!("queries/count_by_rfm_segment.sql");
pub const COUNT_LIVE: &str = include_str!("queries/count_live.sql");

pub const SELECT_BOUNDS: &str = include_str!("queries/select_bounds.sql");
pub const SAVE_BOUNDS: &str = include_str!("queries/save_bounds.sql");

/// The value RFM ranks for each dimension, and which rows it ranks. Recency in days as
/// the domain counts them: whole days, never negative (`$1` = now in µs).
pub const RECENCY: &str =
    "(case when $1 < last_order_at_us then 0 else ($1 - last_order_at_us) / 86400000000 end)";
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

/// Live customers whose stored segment differs from the rules'.
pub const PENDING_CHANGES: &str = concat!(
    "select ",
    include_str!("queries/profile_columns.sql"),
    " from profiles where not deleted and segment <> ",
    include_str!("queries/wanted_segment.sql")
);

pub const COUNT_PENDING: &str = concat!(
    "select count(*) from profiles where not deleted and segment <> ",
    include_str!("queries/wanted_segment.sql")
);

/// The same rule work as one hand-written UPDATE: the benchmark's baseline (it stores
/// segments without events, RFM or customer-core, so it is not a way to run the batch).
pub const UPDATE_ALL_SEGMENTS: &str = concat!(
    "update profiles set segment = ",
    include_str!("queries/wanted_segment.sql"),
    " where not deleted and segment <> ",
    include_str!("queries/wanted_segment.sql")
);

pub const FAIL_STALE_JOBS: &str = include_str!("queries/fail_stale_jobs.sql");

pub const JOB_HEARTBEAT: &str = include_str!("queries/job_heartbeat.sql");

pub const INSERT_JOB: &str = include_str!("queries/insert_job.sql");

pub const UPDATE_JOB: &str = include_str!("queries/update_job.sql");

pub const SELECT_JOB: &str = concat!(
    "select ",
    include_str!("queries/job_columns.sql"),
    " from recompute_jobs where id = $1"
);
pub const SELECT_RUNNING_JOB: &str = concat!(
    "select ",
    include_str!("queries/job_columns.sql"),
    " from recompute_jobs where status = 'running'"
);

pub const INSERT_APPLIED: &str = include_str!("queries/insert_applied.sql");
pub const INSERT_PURCHASE: &str = include_str!("queries/insert_purchase.sql");
pub const UPSERT_PRODUCT: &str = include_str!("queries/upsert_product.sql");

pub const BOUGHT_TOGETHER: &str = include_str!("queries/bought_together.sql");

pub const VIEWED_TOGETHER: &str = include_str!("queries/viewed_together.sql");

pub const PURCHASED: &str = include_str!("queries/purchased.sql");

pub const UPSERT_VIEW: &str = include_str!("queries/upsert_view.sql");

pub const BEST_SELLERS: &str = include_str!("queries/best_sellers.sql");

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

impl TryFrom<JobRow> for Job {
    type Error = Error;

    fn try_from(row: JobRow) -> Result<Self> {
        let status: JobStatus = row.status.parse().map_err(Error::Corrupt)?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        let mut job = Job::start(
            row.id,
            JobKind::Recompute,
            &row.phase,
            from_micros(row.started_at_us)?,
        );
        job.status = status;
        job.progress.total = Some(count(row.total));
        job.progress.done = count(row.processed);
        job.add(crate::batch::CHANGED, count(row.changed));
        job.error = row.error;
        job.finished_at = row.finished_at_us.map(from_micros).transpose()?;
        Ok(job)
    }
}

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
