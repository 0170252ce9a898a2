//! What every service's SQL store does the same way when it opens its database.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Postgres,
    migrate::MigrateDatabase,
    postgres::{PgConnectOptions, PgPoolOptions},
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

/// How much of PostgreSQL a store may take: connections, and how long one statement may
/// run (`CRM_DATABASE_MAX_CONNECTIONS`, `CRM_DATABASE_STATEMENT_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresLimits {
    pub max_connections: u32,
    /// Zero: no limit.
    pub statement_timeout: Duration,
}

impl Default for PostgresLimits {
    fn default() -> Self {
        Self {
            max_connections: 10,
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Pool options of the services' PostgreSQL stores: waiting longer than 5 s for a
/// connection is an error the caller sees, not a hang.
pub fn postgres_pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
}

/// Connect options for a service's PostgreSQL store: the server cancels a statement that
/// runs longer than `statement_timeout` (waiting for a lock included), so a stuck query
/// ends in an error the caller sees instead of holding a connection forever.
pub fn postgres_options(
    url: &str,
    statement_timeout: Duration,
) -> Result<PgConnectOptions, sqlx::Error> {
    let timeout = format!("{}ms", statement_timeout.as_millis());
    Ok(PgConnectOptions::from_str(url)?.options([("statement_timeout", timeout)]))
}

/// Whether the database failed in a way a later try may not: no connection within the
/// pool's acquire timeout, a broken connection, or a statement cancelled by its timeout
/// (SQLSTATE 57014).
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(error) => error.code().as_deref() == Some("57014"),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_statement_longer_than_the_timeout_is_cancelled_as_transient() {
        let url = crate::testing::fresh_postgres_url().await;
        let options = postgres_options(&url, Duration::from_millis(200)).unwrap();
        let pool = postgres_pool(1).connect_with(options).await.unwrap();

        let error = sqlx::query("select pg_sleep(5)")
            .execute(&pool)
            .await
            .expect_err("cancelled after 200 ms");
        assert!(is_transient(&error), "{error}");

        let quick: (i32,) = sqlx::query_as("select 1").fetch_one(&pool).await.unwrap();
        assert_eq!(quick.0, 1, "the connection serves the next statement");
    }

    #[test]
    fn other_database_errors_are_not_transient() {
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
    }
}
