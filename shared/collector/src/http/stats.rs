//! Function `stats`: storage statistics, and the public health check and OpenAPI document (with
//! its UI at `/docs` when built with the `swagger` feature, as `collector serve` is).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::types::Caller;

/// Storage statistics from maintained counters.
#[utoipa::path(get, path = "/api/feedback/stats", tag = "feedback", responses((status = 200, body = crate::domain::stats::Stats)))]
pub async fn stats(State(s): State<HttpState>, _caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(s.app.stats().await?).into_response())
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

/// The document's UI at `/docs` (public), which reads it from `/openapi.json`: not a route of
/// the table (it is not in the document, nor in template.yaml) but the `stats` function's
/// addition, built only with the `swagger` feature (not in a lean Lambda build).
pub fn docs_ui() -> Router<HttpState> {
    let router = Router::new();
    #[cfg(feature = "swagger")]
    let router = router
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")));
    router
}
