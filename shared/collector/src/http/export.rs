//! Function `export`: training data as JSONL (admin), and the export manifests (admin; CONTRACT
//! section 4a): what each export served, newest first, and one by id. The manifests are recorded
//! by the export route and the CLI (`app::lineage`). The spooled JSONL answer is shared with the
//! right of access (`GET /api/me/data`, function `delete`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::body::{Params, PathText, path_id, path_platform, query_limit};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::app::{AppError, ExportRequest, ExportSummary, LineStream};
use crate::domain::export;
use crate::domain::lineage::ExportManifest;
use crate::domain::types::{Caller, FieldError, Id};

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
              (status = 403, description = "`forbidden`: admin only"),
              (status = 409, description = "`conflict`: records the export read were deleted before it was recorded; it is not served (run it again)")))]
pub async fn export_platform(
    State(s): State<HttpState>,
    caller: Caller,
    PathText(platform): PathText,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let platform = path_platform(&platform);
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
    let summary = summary.await.map_err(|_| ApiError::from(AppError::internal("export ended without a summary")))?;
    let spooled = file.metadata().await.map_err(|e| ApiError::from(AppError::internal_from("export spool", e)))?.len();
    if spooled != summary.bytes {
        return Err(
            AppError::internal(format!("export spool holds {spooled} bytes, {} were sent", summary.bytes)).into()
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
    let spool = tempfile::tempfile().map_err(|e| ApiError::from(AppError::internal_from("export spool", e)))?;
    let mut file = tokio::fs::File::from_std(spool);
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        file.write_all(&chunk).await.map_err(|e| ApiError::from(AppError::internal_from("export spool", e)))?;
    }
    file.rewind().await.map_err(|e| ApiError::from(AppError::internal_from("export spool", e)))?;
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

/// A page of manifests, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportPage {
    pub items: Vec<ExportManifest>,
    /// The `cursor` of the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Export manifests (admin), newest first: `limit` 1..100 (default 20), `cursor` from the
/// previous page. The interaction ids an export held are stored, not listed.
#[utoipa::path(get, path = "/api/exports", tag = "exports",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "default 20"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = ExportPage),
              (status = 400, description = "`validation_failed`: a bad `limit` or `cursor`"),
              (status = 401, description = "`unauthenticated`: no identity"),
              (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_exports(
    State(s): State<HttpState>,
    _caller: Caller,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let limit = query_limit(&q, &mut errors);
    let cursor = q.get("cursor").and_then(|c| {
        Id::parse(c).map_err(|_| errors.push(FieldError::new("cursor", "is not a cursor this API issued"))).ok()
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (items, next) = s.app.list_exports(limit, cursor).await?;
    Ok(Json(ExportPage { items, next_cursor: next.map(|id| id.to_string()) }).into_response())
}

/// One export's manifest (admin).
#[utoipa::path(get, path = "/api/exports/{export_id}", tag = "exports", params(("export_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ExportManifest),
              (status = 401, description = "`unauthenticated`: no identity"),
              (status = 403, description = "`forbidden`: admin only"),
              (status = 404, description = "`not_found`: no such export (or not a UUID)")))]
pub async fn get_export(
    State(s): State<HttpState>,
    _caller: Caller,
    PathText(id): PathText,
) -> Result<Response, ApiError> {
    Ok(Json(s.app.export_manifest(path_id(&id)?).await?).into_response())
}
