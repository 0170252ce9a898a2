//! The SQL both adapters share (`$n` placeholders work on PostgreSQL and SQLite alike):
//! one file per statement in `queries/`, named by what it does (`queries/postgres` and
//! `queries/sqlite` hold the few that differ); the row types they read into.

use chrono::{DateTime, Utc};
use crm_domain::{
    Address, Customer, CustomerEvent, CustomerMetrics, Email, Job, JobKind, JobStatus, PersonName,
    Phone, Preferences, Tag,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Error, Result};

pub const INSERT: &str = include_str!("queries/insert_customer.sql");

/// Same binds as INSERT, plus `$27`: the version the row must still have.
pub const UPDATE: &str = include_str!("queries/update_customer.sql");

pub const SELECT_BY_ID: &str = include_str!("queries/select_customer.sql");
/// The same, locking the row until commit: what writes that must not interleave read
/// (see each adapter's `SELECT_FOR_WRITE`).
pub const SELECT_BY_ID_FOR_UPDATE: &str = include_str!("queries/select_customer_for_update.sql");

pub const SELECT_PAGE: &str = include_str!("queries/select_customers_page.sql");

pub const SELECT_SOME: &str = include_str!("queries/select_customers_in.sql");

/// `UPDATE ... FROM (VALUES (id, segment, version, updated_at), ...)`: the columns of a
/// VALUES list are `column1`, `column2`, ... on PostgreSQL and SQLite alike.
pub const UPDATE_SEGMENTS_FROM: &str = include_str!("queries/update_segments_from.sql");
pub const UPDATE_SEGMENTS_WHERE: &str = include_str!("queries/update_segments_where.sql");

pub const INSERT_EVENTS: &str = include_str!("queries/insert_events.sql");
pub const INSERT_OUTBOX_ROWS: &str = include_str!("queries/insert_outbox_rows.sql");

/// The decisions that change something: the customer is known, live, still at the
/// version decided from, and in another segment. Each with its next state and event;
/// the last decision wins when a customer appears twice.
pub fn segment_changes(
    current: &std::collections::HashMap<crm_domain::CustomerId, Customer>,
    changes: &[super::SegmentChange],
    now: DateTime<Utc>,
) -> Vec<(Customer, CustomerEvent)> {
    let mut latest = std::collections::HashMap::new();
    for change in changes {
        latest.insert(change.id, change);
    }
    let mut decided: Vec<(Customer, CustomerEvent)> = latest
        .into_values()
        .filter_map(|change| {
            let customer = current.get(&change.id)?;
            let applies = customer.version == change.based_on_version
                && !customer.is_deleted()
                && customer.segment != change.segment;
            applies.then(|| {
                let next = customer.with_segment(change.segment, now);
                let event =
                    CustomerEvent::segment_changed(&next, customer.segment, &change.reason, now);
                (next, event)
            })
        })
        .collect();
    decided.sort_by_key(|(customer, _)| customer.id.as_uuid());
    decided
}

pub const EXISTS: &str = include_str!("queries/customer_exists.sql");

pub const SELECT_LIVE_BY_EMAIL: &str = include_str!("queries/select_live_customer_by_email.sql");

pub const UPSERT_IMPORT: &str = include_str!("queries/upsert_import.sql");

pub const SELECT_IMPORT: &str = include_str!("queries/select_import.sql");

/// Customers are 26 binds in INSERT's order; the VALUES rows follow.
pub const INSERT_ROWS: &str = include_str!("queries/insert_customers.sql");
pub const CUSTOMER_COLUMNS: usize = 26;

pub const SELECT_LIVE_BY_EMAILS: &str = include_str!("queries/select_live_customers_by_emails.sql");

