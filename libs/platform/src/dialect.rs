//! One text of a store's code for PostgreSQL and SQLite. sqlx's generic API asks for
//! higher-ranked bounds at every use (an executor for `&mut Connection`, an encoder per
//! bound type, a decoder per row type); Rust does not carry such bounds along with a
//! trait, so a store generic over the engine would repeat them on every function. Here
//! each bound becomes a small trait whose blanket impl holds it once, and `Dialect`
//! gathers them as supertraits (implemented for PostgreSQL and SQLite), which Rust does
//! carry: `impl<D: Dialect> Store for
//! SqlStore<D>` is then plain code.
//!
//! ```ignore
//! let found = sqlx::query(SELECT_JOB).arg(id).fetch_optional(D::on(&self.pool)).await?;
//! let job: Option<JobRow> = found.map(|row| D::read(&row)).transpose()?;
//! ```

use chrono::{DateTime, Utc};
use sqlx::{Database, Executor, FromRow, IntoArguments, Pool, Type, encode::Encode, query::Query};
use uuid::Uuid;

/// `T` can be bound to a statement of this engine.
pub trait Binds<T>: Database {
    fn bind_to(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments>;
}

impl<D, T> Binds<T> for D
where
    D: Database,
    T: for<'t> Encode<'t, D> + Type<D>,
{
    fn bind_to(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments> {
        query.bind(value)
    }
}

/// A row of this engine can be read as `R`.
pub trait Reads<R>: Database {
    fn read(row: &Self::Row) -> Result<R, sqlx::Error>;
}

impl<D, R> Reads<R> for D
where
    D: Database,
    R: for<'r> FromRow<'r, D::Row>,
{
    fn read(row: &Self::Row) -> Result<R, sqlx::Error> {
        R::from_row(row)
    }
}

/// Statements run on a pool or on a transaction's connection of this engine.
pub trait Runs: Database<Arguments: IntoArguments<Self>> {
    fn on(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;
    fn within(connection: &mut Self::Connection) -> impl Executor<'_, Database = Self>;
}

impl<D> Runs for D
where
    D: Database<Arguments: IntoArguments<D>>,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
{
    fn on(pool: &Pool<Self>) -> impl Executor<'_, Database = Self> {
        pool
    }

    fn within(connection: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        connection
    }
}

/// Any serializable value bound as JSON (`jsonb` on PostgreSQL, text on SQLite).
pub trait BindsJson: Database {
    fn bind_json<T: serde::Serialize>(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments>;
}

impl BindsJson for sqlx::Postgres {
    fn bind_json<T: serde::Serialize>(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments> {
        query.bind(sqlx::types::Json(value))
    }
}

impl BindsJson for sqlx::Sqlite {
    fn bind_json<T: serde::Serialize>(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments> {
        query.bind(sqlx::types::Json(value))
    }
}

/// How many rows a statement changed (each engine reports it its own way).
pub trait Affected: Database {
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

impl Affected for sqlx::Postgres {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

impl Affected for sqlx::Sqlite {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

/// An engine the stores run on: PostgreSQL and SQLite, with the column types the stores
/// bind. Rows are read with `Reads<R>`, which each store asks for its own row types.
pub trait Dialect:
    Runs
    + Affected
    + BindsJson
    + Binds<bool>
    + Binds<i16>
    + Binds<i64>
    + Binds<f64>
    + Binds<String>
    + Binds<Uuid>
    + Binds<DateTime<Utc>>
    + Binds<chrono::NaiveDate>
    + Binds<Option<i16>>
    + Binds<Option<i32>>
    + Binds<Option<i64>>
    + Binds<Option<f64>>
    + Binds<Option<String>>
    + Binds<Option<Uuid>>
    + Binds<Option<DateTime<Utc>>>
    + Binds<sqlx::types::Json<serde_json::Value>>
{
}

// Implemented for the two engines by name, so the list above is the only one; an engine
// missing a bound fails here, not at a store's first use.
impl Dialect for sqlx::Postgres {}
impl Dialect for sqlx::Sqlite {}

/// `query.arg(value)` and `query.json(value)`: `bind` for code generic over the engine.
pub trait Arg<'q, D: Database> {
    fn arg<T>(self, value: T) -> Self
    where
        D: Binds<T>;

    fn json<T: serde::Serialize>(self, value: T) -> Self
    where
        D: BindsJson;
}

impl<'q, D: Database> Arg<'q, D> for Query<'q, D, D::Arguments> {
    fn arg<T>(self, value: T) -> Self
    where
        D: Binds<T>,
    {
        D::bind_to(self, value)
    }

    fn json<T: serde::Serialize>(self, value: T) -> Self
    where
        D: BindsJson,
    {
        D::bind_json(self, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same code on both engines: what a store written over `Dialect` relies on.
    async fn round_trip<D: Dialect + Reads<(i64, String, Option<f64>)>>(pool: &Pool<D>) {
        sqlx::query("create table t (n bigint not null, s text not null, f double precision)")
            .execute(D::on(pool))
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("insert into t (n, s, f) values ($1, $2, $3)")
            .arg(7_i64)
            .arg("seven".to_owned())
            .arg(None::<f64>)
            .execute(D::within(&mut tx))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = sqlx::query("select n, s, f from t where n = $1")
            .arg(7_i64)
            .fetch_one(D::on(pool))
            .await
            .unwrap();
        let read: (i64, String, Option<f64>) = D::read(&row).unwrap();
        assert_eq!(read, (7, "seven".to_owned(), None));
    }

    #[tokio::test]
    async fn one_text_runs_on_sqlite_and_postgresql() {
        let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        round_trip(&sqlite).await;
        let url = crate::testing::fresh_postgres_url().await;
        let postgres = sqlx::PgPool::connect(&url).await.unwrap();
        round_trip(&postgres).await;
    }
}
