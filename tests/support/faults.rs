//! Faults for tests, kept local to the test that makes them: nothing here stops the
//! shared PostgreSQL, Redis or RabbitMQ, so tests that break things still run in
//! parallel.
//!
//! - `Proxy`: a TCP proxy put between a service and what it talks to (a server, another
//!   service, or several replicas in turn) that can delay, cut every connection, refuse
//!   new ones and be restored.
//! - `TlsTerminator`: HTTPS in front of a plain HTTP listener, with a test CA's certificate.
//! - Killing and restarting the binaries is `crate::TestApp::kill` / `restart`.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    /// New connections are closed at once, as a host that is down.
    Refusing,
}

struct State {
    mode: Mode,
    /// Added before each chunk is passed on, in both directions.
    delay: Duration,
}

/// A TCP proxy on a port of its own, in front of one or more upstreams (each new
/// connection goes to the next one, as a Kubernetes Service spreads them).
pub struct Proxy {
    addr: SocketAddr,
    control: Control,
    connections: Arc<AtomicUsize>,
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
    accepting: JoinHandle<()>,
}

/// What makes a proxy's faults; cheap to clone, for a task that ends a fault later.
#[derive(Clone)]
pub struct Control {
    state: Arc<Mutex<State>>,
    /// Bumped to close every open connection.
    cuts: watch::Sender<u64>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.control.cuts.send_modify(|cut| *cut += 1);
    }
}

impl std::ops::Deref for Proxy {
    type Target = Control;

    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Control {
    /// Every open connection is closed and new ones are refused until `restore`.
    pub fn cut(&self) {
        self.state.lock().unwrap().mode = Mode::Refusing;
        self.cuts.send_modify(|cut| *cut += 1);
    }

    /// Open connections stay; new ones are refused until `restore`.
    pub fn refuse(&self) {
        self.state.lock().unwrap().mode = Mode::Refusing;
    }

    /// Each chunk waits `delay` before it is passed on.
    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Accepts and passes on again, without delay.
    pub fn restore(&self) {
        let mut state = self.state.lock().unwrap();
        state.mode = Mode::Open;
        state.delay = Duration::ZERO;
    }

    /// `restore` after `after`, from a task of its own.
    pub fn restore_after(&self, after: Duration) -> JoinHandle<()> {
        let control = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            control.restore();
        })
    }
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`).
    pub async fn to(upstream: &str) -> Self {
        let upstream = tokio::net::lookup_host(upstream)
            .await
            .expect("an upstream address")
            .next()
            .expect("an upstream address");
        Self::to_each(vec![upstream]).await
    }

    /// A proxy spreading connections over `upstreams` in turn.
    pub async fn to_each(upstreams: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a proxy");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Open,
            delay: Duration::ZERO,
        }));
        let (cuts, _) = watch::channel(0u64);
        let connections = Arc::new(AtomicUsize::new(0));
        let upstreams = Arc::new(Mutex::new(upstreams));
        let accepting = tokio::spawn(accept(
            listener,
            state.clone(),
            cuts.clone(),
            connections.clone(),
            upstreams.clone(),
        ));
        Self {
            addr,
            control: Control { state, cuts },
            connections,
            upstreams,
            accepting,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let credentials = authority.rsplit_once('@').map(|(c, _)| format!("{c}@"));
        let slash = if rest.contains('/') { "/" } else { "" };
        format!(
            "{scheme}://{}{}{slash}{path}",
            credentials.unwrap_or_default(),
            self.addr
        )
    }

    /// Connections passed on so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Where new connections go from now on.
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.upstreams.lock().unwrap() = upstreams;
    }
}

async fn accept(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    cuts: watch::Sender<u64>,
    connections: Arc<AtomicUsize>,
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
) {
    let mut next = 0usize;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if state.lock().unwrap().mode == Mode::Refusing {
            drop(client);
            continue;
        }
        let upstream = {
            let upstreams = upstreams.lock().unwrap();
            next += 1;
            match upstreams.len() {
                0 => None,
                n => Some(upstreams[next % n]),
            }
        };
        // Nothing to pass to yet: as a Service without ready endpoints.
        let Some(upstream) = upstream else {
            drop(client);
            continue;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let (state, mut cut) = (state.clone(), cuts.subscribe());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                _ = pass(client_read, server_write, state.clone()) => {}
                _ = pass(server_read, client_write, state) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Copies one direction until either side closes.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<Mutex<State>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let delay = state.lock().unwrap().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// HTTPS on a port of its own, passing the decrypted bytes to a plain listener.
pub struct TlsTerminator {
    addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsTerminator {
    /// Serves `certificate` and `key` (PEM, for 127.0.0.1) in front of `upstream`.
    pub async fn start(upstream: SocketAddr, certificate: &str, key: &str) -> Self {
        use tokio_rustls::rustls::{
            self,
            pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        };
        let chain = CertificateDer::pem_slice_iter(certificate.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("a PEM certificate");
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a PEM key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a certificate and its key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("its address");
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { addr, accepting }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}
