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
    let id = path_id(&id)?;
    let (app, who) = (s.app.clone(), caller.clone());
    let route = "DELETE /api/feedback/data/{interaction_id}";
    let d = to_the_end(&caller, route, None, async move { app.delete_interaction(&who, id).await }).await?;
    Ok(deleted(d))
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
    let app = s.app.clone();
    let whose = user.clone();
    let d =
        to_the_end(
            &caller,
            "DELETE /api/feedback/data",
            Some(user.as_str()),
            async move { app.delete_user(&whose).await },
        )
        .await?;
    Ok(deleted(d))
}

/// Delete all of the caller's data.
#[utoipa::path(delete, path = "/api/me/data", tag = "data",
    responses((status = 200, body = openapi::DeleteAnswer), (status = 403, description = "`forbidden`: users only (services and admins have no data of their own)")))]
pub async fn delete_me(State(s): State<HttpState>, caller: Caller) -> Result<Response, ApiError> {
    let (app, whose) = (s.app.clone(), caller.sub.clone());
    let d = to_the_end(&caller, "DELETE /api/me/data", None, async move { app.delete_user(&whose).await }).await?;
    Ok(deleted(d))
}

/// Run a delete on a task of its own, to its end, and log its audit event there: a client
/// that hangs up drops its request, and must not cut the delete between its steps (the data
/// gone, the exports' held records of it not yet forgotten), which no retry could finish (the
/// record is gone: 404), nor leave a delete that happened unaudited.
async fn to_the_end(
    caller: &Caller,
    route: &'static str,
    subject: Option<&str>,
    delete: impl std::future::Future<Output = Result<Deletion, AppError>> + Send + 'static,
) -> Result<Deletion, ApiError> {
    use tracing::Instrument;
    let (caller, subject) = (caller.clone(), subject.map(str::to_owned));
    // Logged first too: a delete cut short (a store error part way, or a Lambda timeout, which
    // stops everything) has removed some data, and its audit trail says it was asked for.
    audit::event(&caller, route, subject.as_deref(), &[("requested", 1)]);
    let task = async move {
        let d = match delete.await {
            Ok(d) => d,
            Err(e) => {
                // A refusal (unknown id, someone else's record, a bad request) removed nothing.
                if !matches!(e, AppError::NotFound | AppError::Forbidden(_) | AppError::Validation(_)) {
                    audit::event(&caller, route, subject.as_deref(), &[("failed", 1)]);
                }
                return Err(e);
            }
        };
        audit_deleted(&caller, route, subject.as_deref(), &d);
        Ok::<_, AppError>(d)
    };
    match tokio::spawn(task.in_current_span()).await {
        Ok(done) => Ok(done?),
        Err(e) => Err(AppError::internal_from("delete task", e).into()),
    }
}

/// `{"deleted": {...}, "affected_exports": [export_id, ...]}` (the exports that held a deleted
/// record, CONTRACT 4a; empty when none), plus `"pending_erasure": {"archive_objects": N}` when
/// archived lines were tombstoned: they are unreadable now and leave the objects' bytes at the
/// next archive run (within a minute under `collector serve`).
fn deleted(d: Deletion) -> Response {
    let mut body = json!({ "deleted": d.deleted, "affected_exports": d.affected_exports });
    if d.pending_erasure_objects > 0 {
        body["pending_erasure"] = json!({ "archive_objects": d.pending_erasure_objects });
    }
    Json(body).into_response()
}

