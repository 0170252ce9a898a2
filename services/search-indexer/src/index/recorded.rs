//! Elasticsearch exchanges on file, for tests on a machine without a cluster. A local
//! HTTP server answers each request with the next recorded response, after checking
//! that the request is exactly the recorded one (method, path and query, JSON body; a
//! bulk body line by line), so the tests pin the JSON the adapter sends as much as
//! they exercise how it reads answers.
//!
//! With `CRM_TEST_ELASTICSEARCH_URL` the same tests run against that cluster instead;
//! adding `CRM_TEST_ELASTICSEARCH_RECORD=1` also writes what the cluster answered back
//! to the files (recordings/<name>.json).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// JSON, or a bulk body as an array of its lines; absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// Where the answers come from (a cluster's version, or how they were written).
    pub source: String,
    pub exchanges: Vec<Exchange>,
}

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/index/recordings")
        .join(format!("{name}.json"))
}

fn request_body(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    if let Ok(json) = serde_json::from_slice(bytes) {
        return Some(json);
    }
    let lines = String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.into())))
        .collect();
    Some(Value::Array(lines))
}

enum Mode {
    Replay {
        next: usize,
    },
    Record {
        cluster: String,
        client: reqwest::Client,
    },
}

struct Shared {
    name: String,
    recording: Recording,
    mode: Mode,
    mismatches: Vec<String>,
}

/// Where the adapter under test sends its requests.
pub struct Elastic {
    /// The URL to give the adapter.
    pub url: String,
    shared: Option<Arc<Mutex<Shared>>>,
}

impl Elastic {
    /// Replays recordings/<name>.json, or uses the cluster at
    /// `CRM_TEST_ELASTICSEARCH_URL` after removing what an earlier run left of
    /// `indices` (patterns).
    pub async fn start(name: &str, indices: &[&str]) -> Self {
        let cluster = std::env::var("CRM_TEST_ELASTICSEARCH_URL").ok();
        Self::with_cluster(name, indices, cluster).await
    }

    /// Replays recordings/<name>.json even when a cluster is given: failures a real
    /// cluster cannot be made to give on cue.
    pub async fn replay(name: &str) -> Self {
        Self::with_cluster(name, &[], None).await
    }

    async fn with_cluster(name: &str, indices: &[&str], cluster: Option<String>) -> Self {
        let record = std::env::var("CRM_TEST_ELASTICSEARCH_RECORD").is_ok_and(|v| v == "1");
        let mode = match cluster {
            Some(cluster) => {
                let client = reqwest::Client::new();
                for pattern in indices {
                    let url = format!("{}/{pattern}", cluster.trim_end_matches('/'));
                    client
                        .delete(url)
                        .send()
                        .await
                        .expect("the test cluster answers");
                }
                if !record {
                    return Self {
                        url: cluster,
                        shared: None,
                    };
                }
                Mode::Record { cluster, client }
            }
            None => Mode::Replay { next: 0 },
        };
        let recording = match mode {
            Mode::Replay { .. } => {
                let text = std::fs::read_to_string(file(name))
                    .unwrap_or_else(|e| panic!("recording {name}: {e}"));
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("recording {name}: {e}"))
            }
            Mode::Record { ref cluster, .. } => Recording {
                source: std::env::var("CRM_TEST_ELASTICSEARCH_SOURCE")
                    .unwrap_or_else(|_| format!("recorded from the cluster at {cluster}")),
                exchanges: Vec::new(),
            },
        };
        let shared = Arc::new(Mutex::new(Shared {
            name: name.to_owned(),
            recording,
            mode,
            mismatches: Vec::new(),
        }));
        let router = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            shared: Some(shared),
        }
    }

    /// Asserts every request matched and every recorded exchange was used; in record
    /// mode writes the file.
    pub fn finish(self) {
        let Some(shared) = self.shared else { return };
        let shared = shared.lock().unwrap();
        assert!(
            shared.mismatches.is_empty(),
            "{}: requests differ from the recording:\n{}",
            shared.name,
            shared.mismatches.join("\n")
        );
        match &shared.mode {
            Mode::Replay { next } => assert_eq!(
                *next,
                shared.recording.exchanges.len(),
                "{}: recorded requests were never sent",
                shared.name
            ),
            Mode::Record { .. } => {
                let text = serde_json::to_string_pretty(&shared.recording).unwrap();
                std::fs::write(file(&shared.name), text + "\n").unwrap();
            }
        }
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        body: request_body(&body),
    };
    let forward = {
        let mut shared = shared.lock().unwrap();
        let Shared {
            recording,
            mode,
            mismatches,
            ..
        } = &mut *shared;
        match mode {
            Mode::Replay { next } => {
                let Some(exchange) = recording.exchanges.get(*next) else {
                    let reason = format!("unexpected request after the last: {request:?}");
                    mismatches.push(reason.clone());
                    return mismatch(reason);
                };
                if exchange.request != request {
                    let reason = format!(
                        "exchange {next}:\n  recorded {}\n  sent     {}",
                        serde_json::to_string(&exchange.request).unwrap(),
                        serde_json::to_string(&request).unwrap()
                    );
                    mismatches.push(reason.clone());
                    return mismatch(reason);
                }
                *next += 1;
                return recorded(&exchange.response);
            }
            Mode::Record { cluster, client } => (cluster.clone(), client.clone()),
        }
    };
    let (cluster, client) = forward;
    let mut outgoing = client.request(method, format!("{cluster}{}", request.path));
    if let Some(content_type) = headers.get("content-type") {
        outgoing = outgoing.header("content-type", content_type);
    }
    let got = outgoing
        .body(body)
        .send()
        .await
        .expect("the cluster answers");
    let status = got.status().as_u16();
    let retry_after = got
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(|v| vec![("retry-after".to_owned(), v.to_owned())])
        .unwrap_or_default();
    let body = got.json().await.unwrap_or(Value::Null);
    let response = RecordedResponse {
        status,
        headers: retry_after,
        body,
    };
    shared.lock().unwrap().recording.exchanges.push(Exchange {
        request,
        response: response.clone(),
    });
    recorded(&response)
}

fn recorded(response: &RecordedResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = (status, axum::Json(response.body.clone())).into_response();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            answer.headers_mut().insert(name, value);
        }
    }
    answer
}

/// A 400, which the adapter does not retry, so a mismatch fails at once (and says how).
fn mismatch(reason: String) -> Response {
    let body = json!({ "error": { "type": "recording_mismatch", "reason": reason } });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
