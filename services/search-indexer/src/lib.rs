//! crm-search-indexer: The customers search index and its query API.
//!
//! Not built yet: today it starts, serves gRPC health and reflection, and says so.

pub mod index;

use std::net::SocketAddr;

use crm_platform::{Shutdown, pending::PendingService};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            grpc_addr: ([127, 0, 0, 1], 50054).into(),
            http_addr: ([127, 0, 0, 1], 9104).into(),
        }
    }
}

pub async fn run(settings: &Settings, shutdown: Shutdown) -> crm_platform::Result<()> {
    PendingService::bind("crm-search-indexer", settings.grpc_addr, settings.http_addr)
        .await?
        .run(shutdown)
        .await
}
