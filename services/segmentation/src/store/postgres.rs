//! The PostgreSQL adapter of segmentation's store.

use std::{str::FromStr, time::Duration};

use crm_platform::database::{PostgresLimits, postgres_options, postgres_pool};
use crm_platform::dialect::Runs;
use sqlx::{Connection, PgConnection, PgPool, Postgres, postgres::PgConnectOptions};

use super::{SqlStore, recompute::with_rules};
use crate::Result;

/// The schema segmentation's tables live in.
pub const SCHEMA: &str = "segmentation";

pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects, creating the database when it does not exist yet, and runs the
    /// migrations (on a connection without the statement timeout). Everything lives in
    /// the schema `segmentation` (its own migration history included), so the database
    /// may be customer-core's. `batch_statement_timeout` bounds the recompute's
    /// statements instead of `limits.statement_timeout`.
    pub async fn connect(
        url: &str,
        limits: PostgresLimits,
        batch_statement_timeout: Duration,
    ) -> Result<Self> {
        crm_platform::database::create_postgres_database_if_missing(url).await?;
        let mut setup = PgConnection::connect(url).await?;
        sqlx::query(Self::CREATE_SCHEMA).execute(&mut setup).await?;
        setup.close().await?;
        let in_schema = |options: PgConnectOptions| options.options([("search_path", SCHEMA)]);
        let mut setup =
            PgConnection::connect_with(&in_schema(PgConnectOptions::from_str(url)?)).await?;
        sqlx::migrate!("./migrations").run(&mut setup).await?;
        setup.close().await?;
        let pool = postgres_pool(limits.max_connections)
            .connect_with(in_schema(postgres_options(url, limits.statement_timeout)?))
            .await?;
        // One recompute runs at a time: its stream of changes holds one connection, its
        // other statements take the second.
        let batch_pool = postgres_pool(2)
            .connect_with(in_schema(postgres_options(url, batch_statement_timeout)?))
            .await?;
        Ok(Self { pool, batch_pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The benchmark's baseline: the segment rules as one hand-written `UPDATE` of this
    /// store's profiles; how many rows changed.
    pub async fn update_all_segments_in_one_statement(
        &self,
        rules: &crm_domain::segmentation::SegmentConfig,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        let query = with_rules(sqlx::query(super::sql::UPDATE_ALL_SEGMENTS), rules, now);
        let done = query.execute(Postgres::on(&self.pool)).await?;
        Ok(done.rows_affected())
    }

    const CREATE_SCHEMA: &str = "create schema if not exists segmentation";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let store = PostgresStore::connect(&url, PostgresLimits::default(), Duration::ZERO)
            .await
            .expect("connect");
        super::super::contract::run(&store).await;
    }

    /// Behind a lock held longer than the statement timeout, a request's statement gives
    /// up while the recompute's (its own, longer limit) waits and goes on.
    #[tokio::test]
    async fn the_recompute_outlasts_the_statement_timeout_of_requests() {
        use crate::store::{ProfileStore, RecomputeStore};
        let url = crm_platform::testing::fresh_postgres_url().await;
        let limits = PostgresLimits {
            max_connections: 2,
            statement_timeout: Duration::from_millis(100),
        };
        let store = PostgresStore::connect(&url, limits, Duration::from_secs(30))
            .await
            .unwrap();
        let mut holder = crm_platform::testing::lock_table(&url, "segmentation.profiles").await;
        let rules = crm_domain::segmentation::SegmentConfig::default();
        let recompute = tokio::spawn({
            let store = store.clone();
            async move { store.count_pending(&rules, chrono::Utc::now()).await }
        });

        let request = store.counts().await.expect_err("cancelled after 100 ms");
        assert_eq!(
            tonic::Status::from(request).code(),
            tonic::Code::Unavailable
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("rollback").execute(&mut holder).await.unwrap();
        assert_eq!(recompute.await.unwrap().expect("waited for the lock"), 0);
    }
}
