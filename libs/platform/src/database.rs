//! What every service's SQL store does the same way when it opens its database.

use std::{path::Path, time::Duration};

use sqlx::{
    Postgres,
    migrate::MigrateDatabase,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

/// Creates the PostgreSQL database `url` names when it does not exist yet (a fresh
/// developer machine). Services sharing a database may start at the same moment, so
/// another one creating it first is not an error.
pub async fn create_postgres_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    if Postgres::database_exists(url).await.unwrap_or(true) {
        return Ok(());
    }
    tracing::info!("creating the database");
    match Postgres::create_database(url).await {
        Err(error) if !Postgres::database_exists(url).await.unwrap_or(false) => Err(error),
        _ => Ok(()),
    }
}

/// Pool options of the services' PostgreSQL stores: waiting longer than 5 s for a
/// connection is an error the caller sees, not a hang.
pub fn postgres_pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
}

/// A SQLite database file for the standalone binary, created if missing: WAL lets
/// readers proceed during a write, NORMAL is durable with WAL, and a writer waits up to
/// 5 s for the lock.
pub fn sqlite_file(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
}
