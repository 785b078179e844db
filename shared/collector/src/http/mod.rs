//! HTTP: the route table (`routes`), one module of handlers per Lambda function, named as the
//! function (`log`, `submit`, `validate_log`, `stats`, `export`, `readiness`, `delete`, `curation`,
//! `archive_run`), and what they share. `router` is every route of the table, for `collector
//! serve`; each Lambda function runs its own rows (`routes::<function>`) on the same state.

pub mod archive_run;
pub mod audit;
pub mod auth;
pub mod body;
pub mod curation;
pub mod dashboard;
pub mod delete;
pub mod error;
pub mod export;
pub mod log;
pub mod openapi;
pub mod readiness;
pub mod routes;
pub mod spill;
pub mod stats;
pub mod submit;
pub mod validate_log;

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use jsonwebtoken::DecodingKey;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::App;
use error::ApiError;
pub use routes::ApiDoc;

/// What handlers share. Every request gets clones of it, so it is one `Arc`: one reference
/// count per clone instead of one per field (ten).
#[derive(Clone)]
pub struct HttpState(Arc<SharedState>);

impl std::ops::Deref for HttpState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The use cases and how to read identities.
pub struct SharedState {
    pub app: App,
    pub groups_claim: Arc<str>,
    /// Set under `collector serve`: bearer tokens are verified with it.
    pub jwt_key: Option<Arc<DecodingKey>>,
    /// Where identities come from, and so which runtime serves.
    pub identity: Identity,
    /// What reading and parsing request bodies may hold at once (`body::parse_budget`).
    pub parse_budget: Arc<body::BodyBudgets>,
}

/// The source of the caller's claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// `collector serve`: a bearer JWT verified with the local secret.
    BearerJwt,
    /// A Lambda function behind API Gateway (HTTP API): the JWT authorizer's claims in the
    /// request context. Also tells handlers they run on Lambda (e.g. large exports spill to S3).
    #[cfg(feature = "lambda")]
    ApiGateway,
}

impl HttpState {
    /// Local serving: verify bearer JWTs with `COLLECTOR_JWT_SECRET`.
    pub fn local(app: App) -> HttpState {
        let jwt_key = app.config.jwt_secret.as_ref().map(|s| Arc::new(DecodingKey::from_secret(s.expose().as_bytes())));
        HttpState(Arc::new(SharedState {
            groups_claim: app.config.groups_claim.clone().into(),
            app,
            jwt_key,
            identity: Identity::BearerJwt,
            parse_budget: new_parse_budget(),
        }))
    }

    /// A Lambda function: API Gateway has verified the JWT; its claims come in the request
    /// context. Bearer headers are ignored.
    #[cfg(feature = "lambda")]
    pub fn lambda(app: App) -> HttpState {
        HttpState(Arc::new(SharedState {
            groups_claim: app.config.groups_claim.clone().into(),
            app,
            jwt_key: None,
            identity: Identity::ApiGateway,
            parse_budget: new_parse_budget(),
        }))
    }

    /// When an archive run started by a request must stop starting objects. On Lambda, API
    /// Gateway answers 504 at 30 s (the function's timeout is 29 s): the run stops starting
    /// objects after 20 s, which leaves the object in flight time to commit, and reports
    /// `complete: false`. `collector serve` has no limit.
    pub fn run_deadline(&self) -> Option<tokio::time::Instant> {
        self.on_lambda().then(|| tokio::time::Instant::now() + std::time::Duration::from_secs(20))
    }

    /// Running as a Lambda function.
    pub fn on_lambda(&self) -> bool {
        match self.identity {
            Identity::BearerJwt => false,
            #[cfg(feature = "lambda")]
            Identity::ApiGateway => true,
        }
    }
}

fn new_parse_budget() -> Arc<body::BodyBudgets> {
    Arc::new(body::BodyBudgets::new())
}

/// Common layers and fallbacks: our 404/405 bodies, the identity middleware of the state's
/// runtime, panics as our 500.
pub fn finish(router: Router<HttpState>, state: HttpState) -> Router {
    let router = router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Inside the identity layer: only an identified caller's body takes a parse share.
        .layer(axum::middleware::from_fn_with_state(state.parse_budget.clone(), body::parse_budget));
    let router = match state.identity {
        Identity::BearerJwt => router.layer(axum::middleware::from_fn_with_state(state.clone(), auth::local_jwt)),
        #[cfg(feature = "lambda")]
        Identity::ApiGateway => router.layer(axum::middleware::from_fn(auth::api_gateway_claims)),
    };
    router
        .layer(axum::middleware::from_fn(log_request))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
}

/// One debug line per request: method, route template (never the raw URI, which can carry
/// ids and filters), status and time. Bodies are never logged.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(%method, route = route.as_deref().unwrap_or("-"), status = resp.status().as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    resp
}

/// The whole API (`collector serve`): every route of the table.
pub fn router(state: HttpState) -> Router {
    finish(routes::all(&state), state)
}
