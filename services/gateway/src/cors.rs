//! CORS for the origins configured in `CRM_CORS_ORIGINS`; none by default.

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED},
    request_id::X_REQUEST_ID,
};

/// CORS for a comma-separated origin list; `None` (no CORS headers) when it is empty.
pub fn cors(origins: &str) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                header::AUTHORIZATION,
                IDEMPOTENCY_KEY.clone(),
                X_REQUEST_ID.clone(),
            ])
            // What a browser client reads: versions, where a created thing is, when to
            // retry, whether an answer was replayed.
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                IDEMPOTENT_REPLAYED.clone(),
                X_REQUEST_ID.clone(),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::StatusCode, response::Response, routing::get};
    use tower::ServiceExt;

    use super::*;

    fn app(origins: &str) -> Router {
        let router = Router::new().route("/ok", get(|| async { "ok" }));
        match cors(origins) {
            Some(cors) => router.layer(cors),
            None => router,
        }
    }

    async fn call(app: Router, request: axum::http::Request<Body>) -> Response {
        app.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn cors_answers_only_the_configured_origins() {
        let preflight = |origin: &str| {
            axum::http::Request::builder()
                .method(Method::OPTIONS)
                .uri("/ok")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
                .body(Body::empty())
                .unwrap()
        };
        let origins = "https://shop.example, https://admin.example";
        let allowed = call(app(origins), preflight("https://admin.example")).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://admin.example"
        );
        let allowed_headers = allowed.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_owned();
        for wanted in ["idempotency-key", "if-match", "authorization"] {
            assert!(allowed_headers.contains(wanted), "{allowed_headers}");
        }
        let simple = axum::http::Request::builder()
            .uri("/ok")
            .header(header::ORIGIN, "https://shop.example")
            .body(Body::empty())
            .unwrap();
        let answered = call(app(origins), simple).await;
        let exposed = answered.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .to_owned();
        for wanted in ["etag", "location", "retry-after", "idempotent-replayed"] {
            assert!(exposed.contains(wanted), "{exposed}");
        }
        let foreign = call(app(origins), preflight("https://evil.example")).await;
        assert!(
            foreign
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
        let none = call(app(""), preflight("https://shop.example")).await;
        assert!(
            none.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none(),
            "off by default"
        );
    }
}
