use super::*;

/// Every store: a first claim wins, the next one sees what the key holds.
pub async fn contract(store: &dyn IdempotencyStore, key: &str) {
    let running = |fingerprint: &str| Entry::Running {
        fingerprint: fingerprint.into(),
        lifetime: 30,
    };
    assert_eq!(store.claim(key, &running("fp-1")).await.unwrap(), Ok(()));
    assert_eq!(
        store.claim(key, &running("fp-1")).await.unwrap(),
        Err(running("fp-1"))
    );
    let done = Entry::Done {
        fingerprint: "fp-1".into(),
        answer: Kept {
            status: 201,
            headers: vec![("location".into(), "/api/customers/1".into())],
            body: b"{}".to_vec(),
        },
    };
    store.complete(key, &done).await.unwrap();
    assert_eq!(store.claim(key, &running("fp-2")).await.unwrap(), Err(done));
    store.release(key).await.unwrap();
    assert_eq!(store.claim(key, &running("fp-2")).await.unwrap(), Ok(()));
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

#[derive(Debug, serde::Deserialize, Serialize)]
struct DryRun {
    dry_run: Option<bool>,
}

/// `POST /things/{id}?dry_run=` once per key; the handler counts its runs and takes
/// `delay` when asked to.
fn app(runs: Arc<std::sync::atomic::AtomicU32>, delay: Duration) -> axum::Router {
    use std::sync::atomic::Ordering;
    let once = Once {
        store: Arc::new(MemoryStore::default()),
        upload: Upload::Json,
        canonical_query: Arc::new(crate::policy::canonical_query::<DryRun>),
    };
    let handler = move |body: String| async move {
        tokio::time::sleep(delay).await;
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        (StatusCode::CREATED, format!("run {run}: {body}"))
    };
    axum::Router::new().route(
        "/things/{id}",
        axum::routing::post(handler)
            .route_layer(axum::middleware::from_fn_with_state(once, idempotent)),
    )
}

async fn post(app: &axum::Router, uri: &str, key: &str, body: &str) -> (StatusCode, String) {
    use tower::ServiceExt;
    let request = Request::post(uri)
        .header("idempotency-key", key)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_query_is_part_of_the_request_in_every_spelling() {
    let runs = Arc::default();
    let app = app(Arc::clone(&runs), Duration::ZERO);
    let dry = post(&app, "/things/1?dry_run=true", "k", "{}").await;
    assert_eq!(dry, (StatusCode::CREATED, "run 1: {}".into()));
    // The same query spelled otherwise is the same request: the first answer again.
    let again = post(&app, "/things/1?dry_run=%74rue&other=x", "k", "{}").await;
    assert_eq!(again, dry);
    // Without the dry run it is another request, never the dry run's answer.
    let (status, _) = post(&app, "/things/1", "k", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = post(&app, "/things/2?dry_run=true", "k", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "another path id");
    let (status, _) = post(&app, "/things/1?dry_run=true&dry_run=false", "k2", "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a repeated parameter");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_that_went_away_gets_the_answer_on_retry() {
    let runs = Arc::default();
    let app = app(Arc::clone(&runs), Duration::from_millis(300));
    let gone = tokio::time::timeout(
        Duration::from_millis(20),
        post(&app, "/things/1", "k", "{}"),
    )
    .await;
    assert!(gone.is_err(), "the client gave up before the answer");
    // While the first request runs, a retry is told so; then it gets the answer.
    let mut answer = post(&app, "/things/1", "k", "{}").await;
    for _ in 0..100 {
        if answer.0 != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = post(&app, "/things/1", "k", "{}").await;
    }
    assert_eq!(answer, (StatusCode::CREATED, "run 1: {}".into()));
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}
