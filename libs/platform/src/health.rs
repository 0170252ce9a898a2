//! `/healthz` (the process is up), `/readyz` (its dependencies answer) and `/metrics`,
//! served by every binary so that Kubernetes probes and load balancers see the same thing.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Map, Value, json};

/// One dependency that `/readyz` checks.
#[async_trait]
pub trait Probe: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Ok` with what `/readyz` shows for it (`"ok"`, or figures such as a lag).
    async fn check(&self) -> Result<Value, String>;
    /// A dependency the process can work without (a cache) is reported but does not
    /// make the process unready.
    fn required(&self) -> bool {
        true
    }
}

/// A probe from a function, e.g. `probe("database", move || ping(store.clone()))`;
/// `required` as in `Probe::required`.
pub fn probe<F, Fut>(name: &'static str, required: bool, check: F) -> Arc<dyn Probe>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    reporting_probe(name, required, move || {
        let checked = check();
        async move { checked.await.map(|()| json!("ok")) }
    })
}

/// A probe whose answer says more than "ok" (a lag, say).
pub fn reporting_probe<F, Fut>(name: &'static str, required: bool, check: F) -> Arc<dyn Probe>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, String>> + Send + 'static,
{
    Arc::new(FnProbe {
        name,
        required,
        check,
    })
}

struct FnProbe<F> {
    name: &'static str,
    required: bool,
    check: F,
}

#[async_trait]
impl<F, Fut> Probe for FnProbe<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, String>> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<Value, String> {
        (self.check)().await
    }

    fn required(&self) -> bool {
        self.required
    }
}

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probes of one process.
#[derive(Clone, Default)]
pub struct Readiness(Arc<Vec<Arc<dyn Probe>>>);

impl Readiness {
    pub fn new(probes: Vec<Arc<dyn Probe>>) -> Self {
        Self(Arc::new(probes))
    }

    /// These probes and one more.
    pub fn with(&self, probe: Arc<dyn Probe>) -> Self {
        let mut probes = self.0.as_ref().clone();
        probes.push(probe);
        Self::new(probes)
    }

    /// Runs every probe concurrently: the verdict and the per-probe report.
    pub async fn report(&self) -> (Health, Map<String, Value>) {
        let checks = self.0.iter().map(|probe| async move {
            let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe.check())
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            (probe.name(), probe.required(), outcome)
        });
        let (mut ready, mut degraded) = (true, false);
        let mut report = Map::new();
        for (name, required, outcome) in futures::future::join_all(checks).await {
            let value = match outcome {
                Ok(value) => value,
                Err(reason) => {
                    ready &= !required;
                    degraded = true;
                    tracing::warn!(dependency = name, %reason, "readiness check failed");
                    json!({ "error": reason, "required": required })
                }
            };
            report.insert(name.to_owned(), value);
        }
        (Health { ready, degraded }, report)
    }
}

/// What `/readyz` says: unready (503) when a required dependency fails, degraded (still
/// 200) when only one it can work without does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub ready: bool,
    pub degraded: bool,
}

/// The health routes, to merge into a binary's HTTP router.
pub fn router(readiness: Readiness) -> Router {
    crate::metrics::init();
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(crate::metrics::router())
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, Json<Value>) {
    let (health, checks) = readiness.report().await;
    let (status, word) = match health {
        Health { ready: false, .. } => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        Health { degraded: true, .. } => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ready"),
    };
    let body = json!({ "status": word, "checks": checks });
    (status, Json(body))
}
