use std::net::SocketAddr;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(#[from] Box<figment::Error>),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(String),
    #[error("cannot connect to {what}: {reason}")]
    Connect { what: &'static str, reason: String },
    /// A configuration that would be unsafe to run with.
    #[error("refusing to start: {0}")]
    Refused(String),
}
