//! crm-event-ingest's settings (`CRM_*` environment variables, see the README).

use std::net::SocketAddr;

use crm_platform::settings::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The internal token and mutual TLS (`CRM_INTERNAL_TOKEN`, `CRM_TLS_*`).
    #[serde(flatten)]
    pub internal: crm_platform::internal_auth::InternalAuthSettings,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub amqp_url: Secret,
    pub redis_url: Secret,
    pub redis_key_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            internal: Default::default(),
            grpc_addr: ([127, 0, 0, 1], 50052).into(),
            http_addr: ([127, 0, 0, 1], 9102).into(),
            amqp_url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            redis_url: Secret::new("redis://127.0.0.1:6379"),
            redis_key_prefix: String::new(),
        }
    }
}
