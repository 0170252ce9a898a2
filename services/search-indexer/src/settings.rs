//! crm-search-indexer's settings (`CRM_*` environment variables, see the README).

use std::path::PathBuf;

use crm_platform::{
    internal_auth::InternalAuthSettings,
    settings::{BusSettings, ListenSettings, Secret},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded, on local disk (`CRM_SEARCH_INDEX_DIR`): one replica.
    Tantivy,
    /// A cluster at `CRM_ELASTICSEARCH_URL`.
    Elasticsearch,
}

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
    /// Where a reindex reads every customer.
    pub customer_core_url: String,
    /// `CRM_SEARCH_BACKEND`: `tantivy` or `elasticsearch`.
    pub search_backend: Backend,
    pub search_index_dir: PathBuf,
    pub elasticsearch_url: Secret,
    /// The alias searches read; generations are `<alias>-<n>`.
    pub elasticsearch_index: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            internal: Default::default(),
            listen: ListenSettings::loopback(50054, 9104),
            bus: Default::default(),
            customer_core_url: "http://127.0.0.1:50051".into(),
            search_backend: Backend::Tantivy,
            search_index_dir: PathBuf::from("./data/search"),
            elasticsearch_url: Secret::new("http://127.0.0.1:9200"),
            elasticsearch_index: "customers".into(),
        }
    }
}
