//! crm-gateway's settings (`CRM_*` environment variables, see the README).

use std::{net::SocketAddr, path::PathBuf};

use crm_platform::settings::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The internal token and mutual TLS (`CRM_INTERNAL_TOKEN`, `CRM_TLS_*`).
    #[serde(flatten)]
    pub internal: crm_platform::internal_auth::InternalAuthSettings,
    pub http_addr: SocketAddr,
    pub customer_core_url: String,
    pub event_ingest_url: String,
    pub segmentation_url: String,
    pub search_indexer_url: String,
    /// How long the 360 view waits for each of segmentation's parts (RFM,
    /// recommendations) before it lists them as degraded; 0 gives up at once.
    pub segmentation_timeout_ms: u64,
    /// Origins allowed by CORS, comma-separated (`CRM_CORS_ORIGINS`); none when empty.
    pub cors_origins: String,
    /// API keys as `name:sha256-hex:scope,scope` entries separated by `;` or newlines
    /// (`CRM_API_KEYS`), and/or in a file (`CRM_API_KEYS_FILE`).
    pub api_keys: Secret,
    pub api_keys_file: Option<PathBuf>,
    /// JWT bearer tokens: HS256 against this secret, RS256/ES256 against a JWKS file or
    /// URL; optionally only from this issuer, for this audience.
    pub jwt_hs256_secret: Option<Secret>,
    pub jwt_jwks_file: Option<PathBuf>,
    pub jwt_jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// The claim holding the scopes (a space-separated string or an array).
    pub jwt_scope_claim: String,
    /// Requests per second per caller, and how many at once (token bucket).
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: u32,
    /// Requests in progress at most; more are refused with 503 at once.
    pub max_concurrent_requests: usize,
    /// Where `Idempotency-Key` answers are kept, shared by the replicas
    /// (`CRM_REDIS_URL`, keys under `CRM_REDIS_KEY_PREFIX`); in memory when unset.
    pub redis_url: Option<Secret>,
    pub redis_key_prefix: String,
    /// Without any credential configured, serve anyway while listening on loopback
    /// (the standalone binary only; never read from the environment).
    #[serde(skip)]
    pub open_on_loopback: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            internal: Default::default(),
            http_addr: ([127, 0, 0, 1], 8080).into(),
            customer_core_url: "http://127.0.0.1:50051".into(),
            event_ingest_url: "http://127.0.0.1:50052".into(),
            segmentation_url: "http://127.0.0.1:50053".into(),
            search_indexer_url: "http://127.0.0.1:50054".into(),
            segmentation_timeout_ms: 2_000,
            cors_origins: String::new(),
            api_keys: Secret::new(""),
            api_keys_file: None,
            jwt_hs256_secret: None,
            jwt_jwks_file: None,
            jwt_jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_scope_claim: "scope".into(),
            rate_limit_per_second: 100.0,
            rate_limit_burst: 200,
            max_concurrent_requests: 512,
            redis_url: None,
            redis_key_prefix: String::new(),
            open_on_loopback: false,
        }
    }
}
