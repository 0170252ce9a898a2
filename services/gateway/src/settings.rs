//! crm-gateway's settings (`CRM_*` environment variables, see the README).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub customer_core_url: String,
    pub event_ingest_url: String,
    pub segmentation_url: String,
    pub search_indexer_url: String,
    /// Origins allowed by CORS, comma-separated (`CRM_CORS_ORIGINS`); none when empty.
    pub cors_origins: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_addr: ([127, 0, 0, 1], 8080).into(),
            customer_core_url: "http://127.0.0.1:50051".into(),
            event_ingest_url: "http://127.0.0.1:50052".into(),
            segmentation_url: "http://127.0.0.1:50053".into(),
            search_indexer_url: "http://127.0.0.1:50054".into(),
            cors_origins: String::new(),
        }
    }
}
