//! `/api/imports`: bulk import of customers, streamed through to customer-core as the
//! upload arrives, so a file of any size never sits in the gateway's memory.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::Response,
};
use crm_proto::v1;
use futures::StreamExt;

use crate::{
    AppState,
    error::{Error, Problem, Result},
    extract::{content_type, essence, parse_uuid},
};

const COMPLETE: u8 = 0;
const OVER_LIMIT: u8 = 1;
const BROKEN: u8 = 2;

/// How long one import may stream.
pub const IMPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The largest import accepted in one request.
pub const MAX_IMPORT_BYTES: u64 = 1024 * 1024 * 1024;

fn format_of(headers: &HeaderMap) -> Result<v1::ImportFormat> {
    let content_type = content_type(headers);
    match essence(content_type).as_str() {
        "text/csv" => Ok(v1::ImportFormat::Csv),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Ok(v1::ImportFormat::Ndjson)
        }
        _ => Err(Error::UnsupportedMediaType(format!(
            "send text/csv or application/x-ndjson, not {content_type:?}"
        ))),
    }
}

/// Import customers from CSV (header row with the field names; `tags` and `categories`
/// separated by `|`) or NDJSON, upserted by e-mail. The answer comes when the upload
/// has been read, with the job's counts and the first 100 errors by line.
#[utoipa::path(
    post, path = "/api/imports", tag = "imports",
    request_body(content = String, description = "CSV or NDJSON rows", content_type = "text/csv"),
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Makes retries safe: the same key and body within 24 h get the first answer again and import nothing; another body with the key is a 422")),
    responses(
        (status = 202, description = "The import job", body = crm_domain::Job,
         headers(("Location" = String, description = "The job's URL"))),
        (status = 413, description = "Over 1 GiB (rows before the limit were imported)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither CSV nor NDJSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let format = format_of(&headers)? as i32;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_IMPORT_BYTES) {
        return Err(Error::PayloadTooLarge(MAX_IMPORT_BYTES as usize));
    }
    // The upload ends at the limit or at a broken connection; `stop` tells which.
    let stop = Arc::new(AtomicU8::new(COMPLETE));
    let mut sent = 0u64;
    let stop_flag = stop.clone();
    let chunks = body
        .into_data_stream()
        .take_while(move |chunk| {
            let reason = match chunk {
                Ok(bytes) => {
                    sent += bytes.len() as u64;
                    if sent > MAX_IMPORT_BYTES {
                        OVER_LIMIT
                    } else {
                        COMPLETE
                    }
                }
                Err(_) => BROKEN,
            };
            stop_flag.store(reason, Ordering::Relaxed);
            std::future::ready(reason == COMPLETE)
        })
        .filter_map(|chunk| std::future::ready(chunk.ok()))
        .map(|data| v1::ImportChunk {
            format: 0,
            data: data.to_vec(),
        });
    // The first message names the format (and carries no data, so an empty upload works).
    let first = futures::stream::iter([v1::ImportChunk {
        format,
        data: Vec::new(),
    }]);
    let job = state
        .imports
        .clone()
        .import_customers(first.chain(chunks))
        .await?
        .into_inner();
    match stop.load(Ordering::Relaxed) {
        OVER_LIMIT => return Err(Error::PayloadTooLarge(MAX_IMPORT_BYTES as usize)),
        BROKEN => {
            let detail = format!(
                "the upload broke off; import {} has the rows before",
                job.id
            );
            return Err(Error::Malformed(detail));
        }
        _ => {}
    }
    crate::jobs::started("/api/imports", job, "customer-core")
}

/// An import's status, counts and first 100 errors.
#[utoipa::path(
    get, path = "/api/imports/{id}", tag = "imports",
    params(("id" = String, Path, description = "Import id (UUID)")),
    responses(
        (status = 200, description = "The import job", body = crm_domain::Job),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown import", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_import(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crm_domain::Job>> {
    let id = parse_uuid(&id, "an import id")?;
    let request = v1::GetImportRequest { id: id.to_string() };
    let job = state.customers.clone().get_import(request).await?;
    Ok(Json(crate::jobs::decode(
        job.into_inner(),
        "customer-core",
    )?))
}
