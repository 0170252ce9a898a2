//! crm-customer-core's settings (`CRM_*` environment variables, see the README).

use std::time::Duration;

use crm_platform::{
    internal_auth::InternalAuthSettings,
    settings::{BusSettings, DatabaseSettings, ListenSettings, RedisSettings},
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
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// The customer cache.
    #[serde(flatten)]
    pub redis: RedisSettings,
    #[serde(flatten)]
    pub bus: BusSettings,
    /// The 360 view's deadline for each part from the store and for the whole answer.
    /// 0 gives up at once (turns the parts off).
    pub view_part_timeout_ms: u64,
    pub view_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let view = crate::person::Deadlines::default();
        let millis = |d: Duration| d.as_millis() as u64;
        Self {
            internal: Default::default(),
            listen: ListenSettings::loopback(50051, 9101),
            database: Default::default(),
            redis: Default::default(),
            bus: Default::default(),
            view_part_timeout_ms: millis(view.part),
            view_timeout_ms: millis(view.whole),
        }
    }
}

impl Settings {
    pub fn view_deadlines(&self) -> crate::person::Deadlines {
        crate::person::Deadlines {
            part: Duration::from_millis(self.view_part_timeout_ms),
            whole: Duration::from_millis(self.view_timeout_ms),
        }
    }
}
