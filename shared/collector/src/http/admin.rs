//! Curated examples and training metrics (admin).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::require;
use super::body::{JsonBody, Params, path_id};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::types::{Caller, FieldError, Platform, Role};

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/examples", post(add_example).get(list_examples))
        .route("/api/examples/{id}", delete(delete_example))
        .route("/api/training-metrics", post(add_metric).get(list_metrics))
}

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
    require(&caller, &[Role::Admin])?;
    let id = s.app.add_example(&caller, &body).await?;
    super::audit::event(&caller, "POST /api/examples", None, &[("examples", 1)]);
    Ok((StatusCode::CREATED, Json(json!({ "example_id": id }))).into_response())
}

#[utoipa::path(get, path = "/api/examples", tag = "admin", params(("platform" = Option<openapi::KnownPlatform>, Query)),
    responses((status = 200, body = openapi::ExampleList), (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_examples(
    State(s): State<HttpState>,
    caller: Caller,
    Params(q): Params,
) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    let items = s.app.list_examples(platform_filter(&q)?.as_ref()).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

#[utoipa::path(delete, path = "/api/examples/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = openapi::ExampleDeleted), (status = 403, description = "`forbidden`: admin only"),
              (status = 404, description = "`not_found`: no such example")))]
pub async fn delete_example(
    State(s): State<HttpState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
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
    require(&caller, &[Role::Admin])?;
    let id = s.app.add_metric(&caller, &body).await?;
    super::audit::event(&caller, "POST /api/training-metrics", None, &[("training_metrics", 1)]);
    Ok((StatusCode::CREATED, Json(json!({ "metric_id": id }))).into_response())
}

#[utoipa::path(get, path = "/api/training-metrics", tag = "admin", params(("platform" = Option<openapi::KnownPlatform>, Query)),
    responses((status = 200, body = openapi::MetricList), (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_metrics(State(s): State<HttpState>, caller: Caller, Params(q): Params) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    let items = s.app.list_metrics(platform_filter(&q)?.as_ref()).await?;
    Ok(Json(json!({ "items": items })).into_response())
}
