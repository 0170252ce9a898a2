//! The PostgreSQL adapter of the customer store.

use std::time::Duration;

use sqlx::{PgPool, Postgres, migrate::MigrateDatabase, postgres::PgPoolOptions};

use super::sql::impl_customer_repository;
use crate::Result;

#[derive(Clone)]
pub struct PostgresRepository {
    pool: PgPool,
}

impl PostgresRepository {
    /// Connects, creating the database when it does not exist yet (a fresh developer
    /// machine), and runs the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if !Postgres::database_exists(url).await.unwrap_or(true) {
            tracing::info!("creating the customer database");
            Postgres::create_database(url).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_customer_repository!(PostgresRepository);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let url = crate::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        super::super::contract::run(&repo).await;
    }
}
