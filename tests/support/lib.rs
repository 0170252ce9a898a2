//! Starts the platform the way a user runs it, as the real binaries on port 0, and
//! drives its REST API. The binaries must be built first (`make test` does that).
//!
//! - `TestApp::standalone()`: the `crm` binary on a fresh data directory.
//! - `TestApp::distributed()`: `crm-customer-core` on a fresh PostgreSQL database and
//!   its own Redis key prefix, and `crm-gateway` in front of it.
//!
//! Logs of the processes are captured (for assertions) and printed only with TEST_LOG=1.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

pub mod cluster;
pub mod faults;
pub mod load;

use reqwest::{Client, Response};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub use reqwest::StatusCode;
pub use serde_json::json;

/// The API key every test client sends (an admin key where credentials are configured).
pub const ADMIN_KEY: &str = "e2e-admin-key";
/// `CRM_API_KEYS` holding `ADMIN_KEY` (its SHA-256).
pub const ADMIN_KEY_ENTRY: &str =
    "e2e:4487c398ecfe2ea2be3ad112057efc64800dfbab1f55a4d5e064fa5268fdb12c:admin";

/// What the distributed services demand of each other's gRPC calls.
pub const INTERNAL_TOKEN: &str = "e2e-internal-token";

pub(crate) fn internal_token() -> [(&'static str, String); 1] {
    [("CRM_INTERNAL_TOKEN", INTERNAL_TOKEN.to_owned())]
}

/// A running platform and a client for its REST API.
pub struct TestApp {
    pub base_url: String,
    client: Client,
    processes: cluster::Processes,
    _data_dir: Option<tempfile::TempDir>,
    /// The search indexers' index directories (distributed mode).
    search_dirs: Vec<tempfile::TempDir>,
    /// The distributed mode's database (not through any proxy).
    pub database_url: Option<String>,
    /// The proxies in front of PostgreSQL, Redis and RabbitMQ, when asked for.
    pub proxies: Option<cluster::Proxies>,
    /// The proxies in front of each service's replicas (distributed mode).
    pub fronts: Option<cluster::Fronts>,
    /// The distributed mode's own RabbitMQ vhost.
    pub vhost: Option<crm_platform::testing::TestVhost>,
    /// Where customer-core's Prometheus metrics are (its `/readyz` is beside them).
    pub metrics_url: String,
    /// The search indexer's health and metrics (in the standalone, the gateway's).
    pub search_health_url: String,
    /// customer-core's gRPC (distributed mode).
    pub customer_core_grpc: Option<String>,
}

/// A started binary; killed when dropped.
pub struct Process {
    pub name: String,
    /// `None` once killed or terminated.
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    /// What it was started with, to start it again.
    env: Vec<(String, String)>,
    /// The fields of its "listening" line: its addresses.
    pub fields: HashMap<String, String>,
}

impl Process {
    /// Every log line it wrote so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

/// Where cargo put the binaries: the tests run from `<target>/<profile>/deps/`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins` \
         (`make test` does)",
        path.display()
    );
    path
}

/// Starts `name` with `env` and waits for the log line `ready_message`, whose fields
/// (the bound addresses) it returns.
pub async fn spawn(
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready_message: &str,
) -> (Process, HashMap<String, String>) {
    spawn_logging_to(name, args, env, ready_message, Arc::default()).await
}

/// `spawn`, its log lines added to `logs` (a restarted process keeps the lines of before).
pub(crate) async fn spawn_logging_to(
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready_message: &str,
    logs: Arc<Mutex<Vec<String>>>,
) -> (Process, HashMap<String, String>) {
    let mut command = Command::new(binary(name));
    command
        .args(args)
        .env("CRM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let verbose = std::env::var_os("TEST_LOG").is_some();

    let wait_for_listening = async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            if verbose {
                eprintln!("[{name}] {line}");
            }
            logs.lock().unwrap().push(line.clone());
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == ready_message {
                let fields: HashMap<String, String> = event
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect();
                return Some(fields);
            }
        }
        None
    };
    let fields = tokio::time::timeout(Duration::from_secs(60), wait_for_listening)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "{name} did not start; its log:\n{}",
                logs.lock().unwrap().join("\n")
            )
        });

    // Keep draining the pipe so the process never blocks on a full buffer.
    let sink = logs.clone();
    let name = name.to_owned();
    let label = name.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if verbose {
                eprintln!("[{label}] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    let process = Process {
        name,
        child: Some(child),
        logs,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        fields: fields.clone(),
    };
    (process, fields)
}

