//! crm-gateway: the REST API for web clients, in front of the services' gRPC.

pub mod analytics;
pub mod auth;
pub mod cors;
pub mod customers;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod openapi;
pub mod paging;
pub mod person;
pub mod policy;
pub mod rate_limit;
pub mod request_id;
pub mod search;
pub mod security_headers;
pub mod segments;
pub mod settings;

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::DefaultBodyLimit, routing::get};
use crm_platform::{
    Shutdown,
    health::{Probe, Readiness, probe},
    internal_auth::InternalAuth,
};
use crm_proto::v1::{
    customer_service_client::CustomerServiceClient, ingest_service_client::IngestServiceClient,
    search_service_client::SearchServiceClient,
    segmentation_service_client::SegmentationServiceClient,
};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_scalar::{Scalar, Servable};

pub use settings::Settings;

use crate::request_id::{ForwardRequestId, Upstream};

/// The largest answer customer-core may send (a person's export).
const MAX_EXPORT_BYTES: usize = 256 * 1024 * 1024;

/// Every call to a service but an import ends within this.
pub(crate) const SERVICE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every handler gets: the gRPC clients (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub customers: CustomerServiceClient<Upstream>,
    /// customer-core again, with a deadline long enough for a bulk import.
    pub imports: CustomerServiceClient<Upstream>,
    pub ingest: IngestServiceClient<Upstream>,
    pub segmentation: SegmentationServiceClient<Upstream>,
    /// How long the 360 view waits for each of segmentation's parts.
    pub segmentation_deadline: std::time::Duration,
    pub search: SearchServiceClient<Upstream>,
}

/// The whole REST surface: API routes, OpenAPI, docs and health.
pub fn router(
    state: AppState,
    readiness: Readiness,
    settings: &Settings,
    guard: Arc<auth::Guard>,
    idempotency: Arc<dyn idempotency::IdempotencyStore>,
) -> Router {
    use auth::Scope::{Admin, CustomersRead as Read, CustomersWrite as Write, EventsWrite};
    use policy::{NoQuery, Upload};

    let open = guard.authenticator.is_none();
    let p = policy::Policies::new(guard, idempotency);
    // Each route with what it demands: the scope (decided by the same typed query the
    // handler reads, where it depends on one) and, for the creating POSTs, one run per
    // Idempotency-Key.
    let (api, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(p.needs(
            Write,
            p.once_per_key::<_, NoQuery>(Upload::Json, routes!(customers::create_customer)),
        ))
        .routes(p.needs(Read, routes!(customers::list_customers)))
        .routes(p.needs(Read, routes!(search::search_customers)))
        .routes(p.needs(Admin, routes!(search::start_reindex)))
        .routes(p.needs(Admin, routes!(search::reindex_job)))
        .routes(p.needs(Read, routes!(customers::get_customer)))
        .routes(p.needs(Write, routes!(customers::patch_customer)))
        .routes(p.needs_for(
            customers::DeleteParams::scope,
            routes!(customers::delete_customer),
        ))
        .routes(p.needs(Read, routes!(person::customer_360)))
        .routes(p.needs(Read, routes!(person::duplicates)))
        .routes(p.needs(
            Write,
            p.once_per_key::<_, person::MergeParams>(Upload::Json, routes!(person::merge)),
        ))
        .routes(p.needs(Admin, routes!(person::export)))
        .routes(p.needs(EventsWrite, routes!(events::ingest_events)))
        .routes(p.needs(Read, routes!(events::list_events)))
        .routes(p.needs(Read, routes!(analytics::daily_sales)))
        .routes(p.needs(
            Write,
            p.once_per_key::<_, NoQuery>(Upload::Spooled, routes!(imports::start_import)),
        ))
        .routes(p.needs(Read, routes!(imports::get_import)))
        .routes(p.needs(Read, routes!(segments::customer_segment)))
        .routes(p.needs(Read, routes!(segments::segment_counts)))
        .routes(p.needs(Admin, routes!(segments::start_recompute)))
        .routes(p.needs(Admin, routes!(segments::recompute_job)))
        .routes(p.needs(Read, routes!(segments::recommendations)))
        .with_state(state)
        .split_for_parts();
    let mut openapi = openapi;
    openapi::add_shared_problems(&mut openapi);
    let document = openapi.clone();
    let router = api
        .route("/openapi.json", get(move || async move { Json(document) }))
        .merge(Scalar::with_url("/docs", openapi))
        .merge(crm_platform::health::router(readiness))
        .fallback(|| async { error::Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { error::Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http());
    let router = if open {
        router.layer(axum::middleware::from_fn(auth::loopback_hosts_only))
    } else {
        router
    };
    let router = match cors::cors(&settings.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Past this many requests in progress, refuse at once (503) rather than queue
    // until the process falls over. Global: `Router::layer` gives every route its own
    // copy of a layer, and a plain concurrency limit would then count per route.
    let shed = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |_: tower::BoxError| async { error::Error::Overloaded },
        ))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            settings.max_concurrent_requests.max(1),
        ));
    // Outermost, so the request id and the security headers cover everything above,
    // CORS answers included.
    router
        .layer(shed)
        .layer(axum::middleware::from_fn(
            security_headers::security_headers,
        ))
        .layer(axum::middleware::from_fn(request_id::tag_request))
}

