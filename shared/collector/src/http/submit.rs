//! Function `submit`: feedback on an interaction.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::JsonBody;
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::input::NewFeedback;
use crate::domain::types::Caller;

/// Feedback on an interaction (owner, admin, service).
#[utoipa::path(post, path = "/api/feedback/submit", tag = "feedback", request_body = openapi::FeedbackInput,
    responses((status = 201, body = openapi::FeedbackReceipt),
              (status = 404, description = "`not_found`: no such interaction, or someone else's"),
              (status = 409, description = "`conflict`: the interaction is archived")))]
pub async fn submit(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (feedback_id, interaction_id) = s.app.submit_feedback(&caller, NewFeedback::parse(&body)?).await?;
    Ok((StatusCode::CREATED, Json(json!({"feedback_id": feedback_id, "interaction_id": interaction_id})))
        .into_response())
}
