//! The PostgreSQL adapter of segmentation's store.

use std::str::FromStr;

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

use super::sql::impl_segment_store;
use crate::Result;

/// The schema segmentation's tables live in.
pub const SCHEMA: &str = "segmentation";

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, creating the database when it does not exist yet, and runs the migrations. Everything lives in the schema `segmentation` (its own
    /// migration history included), so the database may be customer-core's.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        crm_platform::database::create_postgres_database_if_missing(url).await?;
        let mut setup = PgConnection::connect(url).await?;
        sqlx::query(Self::CREATE_SCHEMA).execute(&mut setup).await?;
        setup.close().await?;
        let options = PgConnectOptions::from_str(url)?.options([("search_path", SCHEMA)]);
        let pool = crm_platform::database::postgres_pool(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
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
        let query = sqlx::query(super::sql::UPDATE_ALL_SEGMENTS);
        let done = super::sql::bind_rules!(query, rules, now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    const CREATE_SCHEMA: &str = "create schema if not exists segmentation";
}

impl_segment_store!(PostgresStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let store = PostgresStore::connect(&url, 5).await.expect("connect");
        super::super::contract::run(&store).await;
    }
}
