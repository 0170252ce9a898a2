//! The person-level part of the customer store: the 360 view's reads, duplicates,
//! merging two records of one person, erasing a person and exporting all that is kept
//! about them. Same code and SQL on PostgreSQL and SQLite, as the rest of the store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerEventType, CustomerId, Order, SupportTicket};
use crm_platform::dialect::Arg;
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    sql::{CustomerRow, EventRow, OutboxMessage, SELECT_BY_ID},
    sql_repository::{
        CoreDialect, SqlRepository, insert_event, insert_outbox, read_customer, read_rows,
        select_customer, update_customer,
    },
};
use crate::{Error, Result};

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

#[async_trait]
impl<D: CoreDialect> PersonStore for SqlRepository<D> {
    async fn recent_orders(&self, id: CustomerId, limit: u32) -> Result<Vec<Order>> {
        let rows = sqlx::query(SELECT_ORDERS)
            .arg(id.as_uuid())
            .arg(i64::from(limit))
            .fetch_all(D::on(&self.pool))
            .await?;
        let rows: Vec<OrderRow> = read_rows::<D, OrderRow>(&rows)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn tickets(&self, id: CustomerId, limit: u32) -> Result<Vec<SupportTicket>> {
        let rows = sqlx::query(SELECT_TICKETS)
            .arg(id.as_uuid())
            .arg(i64::from(limit))
            .fetch_all(D::on(&self.pool))
            .await?;
        let rows: Vec<TicketRow> = read_rows::<D, TicketRow>(&rows)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn duplicate_candidates(&self, customer: &Customer, limit: u32) -> Result<Vec<Customer>> {
        let keys = customer.match_keys();
        let rows = sqlx::query(SELECT_CANDIDATES)
            .arg(customer.id.as_uuid())
            .arg(keys.email)
            .arg(customer.phone.as_ref().map(|p| p.as_str().to_owned()))
            .arg(keys.first_name)
            .arg(keys.last_name)
            .arg(i64::from(limit))
            .fetch_all(D::on(&self.pool))
            .await?;
        rows.iter().map(read_customer::<D>).collect()
    }

    async fn merge(
        &self,
        primary: CustomerId,
        secondary: CustomerId,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Merged> {
        let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
        // Both rows locked until commit (in id order, so two merges of the same pair
        // cannot deadlock): no event of either interleaves with the merge.
        let (low, high) = if primary.as_uuid() < secondary.as_uuid() {
            (primary, secondary)
        } else {
            (secondary, primary)
        };
        let low_row = select_customer::<D>(&mut tx, low, D::SELECT_FOR_WRITE).await?;
        let high_row = select_customer::<D>(&mut tx, high, D::SELECT_FOR_WRITE).await?;
        let (first, second) = if low == primary {
            (low_row, high_row)
        } else {
            (high_row, low_row)
        };
        let first = first.ok_or(Error::NotFound(primary))?;
        let second = second.ok_or(Error::NotFound(secondary))?;
        first.check_merge(&second)?;
        let (primary, secondary) = (primary.as_uuid(), secondary.as_uuid());
        for statement in [
            DROP_SHARED_ORDERS,
            MOVE_ORDERS,
            DROP_SHARED_TICKETS,
            MOVE_TICKETS,
            ADD_PRODUCT_VIEWS,
            MOVE_EVENTS,
        ] {
            sqlx::query(statement)
                .arg(primary)
                .arg(secondary)
                .execute(D::within(&mut tx))
                .await?;
        }
        sqlx::query(DROP_PRODUCT_VIEWS)
            .arg(secondary)
            .execute(D::within(&mut tx))
            .await?;
        let rows = sqlx::query(SELECT_COMPLETED)
            .arg(primary)
            .fetch_all(D::within(&mut tx))
            .await?;
        let completed: Vec<(f64, Option<DateTime<Utc>>)> = read_rows::<D, _>(&rows)?;
        let totals = crm_domain::merge::OrderTotals {
            orders: completed.len() as i64,
            spent: completed.iter().map(|(total, _)| total).sum(),
            first: completed.iter().filter_map(|(_, at)| *at).min(),
            last: completed.iter().filter_map(|(_, at)| *at).max(),
        };
        let (primary, secondary) = first.merged_with(&second, totals, now)?;
        let merged = Merged { primary, secondary };
        if dry_run {
            tx.rollback().await?;
            return Ok(merged);
        }
        update_customer::<D>(&mut tx, &merged.primary).await?;
        update_customer::<D>(&mut tx, &merged.secondary).await?;
        let event = merged_event(&merged, now);
        insert_event::<D>(&mut tx, &event, now).await?;
        let deleted =
            OutboxMessage::customer_changed(CustomerEventType::CustomerDeleted, &merged.secondary);
        insert_outbox::<D>(&mut tx, [OutboxMessage::event(&event), deleted]).await?;
        tx.commit().await?;
        Ok(merged)
    }

    async fn erase(&self, id: CustomerId, erasure: &Erasure) -> Result<Vec<Customer>> {
        let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
        // Locked until commit: an event of the person waits, then finds them erased,
        // instead of keeping free text the erasure did not see.
        let person = select_customer::<D>(&mut tx, id, D::SELECT_FOR_WRITE)
            .await?
            .ok_or(Error::NotFound(id))?;
        if person.is_erased() {
            return Ok(Vec::new());
        }
        // The person and every record merged into them (also indirectly).
        let mut records = vec![person];
        let mut next = 0;
        while next < records.len() {
            let rows = sqlx::query(SELECT_MERGED_FROM)
                .arg(records[next].id.as_uuid())
                .fetch_all(D::within(&mut tx))
                .await?;
            for row in &rows {
                records.push(read_customer::<D>(row)?);
            }
            next += 1;
        }
        let mut erased = Vec::with_capacity(records.len());
        for record in &records {
            let tombstone = record.erased(erasure.erased_at);
            update_customer::<D>(&mut tx, &tombstone).await?;
            let customer_id = record.id.as_uuid();
            let rows = sqlx::query(SELECT_EVENT_DATA)
                .arg(customer_id)
                .fetch_all(D::within(&mut tx))
                .await?;
            let events: Vec<(Uuid, String, Json<serde_json::Value>)> = read_rows::<D, _>(&rows)?;
            for (event_id, event_type, data) in events {
                let event_type = event_type.parse().map_err(Error::Corrupt)?;
                let wiped = crm_domain::merge::erased_event_data(event_type, &data.0);
                sqlx::query(SET_EVENT_DATA)
                    .arg(event_id)
                    .json(wiped)
                    .execute(D::within(&mut tx))
                    .await?;
            }
            sqlx::query(EMPTY_TICKET_SUBJECTS)
                .arg(customer_id)
                .execute(D::within(&mut tx))
                .await?;
            sqlx::query(DROP_PENDING_MESSAGES)
                .arg(customer_id.to_string())
                .execute(D::within(&mut tx))
                .await?;
            sqlx::query(INSERT_ERASURE)
                .arg(customer_id)
                .arg(erasure.erased_by.clone())
                .arg(erasure.request_id.clone())
                .arg(erasure.erased_at)
                .execute(D::within(&mut tx))
                .await?;
            let deleted =
                OutboxMessage::customer_changed(CustomerEventType::CustomerDeleted, &tombstone);
            insert_outbox::<D>(&mut tx, [deleted]).await?;
            erased.push(tombstone);
        }
        tx.commit().await?;
        Ok(erased)
    }

    async fn export(&self, id: CustomerId) -> Result<Option<PersonRecord>> {
        // One snapshot of everything: a read transaction.
        let mut tx = self.pool.begin().await?;
        let Some(customer) = select_customer::<D>(&mut tx, id, SELECT_BY_ID).await? else {
            return Ok(None);
        };
        let id = id.as_uuid();
        let of_person = |statement: &'static str| sqlx::query(statement).arg(id);
        let rows = of_person(SELECT_MERGED_FROM)
            .fetch_all(D::within(&mut tx))
            .await?;
        let merged_from: Vec<CustomerRow> = read_rows::<D, _>(&rows)?;
        let rows = of_person(SELECT_ORDERS)
            .arg(i64::MAX)
            .fetch_all(D::within(&mut tx))
            .await?;
        let orders: Vec<OrderRow> = read_rows::<D, _>(&rows)?;
        let rows = of_person(SELECT_TICKETS)
            .arg(i64::MAX)
            .fetch_all(D::within(&mut tx))
            .await?;
        let tickets: Vec<TicketRow> = read_rows::<D, _>(&rows)?;
        let rows = of_person(SELECT_ALL_EVENTS)
            .fetch_all(D::within(&mut tx))
            .await?;
        let events: Vec<EventRow> = read_rows::<D, _>(&rows)?;
        let rows = of_person(SELECT_PRODUCT_VIEWS)
            .fetch_all(D::within(&mut tx))
            .await?;
        let product_views: Vec<ProductView> = read_rows::<D, _>(&rows)?;
        let row = of_person(SELECT_ERASURE)
            .fetch_optional(D::within(&mut tx))
            .await?;
        let erasure: Option<Erasure> = row.map(|row| D::read(&row)).transpose()?;
        tx.commit().await?;
        Ok(Some(PersonRecord {
            customer,
            merged_from: merged_from
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            orders: orders.into_iter().map(Into::into).collect(),
            support_tickets: tickets.into_iter().map(Into::into).collect(),
            events: events
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            product_views,
            erasure,
        }))
    }
}
