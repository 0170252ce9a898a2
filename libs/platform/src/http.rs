//! Serving an axum router with graceful shutdown.

use axum::{Router, serve::ListenerExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{Error, Result, Shutdown};

pub async fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> Result<()> {
    axum::serve(listener.tap_io(without_delay), router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

/// Turns Nagle's algorithm off on an accepted connection. With it on, an answer written
/// in two parts (headers, then a body larger than one segment) waits for the client's
/// delayed acknowledgement: about 40 ms on every larger response.
pub(crate) fn without_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = listener.tap_io(without_delay);
        let (accepted, _client) = tokio::join!(listener.accept(), TcpStream::connect(addr));
        assert!(accepted.0.nodelay().unwrap());
    }
}
