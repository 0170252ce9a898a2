//! The OpenAPI 3.1 document, generated from the handlers, and the interactive `/docs`.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, OpenApi as Document, Ref, RefOr, Response,
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

/// The answers any API operation may give besides its own, from the guard and limits.
const SHARED_PROBLEMS: [(&str, &str); 4] = [
    ("401", "No valid credential (`/problems/unauthenticated`)"),
    (
        "403",
        "The credential lacks the scope (`/problems/forbidden`)",
    ),
    (
        "429",
        "Over the caller's rate; see `Retry-After` (`/problems/rate-limited`)",
    ),
    (
        "503",
        "At capacity, or a service is unavailable (`/problems/overloaded`, `/problems/service-unavailable`)",
    ),
];

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
            crate::auth::Scope::ALL.map(crate::auth::Scope::as_str),
        )]);
    }
}

/// Adds the shared problems to every API operation of the finished document (the
/// operations join the document after `ApiDoc`'s modifiers ran).
pub fn add_shared_problems(document: &mut Document) {
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in SHARED_PROBLEMS {
                let problem = Response::builder()
                    .description(description)
                    .content(
                        "application/problem+json",
                        Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
                    )
                    .build();
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert(RefOr::T(problem));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_operation_lists_the_guard_problems() {
        let mut document = ApiDoc::openapi();
        document.paths.paths.insert(
            "/api/example".into(),
            utoipa::openapi::PathItem::new(
                utoipa::openapi::HttpMethod::Get,
                utoipa::openapi::path::Operation::new(),
            ),
        );
        add_shared_problems(&mut document);
        let json = serde_json::to_value(&document).unwrap();
        let responses = &json["paths"]["/api/example"]["get"]["responses"];
        for status in ["401", "403", "429", "503"] {
            assert!(responses[status].is_object(), "{status}: {responses}");
        }
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
    }

    /// The domain's wire enums reach the document by their wire names (what serde
    /// writes, checked in the domain), not by their Rust variants.
    #[test]
    fn the_document_names_enums_as_the_wire_does() {
        let schema = <crm_domain::Segment as utoipa::PartialSchema>::schema();
        assert_eq!(
            serde_json::to_value(schema).unwrap()["enum"],
            serde_json::json!(["new", "regular", "vip", "churned", "at_risk"])
        );
    }
}
