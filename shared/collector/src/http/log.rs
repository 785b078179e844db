//! Function `log`: logging and reading interactions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::body::{JsonBody, JsonText, Params, PathText, parse_json, path_id, query_limit};
use super::error::ApiError;
use super::{HttpState, openapi};
use crate::app::{AppError, IngestOutcome};
use crate::domain::input::{BodyText, NewInteraction, Parsed, batch_items};
use crate::domain::types::{Caller, FieldError, Id, Platform, UserId};
use crate::ports::Cursor;

/// Log one interaction.
///
/// A service or an admin names `user_id`; a user logs as themselves. `created_at` (service and
/// admin only) must not be in the future.
#[utoipa::path(post, path = "/api/interactions", tag = "interactions", request_body = openapi::InteractionInput,
    responses((status = 201, body = crate::domain::records::IngestReceipt, description = "logged"),
              (status = 200, body = crate::domain::records::IngestReceipt, description = "a replay: the same `interaction_id` with the same content"),
              (status = 202, body = openapi::NotCollected, description = "`ENABLE_DATA_COLLECTION=false`: nothing is stored"),
              (status = 403, description = "`forbidden`: a user named another `user_id`, or sent `created_at`"),
              (status = 409, description = "`conflict`: the `interaction_id` is taken by other content")))]
pub async fn log_interaction(
    State(s): State<HttpState>,
    caller: Caller,
    JsonText(text): JsonText,
) -> Result<Response, ApiError> {
    let outcome = match NewInteraction::parse_text(&text, Utc::now()) {
        Some(BodyText::Parsed(parsed)) => s.app.log_interaction(&caller, parsed).await?,
        Some(BodyText::Legacy(body)) => log_one(&s, &caller, body).await?,
        // Not a JSON object: the Value's parse reports it.
        None => log_one(&s, &caller, parse_json(&text)?).await?,
    };
    let status = status_of(&outcome);
    Ok(match outcome {
        IngestOutcome::Created(r) | IngestOutcome::Replayed(r) => (status, Json(r)).into_response(),
        IngestOutcome::NotCollected => (status, Json(json!({"collected": false}))).into_response(),
    })
}

/// Parse one interaction body and log it. A legacy body (`workflow_gzip_hex`) is inflated off
/// the async workers under the app's inflation gate, whose permit is held until it is stored.
/// The permit goes into the inflation task and comes back with its result: a client that hangs
/// up drops this future, not the task, and the gate must stay closed until the task is done
/// (else each abandoned request would leave an inflation running outside the gate).
async fn log_one(s: &HttpState, caller: &Caller, body: Value) -> Result<IngestOutcome, ApiError> {
    let (parsed, _permit) = if body.get("workflow_gzip_hex").is_some() {
        let permit = s.app.inflation_permit().await?;
        let (parsed, permit) = tokio::task::spawn_blocking(move || (Parsed::interaction(body), permit))
            .await
            .map_err(|e| ApiError::from(AppError::internal_from("inflation task", e)))?;
        (parsed, Some(permit))
    } else {
        (Parsed::interaction(body), None)
    };
    Ok(s.app.log_interaction(caller, parsed).await?)
}

/// The status of a logged interaction: 201 new, 200 a replay, 202 not collected.
fn status_of(outcome: &IngestOutcome) -> StatusCode {
    match outcome {
        IngestOutcome::Created(_) => StatusCode::CREATED,
        IngestOutcome::Replayed(_) => StatusCode::OK,
        IngestOutcome::NotCollected => StatusCode::ACCEPTED,
    }
}

/// Log up to 100 interactions; each item fails alone.
#[utoipa::path(post, path = "/api/interactions/batch", tag = "interactions", request_body = openapi::BatchInput,
    responses((status = 200, body = openapi::BatchAnswer, description = "each item's own status, in order"),
              (status = 403, description = "`forbidden`: service and admin only")))]
pub async fn log_batch(
    State(s): State<HttpState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let items = batch_items(body)?;
    let results = log_items(&s, &caller, items, s.run_deadline()).await;
    Ok(Json(json!({ "results": results })).into_response())
}

/// Each item's entry of a batch's `results`, logged one after the other. Items not started by
/// `deadline` (on Lambda, 20 s into the request: API Gateway gives up at 30) are not logged and
/// answer 503 `unavailable`, so the answer comes in time and says which to send again; without
/// it, a slow batch timed out after some items were stored and none was answered.
async fn log_items(s: &HttpState, caller: &Caller, items: Vec<Value>, deadline: Option<Instant>) -> Vec<Value> {
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            outcomes.push(None);
            continue;
        }
        outcomes.push(Some(log_one(s, caller, item).await));
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            None => json!({"index": index, "status": StatusCode::SERVICE_UNAVAILABLE.as_u16(), "error": {
                "code": "unavailable", "message": "not logged: the batch ran out of time; send this item again"}}),
            Some(outcome) => logged(index, outcome),
        })
        .collect()
}

/// A logged item's entry of a batch's `results`.
fn logged(index: usize, outcome: Result<IngestOutcome, ApiError>) -> Value {
    match outcome {
        Ok(o) => {
            let status = status_of(&o).as_u16();
            match o {
                IngestOutcome::Created(r) | IngestOutcome::Replayed(r) => {
                    json!({"index": index, "status": status, "interaction_id": r.interaction_id})
                }
                IngestOutcome::NotCollected => json!({"index": index, "status": status}),
            }
        }
        Err(e) => {
            // The same mapping as a whole answer's error; the item carries the error object.
            let (status, body) = e.render();
            json!({"index": index, "status": status.as_u16(), "error": body["error"]})
        }
    }
}

