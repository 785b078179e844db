//! Feedback, stats, readiness, archive runs and training export.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::require;
use super::body::{JsonBody, OptJsonBody, Params};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::app::{AppError, ExportRequest, ExportSummary, LineStream};
use crate::domain::export;
use crate::domain::input::ArchiveRequest;
use crate::domain::types::{Caller, FieldError, Platform, Role};

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/feedback/submit", post(submit))
        .route("/api/feedback/stats", get(stats))
        .route("/api/feedback/readiness/{platform}", get(readiness))
        .route("/api/feedback/archive", post(archive))
        .route("/api/feedback/export/{platform}", get(export_platform))
}

fn platform_param(raw: &str) -> Result<Platform, ApiError> {
    Platform::parse(raw).map_err(|m| ApiError::Validation(vec![FieldError::new("platform", m)]))
}

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
    let (feedback_id, interaction_id) = s.app.submit_feedback(&caller, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({"feedback_id": feedback_id, "interaction_id": interaction_id})))
        .into_response())
}

/// Storage statistics from maintained counters.
#[utoipa::path(get, path = "/api/feedback/stats", tag = "feedback", responses((status = 200, body = crate::domain::stats::Stats)))]
pub async fn stats(State(s): State<HttpState>, _caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(s.app.stats().await?).into_response())
}

/// Training readiness of a platform.
#[utoipa::path(get, path = "/api/feedback/readiness/{platform}", tag = "feedback", params(("platform" = openapi::KnownPlatform, Path)),
    responses((status = 200, body = crate::domain::stats::Readiness)))]
pub async fn readiness(
    State(s): State<HttpState>,
    _caller: Caller,
    Path(platform): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.app.readiness(&platform_param(&platform)?).await?).into_response())
}

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
    require(&caller, &[Role::Admin])?;
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

/// Training data as JSONL (admin), streamed.
#[utoipa::path(get, path = "/api/feedback/export/{platform}", tag = "feedback",
    params(("platform" = openapi::KnownPlatform, Path), ("format" = Option<openapi::ExportFormat>, Query),
           ("split" = Option<openapi::ExportSplit>, Query, description = "only the `train` or `validation` side of a deterministic split by user"),
           ("validation_fraction" = Option<f64>, Query, minimum = 0, maximum = 1, description = "the validation side's share (with `split`)"),
           ("success_only" = Option<bool>, Query, description = "default true"), ("with_feedback_only" = Option<bool>, Query),
           ("include_archived" = Option<bool>, Query), ("include_metadata" = Option<bool>, Query),
           ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "an RFC 3339 time (a YYYY-MM-DD date is taken too, as midnight UTC)"),
           ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "an RFC 3339 time (a YYYY-MM-DD date is taken too, as midnight UTC)"),
           ("limit" = Option<u64>, Query, minimum = 1, maximum = 18446744073709551615_u64, description = "at most this many lines")),
    responses((status = 200, content_type = "application/jsonl", body = String,
               description = "one training example per line; `X-Export-Lines`, `X-Export-Rejected`, `X-Export-Rejected-Reasons`, `X-Export-Duplicates`, `X-Archive-Skipped-Lines` count what went in and what was left out; `X-Export-Id` names the export's manifest (`GET /api/exports/{export_id}`) when it wrote a line"),
              (status = 303, description = "on Lambda, an export over 5 MiB: `Location` is a presigned URL to the file in the bucket (`X-Export-Id` and the counts as on a 200)"),
              (status = 403, description = "`forbidden`: admin only")))]
pub async fn export_platform(
    State(s): State<HttpState>,
    caller: Caller,
    Path(platform): Path<String>,
    Params(q): Params,
) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    let platform = platform_param(&platform);
    let query = export::parse_query(&q);
    let (platform, filter) = match (platform, query) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(ApiError::Validation(mut a)), Err(b)) => {
            a.extend(b);
            return Err(ApiError::Validation(a));
        }
        (Err(e), _) => return Err(e),
        (_, Err(b)) => return Err(ApiError::Validation(b)),
    };
    let name = export::file_name(platform.as_str(), chrono::Utc::now());
    let req = ExportRequest { platform, filter };
    let (rx, summary) = s.app.export_counted(req.clone());
    spooled_export_response(&s, &caller, &req, rx, summary, &name).await
}

