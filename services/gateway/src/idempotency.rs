//! `Idempotency-Key` on the creating `POST`s (customers, merges, imports): the first
//! request with a key runs and its
//! answer is kept (24 hours); a retry with the same key and body gets that answer again
//! without running twice; the same key with another body is refused (422); a retry
//! while the first is still running is told so (409). Keys are per caller.
//! Stored in Redis when the gateway has one (replicas share it), else in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{auth::Principal, error::Error, extract::MAX_BODY_BYTES, policy::Upload};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// On an answer given again for a repeated key.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long an answer is kept for retries.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a key stays claimed by a first request whose gateway died before it finished:
/// a little longer than the request may take. (A client that goes away does not leave it
/// claimed: its request runs to the end and its answer is kept for the retry.)
fn running_at_most(upload: Upload) -> Duration {
    let longest = match upload {
        Upload::Json => crate::SERVICE_DEADLINE,
        Upload::Spooled => crate::imports::IMPORT_DEADLINE,
    };
    longest + Duration::from_secs(20)
}
/// Headers of the first answer that a replay repeats.
const REPLAYED_HEADERS: [&str; 3] = ["location", "etag", "content-type"];

/// The first answer to a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// The first request (with this body fingerprint) is running.
    Running {
        fingerprint: String,
        /// Seconds the claim holds at most.
        lifetime: u64,
    },
    Done {
        fingerprint: String,
        answer: Kept,
    },
}

impl Entry {
    fn lifetime(&self) -> Duration {
        match self {
            Entry::Running { lifetime, .. } => Duration::from_secs(*lifetime),
            Entry::Done { .. } => KEEP,
        }
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a first request; `Err` with what the key already holds.
    async fn claim(&self, key: &str, running: &Entry) -> Result<Result<(), Entry>, String>;
    async fn complete(&self, key: &str, entry: &Entry) -> Result<(), String>;
    /// Frees a key whose request failed for a passing reason, so a retry runs.
    async fn release(&self, key: &str) -> Result<(), String>;
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// Each entry with when it expires.
    entries: HashMap<String, (Entry, Instant)>,
    /// Expired entries are swept at most once a minute, not on every request.
    next_sweep: Option<Instant>,
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(&self, key: &str, running: &Entry) -> Result<Result<(), Entry>, String> {
        let mut state = self.state.lock().expect("idempotency entries");
        let now = Instant::now();
        if state.next_sweep.is_none_or(|at| now >= at) {
            state.entries.retain(|_, (_, expires)| now < *expires);
            state.next_sweep = Some(now + Duration::from_secs(60));
        }
        if let Some((entry, expires)) = state.entries.get(key)
            && now < *expires
        {
            return Ok(Err(entry.clone()));
        }
        let expires = now + running.lifetime();
        state
            .entries
            .insert(key.to_owned(), (running.clone(), expires));
        Ok(Ok(()))
    }

    async fn complete(&self, key: &str, entry: &Entry) -> Result<(), String> {
        let mut state = self.state.lock().expect("idempotency entries");
        let expires = Instant::now() + entry.lifetime();
        state
            .entries
            .insert(key.to_owned(), (entry.clone(), expires));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), String> {
        self.state
            .lock()
            .expect("idempotency entries")
            .entries
            .remove(key);
        Ok(())
    }
}

pub struct RedisStore {
    client: crm_platform::redis::RedisClient,
    prefix: String,
}

impl RedisStore {
    pub fn new(client: crm_platform::redis::RedisClient, prefix: &str) -> Self {
        Self {
            client,
            prefix: format!("{prefix}idempotency:"),
        }
    }
}

const UNAVAILABLE: &str = "the idempotency store (Redis) does not answer";

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn claim(&self, key: &str, running: &Entry) -> Result<Result<(), Entry>, String> {
        let key = format!("{}{key}", self.prefix);
        let lifetime = running.lifetime().as_secs();
        let running = serde_json::to_string(running).map_err(|e| e.to_string())?;
        let claimed: Option<Option<String>> = self
            .client
            .call(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&running)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(lifetime)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        match claimed.ok_or(UNAVAILABLE)? {
            None => Ok(Ok(())),
            Some(held) => serde_json::from_str(&held)
                .map(Err)
                .map_err(|e| format!("an unreadable idempotency entry: {e}")),
        }
    }

    async fn complete(&self, key: &str, entry: &Entry) -> Result<(), String> {
        let key = format!("{}{key}", self.prefix);
        let value = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        let lifetime = entry.lifetime().as_secs();
        let done: Option<()> = self
            .client
            .call(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("EX")
                    .arg(lifetime)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        done.ok_or_else(|| UNAVAILABLE.to_owned())
    }

    async fn release(&self, key: &str) -> Result<(), String> {
        let key = format!("{}{key}", self.prefix);
        let done: Option<()> = self
            .client
            .call(
                |mut conn| async move { redis::cmd("DEL").arg(&key).query_async(&mut conn).await },
            )
            .await;
        done.ok_or_else(|| UNAVAILABLE.to_owned())
    }
}

/// The method, the route, its path parameters, the query as the handler reads it and the
/// content type, hashed ahead of the body. Each part is length-prefixed, so no two
/// requests hash alike by moving bytes from one part to the next.
async fn fingerprint_start(parts: &mut Parts, canonical_query: &[u8]) -> Result<Sha256, Error> {
    fn part(hash: &mut Sha256, bytes: &[u8]) {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    let mut hash = Sha256::new();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
    part(&mut hash, parts.method.as_str().as_bytes());
    part(&mut hash, route.as_bytes());
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| Error::Malformed(e.body_text()))?;
    for (name, value) in &params {
        part(&mut hash, name.as_bytes());
        part(&mut hash, value.as_bytes());
    }
    part(&mut hash, canonical_query);
    let content_type = parts.headers.get(axum::http::header::CONTENT_TYPE);
    part(&mut hash, content_type.map_or(&[][..], |v| v.as_bytes()));
    Ok(hash)
}

/// The body read whole and its fingerprint: in memory for the JSON creates, spooled to
/// a temporary file for an import (up to its 1 GiB), so a retry is known before the
/// upload is imported again.
async fn read_body(body: Body, mut hash: Sha256, spool: bool) -> Result<(Body, String), Error> {
    use futures::StreamExt;
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};

