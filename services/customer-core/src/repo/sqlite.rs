//! The SQLite adapter of the customer store, for the standalone binary.

use std::{path::Path, str::FromStr};

use sqlx::{
    Sqlite,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};

use super::{SqlRepository, sql_repository::Locking};
use crate::Result;

pub type SqliteRepository = SqlRepository<Sqlite>;

impl SqlRepository<Sqlite> {
    /// Opens (or creates) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = crm_platform::database::sqlite_file(path).foreign_keys(true);
        Self::with_options(options, 4).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to ":memory:" is its own database.
        Self::with_options(options, 1).await
    }

    async fn with_options(options: SqliteConnectOptions, connections: u32) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl Locking for Sqlite {
    /// SQLite has one writer at a time: a transaction that reads and then writes takes
    /// the write lock up front, so a second writer waits (busy timeout) instead of
    /// reading the same rows, or failing with "database is locked" when its read
    /// snapshot cannot become a write.
    const BEGIN_READ_THEN_WRITE: &str = "begin immediate";
    /// The write lock taken at `begin immediate` already keeps writes apart.
    const SELECT_FOR_WRITE: &str = super::sql::SELECT_BY_ID;
    const CLAIM_OUTBOX: &str = include_str!("queries/sqlite/claim_outbox.sql");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::ports::*;

    #[tokio::test]
    async fn contract_in_memory() {
        let repo = SqliteRepository::in_memory().await.expect("open");
        super::super::contract::run(&repo).await;
    }

    #[tokio::test]
    async fn a_racing_duplicate_is_applied_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = SqliteRepository::open(&dir.path().join("crm.db"))
            .await
            .expect("open");
        super::super::contract::a_racing_duplicate_is_applied_once(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bulk_segments_race_other_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = SqliteRepository::open(&dir.path().join("crm.db"))
            .await
            .expect("open");
        super::super::contract::bulk_segments_race_other_writers(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test]
    async fn two_relays_share_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = SqliteRepository::open(&dir.path().join("crm.db"))
            .await
            .expect("open");
        super::super::contract::two_relays_publish_each_event_once(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test]
    async fn contract_on_disk_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("crm.db");
        let repo = SqliteRepository::open(&path).await.expect("open");
        super::super::contract::run(&repo).await;
        let first = repo.list(None, 1, false).await.expect("list");
        drop(repo);
        let reopened = SqliteRepository::open(&path).await.expect("reopen");
        assert_eq!(reopened.list(None, 1, false).await.expect("list"), first);
    }
}
