//! Headers every answer of the REST API carries, errors included.

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};

/// No content sniffing, no framing, no referrer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        response
            .headers_mut()
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn security_headers_are_on_every_answer() {
        let app = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .fallback(|| async { crate::error::Error::RouteNotFound })
            .layer(axum::middleware::from_fn(security_headers));
        for path in ["/ok", "/nowhere"] {
            let request = axum::http::Request::builder().uri(path).body(Body::empty());
            let response = app.clone().oneshot(request.unwrap()).await.unwrap();
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff"
            );
            assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        }
    }
}
