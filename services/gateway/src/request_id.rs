//! Every request's id: the client's `X-Request-Id` when it sent a sane one, else a new
//! UUID. It is on the response, in the fields of every log line written for the request,
//! in every problem document, and on every gRPC call made for it.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered, when called while answering one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// `work` as part of the request being answered (its id and log span), for a task that
/// outlives the request's own.
pub fn in_this_request<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    let id = current_request_id().unwrap_or_default();
    REQUEST_ID.scope(id, work.instrument(tracing::Span::current()))
}

/// Puts the id of the REST request being answered on each outgoing gRPC call, so the
/// services' log lines for it carry the same id; and the internal token.
#[derive(Debug, Clone, Default)]
pub struct ForwardRequestId(pub crm_platform::grpc::WithInternalToken);

impl tonic::service::Interceptor for ForwardRequestId {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = self.0.call(request)?;
        if let Some(value) = current_request_id().and_then(|id| id.parse().ok()) {
            request
                .metadata_mut()
                .insert(crm_platform::grpc::REQUEST_ID_HEADER, value);
        }
        Ok(request)
    }
}

/// A gRPC channel to a service, with the request id forwarded.
pub type Upstream =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ForwardRequestId>;

/// A client's id is kept when it is short printable ASCII, so it can go into logs as is.
fn sane(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_owned())
}

/// Gives the request its id, answers with it, and logs the request's lines under it.
pub async fn tag_request(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(sane)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .fallback(|| async { crate::error::Error::RouteNotFound })
            .layer(axum::middleware::from_fn(tag_request))
    }

    async fn call(request: axum::http::Request<Body>) -> Response {
        app().oneshot(request).await.unwrap()
    }

    fn get_request(path: &str) -> axum::http::request::Builder {
        axum::http::Request::builder().uri(path)
    }

    #[tokio::test]
    async fn a_request_id_is_made_echoed_and_put_in_problems() {
        let made = call(get_request("/ok").body(Body::empty()).unwrap()).await;
        let id = made.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());

        let given = get_request("/nowhere")
            .header("x-request-id", "trace-42")
            .body(Body::empty());
        let problem = call(given.unwrap()).await;
        assert_eq!(problem.headers()[&X_REQUEST_ID], "trace-42");
        let body = axum::body::to_bytes(problem.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["request_id"], "trace-42");

        let insane = get_request("/ok")
            .header("x-request-id", "a b")
            .body(Body::empty());
        let replaced = call(insane.unwrap()).await;
        assert_ne!(
            replaced.headers()[&X_REQUEST_ID],
            "a b",
            "spaces never reach the logs"
        );
    }
}
