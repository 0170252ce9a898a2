//! What each route demands of a request, attached where the route is declared
//! (`crate::router`): the scope its caller needs, and whether an `Idempotency-Key` makes it
//! run once. Both are decided from the same typed extraction the handler itself uses
//! (`QueryParams::from_uri`), never from the raw path or query text, so every spelling of a
//! parameter (`erase=true`, `erase=%74rue`) gets the same answer as the handler acts on.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{Uri, request::Parts},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::{
    auth::{Guard, Scope},
    error::Error,
    extract::QueryParams,
    idempotency::{IdempotencyStore, Once},
};

/// Decides the scope a request needs from what the handler will read.
type ScopeRule = Arc<dyn Fn(&Parts) -> Result<Scope, Error> + Send + Sync>;

/// The policies of every route, with what they check against.
#[derive(Clone)]
pub struct Policies {
    guard: Arc<Guard>,
    idempotency: Arc<dyn IdempotencyStore>,
}

/// How an idempotent route's body is held while it is fingerprinted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// A JSON body, read into memory (it is small: the body limit holds).
    Json,
    /// A bulk upload, spooled to a temporary file.
    Spooled,
}

impl Policies {
    pub fn new(guard: Arc<Guard>, idempotency: Arc<dyn IdempotencyStore>) -> Self {
        Self { guard, idempotency }
    }

    /// Every caller of `routes` needs `scope`.
    pub fn needs<S>(&self, scope: Scope, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.needs_rule(Arc::new(move |_| Ok(scope)), routes)
    }

    /// The scope depends on the query, read as the handler reads it (`Q`).
    pub fn needs_for<S, Q>(
        &self,
        decide: fn(&Q) -> Scope,
        routes: UtoipaMethodRouter<S>,
    ) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
        Q: DeserializeOwned + 'static,
    {
        self.needs_rule(
            Arc::new(move |parts| QueryParams::<Q>::from_uri(&parts.uri).map(|q| decide(&q.0))),
            routes,
        )
    }

    fn needs_rule<S>(&self, rule: ScopeRule, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (schemas, paths, method_router) = routes;
        let state = (self.guard.clone(), rule);
        let layer = from_fn_with_state(state, authorize);
        (schemas, paths, method_router.route_layer(layer))
    }

    /// A request with an `Idempotency-Key` runs once per key and caller. Its fingerprint
    /// covers the method, the route, the path parameters, the query as the handler reads
    /// it (`Q`), the content type and the body. Declare it before `needs`, so it runs
    /// inside the authorization and knows the caller.
    pub fn once_per_key<S, Q>(
        &self,
        upload: Upload,
        routes: UtoipaMethodRouter<S>,
    ) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
        Q: DeserializeOwned + Serialize + 'static,
    {
        let (schemas, paths, method_router) = routes;
        let once = Once {
            store: self.idempotency.clone(),
            upload,
            canonical_query: Arc::new(canonical_query::<Q>),
        };
        let layer = from_fn_with_state(once, crate::idempotency::idempotent);
        (schemas, paths, method_router.route_layer(layer))
    }
}

/// The query as the handler reads it, in one spelling.
pub(crate) fn canonical_query<Q: DeserializeOwned + Serialize>(
    uri: &Uri,
) -> Result<Vec<u8>, Error> {
    let QueryParams(query) = QueryParams::<Q>::from_uri(uri)?;
    serde_json::to_vec(&query).map_err(|e| Error::internal(format!("query fingerprint: {e}")))
}

/// For routes that read no query: any query means the same.
#[derive(Debug, serde::Deserialize, Serialize)]
pub struct NoQuery {}

/// Authenticates, decides the route's scope, authorizes and rate-limits, in that order: an
/// anonymous caller learns nothing about the request's shape.
async fn authorize(
    State((guard, rule)): State<(Arc<Guard>, ScopeRule)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let principal = match guard.caller(&parts.headers).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    let scope = match rule(&parts) {
        Ok(scope) => scope,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = guard.admit(&principal, scope).await {
        return error.into_response();
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}