/// The audit event of a delete that went through.
fn audit_deleted(caller: &Caller, route: &'static str, subject: Option<&str>, d: &Deletion) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::domain::lineage::HeldBy;
    use crate::domain::types::{Id, Role};

    const SECRET: &str = "delete-test-secret";

    fn request(method: &str, path: &str, sub: &str, groups: &[&str]) -> axum::http::Request<Body> {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let token = super::super::auth::mint_token(SECRET, sub, &groups, "cognito:groups", None).expect("token");
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    }

    /// A delete's audit trail: a line when it is asked for, then one with its counts, or one
    /// that says it failed (it may have removed some data before it did); a refusal (404)
    /// removed nothing and adds no second line.
    #[tokio::test]
    async fn a_delete_is_audited_when_asked_for_and_when_it_fails() {
        let logs = audit::CapturedLogs::default();
        // The test's runtime has one thread, so the delete's own task logs here too.
        let _guard = tracing::subscriber::set_default(logs.subscriber());
        let alice = Caller { sub: UserId::parse("alice").expect("id"), role: Role::User };
        let failing = async { Err(AppError::Store(crate::ports::StoreError::Unavailable("down".into()))) };
        assert!(to_the_end(&alice, "DELETE /api/me/data", None, failing).await.is_err());
        let counts = crate::app::DeletedCounts { interactions: 2, ..Default::default() };
        let done = async move { Ok(Deletion { deleted: counts, ..Deletion::default() }) };
        assert!(to_the_end(&alice, "DELETE /api/me/data", None, done).await.is_ok());
        let refused = async { Err(AppError::NotFound) };
        assert!(to_the_end(&alice, "DELETE /api/feedback/data/{interaction_id}", None, refused).await.is_err());
        let text = logs.text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("audit")).collect();
        assert_eq!(lines.len(), 5, "a refusal removed nothing: no failed line: {text}");
        assert!(lines[4].contains("requested=1"), "{text}");
        assert!(lines[0].contains("requested=1") && lines[1].contains("failed=1"), "{text}");
        assert!(lines[2].contains("requested=1") && lines[3].contains("interactions=2"), "{text}");
    }

    /// A client that hangs up while its delete runs does not cut the delete short: the record is
    /// gone and so are the exports' held records of it (a retry could not finish that: the
    /// record is gone, so it answers 404). The hang-up is the request's task aborted while the
    /// delete waits just after its hot delete (failpoint `delete.after_hot_delete`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_hangs_up_does_not_cut_a_delete_short() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().into_owned();
        let config = crate::config::Config::from_lookup(|k| match k {
            "COLLECTOR_DATA_DIR" => Some(data.clone()),
            "COLLECTOR_JWT_SECRET" => Some(SECRET.to_owned()),
            _ => None,
        })
        .expect("config");
        let app = crate::app::App::open_local(config).expect("open");
        let router = crate::http::router(HttpState::local(app.clone()));
        let service = Caller { sub: UserId::parse("svc").expect("id"), role: Role::Service };
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": "hello", "ai_response": "hi"});
        let id: Id = match app.log_interaction(&service, crate::domain::input::Parsed::interaction(body)).await {
            Ok(crate::app::IngestOutcome::Created(r)) => r.interaction_id,
            other => panic!("not created: {other:?}"),
        };
        let export = router
            .clone()
            .oneshot(request("GET", "/api/feedback/export/n8n", "root", &["admin"]))
            .await
            .expect("infallible");
        assert_eq!(export.status(), 200);
        axum::body::to_bytes(export.into_body(), usize::MAX).await.expect("export body");
        let alice = UserId::parse("alice").expect("id");
        let held = || app.hot.exports_holding(HeldBy::Record { id, user: &alice });
        assert_eq!(held().await.expect("held").len(), 1, "the export holds the record");

        let (reached, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (r, g) = (reached.clone(), go.clone());
        fail::cfg_callback("delete.after_hot_delete", move || {
            r.store(true, SeqCst);
            tokio::task::block_in_place(|| {
                while !g.load(SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
        })
        .expect("failpoint");
        let path = format!("/api/feedback/data/{id}");
        let call = tokio::spawn(router.clone().oneshot(request("DELETE", &path, "alice", &[])));
        let waiting = std::time::Instant::now();
        while !reached.load(SeqCst) {
            assert!(waiting.elapsed() < std::time::Duration::from_secs(60), "the delete never reached the failpoint");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        call.abort();
        go.store(true, SeqCst);
        let mut left = usize::MAX;
        for _ in 0..400 {
            left = held().await.expect("held").len();
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        fail::remove("delete.after_hot_delete");
        assert_eq!(left, 0, "the delete went on after the hang-up and forgot the export's held record");
        let admin = Caller { sub: UserId::parse("root").expect("id"), role: Role::Admin };
        assert!(matches!(app.get_interaction(&admin, id).await, Err(AppError::NotFound)));
    }
}
