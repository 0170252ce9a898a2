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
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{auth::Principal, error::Error, extract::MAX_BODY_BYTES};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// How long an answer is kept for retries.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a key stays claimed by a first request that never finished (the gateway
/// died, the client went away): a little longer than the longest request, an import.
const RUNNING_AT_MOST: Duration =
    Duration::from_secs(crate::imports::IMPORT_DEADLINE.as_secs() + 60);
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
    },
    Done {
        fingerprint: String,
        answer: Kept,
    },
}

impl Entry {
    fn lifetime(&self) -> Duration {
        match self {
            Entry::Running { .. } => RUNNING_AT_MOST,
            Entry::Done { .. } => KEEP,
        }
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a first request; `Err` with what the key already holds.
    async fn claim(&self, key: &str, fingerprint: &str) -> Result<Result<(), Entry>, String>;
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
    async fn claim(&self, key: &str, fingerprint: &str) -> Result<Result<(), Entry>, String> {
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
        let running = Entry::Running {
            fingerprint: fingerprint.to_owned(),
        };
        let expires = now + running.lifetime();
        state.entries.insert(key.to_owned(), (running, expires));
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
    async fn claim(&self, key: &str, fingerprint: &str) -> Result<Result<(), Entry>, String> {
        let key = format!("{}{key}", self.prefix);
        let running = Entry::Running {
            fingerprint: fingerprint.to_owned(),
        };
        let lifetime = running.lifetime().as_secs();
        let running = serde_json::to_string(&running).map_err(|e| e.to_string())?;
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

/// The requests a key applies to: the creating `POST`s.
fn applies(method: &Method, path: &str) -> bool {
    method == Method::POST
        && (path == "/api/customers"
            || path == "/api/imports"
            || (path.starts_with("/api/customers/") && path.ends_with("/merge")))
}

/// The request line and content type, hashed ahead of the body.
fn fingerprint_start(method: &Method, path: &str, headers: &HeaderMap) -> Sha256 {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b" ");
    hash.update(path);
    hash.update(b"\n");
    if let Some(content_type) = headers.get(axum::http::header::CONTENT_TYPE) {
        hash.update(content_type.as_bytes());
    }
    hash.update(b"\n");
    hash
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
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
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

/// Runs a request with an `Idempotency-Key` once per key.
pub async fn idempotent(
    State(store): State<Arc<dyn IdempotencyStore>>,
    request: Request,
    next: Next,
) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let Some(raw_key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    if !applies(&method, &path) {
        return next.run(request).await;
    }
    let Some(key) = raw_key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .map(str::to_owned)
    else {
        return Error::Malformed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )
        .into_response();
    };
    let caller = request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.name.clone());
    let (parts, body) = request.into_parts();
    let start = fingerprint_start(&method, &path, &parts.headers);
    let (body, fingerprint) = match read_body(body, start, path == "/api/imports").await {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    // The caller's name may hold ':' (a JWT subject): its length keeps keys apart.
    let store_key = format!("{}:{caller}:{key}", caller.len());
    match store.claim(&store_key, &fingerprint).await {
        Err(reason) => {
            tracing::error!(%reason, "idempotency store failed");
            return Error::Service(crm_proto::status::ServiceError::new(
                crm_proto::status::ErrorKind::Unavailable,
                reason,
            ))
            .into_response();
        }
        Ok(Err(held)) => return answer_for(held, &fingerprint),
        Ok(Ok(())) => {}
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    // A failure that a retry may get past frees the key; anything else is the answer.
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(reason) = store.release(&store_key).await {
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
    if let Err(reason) = store.complete(&store_key, &done).await {
        tracing::error!(%reason, "cannot keep an idempotent answer");
    }
    Response::from_parts(parts, Body::from(body))
}

fn answer_for(held: Entry, fingerprint: &str) -> Response {
    let same = match &held {
        Entry::Running { fingerprint: f } | Entry::Done { fingerprint: f, .. } => f == fingerprint,
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
mod tests {
    use super::*;

    /// Every store: a first claim wins, the next one sees what the key holds.
    pub async fn contract(store: &dyn IdempotencyStore, key: &str) {
        assert_eq!(store.claim(key, "fp-1").await.unwrap(), Ok(()));
        let running = Entry::Running {
            fingerprint: "fp-1".into(),
        };
        assert_eq!(store.claim(key, "fp-1").await.unwrap(), Err(running));
        let done = Entry::Done {
            fingerprint: "fp-1".into(),
            answer: Kept {
                status: 201,
                headers: vec![("location".into(), "/api/customers/1".into())],
                body: b"{}".to_vec(),
            },
        };
        store.complete(key, &done).await.unwrap();
        assert_eq!(store.claim(key, "fp-2").await.unwrap(), Err(done));
        store.release(key).await.unwrap();
        assert_eq!(store.claim(key, "fp-2").await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn memory_store() {
        contract(&MemoryStore::default(), "k").await;
    }

    #[tokio::test]
    async fn redis_store() {
        let url = std::env::var("CRM_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let url = crm_platform::settings::Secret::new(url);
        let client =
            crm_platform::redis::RedisClient::new(&url, Duration::from_secs(2)).expect("client");
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        contract(&RedisStore::new(client, &prefix), "k").await;
    }

    #[test]
    fn only_creating_posts_take_a_key() {
        assert!(applies(&Method::POST, "/api/customers"));
        assert!(applies(&Method::POST, "/api/customers/1/merge"));
        assert!(applies(&Method::POST, "/api/imports"));
        assert!(!applies(&Method::POST, "/api/customers/search"));
        assert!(!applies(&Method::PATCH, "/api/customers/1"));
    }
}
