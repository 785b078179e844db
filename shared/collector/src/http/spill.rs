//! Large answers on Lambda: the training export, a user's data, a record and a listing page
//! spill to the bucket and are answered with a 303 to a presigned URL ([`spill_large_answers`],
//! the layer of the table's `spill` rows, `super::routes`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::HttpState;
use super::error::ApiError;
use crate::domain::archive::{ClassPolicy, StorageClass};

/// CONTRACT: on Lambda an export over 5 MiB is written to the bucket and answered with 303.
pub const SPILL_OVER_BYTES: usize = 5 * 1024 * 1024;
/// A Lambda function answers API Gateway with at most 6 MB of JSON, where the body is one JSON
/// string: quotes, backslashes and control characters grow when escaped. An answer whose escaped
/// body would not fit (with room for the envelope and headers) spills too, even under 5 MiB.
pub use crate::domain::json::{ANSWER_BUDGET as LAMBDA_BODY_BUDGET, json_escaped_len};
/// How long the presigned URL of a spilled answer works.
pub const SPILL_URL_TTL: Duration = Duration::from_secs(3600);

/// On Lambda, a 200 answer in JSONL (the training export, a user's data) or JSON (a record with
/// its links, a listing page) that would not fit Lambda's
/// response payload is written to the bucket under `exports/{id}/{file name}` and answered with
/// `303 See Other` to a presigned GET URL (valid [`SPILL_URL_TTL`]), so `curl -L` gets the file
/// either way. The body is read as it is produced: up to [`SPILL_OVER_BYTES`] is held in memory;
/// past it (or past [`LAMBDA_BODY_BUDGET`] escaped), that buffer and the rest go through the
/// object store's streamed writer, so memory stays bounded. The `X-Export-*` headers and
/// `Content-Disposition` are kept on the 303; the file is named by `Content-Disposition`, else
/// `answer.jsonl` or `answer.json`. A store that cannot presign (the local folder) means no
/// spill. Under `collector serve` the answer streams as it is.
pub async fn spill_large_answers(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let default_name = match resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some("application/jsonl") => "answer.jsonl",
        Some("application/json") => "answer.json",
        _ => return resp,
    };
    if !s.on_lambda() || resp.status() != StatusCode::OK {
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
            return match spill(&s, &parts.headers, default_name, held.freeze(), stream).await {
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
    default_name: &str,
    first: Bytes,
    mut rest: axum::body::BodyDataStream,
) -> Result<Spilled, ApiError> {
    let name = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .filter(|n| !n.is_empty() && !n.starts_with('.') && !n.contains('/'))
        .unwrap_or(default_name);
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
}
