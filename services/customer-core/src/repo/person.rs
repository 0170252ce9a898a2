//! The person-level part of the customer store: the 360 view's reads, duplicates,
//! merging two records of one person, erasing a person and exporting all that is kept
//! about them. Same SQL on PostgreSQL and SQLite, as the rest of the store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerId, Order, SupportTicket};
use serde::Serialize;
use sqlx::types::Json;

use crate::Result;

#[async_trait]
pub trait PersonStore: Send + Sync {
    /// The most recent orders (by when they last changed), newest first.
    async fn recent_orders(&self, id: CustomerId, limit: u32) -> Result<Vec<Order>>;

    /// The most recently updated tickets, newest first.
    async fn tickets(&self, id: CustomerId, limit: u32) -> Result<Vec<SupportTicket>>;

    /// Live customers sharing a match key with `customer` (the e-mail's mailbox, the
    /// phone, the first or the last name): the candidates duplicates are scored from.
    async fn duplicate_candidates(&self, customer: &Customer, limit: u32) -> Result<Vec<Customer>>;

    /// Merges `secondary` into `primary` in one transaction (see
    /// [`Customer::merged_with`]): orders, tickets, product views and events move to the
    /// primary, the metrics are counted again, both records are written and announced
    /// (`customer.merged` in the primary's activity, `customer.deleted` for the
    /// secondary). A `dry_run` rolls everything back and only answers.
    async fn merge(
        &self,
        primary: CustomerId,
        secondary: CustomerId,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Merged>;

    /// Erases the person in one transaction: the customer and the records merged into
    /// it become tombstones (see [`Customer::erased`]), event data keeps no free text,
    /// ticket subjects are emptied, unsent messages about them are dropped, and the
    /// erasure is recorded. The erased customers, or nothing when erased before.
    async fn erase(&self, id: CustomerId, erasure: &Erasure) -> Result<Vec<Customer>>;

    /// Everything kept about the person, or `None` for an unknown id.
    async fn export(&self, id: CustomerId) -> Result<Option<PersonRecord>>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub primary: Customer,
    pub secondary: Customer,
}

/// The audit record of an erasure: who, when, under which request. Nothing erased.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Erasure {
    pub erased_by: String,
    pub request_id: Option<String>,
    pub erased_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ProductView {
    pub product_id: String,
    pub category: Option<String>,
    pub views: i64,
    pub last_viewed_at: DateTime<Utc>,
}

/// The right of access: every row customer-core keeps about one person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRecord {
    pub customer: Customer,
    /// Records merged into this one; they keep what they held before the merge.
    pub merged_from: Vec<Customer>,
    pub orders: Vec<Order>,
    pub support_tickets: Vec<SupportTicket>,
    pub events: Vec<CustomerEvent>,
    pub product_views: Vec<ProductView>,
    pub erasure: Option<Erasure>,
}

pub const SELECT_ORDERS: &str = include_str!("queries/select_recent_orders.sql");

pub const SELECT_TICKETS: &str = include_str!("queries/select_recent_tickets.sql");

pub const SELECT_CANDIDATES: &str = include_str!("queries/select_duplicate_candidates.sql");

pub const SELECT_MERGED_FROM: &str = include_str!("queries/select_merged_into.sql");

/// The secondary's copies of orders and tickets the primary has too are the same order
/// or ticket (their ids are the shop's); the primary's stay.
pub const DROP_SHARED_ORDERS: &str = include_str!("queries/drop_shared_orders.sql");
pub const MOVE_ORDERS: &str = include_str!("queries/move_orders.sql");
pub const DROP_SHARED_TICKETS: &str = include_str!("queries/drop_shared_tickets.sql");
pub const MOVE_TICKETS: &str = include_str!("queries/move_tickets.sql");
pub const ADD_PRODUCT_VIEWS: &str = include_str!("queries/add_product_views.sql");
pub const DROP_PRODUCT_VIEWS: &str = include_str!("queries/drop_product_views.sql");
pub const MOVE_EVENTS: &str = include_str!("queries/move_events.sql");
pub const SELECT_COMPLETED: &str = include_str!("queries/select_completed_orders.sql");

