//! crm-segmentation: Rule segments, RFM scores and recommendations.
//!
//! Not built yet: today it starts, serves gRPC health and reflection, and says so.

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
            grpc_addr: ([127, 0, 0, 1], 50053).into(),
            http_addr: ([127, 0, 0, 1], 9103).into(),
        }
    }
}

pub async fn run(settings: &Settings, shutdown: Shutdown) -> crm_platform::Result<()> {
    PendingService::bind("crm-segmentation", settings.grpc_addr, settings.http_addr)
        .await?
        .run(shutdown)
        .await
}
