//! The customer store over an SQL engine, written once for PostgreSQL and SQLite: one
//! file per port (`customers.rs`, `activity.rs`, `outbox.rs`, `imports.rs`,
//! `sales.rs`, `person.rs`), the shared steps of their transactions here. Where the
//! engines differ (how a read-then-write transaction begins, how rows are locked or
//! claimed), `Locking` says so once per engine (`postgres.rs`, `sqlite.rs`).

use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerId};
use crm_platform::dialect::{Arg, Dialect, Reads};
use sqlx::{Pool, query::Query};
use uuid::Uuid;

use super::{
    person::{OrderRow, ProductView, TicketRow},
    sql::{
        CustomerRow, DailySalesRow, EventRow, INSERT_EVENT, INSERT_OUTBOX, ImportRow,
        OutboxMessage, OutboxRow, UPDATE,
    },
};
use crate::{Error, Result};

/// What differs between the engines in how the store keeps writers apart.
pub trait Locking {
    /// Begins a transaction that reads rows and then writes them.
    const BEGIN_READ_THEN_WRITE: &'static str;
    /// Reads the customer that a write which must not interleave with another
    /// (events, merges, erasures) is about to change.
    const SELECT_FOR_WRITE: &'static str;
    /// Claims the oldest outbox rows for one relay.
    const CLAIM_OUTBOX: &'static str;
}

/// An engine with the rows this store reads and its way of locking.
pub trait CoreDialect:
    Dialect
    + Locking
    + Reads<CustomerRow>
    + Reads<EventRow>
    + Reads<OutboxRow>
    + Reads<ImportRow>
    + Reads<DailySalesRow>
    + Reads<OrderRow>
    + Reads<TicketRow>
    + Reads<ProductView>
    + Reads<super::Erasure>
    + Reads<(Uuid,)>
    + Reads<(f64, Option<DateTime<Utc>>)>
    + Reads<(Uuid, String, sqlx::types::Json<serde_json::Value>)>
{
}

impl CoreDialect for sqlx::Postgres {}
impl CoreDialect for sqlx::Sqlite {}

pub struct SqlRepository<D: sqlx::Database> {
    pub(super) pool: Pool<D>,
}

impl<D: sqlx::Database> Clone for SqlRepository<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

/// Rows read as `R`.
pub(super) fn read_rows<D: Reads<R>, R>(rows: &[D::Row]) -> Result<Vec<R>> {
    rows.iter()
        .map(|row| D::read(row).map_err(Error::from))
        .collect()
}

/// A row read as a customer.
pub(super) fn read_customer<D: Reads<CustomerRow>>(row: &D::Row) -> Result<Customer> {
    let row: CustomerRow = D::read(row)?;
    row.try_into()
}

/// The customer with `id`, if any, read with `statement` (`SELECT_BY_ID`, or the
/// engine's `SELECT_FOR_WRITE` inside a write).
pub(super) async fn select_customer<D: CoreDialect>(
    connection: &mut D::Connection,
    id: CustomerId,
    statement: &'static str,
) -> Result<Option<Customer>> {
    let row = sqlx::query(statement)
        .arg(id.as_uuid())
        .fetch_optional(D::within(connection))
        .await?;
    row.map(|row| read_customer::<D>(&row)).transpose()
}

/// Binds a customer to INSERT or UPDATE, in column order.
pub(super) fn bind_customer<'q, D: CoreDialect>(
    query: Query<'q, D, D::Arguments>,
    c: &Customer,
) -> Query<'q, D, D::Arguments> {
    let keys = c.match_keys();
    query
        .arg(c.id.as_uuid())
        .arg(c.email.as_str().to_owned())
        .arg(c.phone.as_ref().map(|p| p.as_str().to_owned()))
        .arg(c.first_name.as_ref().map(|n| n.as_str().to_owned()))
        .arg(c.last_name.as_ref().map(|n| n.as_str().to_owned()))
        .arg(c.status.as_str().to_owned())
        .arg(c.segment.as_str().to_owned())
        .json(c.tags.clone())
        .json(c.addresses.clone())
        .json(c.preferences.clone())
        .arg(c.metrics.total_orders)
        .arg(c.metrics.total_spent)
        .arg(c.metrics.average_order)
        .arg(c.metrics.first_order_date)
        .arg(c.metrics.last_order_date)
        .arg(c.metrics.lifetime_value)
        .arg(c.metrics.nps)
        .arg(c.version)
        .arg(c.created_at)
        .arg(c.updated_at)
        .arg(c.last_activity_at)
        .arg(c.merged_into.map(|id| id.as_uuid()))
        .arg(c.erased_at)
        .arg(keys.email)
        .arg(keys.first_name)
        .arg(keys.last_name)
}

