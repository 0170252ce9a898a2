//! The customer store port and its two adapters (PostgreSQL for services, SQLite for the
//! standalone binary). Both run the same SQL, so one contract suite covers them.

mod postgres;
mod sql;
mod sqlite;

#[cfg(test)]
mod contract;

use async_trait::async_trait;
use crm_domain::{Customer, CustomerId};

pub use postgres::PostgresRepository;
pub use sqlite::SqliteRepository;

use crate::Result;

#[async_trait]
pub trait CustomerRepository: Send + Sync {
    /// Fails with `EmailTaken` when a live customer has the e-mail.
    async fn insert(&self, customer: &Customer) -> Result<()>;

    async fn get(&self, id: CustomerId) -> Result<Option<Customer>>;

    /// Writes `customer` if the stored version is still `customer.version - 1`, else
    /// fails with `VersionConflict` (or `NotFound`).
    async fn update(&self, customer: &Customer) -> Result<()>;

    /// Live (not deleted) customers in id order, after `after`.
    async fn list(&self, after: Option<CustomerId>, limit: u32) -> Result<Vec<Customer>>;

    async fn ping(&self) -> Result<()>;
}

/// For `/readyz`.
pub struct DatabaseProbe(pub std::sync::Arc<dyn CustomerRepository>);

#[async_trait]
impl crm_platform::health::Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}
