//! Platforms (CONTRACT section 7a): list them (any identity), add one (admin).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::HttpState;
use super::auth::require;
use super::body::JsonBody;
use super::error::ApiError;
use crate::domain::types::{Caller, Role};

pub fn router() -> Router<HttpState> {
    Router::new().route("/api/platforms", post(add_platform).get(list_platforms))
}

/// The known platforms: configured (`PLATFORMS`) first, then those admins added, and the limit.
#[utoipa::path(get, path = "/api/platforms", tag = "platforms",
    responses((status = 200, body = crate::domain::platforms::PlatformList), (status = 401)))]
pub async fn list_platforms(State(s): State<HttpState>, _caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(s.app.platforms().await?).into_response())
}

/// Add a platform (admin): `{"platform": slug}`. 201 when added, 200 when already known;
/// 409 `platform_limit` when the known platforms would pass `MAX_PLATFORMS`.
#[utoipa::path(post, path = "/api/platforms", tag = "platforms", request_body = super::openapi::PlatformInput,
    responses((status = 201, body = crate::app::PlatformAddOutcome, description = "added"),
              (status = 200, body = crate::app::PlatformAddOutcome, description = "already known (configured or added)"),
              (status = 400, description = "validation_failed: not a slug"), (status = 401), (status = 403),
              (status = 409, description = "platform_limit: MAX_PLATFORMS reached")))]
pub async fn add_platform(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    let outcome = s.app.add_platform(&body).await?;
    super::audit::event(&caller, "POST /api/platforms", None, &[("added", i64::from(outcome.added))]);
    let status = if outcome.added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(outcome)).into_response())
}