#[derive(sqlx::FromRow)]
pub struct ImportRow {
    id: Uuid,
    status: String,
    created: i64,
    updated: i64,
    unchanged: i64,
    failed: i64,
    errors: Json<Vec<crm_domain::ItemFailure>>,
    reason: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<ImportRow> for Job {
    type Error = Error;

    fn try_from(row: ImportRow) -> Result<Self> {
        let status: JobStatus = row.status.parse().map_err(Error::Corrupt)?;
        let phase = match status {
            JobStatus::Running => crate::import::READING,
            _ => crm_domain::job::DONE,
        };
        let mut job = Job::start(row.id, JobKind::Import, phase, row.started_at);
        let counts = [
            ("created", row.created),
            ("updated", row.updated),
            ("unchanged", row.unchanged),
            ("failed", row.failed),
        ];
        for (name, n) in counts {
            let n = u64::try_from(n).unwrap_or_default();
            job.add(name, n);
            job.progress.done += n;
        }
        job.status = status;
        job.failures = row.errors.0;
        job.error = row.reason;
        job.finished_at = row.finished_at;
        Ok(job)
    }
}

pub const INSERT_EVENT: &str = include_str!("queries/insert_event.sql");

pub const SELECT_EVENTS: &str = include_str!("queries/select_events.sql");

/// An order placed: kept unless it was completed already.
pub const UPSERT_PLACED_ORDER: &str = include_str!("queries/upsert_placed_order.sql");

/// An order completed; changes a row only the first time, so metrics count it once.
pub const UPSERT_COMPLETED_ORDER: &str = include_str!("queries/upsert_completed_order.sql");

pub const UPSERT_TICKET: &str = include_str!("queries/upsert_ticket.sql");

pub const UPSERT_PRODUCT_VIEW: &str = include_str!("queries/upsert_product_view.sql");

#[derive(sqlx::FromRow)]
pub struct EventRow {
    id: Uuid,
    customer_id: Uuid,
    #[sqlx(rename = "type")]
    event_type: String,
    data: Json<serde_json::Value>,
    source: String,
    occurred_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for CustomerEvent {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self> {
        Ok(CustomerEvent {
            id: row.id,
            customer_id: row.customer_id.into(),
            event_type: row
                .event_type
                .parse()
                .map_err(|e| Error::Corrupt(format!("event {}: {e}", row.id)))?,
            data: row.data.0,
            source: row.source,
            timestamp: row.occurred_at,
        })
    }
}

pub const INSERT_OUTBOX: &str = include_str!("queries/insert_outbox.sql");

pub const DELETE_OUTBOX: &str = include_str!("queries/delete_outbox.sql");

/// One message for the outbox.
pub struct OutboxMessage {
    pub id: Uuid,
    pub exchange: &'static str,
    pub routing_key: String,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl OutboxMessage {
    /// The `customer.*` event of a change, with the customer's snapshot.
    pub fn customer_changed(
        event_type: crm_domain::CustomerEventType,
        customer: &Customer,
    ) -> Self {
        Self::event(&CustomerEvent::customer_changed(
            event_type,
            customer,
            Utc::now(),
        ))
    }

    /// A `customer.*` event, as it goes on the bus.
    pub fn event(event: &CustomerEvent) -> Self {
        Self {
            id: event.id,
            exchange: crm_platform::bus::EVENTS_EXCHANGE,
            routing_key: event.event_type.as_str().to_owned(),
            payload: serde_json::to_value(event).expect("an event serializes"),
            at: event.timestamp,
        }
    }

    pub fn notification(notification: crm_domain::notification::Notification) -> Self {
        Self {
            id: notification.id,
            exchange: crm_platform::bus::NOTIFICATIONS_EXCHANGE,
            routing_key: notification.routing_key.to_owned(),
            payload: notification.payload,
            at: Utc::now(),
        }
    }
}

pub const UPSERT_DAILY_SALES: &str = include_str!("queries/upsert_daily_sales.sql");

pub const SELECT_DAILY_SALES: &str = include_str!("queries/select_daily_sales.sql");

#[derive(sqlx::FromRow)]
pub struct DailySalesRow {
    day: chrono::NaiveDate,
    segment: String,
    currency: String,
    orders: i64,
    revenue: f64,
}

impl TryFrom<DailySalesRow> for super::DailySales {
    type Error = Error;

    fn try_from(row: DailySalesRow) -> Result<Self> {
        Ok(Self {
            day: row.day,
            segment: row.segment.parse().map_err(Error::Corrupt)?,
            currency: row.currency,
            orders: row.orders,
            revenue: row.revenue,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub exchange: String,
    id: Uuid,
    routing_key: String,
    payload: Json<serde_json::Value>,
}

impl OutboxRow {
    pub fn message(&self) -> crm_platform::bus::Message {
        let payload = serde_json::to_vec(&self.payload.0).expect("JSON serializes");
        crm_platform::bus::Message::new(self.id.to_string(), &self.routing_key, payload)
    }
}

#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    id: Uuid,
    email: String,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    status: String,
    segment: String,
    tags: Json<Vec<Tag>>,
    addresses: Json<Vec<Address>>,
    preferences: Json<Preferences>,
    total_orders: i64,
    total_spent: f64,
    average_order: f64,
    first_order_date: Option<DateTime<Utc>>,
    last_order_date: Option<DateTime<Utc>>,
    lifetime_value: f64,
    nps: Option<i32>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    merged_into: Option<Uuid>,
    erased_at: Option<DateTime<Utc>>,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = Error;

    fn try_from(row: CustomerRow) -> Result<Self> {
        let corrupt = |field: &str, e: String| Error::Corrupt(format!("{} {field}: {e}", row.id));
        Ok(Customer {
            id: row.id.into(),
            email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            phone: row
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(|e| corrupt("phone", e))?,
            first_name: row
                .first_name
                .as_deref()
                .map(PersonName::parse)
                .transpose()
                .map_err(|e| corrupt("first_name", e))?,
            last_name: row
                .last_name
                .as_deref()
                .map(PersonName::parse)
                .transpose()
                .map_err(|e| corrupt("last_name", e))?,
            status: row.status.parse().map_err(|e| corrupt("status", e))?,
            segment: row.segment.parse().map_err(|e| corrupt("segment", e))?,
            tags: row.tags.0,
            addresses: row.addresses.0,
            preferences: row.preferences.0,
            metrics: CustomerMetrics {
                total_orders: row.total_orders,
                total_spent: row.total_spent,
                average_order: row.average_order,
                first_order_date: row.first_order_date,
                last_order_date: row.last_order_date,
                lifetime_value: row.lifetime_value,
                nps: row.nps,
            },
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_activity_at: row.last_activity_at,
            merged_into: row.merged_into.map(Into::into),
            erased_at: row.erased_at,
        })
    }
}

/// The only unique index besides the primary key is the live e-mail.
pub fn map_write_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::EmailTaken,
        _ => Error::Database(error),
    }
}