    if !spool {
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| Error::PayloadTooLarge(MAX_BODY_BYTES))?;
        hash.update(&bytes);
        return Ok((Body::from(bytes), crate::auth::hex(&hash.finalize())));
    }
    let failed = |e: std::io::Error| Error::internal(format!("cannot spool the upload: {e}"));
    let spooled = tempfile::NamedTempFile::new().map_err(failed)?;
    let mut file = tokio::fs::File::from_std(spooled.reopen().map_err(failed)?);
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Error::Malformed("the upload broke off".into()))?;
        size += chunk.len() as u64;
        if size > crate::imports::MAX_IMPORT_BYTES {
            return Err(Error::PayloadTooLarge(
                crate::imports::MAX_IMPORT_BYTES as usize,
            ));
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)?;
    file.rewind().await.map_err(failed)?;
    // The file goes when the import has read it.
    let path = spooled.into_temp_path();
    let chunks = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
        let _keep = &path;
        chunk
    });
    Ok((
        Body::from_stream(chunks),
        crate::auth::hex(&hash.finalize()),
    ))
}

fn replay(kept: &Kept) -> Response {
    let mut response = Response::new(Body::from(kept.body.clone()));
    *response.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    for (name, value) in &kept.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    );
    response
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// The query of a request as the route's handler reads it, in one spelling.
pub type CanonicalQuery = Arc<dyn Fn(&Uri) -> Result<Vec<u8>, Error> + Send + Sync>;

/// A route's idempotency: where keys are kept, how its body is held and how its query
/// reads (`crate::policy::Policies::once_per_key`).
#[derive(Clone)]
pub struct Once {
    pub store: Arc<dyn IdempotencyStore>,
    pub upload: Upload,
    pub canonical_query: CanonicalQuery,
}

/// Runs a request with an `Idempotency-Key` once per key.
pub async fn idempotent(State(once): State<Once>, request: Request, next: Next) -> Response {
    let Some(raw_key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match run_once(once, &raw_key, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run_once(
    once: Once,
    raw_key: &HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, Error> {
    let key = raw_key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            Error::Malformed("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
        })?;
    let caller = request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.name.clone());
    // The caller's name may hold ':' (a JWT subject): its length keeps keys apart.
    let store_key = format!("{}:{caller}:{key}", caller.len());
    let (mut parts, body) = request.into_parts();
    let query = (once.canonical_query)(&parts.uri)?;
    let start = fingerprint_start(&mut parts, &query).await?;
    let (body, fingerprint) = read_body(body, start, once.upload == Upload::Spooled).await?;
    let running = Entry::Running {
        fingerprint: fingerprint.clone(),
        lifetime: running_at_most(once.upload).as_secs(),
    };
    match once.store.claim(&store_key, &running).await {
        Err(reason) => {
            tracing::error!(%reason, "idempotency store failed");
            return Err(Error::Service(crm_proto::status::ServiceError::new(
                crm_proto::status::ErrorKind::Unavailable,
                reason,
            )));
        }
        Ok(Err(held)) => return Ok(answer_for(held, &fingerprint)),
        Ok(Ok(())) => {}
    }
    // The request runs to its end and its answer is kept even when the client goes away
    // meanwhile: its retry then gets that answer, not a key held "in progress" (and not a
    // second run of something that may have happened).
    let first = crate::request_id::in_this_request(async move {
        let response = next.run(Request::from_parts(parts, body)).await;
        keep(&*once.store, &store_key, fingerprint, response).await
    });
    tokio::spawn(first)
        .await
        .map_err(|e| Error::internal(format!("an idempotent request failed: {e}")))
}

/// Keeps the answer for the key, or frees the key for a failure a retry may get past.
async fn keep(
    store: &dyn IdempotencyStore,
    store_key: &str,
    fingerprint: String,
    response: Response,
) -> Response {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(reason) = store.release(store_key).await {
            tracing::error!(%reason, "cannot free an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let done = Entry::Done {
        fingerprint,
        answer: Kept {
            status: parts.status.as_u16(),
            headers: kept_headers(&parts.headers),
            body: body.to_vec(),
        },
    };
    if let Err(reason) = store.complete(store_key, &done).await {
        tracing::error!(%reason, "cannot keep an idempotent answer");
    }
    Response::from_parts(parts, Body::from(body))
}

fn answer_for(held: Entry, fingerprint: &str) -> Response {
    let same = match &held {
        Entry::Running { fingerprint: f, .. } | Entry::Done { fingerprint: f, .. } => {
            f == fingerprint
        }
    };
    if !same {
        return Error::field(
            "Idempotency-Key",
            "was used with another request body",
            "this Idempotency-Key belongs to a different request",
        )
        .into_response();
    }
    match held {
        Entry::Done { answer, .. } => replay(&answer),
        Entry::Running { .. } => Error::Service(crm_proto::status::ServiceError::new(
            crm_proto::status::ErrorKind::Conflict,
            "the first request with this Idempotency-Key is still running; retry shortly",
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests;
