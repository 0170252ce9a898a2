//! The distributed platform as a deployment runs it: every binary on its own fresh
//! PostgreSQL database, Redis key prefix and RabbitMQ vhost, each service behind a TCP
//! proxy that spreads connections over its replicas (as a Kubernetes Service does), and,
//! when asked, the shared servers behind proxies of this test's own, so that a test can
//! cut them without touching any other test.

use std::{net::SocketAddr, sync::Mutex};

use crate::{ADMIN_KEY_ENTRY, Process, TestApp, faults::Proxy, internal_token, spawn};

/// How to start the platform.
pub struct Options {
    pub redis_url: String,
    /// Variables of one binary each, set last: `(binary, name, value)`.
    pub extra: Vec<(String, String, String)>,
    /// What every binary gets to call and be called by the others.
    pub internal_auth: Vec<(String, String)>,
    /// PostgreSQL, Redis and RabbitMQ reached through proxies of this test (`proxies`).
    pub proxied: bool,
    /// Instances of every binary.
    pub replicas: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            extra: Vec::new(),
            internal_auth: internal_token()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            proxied: false,
            replicas: 1,
        }
    }
}

/// The proxies in front of the shared servers, for faults.
pub struct Proxies {
    pub postgres: Proxy,
    pub redis: Proxy,
    pub broker: Proxy,
}

/// The proxies in front of each service's replicas.
pub struct Fronts {
    pub customer_core: Proxy,
    pub event_ingest: Proxy,
    pub segmentation: Proxy,
    pub search_indexer: Proxy,
    pub gateway: Proxy,
}

impl Fronts {
    /// The proxy in front of `binary`'s replicas.
    pub fn of(&self, binary: &str) -> &Proxy {
        match binary {
            "crm-customer-core" => &self.customer_core,
            "crm-event-ingest" => &self.event_ingest,
            "crm-segmentation" => &self.segmentation,
            "crm-search-indexer" => &self.search_indexer,
            _ => &self.gateway,
        }
    }
}

/// The binaries in the order they start.
pub const BINARIES: [&str; 5] = [
    "crm-customer-core",
    "crm-event-ingest",
    "crm-segmentation",
    "crm-search-indexer",
    "crm-gateway",
];

fn ready_message(binary: &str) -> String {
    format!("{} listening", binary.trim_start_matches("crm-"))
}

type Env = Vec<(String, String)>;

fn set(env: &mut Env, name: &str, value: impl Into<String>) {
    env.retain(|(n, _)| n != name);
    env.push((name.to_owned(), value.into()));
}