/// The counts of what was left out are response headers, and headers go first: so the export
/// is spooled to a temporary file (memory stays flat), then streamed from it with
/// `X-Export-Lines`, `X-Export-Rejected`, `X-Export-Rejected-Reasons` (`reason=n, ...`),
/// `X-Export-Duplicates` and `X-Archive-Skipped-Lines` (archive lines that could not be read).
/// An export of at least one line records its manifest (CONTRACT 4a) before it is answered,
/// with the sha256 and size of the spooled bytes (exactly what is served, inline or, on
/// Lambda, from the bucket), and names it in `X-Export-Id`.
async fn spooled_export_response(
    s: &HttpState,
    caller: &Caller,
    req: &ExportRequest,
    rx: LineStream,
    summary: tokio::sync::oneshot::Receiver<ExportSummary>,
    file_name: &str,
) -> Result<Response, ApiError> {
    let file = spool(rx).await?;
    let summary =
        summary.await.map_err(|_| ApiError::from(AppError::Internal("export ended without a summary".into())))?;
    let spooled =
        file.metadata().await.map_err(|e| ApiError::from(AppError::Internal(format!("export spool: {e}"))))?.len();
    if spooled != summary.bytes {
        return Err(
            AppError::Internal(format!("export spool holds {spooled} bytes, {} were sent", summary.bytes)).into()
        );
    }
    let manifest = s.app.record_export(caller.sub.as_str(), req, &summary).await?;
    super::audit::event(
        caller,
        "GET /api/feedback/export/{platform}",
        None,
        &[
            ("lines", summary.lines as i64),
            ("rejected", summary.rejected_total() as i64),
            ("duplicates", summary.duplicates as i64),
            ("archive_skipped_lines", summary.archive_skipped_lines as i64),
        ],
    );
    let mut resp = spooled_response(file, file_name);
    let h = resp.headers_mut();
    let reasons = summary.rejected.iter().map(|(r, n)| format!("{r}={n}")).collect::<Vec<_>>().join(", ");
    for (name, value) in [
        ("x-export-format", summary.format.to_owned()),
        ("x-export-lines", summary.lines.to_string()),
        ("x-export-rejected", summary.rejected_total().to_string()),
        ("x-export-rejected-reasons", reasons),
        ("x-export-duplicates", summary.duplicates.to_string()),
        (ARCHIVE_SKIPPED, summary.archive_skipped_lines.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(m) = manifest
        && let Ok(v) = HeaderValue::from_str(&m.export_id.to_string())
    {
        h.insert(EXPORT_ID, v);
    }
    Ok(resp)
}

/// Archive lines an answer had to leave out because they could not be read (a bad line, a
/// corrupt gzip segment): each one is logged by the archive reader.
pub const ARCHIVE_SKIPPED: &str = "x-archive-skipped-lines";

/// The id of the export's manifest (CONTRACT 4a); absent when the export wrote no line.
pub const EXPORT_ID: &str = "x-export-id";

/// A JSONL answer written to a temporary file to its end, so that what is known only at the
/// end (counts) can go in its headers; an error before the end is a proper error answer.
pub async fn spool(mut rx: LineStream) -> Result<tokio::fs::File, ApiError> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let spool = tempfile::tempfile().map_err(|e| ApiError::from(AppError::Internal(format!("export spool: {e}"))))?;
    let mut file = tokio::fs::File::from_std(spool);
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        file.write_all(&chunk).await.map_err(|e| ApiError::from(AppError::Internal(format!("export spool: {e}"))))?;
    }
    file.rewind().await.map_err(|e| ApiError::from(AppError::Internal(format!("export spool: {e}"))))?;
    Ok(file)
}

/// A spooled JSONL answer, streamed from its file as `application/jsonl` (an attachment).
pub fn spooled_response(file: tokio::fs::File, file_name: &str) -> Response {
    let stream = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
