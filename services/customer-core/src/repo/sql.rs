//! The SQL both adapters share (`$n` placeholders work on PostgreSQL and SQLite alike)
//! and the row type they read into.

use chrono::{DateTime, Utc};
use crm_domain::{Address, Customer, CustomerMetrics, Email, PersonName, Phone, Preferences, Tag};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Error, Result};

macro_rules! columns {
    () => {
        "id, email, phone, first_name, last_name, status, segment, tags, addresses, \
         preferences, total_orders, total_spent, average_order, first_order_date, \
         last_order_date, lifetime_value, nps, version, created_at, updated_at, \
         last_activity_at, merged_into"
    };
}

pub const INSERT: &str = "insert into customers (id, email, phone, first_name, last_name, \
     status, segment, tags, addresses, preferences, total_orders, total_spent, average_order, \
     first_order_date, last_order_date, lifetime_value, nps, version, created_at, updated_at, \
     last_activity_at, merged_into) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)";

/// Same binds as INSERT, plus `$23`: the version the row must still have.
pub const UPDATE: &str = "update customers set email = $2, phone = $3, first_name = $4, \
     last_name = $5, status = $6, segment = $7, tags = $8, addresses = $9, preferences = $10, \
     total_orders = $11, total_spent = $12, average_order = $13, first_order_date = $14, \
     last_order_date = $15, lifetime_value = $16, nps = $17, version = $18, created_at = $19, \
     updated_at = $20, last_activity_at = $21, merged_into = $22 where id = $1 and version = $23";

pub const SELECT_BY_ID: &str = concat!("select ", columns!(), " from customers where id = $1");

pub const SELECT_PAGE: &str = concat!(
    "select ",
    columns!(),
    " from customers where status <> 'deleted' and ($1 is null or id > $1) order by id limit $2"
);

pub const EXISTS: &str = "select 1 from customers where id = $1";

/// Binds a customer to INSERT or UPDATE in column order; one macro for both databases,
/// because sqlx's bind is generic over the database only through many bounds.
macro_rules! bind_customer {
    ($query:expr, $c:expr) => {{
        let c: &crm_domain::Customer = $c;
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
    }};
}
pub(crate) use bind_customer;

/// The `CustomerRepository` implementation over one sqlx pool type; both adapters use
/// it, so PostgreSQL and SQLite cannot drift apart.
macro_rules! impl_customer_repository {
    ($adapter:ty) => {
        #[async_trait::async_trait]
        impl $crate::repo::CustomerRepository for $adapter {
            async fn insert(&self, customer: &crm_domain::Customer) -> $crate::Result<()> {
                let query = $crate::repo::sql::bind_customer!(
                    sqlx::query($crate::repo::sql::INSERT),
                    customer
                );
                query
                    .execute(&self.pool)
                    .await
                    .map_err($crate::repo::sql::map_write_error)?;
                Ok(())
            }

            async fn get(
                &self,
                id: crm_domain::CustomerId,
            ) -> $crate::Result<Option<crm_domain::Customer>> {
                let row: Option<$crate::repo::sql::CustomerRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_BY_ID)
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn update(&self, customer: &crm_domain::Customer) -> $crate::Result<()> {
                let query = $crate::repo::sql::bind_customer!(
                    sqlx::query($crate::repo::sql::UPDATE),
                    customer
                )
                .bind(customer.version - 1);
                let done = query
                    .execute(&self.pool)
                    .await
                    .map_err($crate::repo::sql::map_write_error)?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                let exists = sqlx::query($crate::repo::sql::EXISTS)
                    .bind(customer.id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
                Err(match exists {
                    Some(_) => $crate::Error::VersionConflict,
                    None => $crate::Error::NotFound(customer.id),
                })
            }

            async fn list(
                &self,
                after: Option<crm_domain::CustomerId>,
                limit: u32,
            ) -> $crate::Result<Vec<crm_domain::Customer>> {
                let rows: Vec<$crate::repo::sql::CustomerRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_PAGE)
                        .bind(after.map(|id| id.as_uuid()))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("select 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_customer_repository;

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