impl TestApp {
    pub async fn standalone() -> Self {
        Self::standalone_with_env(&[]).await
    }

    /// The standalone binary on a given data directory (to test restarts).
    pub async fn standalone_in(data_dir: &Path) -> Self {
        Self::standalone_at(data_dir, &[]).await
    }

    /// The standalone binary on a fresh data directory with this environment
    /// (credentials, limits).
    pub async fn standalone_with_env(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut app = Self::standalone_at(dir.path(), env).await;
        app._data_dir = Some(dir);
        app
    }

    async fn standalone_at(data_dir: &Path, env: &[(&str, String)]) -> Self {
        let data_dir = data_dir.to_str().expect("utf-8 path").to_owned();
        let args = ["--listen", "127.0.0.1:0", "--data-dir", &data_dir];
        let (process, fields) = spawn("crm", &args, env, "crm listening").await;
        Self::new(&fields["http"], vec![process])
    }

    pub async fn distributed() -> Self {
        let app = Self::distributed_with_redis("redis://127.0.0.1:6379").await;
        app.assert_redis_reachable().await;
        app
    }

    /// The services with the given Redis URL (an unreachable one tests the fallback),
    /// on a fresh database, Redis key prefix and RabbitMQ vhost.
    pub async fn distributed_with_redis(redis_url: &str) -> Self {
        cluster::start(cluster::Options {
            redis_url: redis_url.to_owned(),
            ..cluster::Options::default()
        })
        .await
    }

    /// The services, each binary named in `env` (`("crm-segmentation", "CRM_AMQP_URL",
    /// ...)`) with that variable set or replaced.
    pub async fn distributed_with_env(env: &[(&str, &str, String)]) -> Self {
        cluster::start(cluster::Options {
            extra: env
                .iter()
                .map(|(b, k, v)| ((*b).to_owned(), (*k).to_owned(), v.clone()))
                .collect(),
            ..cluster::Options::default()
        })
        .await
    }

    /// The services authenticating each other by mutual TLS (`CRM_TLS_*`), not the token.
    pub async fn distributed_with_mutual_tls(tls: &[(&str, String)]) -> Self {
        cluster::start(cluster::Options {
            internal_auth: tls
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..cluster::Options::default()
        })
        .await
    }

    /// The services started as `options` say (proxies, replicas).
    pub async fn cluster(options: cluster::Options) -> Self {
        cluster::start(options).await
    }

    pub(crate) fn new(addr: &str, processes: Vec<Process>) -> Self {
        Self {
            base_url: format!("http://{addr}"),
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .default_headers(
                    [(
                        reqwest::header::AUTHORIZATION,
                        format!("Bearer {ADMIN_KEY}")
                            .parse()
                            .expect("a header value"),
                    )]
                    .into_iter()
                    .collect(),
                )
                .build()
                .expect("client"),
            processes: std::sync::Mutex::new(processes),
            _data_dir: None,
            search_dirs: Vec::new(),
            database_url: None,
            proxies: None,
            fronts: None,
            vhost: None,
            metrics_url: format!("http://{addr}/metrics"),
            search_health_url: format!("http://{addr}"),
            customer_core_grpc: None,
        }
    }

