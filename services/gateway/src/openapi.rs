//! The OpenAPI 3.1 document, generated from the handlers, and the interactive `/docs`.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        OpenApi as Document,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CRM customer platform",
        description = "The system of record for an online shop's customers. Every error is an \
                       RFC 9457 problem document (`application/problem+json`). Every `/api` \
                       request carries `Authorization: Bearer <API key or JWT>` holding the \
                       scope it needs (`customers:read`, `customers:write`, `events:write`, \
                       `admin` for all): 401 without a valid credential, 403 without the \
                       scope, 429 (with `Retry-After`) over the caller's rate, 503 when the \
                       gateway is at capacity.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "customers", description = "The customer record"),
        (name = "events", description = "Event ingestion and customer activity"),
        (name = "analytics", description = "Purchase analytics"),
        (name = "imports", description = "Bulk import of customers"),
        (name = "segments", description = "Rule segments, RFM scores and recommendations"),
        (name = "search", description = "Customer search and reindexing")
    ),
)]
pub struct ApiDoc;

/// The bearer scheme (API key or JWT), required by every API operation.
struct Security;

impl Modify for Security {
    fn modify(&self, document: &mut Document) {
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API key, or a JWT (HS256, RS256, ES256) whose `scope` claim holds the scopes"
                .into(),
        );
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        document.security = Some(vec![SecurityRequirement::new(
            "bearer",
            ["customers:read", "customers:write", "events:write", "admin"],
        )]);
    }
}
