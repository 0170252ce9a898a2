//! Test support shared with the end-to-end tests.

pub use crm_platform::testing::{fresh_postgres_url, postgres_server_url};
