//! One router per Lambda function. Each group is a slice of the whole API (`super::router`) over
//! the same handlers, finished with the same fallbacks and layers (`super::finish`), so a
//! function answers its routes exactly as `collector serve` does and anything else with our 404
//! or 405 body. API Gateway sends each function only its routes (template.yaml); the fallbacks
//! cover a misrouted request.
//!
//! | function | routes |
//! |---|---|
//! | `log` | `POST /api/interactions`, `POST /api/interactions/batch`, `GET /api/interactions`, `GET /api/interactions/{id}` |
//! | `submit` | `POST /api/feedback/submit` |
//! | `validate-log` | `POST /api/workflow/validate` |
//! | `stats` | `GET /api/feedback/stats`, `GET /api/health`, `GET /openapi.json` |
//! | `export` | `GET /api/feedback/export/{platform}`, `GET /api/exports`, `GET /api/exports/{export_id}` |
//! | `readiness` | `GET /api/feedback/readiness/{platform}`, the admin dashboard (`GET /admin`, `/admin/dashboard.js`, `/admin/dashboard.css`, public) |
//! | `delete` | `DELETE /api/feedback/data/{id}`, `DELETE /api/feedback/data`, `DELETE /api/me/data`, `GET /api/me/data` |
//! | `curation` | `POST/GET /api/examples`, `DELETE /api/examples/{id}`, `POST/GET /api/training-metrics`, `POST/GET /api/platforms` |
//! | `archive-run` | `POST /api/feedback/archive` |
//!
//! `archive-run` is the admin's "archive now" over HTTP; the `archiver` function (schedule and
//! table stream) is not an HTTP function. Both need the same write access to the table and the
//! bucket, which no other group has.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::error::ApiError;
use super::{HttpState, admin, dashboard, data, exports, feedback, finish, interactions, meta_router, platforms};
use crate::domain::archive::{ClassPolicy, StorageClass};

/// The function names, in the order of the table above.
pub const NAMES: [&str; 9] =
    ["log", "submit", "validate-log", "stats", "export", "readiness", "delete", "curation", "archive-run"];

/// The router of the function called `name`, if there is one.
pub fn by_name(name: &str, state: HttpState) -> Option<Router> {
    Some(match name {
        "log" => log(state),
        "submit" => submit(state),
        "validate-log" => validate_log(state),
        "stats" => stats(state),
        "export" => export(state),
        "readiness" => readiness(state),
        "delete" => delete_data(state),
        "curation" => curation(state),
        "archive-run" => archive_run(state),
        _ => return None,
    })
}

/// Logging and reading interactions.
pub fn log(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/interactions", post(interactions::log_interaction).get(interactions::list_interactions))
        .route("/api/interactions/batch", post(interactions::log_batch))
        .route("/api/interactions/{id}", get(interactions::get_interaction));
    finish(r, state)
}

/// Feedback on an interaction.
pub fn submit(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/submit", post(feedback::submit)), state)
}

/// Workflow validation, logged.
pub fn validate_log(state: HttpState) -> Router {
    finish(Router::new().route("/api/workflow/validate", post(interactions::validate)), state)
}

/// Storage statistics, plus the public health check and OpenAPI document.
pub fn stats(state: HttpState) -> Router {
    finish(meta_router().route("/api/feedback/stats", get(feedback::stats)), state)
}

/// Training export (admin), and the exports' manifests. Large answers spill to the bucket
/// ([`spill_large_jsonl`]).
pub fn export(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/feedback/export/{platform}", get(feedback::export_platform))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), spill_large_jsonl))
        .route("/api/exports", get(exports::list_exports))
        .route("/api/exports/{export_id}", get(exports::get_export));
    finish(r, state)
}

/// Training readiness, and the admin dashboard's static page (which reads the API with the
/// admin's token; the page itself holds no data).
pub fn readiness(state: HttpState) -> Router {
    let r =
        Router::new().route("/api/feedback/readiness/{platform}", get(feedback::readiness)).merge(dashboard::router());
    finish(r, state)
}

