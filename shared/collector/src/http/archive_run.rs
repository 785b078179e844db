//! Function `archive-run`: archive now (admin), over HTTP. The scheduled runs are the `archiver`
//! function's (not an HTTP function).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::body::OptJsonBody;
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::domain::input::ArchiveRequest;
use crate::domain::types::Caller;

/// Archive now (admin); `dry_run` changes nothing.
#[utoipa::path(post, path = "/api/feedback/archive", tag = "feedback",
    request_body(content = Option<openapi::ArchiveInput>, description = "may be empty (then `{}`)"),
    responses((status = 200, body = crate::app::ArchiveReport),
              (status = 403, description = "`forbidden`: admin only"),
              (status = 409, description = "`archiving_disabled` (`ENABLE_DATA_ARCHIVING=false`), or `archive_running`: another run holds the lease")))]
pub async fn archive(
    State(s): State<HttpState>,
    caller: Caller,
    OptJsonBody(body): OptJsonBody,
) -> Result<Response, ApiError> {
    let req = ArchiveRequest::parse(&body)?;
    let report = s.app.archive(&req, s.run_deadline(), None).await?;
    super::audit::event(
        &caller,
        "POST /api/feedback/archive",
        None,
        &[
            ("dry_run", i64::from(report.dry_run)),
            ("complete", i64::from(report.complete)),
            ("archived_records", report.archived_records),
            ("objects", report.archives.len() as i64),
        ],
    );
    Ok(Json(report).into_response())
}
