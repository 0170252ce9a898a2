//! The customer store: one port per concern (customers, activity, outbox, imports,
//! sales, the person), and one adapter over SQL (`sql_repository.rs`) whose code and
//! SQL text serve PostgreSQL (the services) and SQLite (the standalone binary) alike, so
//! one contract suite covers both.

mod activity;
mod customers;
mod imports;
mod outbox;
mod person;
mod postgres;
mod sales;
mod sql;
mod sql_repository;
mod sqlite;

#[cfg(test)]
mod contract;
#[cfg(test)]
mod contract_batches;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Customer, CustomerEvent, CustomerEventType, CustomerId};
use uuid::Uuid;

pub use person::{Erasure, Merged, PersonRecord, PersonStore, ProductView};
pub use postgres::PostgresRepository;
pub use sql_repository::SqlRepository;
pub use sqlite::SqliteRepository;

use crate::Result;

/// One segment decision of the segmentation batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentChange {
    pub id: CustomerId,
    pub segment: crm_domain::Segment,
    pub reason: String,
    pub based_on_version: i64,
}

/// The customers themselves.
#[async_trait]
pub trait Customers: Send + Sync {
    /// Fails with `EmailTaken` when a live customer has the e-mail. Every write also puts
    /// its `customer.*` event into the outbox, in the same transaction.
    async fn insert(&self, customer: &Customer) -> Result<()>;

    async fn get(&self, id: CustomerId) -> Result<Option<Customer>>;

    /// Writes `customer` if the stored version is still `customer.version - 1`, else
    /// fails with `VersionConflict` (or `NotFound`); announces it as `change` says, in the
    /// same transaction.
    async fn update(&self, customer: &Customer, change: &Change) -> Result<()>;

    /// Stores many segment decisions set-based, in one transaction: each customer still
    /// at `based_on_version`, live and in another segment gets a new version and a
    /// `customer.segment_changed` in its activity and the outbox. The changed customers.
    async fn set_segments(
        &self,
        changes: &[SegmentChange],
        now: DateTime<Utc>,
    ) -> Result<Vec<Customer>>;

    /// A page in id order, after `after`; deleted customers only with `include_deleted`.
    async fn list(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        include_deleted: bool,
    ) -> Result<Vec<Customer>>;

    /// The live (not deleted) customer with this e-mail.
    async fn find_live_by_email(&self, email: &crm_domain::Email) -> Result<Option<Customer>>;

    async fn ping(&self) -> Result<()>;
}

/// A customer's activity.
#[async_trait]
pub trait Activity: Send + Sync {
    /// Records one event of a customer's activity, its projection (order, ticket,
    /// product view) and the customer's new metrics in one transaction. Idempotent by
    /// event id: a second delivery is `Duplicate` and changes nothing.
    async fn record_event(&self, event: &CustomerEvent, now: DateTime<Utc>)
    -> Result<EventOutcome>;

    /// Records many events as `record_event` would one by one, in one transaction, and
    /// answers their outcomes in the same order. All or nothing: when another writer
    /// got in between (`VersionConflict`) or a statement failed, none is recorded.
    async fn record_events(
        &self,
        events: &[CustomerEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<EventOutcome>>;

    /// A customer's activity, newest first, after `before` (a feed position).
    async fn list_events(
        &self,
        customer: CustomerId,
        event_type: Option<CustomerEventType>,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<CustomerEvent>>;
}

/// The outbox every write announces itself through.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Publishes up to `max` outbox events (oldest first) and removes them once the
    /// broker confirmed; how many were published.
    async fn relay_outbox(&self, bus: &dyn crm_platform::bus::EventBus, max: u32) -> Result<usize>;
}

/// Bulk imports: their rows, many at a time, and their progress.
#[async_trait]
pub trait Imports: Send + Sync {
    /// The live (not deleted) customers with these e-mails.
    async fn find_live_by_emails(&self, emails: &[crm_domain::Email]) -> Result<Vec<Customer>>;

    /// Writes one batch of an import in one transaction: inserts `created` and writes
    /// each of `updated` over its row still at `version - 1`, with their
    /// `customer.created` / `customer.updated` events in the outbox. All or nothing:
    /// fails with `EmailTaken` or `VersionConflict` when another writer got there first.
    async fn write_import_batch(&self, created: &[Customer], updated: &[Customer]) -> Result<()>;

    /// Inserts or replaces an import job's progress.
    async fn save_import(&self, job: &crm_domain::Job) -> Result<()>;

    async fn get_import(&self, id: Uuid) -> Result<Option<crm_domain::Job>>;
}

/// Purchase analytics.
#[async_trait]
pub trait Sales: Send + Sync {
    /// Completed orders and revenue per day, segment and currency, `from` to `to`
    /// inclusive.
    async fn daily_sales(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySales>>;
}

/// Every port, to bring their methods into scope at once (tests).
#[cfg(test)]
pub mod ports {
    pub use super::{Activity, Customers, Imports, Outbox, PersonStore, Sales};
}

/// Everything customer-core keeps, as its service uses it.
pub trait CustomerRepository:
    Customers + Activity + Outbox + Imports + Sales + PersonStore
{
}

impl<T> CustomerRepository for T where
    T: Customers + Activity + Outbox + Imports + Sales + PersonStore
{
}

/// One row of the purchase analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct DailySales {
    pub day: NaiveDate,
    /// The customer's segment when the order completed.
    pub segment: crm_domain::Segment,
    pub currency: String,
    pub orders: i64,
    pub revenue: f64,
}

/// How a write is announced on the bus (through the outbox).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The customer's snapshot under this type (`customer.updated`, `customer.deleted`).
    Snapshot(CustomerEventType),
    /// An event that also belongs in the customer's activity (`customer.segment_changed`).
    Activity(CustomerEvent),
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    /// EventOutcome; the customer as it is now (`changed` when its version grew).
    Applied {
        customer: Box<Customer>,
        changed: bool,
    },
    /// EventOutcome before: nothing changed.
    Duplicate,
    /// No such customer: nothing was recorded.
    UnknownCustomer,
    /// The customer was merged into this one: nothing was recorded, the event belongs
    /// to that customer.
    MergedInto(CustomerId),
    /// The person was erased: their events are refused, nothing was recorded.
    Erased,
}

/// A position in the activity feed: the event's time in microseconds, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPosition {
    pub sort_key: i64,
    pub id: Uuid,
}

impl FeedPosition {
    pub fn of(event: &CustomerEvent) -> Self {
        Self {
            sort_key: event.timestamp.timestamp_micros(),
            id: event.id,
        }
    }
}
