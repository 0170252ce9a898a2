//! The platform under measurement, started from the release binaries as an operator runs
//! them: every service on the local PostgreSQL, Redis and RabbitMQ (a fresh database,
//! key prefix and vhost), or `crm` alone on a fresh data directory. No proxies between.

use std::collections::HashMap;

use crm_e2e::{ADMIN_KEY_ENTRY, Process, spawn};
use crm_platform::testing::TestVhost;

/// The key every benchmark request carries (an admin key).
pub use crm_e2e::ADMIN_KEY as API_KEY;

/// A running platform: where its REST API is, and its processes.
pub struct Platform {
    pub api: String,
    /// The distributed platform's database (`None` for `crm`).
    pub database_url: Option<String>,
    /// Where customer-core's gRPC listens (distributed only).
    pub customer_core_grpc: Option<String>,
    /// What internal callers show the services (`CRM_INTERNAL_TOKEN`).
    pub internal_token: String,
    pub redis_key_prefix: String,
    /// The distributed platform's broker (its own vhost).
    pub amqp_url: String,
    pub processes: Vec<Process>,
    _vhost: Option<TestVhost>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Platform {
    /// A pool of `connections` on the distributed platform's database.
    pub async fn database(&self, connections: u32) -> sqlx::PgPool {
        self.database_in("public", connections).await
    }

    /// The same, seeing the tables of one service's schema (segmentation keeps its own).
    pub async fn database_in(&self, schema: &str, connections: u32) -> sqlx::PgPool {
        let url = self
            .database_url
            .as_deref()
            .expect("the distributed platform");
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a database URL");
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options.options([("search_path", schema)]))
            .await
            .expect("connect to the platform's database")
    }
}

/// What every binary gets: no rate limit or load shedding in the way of the measurement.
fn common(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CRM_INTERNAL_TOKEN", token.to_owned()),
        ("CRM_RATE_LIMIT_PER_SECOND", "1000000000".into()),
        ("CRM_RATE_LIMIT_BURST", "1000000000".into()),
        ("CRM_MAX_CONCURRENT_REQUESTS", "100000".into()),
        ("CRM_RECOMPUTE_INTERVAL_SECS", "0".into()),
        ("RUST_LOG", "warn,crm=info".into()),
    ]
}

pub async fn distributed() -> Platform {
    let database_url = crm_platform::testing::fresh_postgres_url().await;
    let vhost = TestVhost::create();
    let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let token = uuid::Uuid::new_v4().simple().to_string();
    let search_dir = tempfile::tempdir().expect("temp dir");
    let mut shared = common(&token);
    shared.extend([
        ("CRM_DATABASE_URL", database_url.clone()),
        ("CRM_REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        ("CRM_REDIS_KEY_PREFIX", prefix.clone()),
        ("CRM_AMQP_URL", vhost.url.clone()),
        ("CRM_GRPC_ADDR", "127.0.0.1:0".to_owned()),
        ("CRM_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        (
            "CRM_SEARCH_INDEX_DIR",
            search_dir.path().to_str().expect("utf-8").to_owned(),
        ),
    ]);
    let mut processes = Vec::new();
    let mut grpc: HashMap<&str, String> = HashMap::new();
    for service in [
        "customer-core",
        "event-ingest",
        "segmentation",
        "search-indexer",
    ] {
        let mut env = shared.clone();
        if let Some(core) = grpc.get("customer-core") {
            env.push(("CRM_CUSTOMER_CORE_URL", core.clone()));
        }
        let binary = format!("crm-{service}");
        let (process, fields) = spawn(&binary, &[], &env, &format!("{service} listening")).await;
        grpc.insert(service, format!("http://{}", fields["grpc"]));
        processes.push(process);
    }
    let mut env = common(&token);
    env.extend([
        ("CRM_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("CRM_API_KEYS", ADMIN_KEY_ENTRY.to_owned()),
        ("CRM_REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        ("CRM_REDIS_KEY_PREFIX", prefix.clone()),
        ("CRM_CUSTOMER_CORE_URL", grpc["customer-core"].clone()),
        ("CRM_EVENT_INGEST_URL", grpc["event-ingest"].clone()),
        ("CRM_SEGMENTATION_URL", grpc["segmentation"].clone()),
        ("CRM_SEARCH_INDEXER_URL", grpc["search-indexer"].clone()),
    ]);
    let (gateway, fields) = spawn("crm-gateway", &[], &env, "gateway listening").await;
    processes.push(gateway);
    Platform {
        api: format!("http://{}", fields["http"]),
        database_url: Some(database_url),
        customer_core_grpc: Some(grpc["customer-core"].clone()),
        internal_token: token,
        redis_key_prefix: prefix,
        amqp_url: vhost.url.clone(),
        processes,
        _vhost: Some(vhost),
        _dirs: vec![search_dir],
    }
}

pub async fn standalone() -> Platform {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8").to_owned();
    let args = ["--listen", "127.0.0.1:0", "--data-dir", &data_dir];
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut env = common(&token);
    env.push(("CRM_API_KEYS", ADMIN_KEY_ENTRY.to_owned()));
    let (process, fields) = spawn("crm", &args, &env, "crm listening").await;
    Platform {
        api: format!("http://{}", fields["http"]),
        database_url: None,
        customer_core_grpc: None,
        internal_token: token,
        redis_key_prefix: String::new(),
        amqp_url: String::new(),
        processes: vec![process],
        _vhost: None,
        _dirs: vec![dir],
    }
}
