//! The store over an SQL engine, written once for PostgreSQL and SQLite (`Dialect`):
//! its parts implement one port each (`profiles.rs`, `recompute.rs`,
//! `interactions.rs`); the engines differ only in how they open (`postgres.rs`,
//! `sqlite.rs`).

use crm_platform::dialect::{Arg, Dialect, Reads};
use sqlx::{Pool, Transaction};
use uuid::Uuid;

use super::sql::{INSERT_APPLIED, JobRow, ProfileRow};
use crate::Result;

/// An engine with the rows this store reads.
pub trait SegmentDialect:
    Dialect
    + Reads<ProfileRow>
    + Reads<JobRow>
    + Reads<(i64,)>
    + Reads<(String,)>
    + Reads<(String, i64)>
    + Reads<(String, i64, String, i64)>
    + Reads<(Option<f64>, Option<f64>, Option<f64>, Option<f64>)>
{
}

impl SegmentDialect for sqlx::Postgres {}
impl SegmentDialect for sqlx::Sqlite {}

pub struct SqlStore<D: sqlx::Database> {
    pub(super) pool: Pool<D>,
    /// For the recompute's statements over every profile, which may run for minutes
    /// (PostgreSQL: a pool with a longer statement timeout; SQLite: the same pool).
    pub(super) batch_pool: Pool<D>,
}

impl<D: sqlx::Database> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            batch_pool: self.batch_pool.clone(),
        }
    }
}

impl<D: SegmentDialect> SqlStore<D> {
    /// A transaction that records `event_id` as applied; `None` when it was applied
    /// before (a redelivery), so nothing is recorded twice.
    pub(super) async fn first_time(
        &self,
        event_id: Uuid,
    ) -> Result<Option<Transaction<'static, D>>> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(INSERT_APPLIED)
            .arg(event_id)
            .execute(D::within(&mut tx))
            .await?;
        Ok((D::rows_affected(&done) > 0).then_some(tx))
    }

    /// One `count(*)` (or other single number) of `statement`.
    pub(super) async fn count(
        &self,
        pool: &Pool<D>,
        query: sqlx::query::Query<'_, D, D::Arguments>,
    ) -> Result<u64> {
        let row = query.fetch_one(D::on(pool)).await?;
        let (n,): (i64,) = D::read(&row)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}
