//! Request parsing at the edge: bodies as bytes (any or no Content-Type), size and depth
//! limits, query strings, path ids; every rejection is our error body.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use crate::domain::json::{JsonShape, MAX_DEPTH, MAX_JSON_COST, ShapeError};
use crate::domain::types::{FieldError, Id, PageLimit, Platform};

pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A JSON body: at most 6 MiB, nesting at most 64 deep, and no more values than a bounded
/// amount of memory holds (`domain::json::MAX_JSON_COST`).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_text(req).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|_| ApiError::InvalidJson)
    }
}

/// A JSON body's text, held to [`JsonBody`]'s limits but not parsed: for a route that parses
/// parts of it its own way (a logged interaction's workflow).
pub struct JsonText(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        read_json_text(req).await.map(JsonText)
    }
}

/// A JSON body that may be empty (then `{}`): for routes whose fields are all optional.
pub struct OptJsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for OptJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        // Blank text passes the limits (no value in it) and reads as `{}`.
        let bytes = read_json_text(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptJsonBody(Value::Object(Default::default())));
        }
        serde_json::from_slice(&bytes).map(OptJsonBody).map_err(|_| ApiError::InvalidJson)
    }
}

/// Bodies that may build at most this much when parsed pass the parse budget freely.
const FREE_PARSE_COST: u64 = 4 * 1024 * 1024;
/// The parse budget of one process, in MiB of `JsonShape::cost`: bodies that may build more
/// than `FREE_PARSE_COST` wait here for their share, so concurrent large bodies cannot add up
/// past it (8 bodies at the 48 MiB limit would otherwise take ~400 MiB at once).
pub const PARSE_BUDGET_MIB: u32 = 128;

/// Bodies known to be at most this large are read without a share of the read budget.
const FREE_READ_BYTES: u64 = 1024 * 1024;
/// The read budget of one process, in MiB of request bodies held: a body over
/// `FREE_READ_BYTES` (or of unknown length, counted as 6 MiB) waits for its share before it is
/// read, so many large bodies at once wait for each other instead of adding up in memory.
pub const READ_BUDGET_MIB: u32 = 64;
/// How long a body may take to arrive in full (6 MiB in a minute is 100 KB/s): a client that
/// stops sending mid-body gets its 400 and its share of the read budget goes back, so stalled
/// uploads cannot hold the budget and make every later large body wait for ever.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a request waits for its share of a budget before it is answered 503 `unavailable`
/// (with `Retry-After`) rather than held open.
pub const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The per-process budgets of [`parse_budget`], and how long a request may wait for them.
pub struct BodyBudgets {
    read: tokio::sync::Semaphore,
    parse: tokio::sync::Semaphore,
    body_read_timeout: std::time::Duration,
    budget_wait: std::time::Duration,
}

impl BodyBudgets {
    pub fn new() -> BodyBudgets {
        BodyBudgets::with_times(BODY_READ_TIMEOUT, BUDGET_WAIT)
    }

    fn with_times(body_read_timeout: std::time::Duration, budget_wait: std::time::Duration) -> BodyBudgets {
        BodyBudgets {
            read: tokio::sync::Semaphore::new(READ_BUDGET_MIB as usize),
            parse: tokio::sync::Semaphore::new(PARSE_BUDGET_MIB as usize),
            body_read_timeout,
            budget_wait,
        }
    }

    /// `mib` of `budget`, waited for at most `budget_wait`; then 503 `unavailable`.
    async fn share<'a>(
        &self,
        budget: &'a tokio::sync::Semaphore,
        mib: u32,
        what: &str,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, ApiError> {
        match tokio::time::timeout(self.budget_wait, budget.acquire_many(mib)).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ApiError::Internal(format!("the {what} budget is closed"))),
            Err(_) => Err(ApiError::Unavailable {
                retry_after: std::time::Duration::from_secs(1),
                cause: Some(format!("no share of the {what} budget within {} s", self.budget_wait.as_secs())),
            }),
        }
    }
}

impl Default for BodyBudgets {
    fn default() -> Self {
        BodyBudgets::new()
    }
}