pub const SELECT_EVENT_DATA: &str = include_str!("queries/select_event_data.sql");
pub const SET_EVENT_DATA: &str = include_str!("queries/set_event_data.sql");
pub const EMPTY_TICKET_SUBJECTS: &str = include_str!("queries/empty_ticket_subjects.sql");
/// Unsent messages about the person (their snapshots, notifications to them).
pub const DROP_PENDING_MESSAGES: &str = include_str!("queries/drop_pending_messages.sql");
pub const INSERT_ERASURE: &str = include_str!("queries/insert_erasure.sql");
pub const SELECT_ERASURE: &str = include_str!("queries/select_erasure.sql");

pub const SELECT_ALL_EVENTS: &str = include_str!("queries/select_all_events.sql");
pub const SELECT_PRODUCT_VIEWS: &str = include_str!("queries/select_product_views.sql");

#[derive(sqlx::FromRow)]
pub struct OrderRow {
    order_id: String,
    status: String,
    total: f64,
    currency: String,
    items: Json<serde_json::Value>,
    placed_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

impl From<OrderRow> for Order {
    fn from(row: OrderRow) -> Self {
        Self {
            order_id: row.order_id,
            status: row.status,
            total: row.total,
            currency: row.currency,
            items: row.items.0,
            placed_at: row.placed_at,
            completed_at: row.completed_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct TicketRow {
    ticket_id: String,
    subject: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TicketRow> for SupportTicket {
    fn from(row: TicketRow) -> Self {
        Self {
            ticket_id: row.ticket_id,
            subject: row.subject,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The customer announced as merged into `primary`: `customer.merged` with the primary's
/// snapshot and the secondary's id (in the primary's activity too).
pub fn merged_event(merged: &Merged, now: DateTime<Utc>) -> CustomerEvent {
    let mut event = CustomerEvent::customer_changed(
        crm_domain::CustomerEventType::CustomerMerged,
        &merged.primary,
        now,
    );
    event.data["secondary_id"] = serde_json::json!(merged.secondary.id);
    event
}

/// Writes `customer` over the row still at `customer.version - 1`; `VersionConflict`
/// when another writer got there first.
macro_rules! update_customer {
    ($tx:expr, $customer:expr) => {{
        let customer: &crm_domain::Customer = $customer;
        let done =
            $crate::repo::sql::bind_customer!(sqlx::query($crate::repo::sql::UPDATE), customer)
                .bind(customer.version - 1)
                .execute(&mut *$tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err($crate::Error::VersionConflict);
        }
    }};
}
pub(crate) use update_customer;

/// The `PersonStore` implementation over one sqlx pool type, for both adapters.
macro_rules! impl_person_store {
    ($adapter:ty) => {
        #[async_trait::async_trait]
        impl $crate::repo::PersonStore for $adapter {
            async fn recent_orders(
                &self,
                id: crm_domain::CustomerId,
                limit: u32,
            ) -> $crate::Result<Vec<crm_domain::Order>> {
                let rows: Vec<$crate::repo::person::OrderRow> =
                    sqlx::query_as($crate::repo::person::SELECT_ORDERS)
                        .bind(id.as_uuid())
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn tickets(
                &self,
                id: crm_domain::CustomerId,
                limit: u32,
            ) -> $crate::Result<Vec<crm_domain::SupportTicket>> {
                let rows: Vec<$crate::repo::person::TicketRow> =
                    sqlx::query_as($crate::repo::person::SELECT_TICKETS)
                        .bind(id.as_uuid())
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn duplicate_candidates(
                &self,
                customer: &crm_domain::Customer,
                limit: u32,
            ) -> $crate::Result<Vec<crm_domain::Customer>> {
                let keys = customer.match_keys();
                let rows: Vec<$crate::repo::sql::CustomerRow> =
                    sqlx::query_as($crate::repo::person::SELECT_CANDIDATES)
                        .bind(customer.id.as_uuid())
                        .bind(keys.email)
                        .bind(customer.phone.as_ref().map(|p| p.as_str().to_owned()))
                        .bind(keys.first_name)
                        .bind(keys.last_name)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn merge(
                &self,
                primary: crm_domain::CustomerId,
                secondary: crm_domain::CustomerId,
                dry_run: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::repo::Merged> {
                use $crate::repo::{person as p, sql};
                let mut tx = self.pool.begin_with(Self::BEGIN_READ_THEN_WRITE).await?;
                // Both rows locked until commit (in id order, so two merges of the same
                // pair cannot deadlock): no event of either interleaves with the merge.
                let (low, high) = if primary.as_uuid() < secondary.as_uuid() {
                    (primary, secondary)
                } else {
                    (secondary, primary)
                };
                let low_row = sql::select_customer!(&mut *tx, low, Self::SELECT_FOR_WRITE)?;
                let high_row = sql::select_customer!(&mut *tx, high, Self::SELECT_FOR_WRITE)?;
                let (first, second) = if low == primary {
                    (low_row, high_row)
                } else {
                    (high_row, low_row)
                };
                let first = first.ok_or($crate::Error::NotFound(primary))?;
                let second = second.ok_or($crate::Error::NotFound(secondary))?;
                first.check_merge(&second)?;
                let (primary, secondary) = (primary.as_uuid(), secondary.as_uuid());
                for statement in [
                    p::DROP_SHARED_ORDERS,
                    p::MOVE_ORDERS,
                    p::DROP_SHARED_TICKETS,
                    p::MOVE_TICKETS,
                    p::ADD_PRODUCT_VIEWS,
                    p::MOVE_EVENTS,
                ] {
                    sqlx::query(statement)
                        .bind(primary)
                        .bind(secondary)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(p::DROP_PRODUCT_VIEWS)
                    .bind(secondary)
                    .execute(&mut *tx)
                    .await?;
                let completed: Vec<(f64, Option<chrono::DateTime<chrono::Utc>>)> =
                    sqlx::query_as(p::SELECT_COMPLETED)
                        .bind(primary)
                        .fetch_all(&mut *tx)
                        .await?;
                let totals = crm_domain::merge::OrderTotals {
                    orders: completed.len() as i64,
                    spent: completed.iter().map(|(total, _)| total).sum(),
                    first: completed.iter().filter_map(|(_, at)| *at).min(),
                    last: completed.iter().filter_map(|(_, at)| *at).max(),
                };
                let (primary, secondary) = first.merged_with(&second, totals, now)?;
                let merged = $crate::repo::Merged { primary, secondary };
                if dry_run {
                    tx.rollback().await?;
                    return Ok(merged);
                }
                p::update_customer!(tx, &merged.primary);
                p::update_customer!(tx, &merged.secondary);
                let event = p::merged_event(&merged, now);
                sql::insert_event!(tx, &event, now)?;
                let deleted = sql::OutboxMessage::customer_changed(
                    crm_domain::CustomerEventType::CustomerDeleted,
                    &merged.secondary,
                );
                sql::insert_outbox!(tx, [sql::OutboxMessage::event(&event), deleted]);
                tx.commit().await?;
                Ok(merged)
            }

            async fn erase(
                &self,
                id: crm_domain::CustomerId,
                erasure: &$crate::repo::Erasure,
            ) -> $crate::Result<Vec<crm_domain::Customer>> {
                use $crate::repo::{person as p, sql};
                let mut tx = self.pool.begin_with(Self::BEGIN_READ_THEN_WRITE).await?;
                // Locked until commit: an event of the person waits, then finds them
                // erased, instead of keeping free text the erasure did not see.
                let person = sql::select_customer!(&mut *tx, id, Self::SELECT_FOR_WRITE)?
                    .ok_or($crate::Error::NotFound(id))?;
                if person.is_erased() {
                    return Ok(Vec::new());
                }
                // The person and every record merged into them (also indirectly).
                let mut records = vec![person];
                let mut next = 0;
                while next < records.len() {
                    let rows: Vec<sql::CustomerRow> = sqlx::query_as(p::SELECT_MERGED_FROM)
                        .bind(records[next].id.as_uuid())
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in rows {
                        records.push(row.try_into()?);
                    }
                    next += 1;
                }
                let mut erased = Vec::with_capacity(records.len());
                for record in &records {
                    let tombstone = record.erased(erasure.erased_at);
                    p::update_customer!(tx, &tombstone);
                    let customer_id = record.id.as_uuid();
                    let events: Vec<(uuid::Uuid, String, sqlx::types::Json<serde_json::Value>)> =
                        sqlx::query_as(p::SELECT_EVENT_DATA)
                            .bind(customer_id)
                            .fetch_all(&mut *tx)
                            .await?;
                    for (event_id, event_type, data) in events {
                        let event_type = event_type.parse().map_err($crate::Error::Corrupt)?;
                        let wiped = crm_domain::merge::erased_event_data(event_type, &data.0);
                        sqlx::query(p::SET_EVENT_DATA)
                            .bind(event_id)
                            .bind(sqlx::types::Json(wiped))
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query(p::EMPTY_TICKET_SUBJECTS)
                        .bind(customer_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(p::DROP_PENDING_MESSAGES)
                        .bind(customer_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(p::INSERT_ERASURE)
                        .bind(customer_id)
                        .bind(&erasure.erased_by)
                        .bind(&erasure.request_id)
                        .bind(erasure.erased_at)
                        .execute(&mut *tx)
                        .await?;
                    let deleted = sql::OutboxMessage::customer_changed(
                        crm_domain::CustomerEventType::CustomerDeleted,
                        &tombstone,
                    );
                    sql::insert_outbox!(tx, [deleted]);
                    erased.push(tombstone);
                }
                tx.commit().await?;
                Ok(erased)
            }

            async fn export(
                &self,
                id: crm_domain::CustomerId,
            ) -> $crate::Result<Option<$crate::repo::PersonRecord>> {
                use $crate::repo::{person as p, sql};
                // One snapshot of everything: a read transaction.
                let mut tx = self.pool.begin().await?;
                let Some(customer) = sql::select_customer!(&mut *tx, id)? else {
                    return Ok(None);
                };
                let id = id.as_uuid();
                let merged_from: Vec<sql::CustomerRow> = sqlx::query_as(p::SELECT_MERGED_FROM)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                let orders: Vec<p::OrderRow> = sqlx::query_as(p::SELECT_ORDERS)
                    .bind(id)
                    .bind(i64::MAX)
                    .fetch_all(&mut *tx)
                    .await?;
                let tickets: Vec<p::TicketRow> = sqlx::query_as(p::SELECT_TICKETS)
                    .bind(id)
                    .bind(i64::MAX)
                    .fetch_all(&mut *tx)
                    .await?;
                let events: Vec<sql::EventRow> = sqlx::query_as(p::SELECT_ALL_EVENTS)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                let product_views: Vec<$crate::repo::ProductView> =
                    sqlx::query_as(p::SELECT_PRODUCT_VIEWS)
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                let erasure: Option<$crate::repo::Erasure> = sqlx::query_as(p::SELECT_ERASURE)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some($crate::repo::PersonRecord {
                    customer,
                    merged_from: merged_from
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<$crate::Result<_>>()?,
                    orders: orders.into_iter().map(Into::into).collect(),
                    support_tickets: tickets.into_iter().map(Into::into).collect(),
                    events: events
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<$crate::Result<_>>()?,
                    product_views,
                    erasure,
                }))
            }
        }
    };
}
pub(crate) use impl_person_store;
