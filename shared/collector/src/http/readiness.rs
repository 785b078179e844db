//! Function `readiness`: training readiness of a platform. The function also serves the admin
//! dashboard's static page (`super::dashboard`), which reads the API with the admin's token.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::body::{PathText, path_platform};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::types::Caller;

/// Training readiness of a platform.
#[utoipa::path(get, path = "/api/feedback/readiness/{platform}", tag = "feedback", params(("platform" = openapi::KnownPlatform, Path)),
    responses((status = 200, body = crate::domain::stats::Readiness)))]
pub async fn readiness(
    State(s): State<HttpState>,
    _caller: Caller,
    PathText(platform): PathText,
) -> Result<Response, ApiError> {
    Ok(Json(s.app.readiness(&path_platform(&platform)?).await?).into_response())
}