/// Ready when a service answers its gRPC health check for `service`.
fn grpc_health_probe(
    name: &'static str,
    service: &'static str,
    channel: &Channel,
    internal: &InternalAuth,
) -> Arc<dyn Probe> {
    let (channel, token) = (channel.clone(), internal.token_adder());
    probe(name, true, move || {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut client = HealthClient::with_interceptor(channel.clone(), token.clone());
        async move {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let answer = client
                .check(request)
                .await
                .map_err(|status| status.message().to_owned())?;
            match answer.into_inner().status {
                1 => Ok(()),
                other => Err(format!("health status {other}")),
            }
        }
    })
}

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `settings.http_addr` (port 0 picks a free port) and connects lazily to the
    /// services, so the gateway starts before them. `extra` adds readiness probes (the
    /// standalone binary adds its database).
    pub async fn build(settings: &Settings, extra: Readiness) -> crm_platform::Result<Self> {
        let internal = settings.internal.load()?;
        let customer_core = internal.lazy_channel(&settings.customer_core_url, SERVICE_DEADLINE)?;
        let event_ingest = internal.lazy_channel(&settings.event_ingest_url, SERVICE_DEADLINE)?;
        let segmentation = internal.lazy_channel(&settings.segmentation_url, SERVICE_DEADLINE)?;
        let search = internal.lazy_channel(&settings.search_indexer_url, SERVICE_DEADLINE)?;
        let readiness = extra
            .with(grpc_health_probe(
                "customer-core",
                "crm.v1.CustomerService",
                &customer_core,
                &internal,
            ))
            .with(grpc_health_probe(
                "event-ingest",
                "crm.v1.IngestService",
                &event_ingest,
                &internal,
            ))
            .with(grpc_health_probe(
                "segmentation",
                "crm.v1.SegmentationService",
                &segmentation,
                &internal,
            ))
            .with(grpc_health_probe(
                "search-indexer",
                "crm.v1.SearchService",
                &search,
                &internal,
            ));
        let imports =
            internal.lazy_channel(&settings.customer_core_url, imports::IMPORT_DEADLINE)?;
        let forward = ForwardRequestId(internal.token_adder());
        let state = AppState {
            imports: CustomerServiceClient::with_interceptor(imports, forward.clone()),
            // An export holds everything about a person: more than gRPC's default 4 MiB.
            customers: CustomerServiceClient::with_interceptor(customer_core, forward.clone())
                .max_decoding_message_size(MAX_EXPORT_BYTES),
            ingest: IngestServiceClient::with_interceptor(event_ingest, forward.clone()),
            segmentation: SegmentationServiceClient::with_interceptor(
                segmentation,
                forward.clone(),
            ),
            segmentation_deadline: std::time::Duration::from_millis(
                settings.segmentation_timeout_ms,
            ),
            search: SearchServiceClient::with_interceptor(search, forward.clone()),
        };
        let authenticator = auth::Authenticator::from_settings(settings)
            .await
            .map_err(crm_platform::Error::Refused)?;
        if authenticator.is_none() {
            if !(settings.open_on_loopback && settings.http_addr.ip().is_loopback()) {
                return Err(crm_platform::Error::Refused(
                    "no credentials are configured (CRM_API_KEYS, CRM_API_KEYS_FILE, \
                     CRM_JWT_HS256_SECRET, CRM_JWT_JWKS_FILE or CRM_JWT_JWKS_URL)"
                        .into(),
                ));
            }
            tracing::warn!(
                "no credentials configured: the API is open to anyone who can reach \
                 {}, which is allowed on loopback only",
                settings.http_addr
            );
        }
        // With Redis, replicas share Idempotency-Key answers and each caller's rate.
        let (per_second, burst) = (settings.rate_limit_per_second, settings.rate_limit_burst);
        let (limiter, idempotency): (
            Arc<dyn rate_limit::RateLimit>,
            Arc<dyn idempotency::IdempotencyStore>,
        ) = match &settings.redis_url {
            Some(url) => {
                let redis = || {
                    crm_platform::redis::RedisClient::new(url, std::time::Duration::from_secs(1))
                };
                let prefix = &settings.redis_key_prefix;
                (
                    Arc::new(rate_limit::RedisLimiter::new(
                        redis()?,
                        prefix,
                        per_second,
                        burst,
                    )),
                    Arc::new(idempotency::RedisStore::new(redis()?, prefix)),
                )
            }
            None => (
                Arc::new(rate_limit::MemoryLimiter::new(per_second, burst)),
                Arc::new(idempotency::MemoryStore::default()),
            ),
        };
        let guard = Arc::new(auth::Guard {
            authenticator,
            limiter,
        });
        let listener = crm_platform::grpc::bind(settings.http_addr).await?;
        Ok(Self {
            listener,
            router: router(state, readiness, settings, guard, idempotency),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub async fn run(self, shutdown: Shutdown) -> crm_platform::Result<()> {
        tracing::info!(http = %self.local_addr(), "gateway listening");
        crm_platform::http::serve(self.listener, self.router, shutdown).await
    }
}
