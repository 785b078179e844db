//! Function `curation`: curated examples and training metrics (admin), and the platforms
//! (CONTRACT section 7a): list them (any identity), add one (admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::{JsonBody, Params, PathText, path_id};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::input::{NewExample, NewMetric, Parsed};
use crate::domain::platforms::AddPlatform;
use crate::domain::types::{Caller, FieldError, Platform};

fn platform_filter(q: &std::collections::HashMap<String, String>) -> Result<Option<Platform>, ApiError> {
    q.get("platform")
        .map(|p| Platform::parse(p).map_err(|m| ApiError::Validation(vec![FieldError::new("platform", m)])))
        .transpose()
}

#[utoipa::path(post, path = "/api/examples", tag = "admin", request_body = openapi::ExampleInput,
    responses((status = 201, body = openapi::ExampleReceipt), (status = 403, description = "`forbidden`: admin only")))]
pub async fn add_example(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let id = s.app.add_example(&caller, Parsed::new(body, |b| NewExample::parse(&b))).await?;
    super::audit::event(&caller, "POST /api/examples", None, &[("examples", 1)]);
    Ok((StatusCode::CREATED, Json(json!({ "example_id": id }))).into_response())
}

#[utoipa::path(get, path = "/api/examples", tag = "admin", params(("platform" = Option<openapi::KnownPlatform>, Query)),
    responses((status = 200, body = openapi::ExampleList), (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_examples(
    State(s): State<HttpState>,
    _caller: Caller,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let items = s.app.list_examples(platform_filter(&q)?.as_ref()).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

#[utoipa::path(delete, path = "/api/examples/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = openapi::ExampleDeleted), (status = 403, description = "`forbidden`: admin only"),
              (status = 404, description = "`not_found`: no such example")))]
pub async fn delete_example(
    State(s): State<HttpState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Response, ApiError> {
    s.app.delete_example(path_id(&id)?).await?;
    super::audit::event(&caller, "DELETE /api/examples/{id}", None, &[("examples", 1)]);
    Ok(Json(json!({ "deleted": { "examples": 1 } })).into_response())
}

#[utoipa::path(post, path = "/api/training-metrics", tag = "admin", request_body = openapi::MetricInput,
    responses((status = 201, body = openapi::MetricReceipt), (status = 403, description = "`forbidden`: admin only")))]
pub async fn add_metric(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let id = s.app.add_metric(&caller, Parsed::new(body, |b| NewMetric::parse(&b))).await?;
    super::audit::event(&caller, "POST /api/training-metrics", None, &[("training_metrics", 1)]);
    Ok((StatusCode::CREATED, Json(json!({ "metric_id": id }))).into_response())
}

#[utoipa::path(get, path = "/api/training-metrics", tag = "admin", params(("platform" = Option<openapi::KnownPlatform>, Query)),
    responses((status = 200, body = openapi::MetricList), (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_metrics(
    State(s): State<HttpState>,
    _caller: Caller,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let items = s.app.list_metrics(platform_filter(&q)?.as_ref()).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

/// The known platforms: configured (`PLATFORMS`) first, then those admins added, and the limit.
#[utoipa::path(get, path = "/api/platforms", tag = "platforms",
    responses((status = 200, body = crate::domain::platforms::PlatformList), (status = 401)))]
pub async fn list_platforms(State(s): State<HttpState>, _caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(s.app.platforms().await?).into_response())
}

/// Add a platform (admin): `{"platform": slug}`. 201 when added, 200 when already known;
/// 409 `platform_limit` when the known platforms would pass `MAX_PLATFORMS`.
#[utoipa::path(post, path = "/api/platforms", tag = "platforms", request_body = openapi::PlatformInput,
    responses((status = 201, body = crate::app::PlatformAddOutcome, description = "added"),
              (status = 200, body = crate::app::PlatformAddOutcome, description = "already known (configured or added)"),
              (status = 400, description = "validation_failed: not a slug"), (status = 401), (status = 403),
              (status = 409, description = "platform_limit: MAX_PLATFORMS reached")))]
pub async fn add_platform(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let outcome = s.app.add_platform(AddPlatform::parse(&body)?).await?;
    super::audit::event(&caller, "POST /api/platforms", None, &[("added", i64::from(outcome.added))]);
    let status = if outcome.added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(outcome)).into_response())
}
