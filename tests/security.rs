//! Authentication, scopes and limits at the REST API, on the standalone binary with
//! credentials configured (it enforces them as the gateway does), the refusal to start
//! without any, and how the distributed services authenticate each other (internal token,
//! mutual TLS).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_e2e::{ADMIN_KEY_ENTRY, StatusCode, TestApp, assert_problem, binary, json};
use crm_platform::testing::TestCa;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;

const HS256_SECRET: &str = "e2e-hs256-secret-of-at-least-32-bytes!";

/// `name:sha256(key):scopes`, as an operator configures a key.
fn key_entry(name: &str, key: &str, scopes: &str) -> String {
    format!("{name}:{}:{scopes}", crm_gateway::auth::hash_key(key))
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
    let header = Header {
        kid: kid.map(str::to_owned),
        ..Header::new(algorithm)
    };
    encode(&header, &claims, key).unwrap()
}

fn claims(scope: &str, expires_in: i64) -> Value {
    json!({ "sub": "e2e-user", "scope": scope, "exp": now() as i64 + expires_in })
}

async fn send(request: RequestBuilder, bearer: Option<&str>) -> Response {
    let request = match bearer {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    };
    request.send().await.unwrap()
}

/// A client without the harness's default credentials.
fn bare() -> Client {
    Client::new()
}

