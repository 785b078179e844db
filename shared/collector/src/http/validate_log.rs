//! Function `validate-log`: validate a workflow and log the result.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::input::Parsed;
use crate::domain::types::Caller;

/// Validate a workflow and log the result.
///
/// Without `interaction_id`, a service must name `user_id` (400 otherwise).
#[utoipa::path(post, path = "/api/workflow/validate", tag = "validation", request_body = openapi::ValidateInput,
    responses((status = 200, body = crate::app::ValidationResult),
              (status = 403, description = "`forbidden`: a user named another `user_id`"),
              (status = 404, description = "`not_found`: no such interaction, or someone else's"),
              (status = 409, description = "`conflict`: the interaction is archived"),
              (status = 413, description = "`payload_too_large`: the body is over 6 MiB, nests deeper than 64, or holds too many values; or its issues or diff would hold more than 8 MiB of paths")))]
pub async fn validate(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(Json(s.app.validate_workflow(&caller, Parsed::validation(body)).await?).into_response())
}
