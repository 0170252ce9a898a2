//! crm-segmentation's settings (`CRM_*` environment variables, see the README).

use std::net::SocketAddr;

use crm_domain::segmentation::SegmentConfig;
use crm_platform::{database::PostgresLimits, settings::Secret};
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
    pub customer_core_url: String,
    /// Where segmentation keeps its tables (profiles, RFM, jobs, recommendation data), in
    /// the schema `segmentation`; customer-core's database will do.
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// The longest one statement may run (waiting for locks included); 0 = no limit.
    pub database_statement_timeout_ms: u64,
    /// The longest one of the recompute's statements over every profile may run; 0 = no
    /// limit.
    pub recompute_statement_timeout_ms: u64,
    /// Seconds between scheduled recomputes (`CRM_RECOMPUTE_INTERVAL_SECS`); 0 = never.
    pub recompute_interval_secs: u64,
    /// The segment rules' thresholds (`SegmentConfig`): `CRM_VIP_THRESHOLD`, `CRM_CHURN_DAYS`, ...
    pub vip_threshold: f64,
    pub churn_days: i64,
    pub at_risk_days: i64,
    pub new_customer_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        let rules = SegmentConfig::default();
        Self {
            internal: Default::default(),
            grpc_addr: ([127, 0, 0, 1], 50053).into(),
            http_addr: ([127, 0, 0, 1], 9103).into(),
            amqp_url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            customer_core_url: "http://127.0.0.1:50051".into(),
            database_url: Secret::new("postgres://postgres@127.0.0.1:5432/crm"),
            database_max_connections: PostgresLimits::default().max_connections,
            database_statement_timeout_ms: PostgresLimits::default().statement_timeout.as_millis()
                as u64,
            recompute_statement_timeout_ms: 3_600_000,
            recompute_interval_secs: 3_600,
            vip_threshold: rules.vip_threshold,
            churn_days: rules.churn_days,
            at_risk_days: rules.at_risk_days,
            new_customer_days: rules.new_customer_days,
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

    pub fn recompute_every(&self) -> Option<std::time::Duration> {
        (self.recompute_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(self.recompute_interval_secs))
    }

    pub fn rules(&self) -> SegmentConfig {
        SegmentConfig {
            vip_threshold: self.vip_threshold,
            churn_days: self.churn_days,
            at_risk_days: self.at_risk_days,
            new_customer_days: self.new_customer_days,
        }
    }
}
