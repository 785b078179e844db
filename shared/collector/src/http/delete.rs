//! Function `delete`: deletes, and the right of access (`GET /api/me/data`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::audit;
use super::body::{Params, PathText, path_id};
use super::error::ApiError;
use super::export::{ARCHIVE_SKIPPED, spool, spooled_response};
use super::{HttpState, openapi};
use crate::app::{AppError, Deletion};
use crate::domain::types::{Caller, FieldError, UserId};

/// Delete one interaction and everything linked to it (owner or admin).
#[utoipa::path(delete, path = "/api/feedback/data/{interaction_id}", tag = "data", params(("interaction_id" = uuid::Uuid, Path)),
    responses((status = 200, body = openapi::DeleteAnswer),
              (status = 403, description = "`forbidden`: users and admins only"),
              (status = 404, description = "`not_found`: no such interaction, or someone else's")))]
pub async fn delete_one(
    State(s): State<HttpState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Response, ApiError> {
    let d = s.app.delete_interaction(&caller, path_id(&id)?).await?;
    Ok(deleted(&caller, "DELETE /api/feedback/data/{interaction_id}", None, d))
}

/// Delete all of a user's data (admin).
#[utoipa::path(delete, path = "/api/feedback/data", tag = "data",
    params(("user_id" = String, Query, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")),
    responses((status = 200, body = openapi::DeleteAnswer, description = "what was deleted (zeros for a user with no data)"),
              (status = 403, description = "`forbidden`: admin only")))]
pub async fn delete_user(State(s): State<HttpState>, caller: Caller, Params(q): Params) -> Result<Response, ApiError> {
    let user = q
        .get("user_id")
        .ok_or_else(|| ApiError::Validation(vec![FieldError::new("user_id", "is required")]))
        .and_then(|u| UserId::parse(u).map_err(|m| ApiError::Validation(vec![FieldError::new("user_id", m)])))?;
    let d = s.app.delete_user(&user).await?;
    Ok(deleted(&caller, "DELETE /api/feedback/data", Some(user.as_str()), d))
}

/// Delete all of the caller's data.
#[utoipa::path(delete, path = "/api/me/data", tag = "data",
    responses((status = 200, body = openapi::DeleteAnswer), (status = 403, description = "`forbidden`: users only (services and admins have no data of their own)")))]
pub async fn delete_me(State(s): State<HttpState>, caller: Caller) -> Result<Response, ApiError> {
    let d = s.app.delete_user(&caller.sub).await?;
    Ok(deleted(&caller, "DELETE /api/me/data", None, d))
}

/// `{"deleted": {...}, "affected_exports": [export_id, ...]}` (the exports that held a deleted
/// record, CONTRACT 4a; empty when none), plus `"pending_erasure": {"archive_objects": N}` when
/// archived lines were tombstoned: they are unreadable now and leave the objects' bytes at the
/// next archive run (within a minute under `collector serve`). Logged as an audit event.
fn deleted(caller: &Caller, route: &'static str, subject: Option<&str>, d: Deletion) -> Response {
    let c = &d.deleted;
    audit::event(
        caller,
        route,
        subject,
        &[
            ("interactions", c.interactions),
            ("feedback", c.feedback),
            ("validation_logs", c.validation_logs),
            ("examples", c.examples),
            ("archived_records", c.archived_records),
            ("pending_erasure_objects", d.pending_erasure_objects),
            ("affected_exports", d.affected_exports.len() as i64),
        ],
    );
    let mut body = json!({ "deleted": d.deleted, "affected_exports": d.affected_exports });
    if d.pending_erasure_objects > 0 {
        body["pending_erasure"] = json!({ "archive_objects": d.pending_erasure_objects });
    }
    Json(body).into_response()
}

/// All of the caller's data as JSONL (right of access).
#[utoipa::path(get, path = "/api/me/data", tag = "data",
    responses((status = 200, content_type = "application/jsonl", body = String,
               description = "every record of the caller, one per line; `X-Archive-Skipped-Lines` counts archived lines that could not be read"),
              (status = 303, description = "on Lambda, an answer over 5 MiB: `Location` is a presigned URL to the file in the bucket"),
              (status = 403, description = "`forbidden`: users only")))]
pub async fn my_data(State(s): State<HttpState>, caller: Caller) -> Result<Response, ApiError> {
    // Spooled, so the count of the user's archived records that could not be read (known at
    // the end) goes in a header: `X-Archive-Skipped-Lines`.
    let (rx, summary) = s.app.access_export_counted(caller.sub.clone());
    let file = spool(rx).await?;
    let summary =
        summary.await.map_err(|_| ApiError::from(AppError::internal("access export ended without a summary")))?;
    audit::event(&caller, "GET /api/me/data", None, &[("archive_skipped_lines", summary.archive_skipped_lines as i64)]);
    let mut resp = spooled_response(file, "my_data.jsonl");
    resp.headers_mut().insert(ARCHIVE_SKIPPED, HeaderValue::from(summary.archive_skipped_lines));
    Ok(resp)
}
