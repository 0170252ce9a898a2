//! The SQL both adapters share (`$n` placeholders work on PostgreSQL and SQLite alike)
//! and the row type they read into.

use chrono::{DateTime, Utc};
use crm_domain::{
    Address, Customer, CustomerEvent, CustomerMetrics, Email, PersonName, Phone, Preferences, Tag,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Error, Result};

macro_rules! columns {
    () => {
        "id, email, phone, first_name, last_name, status, segment, tags, addresses, \
         preferences, total_orders, total_spent, average_order, first_order_date, \
         last_order_date, lifetime_value, nps, version, created_at, updated_at, \
         last_activity_at, merged_into, erased_at"
    };
}
pub(crate) use columns;

pub const INSERT: &str = "insert into customers (id, email, phone, first_name, last_name, \
     status, segment, tags, addresses, preferences, total_orders, total_spent, average_order, \
     first_order_date, last_order_date, lifetime_value, nps, version, created_at, updated_at, \
     last_activity_at, merged_into, erased_at, email_key, first_name_key, last_name_key) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24, $25, $26)";

/// Same binds as INSERT, plus `$27`: the version the row must still have.
pub const UPDATE: &str = "update customers set email = $2, phone = $3, first_name = $4, \
     last_name = $5, status = $6, segment = $7, tags = $8, addresses = $9, preferences = $10, \
     total_orders = $11, total_spent = $12, average_order = $13, first_order_date = $14, \
     last_order_date = $15, lifetime_value = $16, nps = $17, version = $18, created_at = $19, \
     updated_at = $20, last_activity_at = $21, merged_into = $22, erased_at = $23, \
     email_key = $24, first_name_key = $25, last_name_key = $26 where id = $1 and version = $27";

pub const SELECT_BY_ID: &str = concat!("select ", columns!(), " from customers where id = $1");
/// The same, locking the row until commit: what writes that must not interleave read
/// (see each adapter's `SELECT_FOR_WRITE`).
pub const SELECT_BY_ID_FOR_UPDATE: &str = concat!(
    "select ",
    columns!(),
    " from customers where id = $1 for update"
);

pub const SELECT_PAGE: &str = concat!(
    "select ",
    columns!(),
    " from customers where ($3 or status <> 'deleted') and ($1 is null or id > $1) \
     order by id limit $2"
);

pub const SELECT_SOME: &str = concat!("select ", columns!(), " from customers where id in (");

/// `UPDATE ... FROM (VALUES (id, segment, version, updated_at), ...)`: the columns of a
/// VALUES list are `column1`, `column2`, ... on PostgreSQL and SQLite alike.
pub const UPDATE_SEGMENTS_FROM: &str = "update customers set segment = v.column2, \
     version = v.column3, updated_at = v.column4 from (";
pub const UPDATE_SEGMENTS_WHERE: &str = ") as v where customers.id = v.column1 \
     and customers.version = v.column3 - 1 returning customers.id";

pub const INSERT_EVENTS: &str = "insert into customer_events (id, customer_id, type, data, \
     source, occurred_at, sort_key, recorded_at) ";
pub const INSERT_OUTBOX_ROWS: &str =
    "insert into outbox (id, exchange, routing_key, payload, created_at) ";

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

pub const EXISTS: &str = "select 1 from customers where id = $1";

pub const SELECT_LIVE_BY_EMAIL: &str = concat!(
    "select ",
    columns!(),
    " from customers where email = $1 and status <> 'deleted'"
);

pub const UPSERT_IMPORT: &str = "insert into import_jobs (id, status, created, updated, \
     unchanged, failed, errors, reason, started_at, finished_at) values ($1, $2, $3, $4, $5, \
     $6, $7, $8, $9, $10) on conflict (id) do update set status = excluded.status, \
     created = excluded.created, updated = excluded.updated, unchanged = excluded.unchanged, \
     failed = excluded.failed, errors = excluded.errors, reason = excluded.reason, \
     finished_at = excluded.finished_at";

pub const SELECT_IMPORT: &str = "select id, status, created, updated, unchanged, failed, errors, \
     reason, started_at, finished_at from import_jobs where id = $1";

