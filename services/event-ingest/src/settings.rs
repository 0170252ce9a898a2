//! crm-event-ingest's settings (`CRM_*` environment variables, see the README).

use crm_platform::{
    internal_auth::InternalAuthSettings,
    settings::{BusSettings, ListenSettings, RedisSettings},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The internal token and mutual TLS (`CRM_INTERNAL_TOKEN`, `CRM_TLS_*`).
    #[serde(flatten)]
    pub internal: InternalAuthSettings,
    #[serde(flatten)]
    pub listen: ListenSettings,
    /// The event ids seen lately (a courtesy dedupe before the broker).
    #[serde(flatten)]
    pub redis: RedisSettings,
    #[serde(flatten)]
    pub bus: BusSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            internal: Default::default(),
            listen: ListenSettings::loopback(50052, 9102),
            redis: RedisSettings {
                // A dedupe lookup may take longer than a cache read before it is skipped.
                redis_timeout_ms: 500,
                ..Default::default()
            },
            bus: Default::default(),
        }
    }
}