/// Writes `customer` over the row still at `customer.version - 1`; how many rows
/// changed (0: another writer got there first).
pub(super) async fn write_customer<D: CoreDialect>(
    connection: &mut D::Connection,
    customer: &Customer,
) -> Result<u64> {
    let done = bind_customer(sqlx::query(UPDATE), customer)
        .arg(customer.version - 1)
        .execute(D::within(connection))
        .await?;
    Ok(D::rows_affected(&done))
}

/// The same, failing with `VersionConflict` when another writer got there first.
pub(super) async fn update_customer<D: CoreDialect>(
    connection: &mut D::Connection,
    customer: &Customer,
) -> Result<()> {
    match write_customer::<D>(connection, customer).await? {
        0 => Err(Error::VersionConflict),
        _ => Ok(()),
    }
}

/// Binds an event to its row of `customer_events`, in column order.
pub(super) fn bind_event<'q, D: CoreDialect>(
    query: Query<'q, D, D::Arguments>,
    event: &CustomerEvent,
    recorded_at: DateTime<Utc>,
) -> Query<'q, D, D::Arguments> {
    query
        .arg(event.id)
        .arg(event.customer_id.as_uuid())
        .arg(event.event_type.as_str().to_owned())
        .json(&event.data)
        .arg(event.source.clone())
        .arg(event.timestamp)
        .arg(event.timestamp.timestamp_micros())
        .arg(recorded_at)
}

/// Binds an outbox message to its row of `outbox`, in column order.
pub(super) fn bind_message<'q, D: CoreDialect>(
    query: Query<'q, D, D::Arguments>,
    message: OutboxMessage,
) -> Query<'q, D, D::Arguments> {
    query
        .arg(message.id)
        .arg(message.exchange.to_owned())
        .arg(message.routing_key)
        .json(message.payload)
        .arg(message.at)
}

/// Appends an event to its customer's activity; `false` when its id was known already.
pub(super) async fn insert_event<D: CoreDialect>(
    connection: &mut D::Connection,
    event: &CustomerEvent,
    recorded_at: DateTime<Utc>,
) -> std::result::Result<bool, sqlx::Error> {
    let done = bind_event(sqlx::query(INSERT_EVENT), event, recorded_at)
        .execute(D::within(connection))
        .await?;
    Ok(D::rows_affected(&done) > 0)
}

/// Writes outbox messages, in the transaction of the change they belong to.
pub(super) async fn insert_outbox<D: CoreDialect>(
    connection: &mut D::Connection,
    messages: impl IntoIterator<Item = OutboxMessage>,
) -> Result<()> {
    for message in messages {
        bind_message(sqlx::query(INSERT_OUTBOX), message)
            .execute(D::within(&mut *connection))
            .await?;
    }
    Ok(())
}

/// `$1, $2, ... $n`: the placeholders of a list of `n` values.
pub(super) fn placeholder_list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `values ($1, ... $w), ($w+1, ...)`: `rows` rows of `width` placeholders.
pub(super) fn values_rows(rows: usize, width: usize) -> String {
    let row = |r: usize| {
        let first = r * width + 1;
        let cells: Vec<String> = (first..first + width).map(|i| format!("${i}")).collect();
        format!("({})", cells.join(", "))
    };
    let rows: Vec<String> = (0..rows).map(row).collect();
    format!("values {}", rows.join(", "))
}