/// Middleware: read the body once (a large one under a share of the read budget), estimate what
/// parsing it will build, and hold that share of the process's parse budget until the answer
/// is ready. A body over a limit passes without a
/// share: its handler refuses it before building anything. A request without an identity is
/// passed on unread: every route that takes a body answers it 401 before reading it, so an
/// anonymous client costs neither the read, nor the scan, nor a share.
pub async fn parse_budget(
    axum::extract::State(budgets): axum::extract::State<std::sync::Arc<BodyBudgets>>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.extensions().get::<super::auth::Claims>().is_none() {
        return next.run(req).await;
    }
    // The body's known size: its Content-Length, or 0 for a request with neither that nor
    // chunked framing (a GET, a DELETE), which is read freely; a chunked body's is unknown.
    let known = axum::body::HttpBody::size_hint(req.body()).upper();
    // Held until the answer is ready, like the parse share: the body's bytes live that long.
    let _read_share = match known {
        Some(len) if len <= FREE_READ_BYTES => None,
        // Over the limit: refused by the read below without holding its bytes.
        Some(len) if len > MAX_BODY_BYTES as u64 => None,
        other => {
            let mib =
                other.unwrap_or(MAX_BODY_BYTES as u64).div_ceil(1024 * 1024).min(u64::from(READ_BUDGET_MIB)) as u32;
            match budgets.share(&budgets.read, mib, "read").await {
                Ok(p) => Some(p),
                Err(e) => return e.into_response(),
            }
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(budgets.body_read_timeout, read_bytes(body)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            let message = format!("was not received in full within {} s", budgets.body_read_timeout.as_secs());
            return ApiError::Validation(vec![FieldError::new("body", message)]).into_response();
        }
    };
    let shape = JsonShape::of(&bytes);
    let cost = shape.cost();
    let _share = if cost > FREE_PARSE_COST && cost <= MAX_JSON_COST {
        let mib = cost.div_ceil(1024 * 1024).min(u64::from(PARSE_BUDGET_MIB)) as u32;
        match budgets.share(&budgets.parse, mib, "parse").await {
            Ok(p) => Some(p),
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    let mut parts = parts;
    parts.extensions.insert(ScannedBody(shape));
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// The scan [`parse_budget`] made of the body it passed on: the extractors check it rather than
/// scan the same bytes again.
#[derive(Clone)]
struct ScannedBody(JsonShape);

/// The body's bytes (at most 6 MiB), held to every JSON body's limits, with the scan the
/// parse-budget middleware made of them when it ran.
async fn read_json_text(req: Request) -> Result<axum::body::Bytes, ApiError> {
    let scanned = req.extensions().get::<ScannedBody>().map(|s| s.0.clone());
    let bytes = read_bytes(req.into_body()).await?;
    check_json_limits(&bytes, scanned)?;
    Ok(bytes)
}

async fn read_bytes(body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        // Only the length limit is the caller's 413; a body that broke off is a bad request.
        let over_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over_limit {
            ApiError::PayloadTooLarge("the body is over 6 MiB")
        } else {
            ApiError::Validation(vec![FieldError::new("body", "could not be read in full")])
        }
    })
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    check_json_limits(bytes, None)?;
    serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidJson)
}

/// The limits every JSON body is held to before anything is built from it: size, nesting and
/// what a parse may build. `scanned` is the body's scan when one was made already.
fn check_json_limits(bytes: &[u8], scanned: Option<JsonShape>) -> Result<(), ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge("the body is over 6 MiB"));
    }
    let shape = scanned.unwrap_or_else(|| JsonShape::of(bytes));
    match shape.check(MAX_DEPTH, MAX_JSON_COST) {
        Ok(()) => Ok(()),
        Err(ShapeError::TooDeep) => Err(ApiError::PayloadTooLarge("the body nests deeper than 64 levels")),
        Err(ShapeError::TooCostly) => {
            // Within the nesting limit (checked first), so a syntax check that builds nothing
            // tells text that is not JSON at all (400, like any body that is not JSON) from JSON
            // too costly to parse (413).
            if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
                return Err(ApiError::InvalidJson);
            }
            Err(ApiError::PayloadTooLarge("the body holds too many JSON values to parse within the memory limit"))
        }
    }
}

/// Query parameters (last one wins).
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|_| ApiError::Validation(vec![FieldError::new("query", "is not a valid query string")]))
    }
}