/// The whole record with its feedback and validations.
#[utoipa::path(get, path = "/api/interactions/{id}", tag = "interactions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = crate::domain::records::FullRecord),
              (status = 404, description = "`not_found`: no such interaction, or someone else's")))]
pub async fn get_interaction(
    State(s): State<HttpState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Response, ApiError> {
    let rec = s.app.get_interaction(&caller, path_id(&id)?).await?;
    Ok(Json(rec).into_response())
}

/// Newest first, `limit` 1..100, `cursor` from the previous page.
#[utoipa::path(get, path = "/api/interactions", tag = "interactions",
    params(("platform" = Option<openapi::KnownPlatform>, Query),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size (default 20)"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
           ("user_id" = Option<String>, Query, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
            description = "whose records: any user for an admin; a user may only name themselves (else 403)")),
    responses((status = 200, body = openapi::InteractionPage,
               description = "newest first; a page holds at most 4 MiB of records (texts and workflows) besides its first record, so a page of large ones can be shorter than `limit` with `next_cursor` set"),
              (status = 403, description = "`forbidden`: a user named another `user_id`, or a service listed")))]
pub async fn list_interactions(
    State(s): State<HttpState>,
    caller: Caller,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let platform = q
        .get("platform")
        .and_then(|p| Platform::parse(p).map_err(|m| errors.push(FieldError::new("platform", m))).ok());
    let limit = query_limit(&q, &mut errors);
    let cursor = q.get("cursor").and_then(|c| {
        decode_cursor(c).or_else(|| {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
            None
        })
    });
    let user_id =
        q.get("user_id").and_then(|u| UserId::parse(u).map_err(|m| errors.push(FieldError::new("user_id", m))).ok());
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (items, next) = s.app.list_interactions(&caller, user_id, platform, limit, cursor).await?;
    Ok(Json(json!({ "items": items, "next_cursor": next.map(encode_cursor) })).into_response())
}

pub fn encode_cursor(c: Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), c.id))
}

pub fn decode_cursor(raw: &str) -> Option<Cursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (t, id) = text.split_once('|')?;
    let created_at = crate::domain::types::storable_time(chrono::DateTime::parse_from_rfc3339(t).ok()?.to_utc())?;
    Some(Cursor { created_at, id: Id::parse(id).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local state on a fresh store in `dir`, and a service caller.
    fn local_state(dir: &std::path::Path) -> (HttpState, Caller) {
        let data = dir.to_string_lossy().into_owned();
        let config =
            crate::config::Config::from_lookup(|k| (k == "COLLECTOR_DATA_DIR").then(|| data.clone())).expect("config");
        let s = HttpState::local(crate::app::App::open_local(config).expect("open"));
        (s, Caller { sub: UserId::parse("svc").expect("id"), role: crate::domain::types::Role::Service })
    }

    /// Items not started by the batch's deadline answer 503 and are not logged; the others are.
    #[tokio::test]
    async fn batch_items_past_the_deadline_are_503_and_not_logged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, caller) = local_state(dir.path());
        let items: Vec<Value> = (0..3)
            .map(|i| json!({"user_id": "alice", "platform": "n8n", "user_message": format!("message {i}")}))
            .collect();
        let late = log_items(&s, &caller, items.clone(), Some(Instant::now())).await;
        assert!(late.iter().all(|r| r["status"] == 503 && r["error"]["code"] == "unavailable"), "{late:?}");
        let counters = s.app.hot.counters().await.expect("counters");
        assert_eq!(counters.values().map(|c| c.total).sum::<i64>(), 0, "nothing logged");
        let in_time = log_items(&s, &caller, items, None).await;
        assert!(in_time.iter().all(|r| r["status"] == 201), "{in_time:?}");
        assert_eq!(in_time.iter().map(|r| r["index"].clone()).collect::<Vec<_>>(), vec![json!(0), json!(1), json!(2)]);
    }

    /// A client that hangs up while its legacy workflow is inflated drops the request, not the
    /// inflation: the gate stays closed until the inflation is done, so abandoned requests
    /// cannot pile up inflations past it.
    #[tokio::test]
    async fn an_abandoned_legacy_inflation_keeps_the_gate_until_it_is_done() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, caller) = local_state(dir.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!(r#"{{"nodes": [], "note": "{}"}}"#, "x".repeat(16 << 20)).as_bytes()).expect("gzip");
        let hex = hex::encode(gz.finish().expect("gzip"));
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": "import", "workflow_gzip_hex": hex});
        // The client gives up 20 ms in, while the 16 MiB workflow is being inflated and parsed.
        let abandoned = tokio::time::timeout(std::time::Duration::from_millis(20), log_one(&s, &caller, body)).await;
        assert!(abandoned.is_err(), "the inflation took under 20 ms; the test needs a larger workflow");
        let next = tokio::time::timeout(std::time::Duration::from_millis(5), s.app.inflation_permit()).await;
        assert!(next.is_err(), "the gate opened while the abandoned inflation still ran");
        let after = tokio::time::timeout(std::time::Duration::from_secs(120), s.app.inflation_permit()).await;
        assert!(after.is_ok(), "the gate opens once the inflation is done");
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor { created_at: chrono::Utc::now(), id: Id::new() };
        assert_eq!(decode_cursor(&encode_cursor(c)), Some(c));
        assert_eq!(decode_cursor("nope"), None);
        let far = URL_SAFE_NO_PAD.encode(format!("9999-12-31T23:59:59-01:00|{}", Id::new()));
        assert_eq!(decode_cursor(&far), None, "a time past year 9999 in UTC");
    }
}
