//! Serving an axum router with graceful shutdown.

use axum::Router;
use tokio::net::TcpListener;

use crate::{Error, Result, Shutdown};

pub async fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}