#[tokio::test]
async fn every_api_route_needs_a_valid_credential_with_its_scope() {
    let keys = [
        key_entry("reader", "reader-key", "customers:read"),
        key_entry("writer", "writer-key", "customers:write"),
        ADMIN_KEY_ENTRY.to_owned(),
    ]
    .join(";");
    let app = TestApp::standalone_with_env(&[
        ("CRM_API_KEYS", keys),
        ("CRM_JWT_HS256_SECRET", HS256_SECRET.into()),
        ("CRM_JWT_JWKS_FILE", fixture("jwks.json")),
    ])
    .await;
    let customers = format!("{}/api/customers", app.base_url);
    let client = bare();

    // No credential, a wrong one, another scheme: the same 401, no hint which.
    let mut details = Vec::new();
    for bearer in [None, Some("wrong-key"), Some("a.b.c")] {
        let response = send(client.get(&customers), bearer).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED).await;
        details.push(problem["detail"].clone());
    }
    let basic = client
        .get(&customers)
        .header("authorization", "Basic ZTJlOmUyZQ==")
        .send()
        .await
        .unwrap();
    details.push(assert_problem(basic, StatusCode::UNAUTHORIZED).await["detail"].clone());
    details.dedup();
    assert_eq!(details.len(), 1, "{details:?}");

    // Health and the API document stay open.
    for open in ["/healthz", "/openapi.json"] {
        let response = client
            .get(format!("{}{open}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }

    // A reader reads, and may not write.
    let response = send(client.get(&customers), Some("reader-key")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let write = client
        .post(&customers)
        .json(&json!({ "email": "r@example.com" }));
    assert_problem(send(write, Some("reader-key")).await, StatusCode::FORBIDDEN).await;
    let events = client
        .post(format!("{}/api/events", app.base_url))
        .json(&json!({ "events": [] }));
    assert_problem(
        send(events, Some("reader-key")).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // A writer writes customers, and may not send events.
    let create = client
        .post(&customers)
        .json(&json!({ "email": "w@example.com" }));
    assert_eq!(
        send(create, Some("writer-key")).await.status(),
        StatusCode::CREATED
    );
    let events = client
        .post(format!("{}/api/events", app.base_url))
        .json(&json!({ "events": [] }));
    assert_problem(
        send(events, Some("writer-key")).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // The admin key may do anything.
    let create = client
        .post(&customers)
        .json(&json!({ "email": "a@example.com" }));
    assert_eq!(
        send(create, Some(crm_e2e::ADMIN_KEY)).await.status(),
        StatusCode::CREATED
    );

    // JWTs: HS256 with its scopes; expired, wrongly signed or unsigned ones are refused.
    let hs256 = EncodingKey::from_secret(HS256_SECRET.as_bytes());
    let reader = token(
        Algorithm::HS256,
        None,
        &hs256,
        claims("customers:read", 300),
    );
    assert_eq!(
        send(client.get(&customers), Some(&reader)).await.status(),
        StatusCode::OK
    );
    let write = client
        .post(&customers)
        .json(&json!({ "email": "j@example.com" }));
    assert_problem(send(write, Some(&reader)).await, StatusCode::FORBIDDEN).await;
    let expired = token(Algorithm::HS256, None, &hs256, claims("admin", -600));
    let forged = token(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another secret of the same length, or so"),
        claims("admin", 300),
    );
    let unsigned = format!(
        "{}.{}.",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
        "eyJzdWIiOiJ4Iiwic2NvcGUiOiJhZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0"
    );
    for bad in [expired, forged, unsigned] {
        let response = send(client.get(&customers), Some(&bad)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
    }

    // RS256 and ES256 against the JWKS file, scopes as an array too.
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(fixture("jwt-rs256.pem")).unwrap()).unwrap();
    let ec = EncodingKey::from_ec_pem(&std::fs::read(fixture("jwt-es256.pem")).unwrap()).unwrap();
    let rs256 = token(
        Algorithm::RS256,
        Some("e2e-rsa"),
        &rsa,
        claims("customers:write", 300),
    );
    let create = client
        .post(&customers)
        .json(&json!({ "email": "rs@example.com" }));
    assert_eq!(
        send(create, Some(&rs256)).await.status(),
        StatusCode::CREATED
    );
    let es256 = token(
        Algorithm::ES256,
        Some("e2e-ec"),
        &ec,
        json!({ "sub": "svc", "scope": ["customers:read"], "exp": now() + 300 }),
    );
    assert_eq!(
        send(client.get(&customers), Some(&es256)).await.status(),
        StatusCode::OK
    );
    // A known key id with another key's signature.
    let mixed = token(Algorithm::RS256, Some("e2e-ec"), &rsa, claims("admin", 300));
    assert_problem(
        send(client.get(&customers), Some(&mixed)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

/// Serves `body` as JSON to every request on a port of its own (a JWKS endpoint).
async fn serve_json(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    url
}

#[tokio::test]
async fn tokens_are_checked_against_the_keys_of_a_jwks_url() {
    let jwks = std::fs::read_to_string(fixture("jwks.json")).unwrap();
    let app = TestApp::standalone_with_env(&[("CRM_JWT_JWKS_URL", serve_json(jwks).await)]).await;
    let customers = format!("{}/api/customers", app.base_url);
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(fixture("jwt-rs256.pem")).unwrap()).unwrap();

    let reader = token(
        Algorithm::RS256,
        Some("e2e-rsa"),
        &rsa,
        claims("customers:read", 300),
    );
    let response = send(bare().get(&customers), Some(&reader)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let write = bare()
        .post(&customers)
        .json(&json!({ "email": "jwks@example.com" }));
    assert_problem(send(write, Some(&reader)).await, StatusCode::FORBIDDEN).await;
    let unknown_key = token(
        Algorithm::RS256,
        Some("not-in-the-set"),
        &rsa,
        claims("admin", 300),
    );
    let response = send(bare().get(&customers), Some(&unknown_key)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn two_keys_are_valid_at_once_while_one_replaces_the_other() {
    let old = ADMIN_KEY_ENTRY.replace("e2e:", "old:");
    let new = key_entry("new", "reader-key", "admin");
    let app = TestApp::standalone_with_env(&[("CRM_API_KEYS", format!("{old}\n{new}"))]).await;
    let url = format!("{}/api/customers", app.base_url);
    for key in [crm_e2e::ADMIN_KEY, "reader-key"] {
        let response = send(bare().get(&url), Some(key)).await;
        assert_eq!(response.status(), StatusCode::OK, "{key}");
    }
    // After the rotation only the new key is configured: the old one is refused.
    drop(app);
    let app = TestApp::standalone_with_env(&[("CRM_API_KEYS", new)]).await;
    let url = format!("{}/api/customers", app.base_url);
    let response = send(bare().get(&url), Some(crm_e2e::ADMIN_KEY)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        send(bare().get(&url), Some("reader-key")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_429_with_retry_after() {
    let other = key_entry("other", "reader-key", "customers:read");
    let app = TestApp::standalone_with_env(&[
        ("CRM_API_KEYS", format!("{ADMIN_KEY_ENTRY};{other}")),
        ("CRM_RATE_LIMIT_PER_SECOND", "0.5".into()),
        ("CRM_RATE_LIMIT_BURST", "2".into()),
    ])
    .await;
    let url = format!("{}/api/customers", app.base_url);
    for _ in 0..2 {
        let response = send(bare().get(&url), Some(crm_e2e::ADMIN_KEY)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = send(bare().get(&url), Some(crm_e2e::ADMIN_KEY)).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // Another caller has its own budget.
    assert_eq!(
        send(bare().get(&url), Some("reader-key")).await.status(),
        StatusCode::OK
    );
    // And the budget comes back.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        send(bare().get(&url), Some(crm_e2e::ADMIN_KEY))
            .await
            .status(),
        StatusCode::OK
    );
}

/// Past `CRM_MAX_CONCURRENT_REQUESTS` requests in progress the next one is refused at
/// once (503), and served again once a slot is free.
#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_503() {
    let app = TestApp::standalone_with_env(&[
        ("CRM_API_KEYS", ADMIN_KEY_ENTRY.into()),
        ("CRM_MAX_CONCURRENT_REQUESTS", "1".into()),
    ])
    .await;
    let customers = format!("{}/api/customers", app.base_url);
    // An import whose upload is still arriving holds the one slot.
    let start_import = || {
        let (upload, chunks) = futures::channel::mpsc::unbounded::<Result<_, std::io::Error>>();
        upload
            .unbounded_send(Ok(b"email,first_name\n".to_vec()))
            .unwrap();
        let importing = tokio::spawn(send(
            bare()
                .post(format!("{}/api/imports", app.base_url))
                .header("content-type", "text/csv")
                .body(reqwest::Body::wrap_stream(chunks)),
            Some(crm_e2e::ADMIN_KEY),
        ));
        (upload, importing)
    };
    let (mut upload, mut importing) = start_import();
    let mut attempts = 0;
    let shed = loop {
        // Time for the import to take the slot before the probe; on a slow machine the
        // probe may come first and the import is shed instead: then it is sent again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if importing.is_finished() {
            (upload, importing) = start_import();
            continue;
        }
        let response = send(bare().get(&customers), Some(crm_e2e::ADMIN_KEY)).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        attempts += 1;
        assert!(attempts < 100, "never shed: {}", response.status());
    };
    assert_problem(shed, StatusCode::SERVICE_UNAVAILABLE).await;

    upload
        .unbounded_send(Ok(b"shed@example.com,Ada\n".to_vec()))
        .unwrap();
    drop(upload);
    let imported = importing.await.unwrap();
    assert_eq!(imported.status(), StatusCode::ACCEPTED);
    let response = send(bare().get(&customers), Some(crm_e2e::ADMIN_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK, "served again");
}

#[tokio::test]
async fn an_oversized_body_is_413_after_authentication() {
    let app = TestApp::standalone_with_env(&[("CRM_API_KEYS", ADMIN_KEY_ENTRY.into())]).await;
    let url = format!("{}/api/customers", app.base_url);
    let huge = vec![b' '; 2 * 1024 * 1024];
    let anonymous = bare()
        .post(&url)
        .header("content-type", "application/json")
        .body(huge.clone());
    assert_problem(send(anonymous, None).await, StatusCode::UNAUTHORIZED).await;
    let admin = bare()
        .post(&url)
        .header("content-type", "application/json")
        .body(huge);
    assert_problem(
        send(admin, Some(crm_e2e::ADMIN_KEY)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

/// Runs a binary that should refuse to start; its exit and log.
async fn refused(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(binary(name));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("CRM_INTERNAL_TOKEN")
        .env_remove("CRM_API_KEYS")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("it exits")
        .unwrap();
    assert!(!output.status.success(), "{name} started");
    String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
}

#[tokio::test]
async fn without_credentials_only_loopback_is_served() {
    let gateway = refused("crm-gateway", &[], &[("CRM_HTTP_ADDR", "127.0.0.1:0")]).await;
    assert!(
        gateway.contains("no credentials are configured"),
        "{gateway}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let exposed = refused("crm", &["--listen", "0.0.0.0:0", "--data-dir", data], &[]).await;
    assert!(
        exposed.contains("no credentials are configured"),
        "{exposed}"
    );

    // A service exposing gRPC beyond loopback wants the internal token.
    let exposed = refused(
        "crm-event-ingest",
        &[],
        &[
            ("CRM_GRPC_ADDR", "0.0.0.0:0"),
            ("CRM_HTTP_ADDR", "127.0.0.1:0"),
        ],
    )
    .await;
    assert!(
        exposed.contains("neither CRM_INTERNAL_TOKEN nor CRM_TLS_* is set"),
        "{exposed}"
    );
    let half = refused(
        "crm-event-ingest",
        &[],
        &[
            ("CRM_GRPC_ADDR", "127.0.0.1:0"),
            ("CRM_HTTP_ADDR", "127.0.0.1:0"),
            ("CRM_TLS_CERT", "service.pem"),
        ],
    )
    .await;
    assert!(half.contains("set all three or none"), "{half}");
    // Mutual TLS is enough to expose gRPC.
    let dir = tempfile::tempdir().unwrap();
    let mut env = TestCa::new("e2e ca").issue_files(dir.path());
    env.push(("CRM_GRPC_ADDR", "0.0.0.0:0".into()));
    env.push(("CRM_HTTP_ADDR", "127.0.0.1:0".into()));
    crm_e2e::spawn("crm-event-ingest", &[], &env, "event-ingest listening").await;
    let unusable = refused(
        "crm-event-ingest",
        &[],
        &[
            ("CRM_GRPC_ADDR", "127.0.0.1:0"),
            ("CRM_HTTP_ADDR", "127.0.0.1:0"),
            ("CRM_INTERNAL_TOKEN", "tok\u{1}en"),
        ],
    )
    .await;
    assert!(
        unusable.contains("CRM_INTERNAL_TOKEN holds characters"),
        "{unusable}"
    );

    let app = TestApp::standalone().await;
    let open = bare()
        .get(format!("{}/api/customers", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    assert!(
        app.logs()
            .iter()
            .any(|line| line.contains("the API is open")),
        "the standalone says it runs open"
    );
    // A page of another site reaching loopback through a name of its own (DNS
    // rebinding) sends that name as the Host: refused, whatever the route.
    let port = app.base_url.rsplit(':').next().unwrap();
    for (host, status) in [
        (
            format!("evil.example:{port}"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            format!("localhost.evil.example:{port}"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (format!("localhost:{port}"), StatusCode::OK),
        (format!("127.0.0.1:{port}"), StatusCode::OK),
    ] {
        for path in ["/api/customers", "/openapi.json"] {
            let response = bare()
                .get(format!("{}{path}", app.base_url))
                .header("host", &host)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{host} {path}");
        }
    }
}

#[tokio::test]
async fn a_parameter_gets_the_same_answer_in_every_spelling() {
    let keys = [
        key_entry("writer", "writer-key", "customers:write,customers:read"),
        ADMIN_KEY_ENTRY.to_owned(),
    ]
    .join(";");
    let app = TestApp::standalone_with_env(&[
        ("CRM_API_KEYS", keys),
        ("CRM_JWT_HS256_SECRET", HS256_SECRET.into()),
    ])
    .await;
    let id = app.given_customer_id("kept@example.com").await;
    let customer = format!("{}/api/customers/{id}", app.base_url);

    // Erasure is for admins, however `erase` is spelled.
    for query in [
        "erase=true",
        "erase=%74rue",
        "erase=tru%65&other=1",
        "%65rase=true",
    ] {
        let delete = bare().delete(format!("{customer}?{query}"));
        let response = send(delete, Some("writer-key")).await;
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
    // A parameter given twice is malformed, not read one way by the guard and another
    // by the handler.
    let twice = bare().delete(format!("{customer}?erase=false&erase=true"));
    assert_problem(
        send(twice, Some("writer-key")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let read = send(bare().get(&customer), Some("writer-key")).await;
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["email"], "kept@example.com", "nothing was erased");
    assert_eq!(read["status"], "active", "nothing was deleted");

    // A token may carry scopes of other systems beside ours: ours still count.
    let hs256 = EncodingKey::from_secret(HS256_SECRET.as_bytes());
    let token = token(
        Algorithm::HS256,
        None,
        &hs256,
        claims("openid customers:read profile", 300),
    );
    let response = send(bare().get(&customer), Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A dry run and the merge itself are two requests, even under one Idempotency-Key.
    let other = app.given_customer_id("other@example.com").await;
    let merge = |query: &str| {
        bare()
            .post(format!("{customer}/merge{query}"))
            .header("idempotency-key", "merge-1")
            .json(&json!({ "secondary_id": other }))
    };
    let dry = send(merge("?dry_run=true"), Some("writer-key")).await;
    assert_eq!(dry.status(), StatusCode::OK);
    let real = send(merge(""), Some("writer-key")).await;
    assert_problem(real, StatusCode::UNPROCESSABLE_ENTITY).await;
    let replayed = send(merge("?dry_run=%74rue"), Some("writer-key")).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");

    let erase = bare().delete(format!("{customer}?erase=%74rue"));
    let response = send(erase, Some(crm_e2e::ADMIN_KEY)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_services_answer_only_callers_holding_the_internal_token() {
    use crm_proto::v1::{GetCustomerRequest, customer_service_client::CustomerServiceClient};

    let app = TestApp::distributed().await;
    // Through the gateway, which passes the token on: fine.
    let id = app.given_customer_id("ada@example.com").await;

    let url = app.customer_core_grpc.clone().expect("distributed");
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CustomerServiceClient::new(channel);
    let ask = |token: Option<&str>| {
        let mut request = tonic::Request::new(GetCustomerRequest { id: id.clone() });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    for token in [None, Some("a-guess")] {
        let refused = client.get_customer(ask(token)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{token:?}");
    }
    let found = client
        .get_customer(ask(Some(crm_e2e::INTERNAL_TOKEN)))
        .await
        .expect("the token opens it");
    assert_eq!(found.into_inner().id, id);
}

/// With certificates configured (and no token) the services speak mutual TLS: a whole
/// flow through every service works, and callers without a certificate of the CA are
/// refused at the handshake.
#[tokio::test]
async fn with_certificates_the_services_admit_only_peers_of_their_ca() {
    use crm_proto::v1::{GetCustomerRequest, customer_service_client::CustomerServiceClient};
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

    let ca = TestCa::new("e2e ca");
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::distributed_with_mutual_tls(&ca.issue_files(dir.path())).await;
    // gateway → customer-core and event-ingest; segmentation → customer-core (the
    // segment); gateway → search-indexer.
    let id = app.given_customer_id("ada@example.com").await;
    let orders = [crm_e2e::completed_order(&id, "o-1", 1_000.0)];
    app.send_events(&json!({ "events": orders })).await;
    app.eventually("segmentation to store the VIP segment", || async {
        let customer: Value = app.get_customer(&id).await.json().await.ok()?;
        (customer["segment"] == "vip").then_some(())
    })
    .await;
    app.eventually("the search to find her", || async {
        let found: Value = app
            .post_json("/api/customers/search", &json!({ "query": "ada" }))
            .await
            .json()
            .await
            .ok()?;
        (found["hits"][0]["customer"]["id"] == id.as_str()).then_some(())
    })
    .await;

    let core = app
        .customer_core_grpc
        .clone()
        .expect("distributed")
        .replace("http://", "https://");
    let trusting_the_ca = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem()));
    let get_customer = |tls: ClientTlsConfig| {
        let (core, id) = (core.clone(), id.clone());
        async move {
            let channel = Endpoint::from_shared(core)
                .unwrap()
                .tls_config(tls)
                .unwrap();
            let mut client = CustomerServiceClient::new(channel.connect_lazy());
            client.get_customer(GetCustomerRequest { id }).await
        }
    };
    let (certificate, key) = ca.issue();
    let found = get_customer(trusting_the_ca().identity(Identity::from_pem(certificate, key)))
        .await
        .expect("a certificate of the CA opens it");
    assert_eq!(found.into_inner().id, id);

    let stranger = TestCa::new("another ca").issue();
    let strangers = [
        ("no certificate", trusting_the_ca()),
        (
            "another CA's certificate",
            trusting_the_ca().identity(Identity::from_pem(stranger.0, stranger.1)),
        ),
    ];
    for (who, tls) in strangers {
        let refused = get_customer(tls).await.expect_err(who);
        // The handshake fails, or (TLS 1.3) the connection closes right after it.
        assert!(
            matches!(
                refused.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ),
            "{who}: refused at the connection: {refused}"
        );
    }
}

/// `crm` runs every service in one process: their gRPC, on loopback, answers only that
/// process, so no local program gets around the REST API's credentials.
#[tokio::test]
async fn the_standalone_grpc_answers_only_its_own_process() {
    use crm_proto::v1::{ListCustomersRequest, customer_service_client::CustomerServiceClient};

    let app = TestApp::standalone_with_env(&[("CRM_API_KEYS", ADMIN_KEY_ENTRY.into())]).await;
    let created = app
        .create_customer(&json!({ "email": "ada@example.com" }))
        .await;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "services reach each other"
    );
    let grpc = app
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "customer-core listening")
        .and_then(|line| line["grpc"].as_str().map(str::to_owned))
        .expect("customer-core logs its address");
    let mut client = CustomerServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    for token in [None, Some("a-guess")] {
        let mut request = tonic::Request::new(ListCustomersRequest::default());
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        let refused = client.list_customers(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{token:?}");
    }
}

#[tokio::test]
async fn a_retried_create_or_import_with_the_same_idempotency_key_runs_once() {
    for app in [TestApp::standalone().await, TestApp::distributed().await] {
        let url = format!("{}/api/customers", app.base_url);
        let create = |key: &str, email: &str| {
            app.client()
                .post(&url)
                .header("idempotency-key", key)
                .json(&json!({ "email": email }))
        };
        let first = create("k-1", "once@example.com").send().await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let location = first.headers()["location"].clone();
        let first: Value = first.json().await.unwrap();

        let retried = create("k-1", "once@example.com").send().await.unwrap();
        assert_eq!(
            retried.status(),
            StatusCode::CREATED,
            "the first answer again"
        );
        assert_eq!(retried.headers()["location"], location);
        assert_eq!(retried.headers()["idempotent-replayed"], "true");
        assert_eq!(retried.json::<Value>().await.unwrap()["id"], first["id"]);
        let listed: Value = app.list_customers("").await.json().await.unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "created once");

        let other_body = create("k-1", "twice@example.com").send().await.unwrap();
        let problem = assert_problem(other_body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(crm_e2e::invalid_fields(&problem), ["Idempotency-Key"]);
        // Without a key, or with another, requests are independent.
        let again = create("k-2", "once@example.com").send().await.unwrap();
        assert_problem(again, StatusCode::CONFLICT).await;

        // An import (spooled, not held in memory) runs once per key too.
        let import = |key: &str, csv: &str| {
            app.client()
                .post(format!("{}/api/imports", app.base_url))
                .header("idempotency-key", key)
                .header("content-type", "text/csv")
                .body(csv.to_owned())
        };
        let csv = "email,first_name\nimported@example.com,Ada\n";
        let first: Value = import("i-1", csv)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["counts"]["created"], 1, "{first}");
        let retried = import("i-1", csv).send().await.unwrap();
        assert_eq!(retried.status(), StatusCode::ACCEPTED);
        assert_eq!(retried.headers()["idempotent-replayed"], "true");
        let retried: Value = retried.json().await.unwrap();
        assert_eq!(retried["id"], first["id"], "the same import job");
        let other = import("i-1", "email\nother@example.com\n")
            .send()
            .await
            .unwrap();
        assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;
        let listed: Value = app.list_customers("").await.json().await.unwrap();
        assert_eq!(
            listed["items"].as_array().unwrap().len(),
            2,
            "one import, once"
        );
    }
}
