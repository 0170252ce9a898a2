//! The recompute's part of the store: RFM bounds and scores over the whole base, the
//! customers whose segment the rules would change, and the jobs that run it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{
    Job, JobKind,
    rfm::{Quintiles, RfmBounds},
    segmentation::SegmentConfig,
};
use crm_platform::dialect::Arg;
use futures::{StreamExt, stream::BoxStream};
use sqlx::query::Query;
use uuid::Uuid;

use super::{
    Profile, RecomputeStore,
    sql::{
        self, COUNT_PENDING, FAIL_STALE_JOBS, FREQUENCY, INSERT_JOB, JOB_HEARTBEAT, JobRow,
        MONETARY, PENDING_CHANGES, ProfileRow, RECENCY, SAVE_BOUNDS, SELECT_BOUNDS, SELECT_JOB,
        SELECT_RUNNING_JOB, UPDATE_JOB, micros,
    },
    sql_store::{SegmentDialect, SqlStore},
};
use crate::{Error, Result, batch::CHANGED};

/// Binds `$1`..`$5` of the statements built on `queries/wanted_segment.sql`.
pub(super) fn with_rules<'q, D: SegmentDialect>(
    query: Query<'q, D, D::Arguments>,
    rules: &SegmentConfig,
    now: DateTime<Utc>,
) -> Query<'q, D, D::Arguments> {
    query
        .arg(micros(now))
        .arg(rules.vip_threshold)
        .arg(rules.churn_days)
        .arg(rules.at_risk_days)
        .arg(rules.new_customer_days)
}

fn stored_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl<D: SegmentDialect> RecomputeStore for SqlStore<D> {
    async fn bounds(&self) -> Result<Option<RfmBounds>> {
        let row = sqlx::query(SELECT_BOUNDS)
            .fetch_optional(D::on(&self.pool))
            .await?;
        row.map(|row| {
            let (json,): (String,) = D::read(&row)?;
            serde_json::from_str(&json).map_err(|e| Error::Corrupt(e.to_string()))
        })
        .transpose()
    }

    async fn compute_bounds(&self, now: DateTime<Utc>) -> Result<Option<RfmBounds>> {
        let mut quintiles = Vec::new();
        for (value, only_ordered) in [(RECENCY, true), (FREQUENCY, false), (MONETARY, false)] {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql::quintiles(value, only_ordered)))
                .arg(micros(now))
                .fetch_one(D::on(&self.batch_pool))
                .await?;
            let cuts: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) = D::read(&row)?;
            quintiles.push(match cuts {
                (Some(a), Some(b), Some(c), Some(d)) => Some(Quintiles([a, b, c, d])),
                _ => None,
            });
        }
        let [recency, Some(frequency), Some(monetary)]: [_; 3] =
            quintiles.try_into().expect("three dimensions")
        else {
            return Ok(None);
        };
        let bounds = RfmBounds {
            recency,
            frequency,
            monetary,
            computed_at: now,
        };
        sqlx::query(SAVE_BOUNDS)
            .arg(serde_json::to_string(&bounds).expect("bounds serialize"))
            .execute(D::on(&self.batch_pool))
            .await?;
        Ok(Some(bounds))
    }

    async fn score_all(&self, bounds: &RfmBounds, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql::score_all(bounds)))
            .arg(micros(now))
            .execute(D::on(&self.batch_pool))
            .await?;
        Ok(D::rows_affected(&done))
    }

    fn pending_changes<'a>(
        &'a self,
        rules: &SegmentConfig,
        now: DateTime<Utc>,
    ) -> BoxStream<'a, Result<Profile>> {
        with_rules(sqlx::query(PENDING_CHANGES), rules, now)
            .fetch(D::on(&self.batch_pool))
            .map(|row| {
                let row: ProfileRow = D::read(&row?)?;
                row.try_into()
            })
            .boxed()
    }

    async fn count_pending(&self, rules: &SegmentConfig, now: DateTime<Utc>) -> Result<u64> {
        let query = with_rules(sqlx::query(COUNT_PENDING), rules, now);
        self.count(&self.batch_pool, query).await
    }

    async fn start_job(&self, now: DateTime<Utc>, stale_after: chrono::Duration) -> Result<Job> {
        sqlx::query(FAIL_STALE_JOBS)
            .arg(micros(now - stale_after))
            .execute(D::on(&self.pool))
            .await?;
        let mut job = Job::start(Uuid::now_v7(), JobKind::Recompute, "starting", now);
        job.add(CHANGED, 0);
        let inserted = sqlx::query(INSERT_JOB)
            .arg(job.id)
            .arg(job.status.as_str().to_owned())
            .arg(job.phase.clone())
            .arg(0_i64)
            .arg(0_i64)
            .arg(0_i64)
            .arg(None::<String>)
            .arg(micros(now))
            .arg(micros(now))
            .arg(None::<i64>)
            .execute(D::on(&self.pool))
            .await;
        match inserted {
            Ok(_) => Ok(job),
            // One running job at a time (a unique index): say which one runs.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let running = sqlx::query(SELECT_RUNNING_JOB)
                    .fetch_optional(D::on(&self.pool))
                    .await?;
                let running: Option<JobRow> = running.map(|row| D::read(&row)).transpose()?;
                let running: Option<Job> = running.map(TryInto::try_into).transpose()?;
                Err(Error::AlreadyRunning(running.map(|j| j.id)))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn save_job(&self, job: &Job, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(UPDATE_JOB)
            .arg(job.id)
            .arg(job.status.as_str().to_owned())
            .arg(job.phase.clone())
            .arg(stored_count(job.progress.total.unwrap_or_default()))
            .arg(stored_count(job.progress.done))
            .arg(stored_count(job.count(CHANGED)))
            .arg(job.error.clone())
            .arg(micros(now))
            .arg(job.finished_at.map(micros))
            .execute(D::on(&self.pool))
            .await?;
        Ok(())
    }

    async fn heartbeat(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(JOB_HEARTBEAT)
            .arg(id)
            .arg(micros(now))
            .execute(D::on(&self.pool))
            .await?;
        Ok(())
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(SELECT_JOB)
            .arg(id)
            .fetch_optional(D::on(&self.pool))
            .await?;
        let row: Option<JobRow> = row.map(|row| D::read(&row)).transpose()?;
        row.map(TryInto::try_into).transpose()
    }
}