pub async fn start(options: Options) -> TestApp {
    let database_url = crm_platform::testing::fresh_postgres_url().await;
    let vhost = crm_platform::testing::TestVhost::create();
    let proxies = match options.proxied {
        true => Some(Proxies {
            postgres: Proxy::to(&authority(&database_url)).await,
            redis: Proxy::to(&authority(&options.redis_url)).await,
            broker: Proxy::to(&authority(&vhost.url)).await,
        }),
        false => None,
    };
    let through = |url: &str, proxy: Option<&Proxy>| match proxy {
        Some(proxy) => proxy.url_for(url),
        None => url.to_owned(),
    };
    let database = through(&database_url, proxies.as_ref().map(|p| &p.postgres));
    let redis = through(&options.redis_url, proxies.as_ref().map(|p| &p.redis));
    let broker = through(&vhost.url, proxies.as_ref().map(|p| &p.broker));
    let fronts = Fronts {
        customer_core: Proxy::to_each(Vec::new()).await,
        event_ingest: Proxy::to_each(Vec::new()).await,
        segmentation: Proxy::to_each(Vec::new()).await,
        search_indexer: Proxy::to_each(Vec::new()).await,
        gateway: Proxy::to_each(Vec::new()).await,
    };
    let front_url = |proxy: &Proxy| format!("http://{}", proxy.addr());

    let mut shared: Env = vec![
        ("CRM_REDIS_URL".into(), redis.clone()),
        (
            "CRM_REDIS_KEY_PREFIX".into(),
            format!("e2e:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("CRM_AMQP_URL".into(), broker),
        ("CRM_GRPC_ADDR".into(), "127.0.0.1:0".into()),
        ("CRM_HTTP_ADDR".into(), "127.0.0.1:0".into()),
    ];
    shared.extend(options.internal_auth.iter().cloned());
    let mut search_dirs = Vec::new();
    let mut processes = Vec::new();
    for binary in BINARIES {
        let mut env = shared.clone();
        match binary {
            "crm-customer-core" => set(&mut env, "CRM_DATABASE_URL", &database),
            "crm-segmentation" => {
                set(&mut env, "CRM_DATABASE_URL", &database);
                set(
                    &mut env,
                    "CRM_CUSTOMER_CORE_URL",
                    front_url(&fronts.customer_core),
                );
            }
            "crm-search-indexer" => {
                set(
                    &mut env,
                    "CRM_CUSTOMER_CORE_URL",
                    front_url(&fronts.customer_core),
                );
            }
            "crm-gateway" => {
                env = options.internal_auth.clone();
                set(&mut env, "CRM_HTTP_ADDR", "127.0.0.1:0");
                set(&mut env, "CRM_API_KEYS", ADMIN_KEY_ENTRY);
                set(&mut env, "CRM_REDIS_URL", &redis);
                let prefix = format!("e2e:{}:", uuid::Uuid::new_v4().simple());
                set(&mut env, "CRM_REDIS_KEY_PREFIX", prefix);
                set(
                    &mut env,
                    "CRM_CUSTOMER_CORE_URL",
                    front_url(&fronts.customer_core),
                );
                set(
                    &mut env,
                    "CRM_EVENT_INGEST_URL",
                    front_url(&fronts.event_ingest),
                );
                set(
                    &mut env,
                    "CRM_SEGMENTATION_URL",
                    front_url(&fronts.segmentation),
                );
                set(
                    &mut env,
                    "CRM_SEARCH_INDEXER_URL",
                    front_url(&fronts.search_indexer),
                );
            }
            _ => {}
        }
        for (_, name, value) in options.extra.iter().filter(|(b, _, _)| b == binary) {
            set(&mut env, name, value.clone());
        }
        let mut addrs = Vec::new();
        for _ in 0..options.replicas {
            let mut env = env.clone();
            if binary == "crm-search-indexer" {
                // Each replica keeps an index of its own.
                let dir = tempfile::tempdir().expect("temp dir");
                set(
                    &mut env,
                    "CRM_SEARCH_INDEX_DIR",
                    dir.path().to_str().expect("utf-8"),
                );
                search_dirs.push(dir);
            }
            let env: Vec<(&str, String)> =
                env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let (process, fields) = spawn(binary, &[], &env, &ready_message(binary)).await;
            let served = if binary == "crm-gateway" {
                "http"
            } else {
                "grpc"
            };
            addrs.push(fields[served].parse::<SocketAddr>().expect("an address"));
            processes.push(process);
        }
        fronts.of(binary).set_upstreams(addrs);
    }
    let http_of = |binary: &str| {
        let process = processes
            .iter()
            .find(|p| p.name == binary)
            .expect("started");
        format!("http://{}", process.fields["http"])
    };
    let metrics_url = format!("{}/metrics", http_of("crm-customer-core"));
    let search_health_url = http_of("crm-search-indexer");
    let mut app = TestApp::new(&fronts.gateway.addr().to_string(), processes);
    app.vhost = Some(vhost);
    app.search_dirs = search_dirs;
    app.metrics_url = metrics_url;
    app.search_health_url = search_health_url;
    app.customer_core_grpc = Some(front_url(&fronts.customer_core));
    app.database_url = Some(database_url);
    app.proxies = proxies;
    app.fronts = Some(fronts);
    app
}

/// `host:port` of a URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

impl TestApp {
    /// The processes of `binary` (in start order).
    fn with_processes<T>(&self, f: impl FnOnce(&mut Vec<Process>) -> T) -> T {
        f(&mut self.processes.lock().unwrap())
    }

    /// SIGKILLs instance `replica` of `binary` and waits for it to be gone.
    pub async fn kill(&self, binary: &str, replica: usize) {
        let mut child = self.with_processes(|processes| {
            let process = nth(processes, binary, replica);
            process.child.take().expect("running")
        });
        child.start_kill().expect("kill");
        child.wait().await.expect("wait");
    }

    /// SIGKILLs instance `replica` of `binary` and takes it out of its service, as
    /// Kubernetes does with a pod that is gone; the other replicas serve on.
    pub async fn kill_for_good(&self, binary: &str, replica: usize) {
        self.kill(binary, replica).await;
        let served = if binary == "crm-gateway" {
            "http"
        } else {
            "grpc"
        };
        let alive: Vec<SocketAddr> = self.with_processes(|processes| {
            processes
                .iter()
                .filter(|p| p.name == binary && p.child.is_some())
                .map(|p| p.fields[served].parse().expect("an address"))
                .collect()
        });
        let fronts = self.fronts.as_ref().expect("distributed");
        fronts.of(binary).set_upstreams(alive);
    }

    /// SIGTERMs instance `replica` of `binary` (a rolling update, a scale-down) and
    /// waits until it has drained and exited; its exit status.
    pub async fn terminate(&self, binary: &str, replica: usize) -> std::process::ExitStatus {
        let mut child = self.with_processes(|processes| {
            let process = nth(processes, binary, replica);
            process.child.take().expect("running")
        });
        let pid = child.id().expect("a pid").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "SIGTERM to {binary}");
        tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
            .await
            .expect("it exits after a SIGTERM")
            .expect("wait")
    }

    /// Starts instance `replica` of `binary` again as it was started, on the same
    /// addresses; waits until it listens.
    pub async fn restart(&self, binary: &str, replica: usize) {
        let (env, logs, fields) = self.with_processes(|processes| {
            let process = nth(processes, binary, replica);
            assert!(
                process.child.is_none(),
                "{binary} {replica} is still running"
            );
            let mut env = process.env.clone();
            for (field, name) in [("grpc", "CRM_GRPC_ADDR"), ("http", "CRM_HTTP_ADDR")] {
                if let Some(addr) = process.fields.get(field) {
                    set(&mut env, name, addr.clone());
                }
            }
            (env, process.logs.clone(), process.fields.clone())
        });
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (restarted, _) =
            crate::spawn_logging_to(binary, &[], &env, &ready_message(binary), logs).await;
        self.with_processes(|processes| {
            let process = nth(processes, binary, replica);
            *process = Process {
                fields,
                ..restarted
            };
        });
    }
}

fn nth<'a>(processes: &'a mut [Process], binary: &str, replica: usize) -> &'a mut Process {
    processes
        .iter_mut()
        .filter(|p| p.name == binary)
        .nth(replica)
        .unwrap_or_else(|| panic!("no {binary} number {replica}"))
}

// The processes are behind a mutex so tests kill and restart through `&TestApp`.
pub(crate) type Processes = Mutex<Vec<Process>>;
