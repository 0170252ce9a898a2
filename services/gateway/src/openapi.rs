//! The OpenAPI 3.1 document, generated from the handlers, and the interactive `/docs`.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CRM customer platform",
        description = "The system of record for an online shop's customers. Every error is an \
                       RFC 9457 problem document (`application/problem+json`).",
        license(name = "Apache-2.0")
    ),
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
