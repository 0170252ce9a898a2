//! crm-segmentation's settings (`CRM_*` environment variables, see the README).

use crm_domain::segmentation::SegmentConfig;
use crm_platform::{
    internal_auth::InternalAuthSettings,
    settings::{BusSettings, DatabaseSettings, ListenSettings},
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
    pub bus: BusSettings,
    pub customer_core_url: String,
    /// Where segmentation keeps its tables (profiles, RFM, jobs, recommendation data), in
    /// the schema `segmentation`; customer-core's database will do.
    #[serde(flatten)]
    pub database: DatabaseSettings,
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
            listen: ListenSettings::loopback(50053, 9103),
            bus: Default::default(),
            customer_core_url: "http://127.0.0.1:50051".into(),
            database: Default::default(),
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
