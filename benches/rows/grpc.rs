//! An internal gRPC call that does no I/O, beside a bare tonic server answering the
//! same call: what the services' server stack (the internal-token check, the request
//! span, reflection beside) costs per call.

use crm_platform::internal_auth::{InternalAuth, InternalChannel};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{Figure, pairs, row};
use crate::{load::closed_loop, report::Row, servers::Platform};

/// Calls in flight on one channel (HTTP/2 streams), on either side.
const IN_FLIGHT: usize = 32;

/// `grpc.health.v1.Health/Check` of customer-core (with the internal token), beside the
/// same call to a tonic server holding only the health service, started in this
/// process.
pub async fn grpc_call(platform: &Platform, requests: u64) -> Row {
    let ours = platform.customer_core_grpc.as_deref().expect("distributed");
    let auth = InternalAuth::none()
        .with_token(Some(&platform.internal_token))
        .expect("a token");
    let ours = client(ours, &auth);
    let bare = client(&bare_server().await, &InternalAuth::none());
    println!("bench: internal gRPC call, {IN_FLIGHT} in flight on one channel");
    let (runs, idle) = pairs(
        "grpc",
        |_| calls(ours.clone(), requests),
        |_| calls(bare.clone(), requests),
    )
    .await;
    row(
        Figure::Rate,
        &format!(
            "internal gRPC call without I/O (customer-core's health check), {IN_FLIGHT} in flight"
        ),
        "a bare tonic server with only the health service",
        "≥ 0.8×",
        &runs,
        idle,
    )
}

type Client = HealthClient<InternalChannel>;

/// A client over the channel the services use to call each other.
fn client(url: &str, auth: &InternalAuth) -> Client {
    HealthClient::new(auth.channel(url).expect("a gRPC URL"))
}

/// A tonic server with only the health service, on a port of its own; its URL.
async fn bare_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        let _serving = reporter;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
    });
    url
}

async fn calls(client: Client, requests: u64) -> crate::load::Summary {
    closed_loop(IN_FLIGHT, requests, move |_| {
        let mut client = client.clone();
        async move {
            let request = HealthCheckRequest {
                service: String::new(),
            };
            client.check(request).await.is_ok()
        }
    })
    .await
}