    /// A test of the Redis adapter must not pass silently without Redis.
    async fn assert_redis_reachable(&self) {
        let readyz = self.metrics_url.replace("/metrics", "/readyz");
        let ready: Value = self
            .client
            .get(readyz)
            .send()
            .await
            .expect("customer-core /readyz")
            .json()
            .await
            .expect("readiness json");
        assert_eq!(
            ready["checks"]["redis"], "ok",
            "Redis is not reachable at 127.0.0.1:6379 ({ready}). Start it with: redis-server \
             --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
        );
    }

    /// Every log line the processes wrote so far.
    pub fn logs(&self) -> Vec<String> {
        let processes = self.processes.lock().unwrap();
        processes.iter().flat_map(Process::logs).collect()
    }

    pub async fn create_customer(&self, body: &Value) -> Response {
        self.send(self.client.post(self.url("/api/customers")).json(body))
            .await
    }

    pub async fn get_customer(&self, id: &str) -> Response {
        self.send(self.client.get(self.url(&format!("/api/customers/{id}"))))
            .await
    }

    pub async fn patch_customer(&self, id: &str, body: &Value, if_match: Option<&str>) -> Response {
        let mut request = self
            .client
            .patch(self.url(&format!("/api/customers/{id}")))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        if let Some(etag) = if_match {
            request = request.header("if-match", etag);
        }
        self.send(request).await
    }

    pub async fn delete_customer(&self, id: &str) -> Response {
        self.send(
            self.client
                .delete(self.url(&format!("/api/customers/{id}"))),
        )
        .await
    }

    pub async fn list_customers(&self, query: &str) -> Response {
        self.send(self.client.get(self.url(&format!("/api/customers{query}"))))
            .await
    }

