//! crm-customer-core's settings (`CRM_*` environment variables, see the README).

use std::{net::SocketAddr, time::Duration};

use crm_platform::{cache::RedisCacheSettings, database::PostgresLimits, settings::Secret};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The internal token and mutual TLS (`CRM_INTERNAL_TOKEN`, `CRM_TLS_*`).
    #[serde(flatten)]
    pub internal: crm_platform::internal_auth::InternalAuthSettings,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// The longest one statement may run (waiting for locks included); 0 = no limit.
    pub database_statement_timeout_ms: u64,
    pub redis_url: Secret,
    pub redis_key_prefix: String,
    pub redis_timeout_ms: u64,
    pub amqp_url: Secret,
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
            grpc_addr: ([127, 0, 0, 1], 50051).into(),
            http_addr: ([127, 0, 0, 1], 9101).into(),
            database_url: Secret::new("postgres://postgres@127.0.0.1:5432/crm"),
            database_max_connections: PostgresLimits::default().max_connections,
            database_statement_timeout_ms: PostgresLimits::default().statement_timeout.as_millis()
                as u64,
            redis_url: Secret::new("redis://127.0.0.1:6379"),
            redis_key_prefix: String::new(),
            redis_timeout_ms: 250,
            amqp_url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            view_part_timeout_ms: millis(view.part),
            view_timeout_ms: millis(view.whole),
        }
    }
}

impl Settings {
    pub fn database_limits(&self) -> PostgresLimits {
        PostgresLimits {
            max_connections: self.database_max_connections,
            statement_timeout: std::time::Duration::from_millis(self.database_statement_timeout_ms),
        }
    }

    pub fn view_deadlines(&self) -> crate::person::Deadlines {
        crate::person::Deadlines {
            part: Duration::from_millis(self.view_part_timeout_ms),
            whole: Duration::from_millis(self.view_timeout_ms),
        }
    }

    pub fn redis(&self) -> RedisCacheSettings {
        RedisCacheSettings {
            url: self.redis_url.clone(),
            key_prefix: self.redis_key_prefix.clone(),
            timeout: Duration::from_millis(self.redis_timeout_ms),
        }
    }
}