#[derive(sqlx::FromRow)]
pub struct ImportRow {
    id: Uuid,
    status: String,
    created: i64,
    updated: i64,
    unchanged: i64,
    failed: i64,
    errors: Json<Vec<crate::import::ImportError>>,
    reason: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<ImportRow> for crate::import::ImportJob {
    type Error = Error;

    fn try_from(row: ImportRow) -> Result<Self> {
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(Self {
            id: row.id,
            status: row.status.parse().map_err(Error::Corrupt)?,
            created: count(row.created),
            updated: count(row.updated),
            unchanged: count(row.unchanged),
            failed: count(row.failed),
            errors: row.errors.0,
            reason: row.reason,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

pub const INSERT_EVENT: &str = "insert into customer_events (id, customer_id, type, data, source, \
     occurred_at, sort_key, recorded_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
     on conflict (id) do nothing";

pub const SELECT_EVENTS: &str = "select id, customer_id, type, data, source, occurred_at \
     from customer_events where customer_id = $1 and ($2 is null or type = $2) \
     and ($3 is null or (sort_key, id) < ($3, $4)) order by sort_key desc, id desc limit $5";

/// An order placed: kept unless it was completed already.
pub const UPSERT_PLACED_ORDER: &str = "insert into orders (customer_id, order_id, status, total, \
     currency, items, placed_at) values ($1, $2, 'placed', $3, $4, $5, $6) \
     on conflict (customer_id, order_id) do update set total = excluded.total, \
     currency = excluded.currency, items = excluded.items, placed_at = excluded.placed_at \
     where orders.status = 'placed'";

/// An order completed; changes a row only the first time, so metrics count it once.
pub const UPSERT_COMPLETED_ORDER: &str = "insert into orders (customer_id, order_id, status, \
     total, currency, items, completed_at) values ($1, $2, 'completed', $3, $4, $5, $6) \
     on conflict (customer_id, order_id) do update set status = 'completed', \
     total = excluded.total, currency = excluded.currency, items = excluded.items, \
     completed_at = excluded.completed_at where orders.status <> 'completed'";

pub const UPSERT_TICKET: &str = "insert into support_tickets (customer_id, ticket_id, subject, \
     status, created_at, updated_at) values ($1, $2, $3, $4, $5, $5) \
     on conflict (customer_id, ticket_id) do update set subject = excluded.subject, \
     status = excluded.status, updated_at = excluded.updated_at";

pub const UPSERT_PRODUCT_VIEW: &str = "insert into product_views (customer_id, product_id, \
     category, views, last_viewed_at) values ($1, $2, $3, 1, $4) \
     on conflict (customer_id, product_id) do update set views = product_views.views + 1, \
     category = coalesce(excluded.category, product_views.category), \
     last_viewed_at = excluded.last_viewed_at";

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

/// The customer with id `$id`, if any, read through `$executor` (the pool or a
/// transaction): `Result<Option<Customer>>`.
macro_rules! select_customer {
    ($executor:expr, $id:expr) => {
        $crate::repo::sql::select_customer!($executor, $id, $crate::repo::sql::SELECT_BY_ID)
    };
    ($executor:expr, $id:expr, $statement:expr) => {{
        let id: crm_domain::CustomerId = $id;
        let row: Option<$crate::repo::sql::CustomerRow> = sqlx::query_as($statement)
            .bind(id.as_uuid())
            .fetch_optional($executor)
            .await?;
        row.map(crm_domain::Customer::try_from).transpose()
    }};
}
pub(crate) use select_customer;

/// Binds a customer to INSERT or UPDATE in column order; one macro for both databases,
/// because sqlx's bind is generic over the database only through many bounds.
macro_rules! bind_customer {
    ($query:expr, $c:expr) => {{
        let c: &crm_domain::Customer = $c;
        let keys = c.match_keys();
        $query
            .bind(c.id.as_uuid())
            .bind(c.email.as_str().to_owned())
            .bind(c.phone.as_ref().map(|p| p.as_str().to_owned()))
            .bind(c.first_name.as_ref().map(|n| n.as_str().to_owned()))
            .bind(c.last_name.as_ref().map(|n| n.as_str().to_owned()))
            .bind(c.status.as_str())
            .bind(c.segment.as_str())
            .bind(sqlx::types::Json(c.tags.clone()))
            .bind(sqlx::types::Json(c.addresses.clone()))
            .bind(sqlx::types::Json(c.preferences.clone()))
            .bind(c.metrics.total_orders)
            .bind(c.metrics.total_spent)
            .bind(c.metrics.average_order)
            .bind(c.metrics.first_order_date)
            .bind(c.metrics.last_order_date)
            .bind(c.metrics.lifetime_value)
            .bind(c.metrics.nps)
            .bind(c.version)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.last_activity_at)
            .bind(c.merged_into.map(|id| id.as_uuid()))
            .bind(c.erased_at)
            .bind(keys.email)
            .bind(keys.first_name)
            .bind(keys.last_name)
    }};
}
pub(crate) use bind_customer;

pub const INSERT_OUTBOX: &str = "insert into outbox (id, exchange, routing_key, payload, \
     created_at) values ($1, $2, $3, $4, $5)";

pub const DELETE_OUTBOX: &str = "delete from outbox where seq = $1";

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

/// Appends an event to its customer's activity (nothing when its id is known already);
/// the execution's result, so callers can tell new from duplicate.
macro_rules! insert_event {
    ($tx:expr, $event:expr, $recorded_at:expr) => {{
        let event: &crm_domain::CustomerEvent = $event;
        sqlx::query($crate::repo::sql::INSERT_EVENT)
            .bind(event.id)
            .bind(event.customer_id.as_uuid())
            .bind(event.event_type.as_str())
            .bind(sqlx::types::Json(&event.data))
            .bind(&event.source)
            .bind(event.timestamp)
            .bind(event.timestamp.timestamp_micros())
            .bind($recorded_at)
            .execute(&mut *$tx)
            .await
    }};
}
pub(crate) use insert_event;

/// Writes outbox messages, in the transaction of the change they belong to.
macro_rules! insert_outbox {
    ($executor:expr, $messages:expr) => {{
        for message in $messages {
            let message: $crate::repo::sql::OutboxMessage = message;
            sqlx::query($crate::repo::sql::INSERT_OUTBOX)
                .bind(message.id)
                .bind(message.exchange)
                .bind(&message.routing_key)
                .bind(sqlx::types::Json(&message.payload))
                .bind(message.at)
                .execute(&mut *$executor)
                .await?;
        }
    }};
}
pub(crate) use insert_outbox;

pub const UPSERT_DAILY_SALES: &str = "insert into daily_sales (day, segment, currency, orders, \
     revenue) values ($1, $2, $3, 1, $4) on conflict (day, segment, currency) do update set \
     orders = daily_sales.orders + 1, revenue = daily_sales.revenue + excluded.revenue";

pub const SELECT_DAILY_SALES: &str = "select day, segment, currency, orders, revenue from \
     daily_sales where day >= $1 and day <= $2 order by day, segment, currency";

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
