//! HTTP: one module per endpoint group, each with `router()`; `router` merges them for
//! `collector serve`, and each Lambda function runs its group's router on the same state.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod body;
pub mod dashboard;
pub mod data;
pub mod error;
pub mod exports;
pub mod feedback;
pub mod groups;
pub mod interactions;
pub mod openapi;
pub mod platforms;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::DecodingKey;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;

use crate::app::App;
use error::ApiError;
use openapi::CommonResponses;

/// What handlers share: the use cases and how to read identities.
#[derive(Clone)]
pub struct HttpState {
    pub app: App,
    pub groups_claim: Arc<str>,
    /// Set under `collector serve`: bearer tokens are verified with it.
    pub jwt_key: Option<Arc<DecodingKey>>,
    /// Where identities come from, and so which runtime serves.
    pub identity: Identity,
    /// What parsing request bodies may build at once (`body::parse_budget`).
    pub parse_budget: Arc<tokio::sync::Semaphore>,
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
        HttpState {
            groups_claim: app.config.groups_claim.clone().into(),
            app,
            jwt_key,
            identity: Identity::BearerJwt,
            parse_budget: new_parse_budget(),
        }
    }

    /// A Lambda function: API Gateway has verified the JWT; its claims come in the request
    /// context. Bearer headers are ignored.
    #[cfg(feature = "lambda")]
    pub fn lambda(app: App) -> HttpState {
        HttpState {
            groups_claim: app.config.groups_claim.clone().into(),
            app,
            jwt_key: None,
            identity: Identity::ApiGateway,
            parse_budget: new_parse_budget(),
        }
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

#[derive(OpenApi)]
#[openapi(
    info(title = "collector", description = "Collects interactions, feedback and validations for fine-tuning."),
    paths(
        health, openapi_json,
        interactions::log_interaction, interactions::log_batch, interactions::get_interaction, interactions::list_interactions,
        interactions::validate,
        feedback::submit, feedback::stats, feedback::readiness, feedback::archive, feedback::export_platform,
        data::delete_one, data::delete_user, data::delete_me, data::my_data,
        admin::add_example, admin::list_examples, admin::delete_example, admin::add_metric, admin::list_metrics,
        platforms::list_platforms, platforms::add_platform,
        exports::list_exports, exports::get_export,
    ),
    modifiers(&BearerAuth, &CommonResponses),
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

fn new_parse_budget() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(body::PARSE_BUDGET_MIB as usize))
}

/// Liveness and which backend serves.
#[utoipa::path(get, path = "/api/health", tag = "meta", security(()), responses((status = 200, body = openapi::Health)))]
pub async fn health(State(s): State<HttpState>) -> Response {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "backend": s.app.config.backend.as_str()}))
        .into_response()
}

/// This document (OpenAPI 3.1). It lists the configured platforms, so it is built from the
/// state's config.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()), responses((status = 200, body = Object, description = "the OpenAPI document")))]
pub async fn openapi_json(State(s): State<HttpState>) -> Response {
    Json(openapi::document_json(&s.app.config)).into_response()
}

/// The public routes: health, the OpenAPI document and its UI.
pub fn meta_router() -> Router<HttpState> {
    // The UI (not in a lean Lambda build) reads the document from /openapi.json.
    let router = Router::new().route("/api/health", get(health)).route("/openapi.json", get(openapi_json));
    #[cfg(feature = "swagger")]
    let router = router
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")));
    router
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

/// The whole API (`collector serve`).
pub fn router(state: HttpState) -> Router {
    let all = Router::new()
        .merge(meta_router())
        .merge(interactions::router())
        .merge(feedback::router())
        .merge(data::router())
        .merge(admin::router())
        .merge(platforms::router())
        .merge(exports::router())
        .merge(dashboard::router());
    finish(all, state)
}