/// One path parameter as text. axum's `Path<String>` answers a segment that does not decode to
/// UTF-8 with a plain-text 400. Such a segment names nothing, so it is taken as U+FFFD, which no
/// id or platform is: the route answers as it does any unknown value, in JSON ([`path_id`]:
/// 404, [`path_platform`]: 400).
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let text = axum::extract::Path::<String>::from_request_parts(parts, state).await;
        Ok(PathText(text.map_or_else(|_| "\u{FFFD}".to_owned(), |p| p.0)))
    }
}

/// A path segment that must be a UUID; anything else cannot name a record, so 404.
pub fn path_id(raw: &str) -> Result<Id, ApiError> {
    Id::parse(raw).map_err(|_| ApiError::NotFound)
}

/// The `{platform}` path segment: a slug, else 400 on `platform`.
pub fn path_platform(raw: &str) -> Result<Platform, ApiError> {
    Platform::parse(raw).map_err(|m| ApiError::Validation(vec![FieldError::new("platform", m)]))
}

/// A listing's `limit` query parameter ([`PageLimit::DEFAULT`] when absent); a bad one joins
/// `errors`, so every bad parameter is reported at once.
pub fn query_limit(q: &HashMap<String, String>, errors: &mut Vec<FieldError>) -> PageLimit {
    match q.get("limit") {
        None => PageLimit::DEFAULT,
        Some(l) => PageLimit::parse(l).unwrap_or_else(|m| {
            errors.push(FieldError::new("limit", m));
            PageLimit::DEFAULT
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    /// A router with the budget middleware behind a stand-in identity layer.
    fn app(budgets: Arc<BodyBudgets>) -> Router {
        Router::new()
            .route("/body", post(|JsonBody(_): JsonBody| async { "read" }))
            .route("/get", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(budgets, parse_budget))
            .layer(axum::middleware::from_fn(|mut req: Request, next: axum::middleware::Next| async move {
                req.extensions_mut().insert(super::super::auth::Claims(Default::default()));
                next.run(req).await
            }))
    }

    /// A chunked upload (no Content-Length) that sends `{` and then nothing more.
    fn stalled() -> Body {
        let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))]);
        Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
    }

    async fn call(router: &Router, req: axum::http::Request<Body>) -> (StatusCode, Value) {
        let answer = router.clone().oneshot(req).await.expect("infallible");
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.expect("answer body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn post_body(body: Body) -> axum::http::Request<Body> {
        axum::http::Request::post("/body").body(body).expect("request")
    }

    /// Stalled uploads of unknown length fill the read budget. A request without a body still
    /// passes at once; a large body waits at most the budget wait and gets 503 with Retry-After;
    /// each stalled upload gets its 400 at the read timeout and gives its share back.
    #[tokio::test]
    async fn stalled_uploads_neither_block_reads_nor_hold_the_budget_for_ever() {
        let budgets = Arc::new(BodyBudgets::with_times(Duration::from_millis(600), Duration::from_millis(200)));
        let router = app(budgets.clone());
        // Each takes 6 MiB: ten leave 4 MiB of the 64.
        let shares = READ_BUDGET_MIB as usize / 6;
        let stalled_calls: Vec<_> = (0..shares)
            .map(|_| {
                tokio::spawn({
                    let r = router.clone();
                    async move { call(&r, post_body(stalled())).await }
                })
            })
            .collect();
        let waiting = std::time::Instant::now();
        while budgets.read.available_permits() > 4 {
            assert!(waiting.elapsed() < Duration::from_secs(30), "the stalled uploads never took their shares");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(budgets.read.available_permits(), 4, "the stalled uploads hold the read budget");

        // A GET that waited for a share would get 503 after the budget wait; it gets its 200.
        let get = axum::http::Request::get("/get").body(Body::empty()).expect("request");
        let answer = router.clone().oneshot(get).await.expect("infallible");
        assert_eq!(answer.status(), StatusCode::OK, "a GET waited for the read budget");

        let large = format!("\"{}\"", "x".repeat(5 << 20));
        let answer = router.clone().oneshot(post_body(Body::from(large.clone()))).await.expect("infallible");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));

        for handle in stalled_calls {
            let (status, body) = handle.await.expect("stalled call");
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"]["details"][0]["field"], "body", "{body}");
        }
        assert_eq!(budgets.read.available_permits(), READ_BUDGET_MIB as usize, "every share is back");
        let (status, _) = call(&router, post_body(Body::from(large))).await;
        assert_eq!(status, StatusCode::OK, "the large body is read once the stalled uploads are gone");
    }
}
