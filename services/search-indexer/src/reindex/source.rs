//! Where a reindex reads every customer (customer-core, page by page: `crate::clients`).

use async_trait::async_trait;
use crm_domain::Customer;

use crate::Result;

/// Where a reindex reads every customer.
#[async_trait]
pub trait CustomerSource: Send + Sync {
    /// A page after `cursor` ("" for the first) and the next cursor, `None` at the end.
    async fn page(&self, cursor: &str) -> Result<(Vec<Customer>, Option<String>)>;
}