    /// A raw body with a given content type. Uploads (imports) may take minutes on a
    /// loaded machine, so the deadline is longer than other requests'.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .timeout(Duration::from_secs(600))
            .body(body);
        self.send(request).await
    }

    /// The client the helpers use (it sends `ADMIN_KEY`), for requests of their own.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// A URL outside the REST API (another service's health, say).
    pub async fn get_url(&self, url: &str) -> Response {
        self.send(self.client.get(url)).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.client.get(self.url(path))).await
    }

    /// Creates a customer with this e-mail and returns its JSON.
    pub async fn given_customer(&self, email: &str) -> Value {
        let response = self
            .create_customer(&json!({ "email": email, "first_name": "Ada" }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("customer json")
    }

    /// `POST /api/events` with a JSON body.
    pub async fn send_events(&self, body: &Value) -> Response {
        self.send(self.client.post(self.url("/api/events")).json(body))
            .await
    }

    pub async fn list_events(&self, id: &str, query: &str) -> Response {
        self.send(
            self.client
                .get(self.url(&format!("/api/customers/{id}/events{query}"))),
        )
        .await
    }

    /// Polls `probe` until it returns `Some`, for effects that arrive through the bus.
    pub async fn eventually<T, F, Fut>(&self, what: &str, probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.eventually_within(Duration::from_secs(30), what, probe)
            .await
    }

    /// `eventually`, giving up after `limit` (long runs of a fault suite).
    pub async fn eventually_within<T, F, Fut>(&self, limit: Duration, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs = self.logs();
        let tail = &logs[logs.len().saturating_sub(200)..];
        panic!(
            "timed out waiting for {what}; the last log lines:\n{}",
            tail.join("\n")
        );
    }

    /// `count` customers made at once, e-mails `<prefix>-<n>@example.com`; their ids.
    pub async fn given_customers(&self, prefix: &str, count: usize) -> Vec<String> {
        let emails: Vec<String> = (0..count)
            .map(|n| format!("{prefix}-{n}@example.com"))
            .collect();
        futures::future::join_all(emails.iter().map(|email| self.given_customer_id(email))).await
    }

    /// The sum of every sample of the Prometheus metric `name` whose labels include
    /// `labels` (`source="database"`), as instance `replica` of `binary` reports it.
    pub async fn metric(&self, binary: &str, replica: usize, name: &str, labels: &str) -> f64 {
        let url = format!("{}/metrics", self.http_url(binary, replica));
        let text = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']) && rest.contains(labels))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The health and metrics address of instance `replica` of `binary`.
    pub fn http_url(&self, binary: &str, replica: usize) -> String {
        let processes = self.processes.lock().unwrap();
        let process = processes
            .iter()
            .filter(|p| p.name == binary)
            .nth(replica)
            .unwrap_or_else(|| panic!("no {binary} number {replica}"));
        format!("http://{}", process.fields["http"])
    }

    /// Creates a customer with this e-mail and returns its id.
    pub async fn given_customer_id(&self, email: &str) -> String {
        let customer = self.given_customer(email).await;
        customer["id"].as_str().expect("an id").to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        request.send().await.expect("the platform answers")
    }
}

/// Asserts an RFC 9457 problem with this status, and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let problem: Value = response.json().await.expect("problem json");
    assert_eq!(problem["status"], status.as_u16(), "{problem}");
    assert_eq!(
        problem["request_id"],
        request_id.as_str(),
        "the problem names its request"
    );
    assert!(
        problem["type"].is_string() && problem["title"].is_string(),
        "{problem}"
    );
    assert!(problem["detail"].is_string(), "{problem}");
    problem
}

/// The fields named by a 422 problem.
pub fn invalid_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

/// A subscription to `pattern` on `exchange` of the distributed app's broker: every
/// message as `(routing key, JSON payload)`. Stops when dropped.
pub struct Subscription {
    received: tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    shutdown: crm_platform::Shutdown,
}

impl TestApp {
    pub async fn subscribe(&self, exchange: &str, pattern: &str) -> Subscription {
        use std::sync::Arc;

        use crm_platform::bus::{ConsumerConfig, Delivery, EventBus, Handler, Outcome, RabbitBus};

        struct Forward(tokio::sync::mpsc::UnboundedSender<(String, Value)>);
        #[async_trait::async_trait]
        impl Handler for Forward {
            async fn handle(&self, delivery: &Delivery) -> Outcome {
                let body = serde_json::from_slice(&delivery.message.payload).unwrap_or_default();
                let _ = self.0.send((delivery.message.routing_key.clone(), body));
                Outcome::Ack
            }
        }

        let vhost = self
            .vhost
            .as_ref()
            .expect("subscriptions need the distributed mode");
        let bus = Arc::new(RabbitBus::new(crm_platform::settings::Secret::new(
            &vhost.url,
        )));
        let queue = format!("e2e.{}", uuid::Uuid::new_v4().simple());
        let config = ConsumerConfig::new(queue, exchange, &[pattern]);
        bus.declare(&config).await.expect("declare the test queue");
        let (sender, received) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = crm_platform::Shutdown::new();
        let stop = shutdown.clone();
        tokio::spawn(async move { bus.consume(config, Arc::new(Forward(sender)), stop).await });
        Subscription { received, shutdown }
    }
}

impl Subscription {
    /// The next `count` messages (waiting up to 20 s for each).
    pub async fn next(&mut self, count: usize) -> Vec<(String, Value)> {
        let mut messages = Vec::with_capacity(count);
        for _ in 0..count {
            let next = tokio::time::timeout(Duration::from_secs(20), self.received.recv());
            messages.push(
                next.await
                    .expect("a message within 20 s")
                    .expect("subscribed"),
            );
        }
        messages
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Runs each scenario (an `async fn(TestApp)`) once per mode, as tests
/// `standalone::<name>` and `distributed::<name>`.
#[macro_export]
macro_rules! in_both_modes {
    ($($scenario:ident),+ $(,)?) => {
        mod standalone {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::TestApp::standalone().await).await;
            })+
        }
        mod distributed {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::TestApp::distributed().await).await;
            })+
        }
    };
}

/// A valid `order.completed` event of one item, in euros.
pub fn completed_order(customer: &str, order_id: &str, total: f64) -> Value {
    json!({
        "customer_id": customer, "type": "order.completed",
        "data": { "order_id": order_id, "total": total, "currency": "EUR",
                  "items": [{ "product_id": "p-1", "quantity": 1, "price": total }] }
    })
}
