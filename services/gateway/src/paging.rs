//! Page sizes as the services read them: 0 means "the default", so a client's explicit
//! 0 is refused here.

use crm_domain::limits::MAX_PAGE_SIZE;

use crate::error::{Error, Result};

/// A page size for the services (1-100), where 0 means "the default": an explicit 0 is
/// refused.
pub(crate) fn checked_limit(limit: Option<u32>) -> Result<u32> {
    nonzero_limit(
        limit,
        &format!("must be between 1 and {MAX_PAGE_SIZE}"),
        "the request has invalid fields",
    )
}

/// `limit` for a service that reads 0 as "the default", refusing an explicit 0 with
/// `message` (the service checks the upper bound).
pub(crate) fn nonzero_limit(limit: Option<u32>, message: &str, detail: &str) -> Result<u32> {
    match limit {
        Some(0) => Err(Error::field("limit", message, detail)),
        other => Ok(other.unwrap_or_default()),
    }
}
