//! The SQLite adapter of segmentation's store, for the standalone binary.

use std::{path::Path, str::FromStr};

use sqlx::{
    Sqlite,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};

use super::SqlStore;
use crate::Result;

pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (or creates) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::with_options(crm_platform::database::sqlite_file(path), 4).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self> {
        // One connection: every connection to ":memory:" is its own database.
        Self::with_options(SqliteConnectOptions::from_str("sqlite::memory:")?, 1).await
    }

    async fn with_options(options: SqliteConnectOptions, connections: u32) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        // SQLite has no statement timeout: the recompute shares the pool.
        Ok(Self {
            batch_pool: pool.clone(),
            pool,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let store = SqliteStore::in_memory().await.expect("open");
        super::super::contract::run(&store).await;
    }
}