/// Deletes and the right of access (function `delete`).
pub fn delete_data(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/feedback/data/{interaction_id}", delete(data::delete_one))
        .route("/api/feedback/data", delete(data::delete_user))
        .route("/api/me/data", delete(data::delete_me).get(data::my_data))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), spill_large_jsonl));
    finish(r, state)
}

/// Curated examples and training metrics (admin), and the platforms (listed to anyone, added
/// by an admin).
pub fn curation(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/examples", post(admin::add_example).get(admin::list_examples))
        .route("/api/examples/{id}", delete(admin::delete_example))
        .route("/api/training-metrics", post(admin::add_metric).get(admin::list_metrics))
        .route("/api/platforms", post(platforms::add_platform).get(platforms::list_platforms));
    finish(r, state)
}

/// Archive now (admin), over HTTP.
pub fn archive_run(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/archive", post(feedback::archive)), state)
}

/// CONTRACT: on Lambda an export over 5 MiB is written to the bucket and answered with 303.
pub const SPILL_OVER_BYTES: usize = 5 * 1024 * 1024;
/// A Lambda function answers API Gateway with at most 6 MB of JSON, where the body is one JSON
/// string: quotes, backslashes and control characters grow when escaped. An answer whose escaped
/// body would not fit (with room for the envelope and headers) spills too, even under 5 MiB.
pub const LAMBDA_BODY_BUDGET: usize = 6 * 1024 * 1024 - 64 * 1024;
/// How long the presigned URL of a spilled answer works.
pub const SPILL_URL_TTL: Duration = Duration::from_secs(3600);

/// How many bytes `chunk` takes inside a JSON string.
pub fn json_escaped_len(chunk: &[u8]) -> usize {
    chunk
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

/// On Lambda, a JSONL answer (the training export, a user's data) that would not fit Lambda's
/// response payload is written to the bucket under `exports/{id}/{file name}` and answered with
/// `303 See Other` to a presigned GET URL (valid [`SPILL_URL_TTL`]), so `curl -L` gets the file
/// either way. The body is read as it is produced: up to [`SPILL_OVER_BYTES`] is held in memory;
/// past it (or past [`LAMBDA_BODY_BUDGET`] escaped), that buffer and the rest go through the
/// object store's streamed writer, so memory stays bounded. The `X-Export-*` headers and
/// `Content-Disposition` are kept on the 303. A store that cannot presign (the local folder)
/// means no spill. Under `collector serve` the answer streams as it is.
pub async fn spill_large_jsonl(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let jsonl = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == "application/jsonl");
    if !s.on_lambda() || resp.status() != StatusCode::OK || !jsonl {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let mut stream = body.into_data_stream();
    let mut held = BytesMut::new();
    let mut escaped = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return ApiError::Internal("a large answer's body failed".into()).into_response() };
        escaped += json_escaped_len(&chunk);
        held.extend_from_slice(&chunk);
        if held.len() > SPILL_OVER_BYTES || escaped > LAMBDA_BODY_BUDGET {
            return match spill(&s, &parts.headers, held.freeze(), stream).await {
                Ok(Spilled::Url(url, bytes)) => see_other(parts, &url, bytes),
                Ok(Spilled::NotPresignable(first, rest)) => {
                    let body = futures::stream::iter([Ok::<_, axum::Error>(first)]).chain(rest);
                    Response::from_parts(parts, Body::from_stream(body))
                }
                Err(e) => e.into_response(),
            };
        }
    }
    Response::from_parts(parts, Body::from(held.freeze()))
}

enum Spilled {
    Url(String, i64),
    NotPresignable(Bytes, axum::body::BodyDataStream),
}

