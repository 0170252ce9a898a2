//! Test support shared with the end-to-end tests: a fresh PostgreSQL database per test,
//! so tests run in parallel. A missing server fails loudly with how to start it.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The server tests use; override with `CRM_TEST_POSTGRES_URL`.
pub fn postgres_server_url() -> String {
    std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Creates an empty database named `crm_test_<uuid>` and returns its URL. `make test`
/// drops the leftovers of earlier runs before it starts.
pub async fn fresh_postgres_url() -> String {
    let server = postgres_server_url();
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server} ({e}). Start it with: \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            )
        });
    let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    format!("{server}/{name}")
}