async fn spill(
    s: &HttpState,
    headers: &axum::http::HeaderMap,
    first: Bytes,
    mut rest: axum::body::BodyDataStream,
) -> Result<Spilled, ApiError> {
    let name = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .filter(|n| !n.is_empty() && !n.starts_with('.') && !n.contains('/'))
        .unwrap_or("export.jsonl");
    let key = format!("exports/{}/{name}", uuid::Uuid::now_v7());
    let Some(url) = s.app.objects.presigned_get(&key, SPILL_URL_TTL).await? else {
        return Ok(Spilled::NotPresignable(first, rest));
    };
    let mut w = s.app.objects.writer(&key, ClassPolicy::Fixed(StorageClass::Standard)).await?;
    let mut next = Some(first);
    while let Some(chunk) = next {
        if let Err(e) = w.write(chunk).await {
            let _ = w.abort().await;
            return Err(e.into());
        }
        next = match rest.next().await {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                let _ = w.abort().await;
                return Err(ApiError::Internal("a large answer's body failed while spilling".into()));
            }
        };
    }
    let done = w.finish().await?;
    tracing::info!(bytes = done.bytes, "large answer spilled to the bucket");
    Ok(Spilled::Url(url, done.bytes))
}

fn see_other(mut parts: axum::http::response::Parts, url: &str, bytes: i64) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return ApiError::Internal("a presigned URL is not a header value".into()).into_response();
    };
    parts.status = StatusCode::SEE_OTHER;
    parts.headers.insert(header::LOCATION, location);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::json!({"location": url, "bytes": bytes, "expires_in_seconds": SPILL_URL_TTL.as_secs()});
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the whole API is served by exactly one function (the public meta routes
    /// by `stats`), so the functions together are the API.
    #[test]
    fn escaped_length_counts_what_json_escapes() {
        assert_eq!(json_escaped_len(b"abc"), 3);
        assert_eq!(json_escaped_len(b"{\"a\":\"b\\\"c\"}\n"), 13 + 7);
        assert_eq!(json_escaped_len(&[0x01]), 6);
        for sample in ["plain", "{\"k\": [1, \"two\"]}\n", "tab\there\r\n", "\u{1}\u{1f}"] {
            let escaped = serde_json::to_string(sample).unwrap();
            assert_eq!(json_escaped_len(sample.as_bytes()) + 2, escaped.len(), "{sample:?}");
        }
    }

    #[test]
    fn the_groups_cover_the_api_once() {
        use utoipa::OpenApi;
        let doc = super::super::ApiDoc::openapi();
        let mut expected: Vec<(String, String)> = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
            ] {
                if op.is_some() {
                    expected.push((m.to_owned(), path.clone()));
                }
            }
        }
        // The dashboard's page is served by a function but is not in the document (http::dashboard).
        expected.extend(dashboard::PAGE_ROUTES.iter().map(|p| ("GET".to_owned(), (*p).to_owned())));
        expected.sort();
        let mut served: Vec<(String, String)> =
            ROUTES.iter().flat_map(|(_, rs)| rs.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))).collect();
        served.sort();
        let before = served.len();
        served.dedup();
        assert_eq!(before, served.len(), "a route is in two groups");
        assert_eq!(served, expected);
        assert_eq!(ROUTES.iter().map(|(n, _)| *n).collect::<Vec<_>>(), NAMES);
    }

    /// The dashboard's page, script and style come from the `readiness` function (and from the
    /// whole router of `collector serve`) with their types and the strict policy, no identity
    /// needed; no other function serves them.
    #[tokio::test]
    async fn the_readiness_function_and_the_local_router_serve_the_dashboard() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().into_owned();
        let config =
            crate::config::Config::from_lookup(|k| (k == "COLLECTOR_DATA_DIR").then(|| data.clone())).expect("config");
        let state = HttpState::local(crate::app::App::open_local(config).expect("open"));
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).expect("request");
        for (router, whose) in [(readiness(state.clone()), "readiness"), (super::super::router(state.clone()), "serve")]
        {
            for (path, ty) in [
                ("/admin", "text/html; charset=utf-8"),
                ("/admin/dashboard.js", "text/javascript; charset=utf-8"),
                ("/admin/dashboard.css", "text/css; charset=utf-8"),
            ] {
                let resp = router.clone().oneshot(get(path)).await.expect("infallible");
                assert_eq!(resp.status(), StatusCode::OK, "{whose} {path}");
                assert_eq!(resp.headers()[header::CONTENT_TYPE], ty, "{whose} {path}");
                assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], dashboard::CONTENT_SECURITY_POLICY);
                assert!(resp.headers().contains_key(header::CACHE_CONTROL));
            }
        }
        for name in NAMES.iter().filter(|n| **n != "readiness") {
            let resp =
                by_name(name, state.clone()).expect("a function").oneshot(get("/admin")).await.expect("infallible");
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name} does not serve the page");
        }
    }

    /// The routes as template.yaml declares them (method, path), per function.
    pub(super) const ROUTES: [(&str, &[(&str, &str)]); 9] = [
        (
            "log",
            &[
                ("POST", "/api/interactions"),
                ("POST", "/api/interactions/batch"),
                ("GET", "/api/interactions"),
                ("GET", "/api/interactions/{id}"),
            ],
        ),
        ("submit", &[("POST", "/api/feedback/submit")]),
        ("validate-log", &[("POST", "/api/workflow/validate")]),
        ("stats", &[("GET", "/api/feedback/stats"), ("GET", "/api/health"), ("GET", "/openapi.json")]),
        (
            "export",
            &[("GET", "/api/feedback/export/{platform}"), ("GET", "/api/exports"), ("GET", "/api/exports/{export_id}")],
        ),
        (
            "readiness",
            &[
                ("GET", "/api/feedback/readiness/{platform}"),
                ("GET", "/admin"),
                ("GET", "/admin/dashboard.js"),
                ("GET", "/admin/dashboard.css"),
            ],
        ),
        (
            "delete",
            &[
                ("DELETE", "/api/feedback/data/{interaction_id}"),
                ("DELETE", "/api/feedback/data"),
                ("DELETE", "/api/me/data"),
                ("GET", "/api/me/data"),
            ],
        ),
        (
            "curation",
            &[
                ("POST", "/api/examples"),
                ("GET", "/api/examples"),
                ("DELETE", "/api/examples/{id}"),
                ("POST", "/api/training-metrics"),
                ("GET", "/api/training-metrics"),
                ("POST", "/api/platforms"),
                ("GET", "/api/platforms"),
            ],
        ),
        ("archive-run", &[("POST", "/api/feedback/archive")]),
    ];

    /// template.yaml sends each route to the function that serves it (its binary named in
    /// `Metadata.BuildProperties.Binary`), and nothing else.
    #[cfg(feature = "test-suite")]
    #[test]
    fn the_template_routes_match_the_groups() {
        let template: serde_yaml::Value = serde_yaml::from_str(include_str!("../../../../template.yaml")).unwrap();
        let mut declared: Vec<(String, String, String)> = Vec::new();
        for (_, res) in template["Resources"].as_mapping().unwrap() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
            for (_, ev) in res["Properties"]["Events"].as_mapping().into_iter().flatten() {
                if ev["Type"].as_str() == Some("HttpApi") {
                    let p = &ev["Properties"];
                    let method = p["Method"].as_str().unwrap().to_uppercase();
                    declared.push((binary.clone(), method, p["Path"].as_str().unwrap().to_owned()));
                }
            }
        }
        declared.sort();
        let mut expected: Vec<(String, String, String)> = ROUTES
            .iter()
            .flat_map(|(n, rs)| rs.iter().map(|(m, p)| ((*n).to_owned(), (*m).to_owned(), (*p).to_owned())))
            .collect();
        expected.sort();
        assert_eq!(declared, expected);
    }
}
