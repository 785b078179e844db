//! The one mapping from failures to HTTP: status, code and a message fit for a human.
//! Internal details travel inside [`ApiError`] and are logged once, when the answer is made
//! ([`ApiError::render`], used by `IntoResponse` and by batch items); they are never rendered.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppError;
use crate::domain::types::FieldError;
use crate::ports::StoreError;

#[derive(Debug)]
pub enum ApiError {
    InvalidJson,
    Validation(Vec<FieldError>),
    Unauthenticated,
    Forbidden(&'static str),
    NotFound,
    MethodNotAllowed,
    Conflict(&'static str),
    /// Adding a platform would pass `MAX_PLATFORMS`.
    PlatformLimit {
        max: u32,
    },
    ArchivingDisabled,
    ArchiveRunning,
    PayloadTooLarge(&'static str),
    Unavailable {
        retry_after: Duration,
        /// What was unavailable, for the log (None for throttling, which is expected).
        cause: Option<String>,
    },
    /// The detail is for the log only.
    Internal(String),
}

impl ApiError {
    pub fn status_and_body(&self) -> (StatusCode, Value) {
        let (status, code, message, details) = match self {
            ApiError::InvalidJson => {
                (StatusCode::BAD_REQUEST, "invalid_json", "the body is not valid JSON".into(), None)
            }
            ApiError::Validation(d) => (
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("{} field(s) failed validation", d.len()),
                Some(json!(d)),
            ),
            ApiError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "a valid bearer token is required".into(), None)
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", (*m).into(), None),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such resource".into(), None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method".into(),
                None,
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", (*m).into(), None),
            ApiError::PlatformLimit { max } => (
                StatusCode::CONFLICT,
                "platform_limit",
                format!("there are already {max} platforms, the most MAX_PLATFORMS allows"),
                None,
            ),
            ApiError::ArchivingDisabled => (
                StatusCode::CONFLICT,
                "archiving_disabled",
                "archiving is disabled (ENABLE_DATA_ARCHIVING=false)".into(),
                None,
            ),
            ApiError::ArchiveRunning => (
                StatusCode::CONFLICT,
                "archive_running",
                "another archive run is in progress; retry later or send \"wait\": true".into(),
                None,
            ),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", (*m).into(), None),
            ApiError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is busy; retry shortly".into(), None)
            }
            ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side".into(), None)
            }
        };
        let mut error = json!({"code": code, "message": message});
        if let Some(d) = details {
            error["details"] = d;
        }
        (status, json!({ "error": error }))
    }

    /// Log what the caller is not told (once per answer), then the status and body.
    pub fn render(&self) -> (StatusCode, Value) {
        match self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unavailable { cause: Some(cause), .. } => tracing::warn!(error = %cause, "unavailable"),
            _ => {}
        }
        self.status_and_body()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(d) => ApiError::Validation(d),
            AppError::NotFound => ApiError::NotFound,
            AppError::Forbidden(m) => ApiError::Forbidden(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            AppError::PlatformLimit { max } => ApiError::PlatformLimit { max },
            AppError::ArchivingDisabled => ApiError::ArchivingDisabled,
            AppError::TooLarge(m) => ApiError::PayloadTooLarge(m),
            AppError::ArchiveRunning => ApiError::ArchiveRunning,
            AppError::Store(s) => s.into(),
            e @ AppError::Internal { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Throttled { retry_after } => ApiError::Unavailable { retry_after, cause: None },
            StoreError::Unavailable(detail) => {
                ApiError::Unavailable { retry_after: Duration::from_secs(1), cause: Some(detail) }
            }
            e @ (StoreError::Internal(_) | StoreError::Backend { .. }) => ApiError::Internal(e.to_string()),
            StoreError::Fenced => ApiError::ArchiveRunning,
        }
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(d: Vec<FieldError>) -> Self {
        ApiError::Validation(d)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.render();
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::Unavailable { retry_after, .. } = self {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Panics become our 500 body, never a dropped connection or a runtime error.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_keeps_its_source_for_the_log_and_never_reaches_the_body() {
        let e = StoreError::backend("archive folder", std::io::Error::other("no space left at /data/secret"));
        assert!(std::error::Error::source(&e).is_some(), "the source is kept");
        let api = ApiError::from(AppError::Store(e));
        let (status, body) = api.status_and_body();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret"), "details are never rendered");
        assert!(matches!(&api, ApiError::Internal(d) if d.contains("no space left")), "they are logged");
    }

    #[test]
    fn an_internal_failure_keeps_its_cause_for_the_log_only() {
        let e = AppError::internal_from("export spool", std::io::Error::other("disk full at /var/secret"));
        assert!(std::error::Error::source(&e).is_some(), "the cause is the source");
        let api = ApiError::from(e);
        assert!(matches!(&api, ApiError::Internal(d) if d.contains("export spool") && d.contains("disk full")));
        let (status, body) = api.status_and_body();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret"), "details are never rendered");
    }

    #[test]
    fn throttling_is_expected_and_unavailability_is_logged() {
        let throttled = ApiError::from(StoreError::Throttled { retry_after: Duration::from_secs(3) });
        assert!(matches!(throttled, ApiError::Unavailable { cause: None, retry_after } if retry_after.as_secs() == 3));
        let down = ApiError::from(StoreError::Unavailable("dynamodb query: no answer".into()));
        assert!(matches!(down, ApiError::Unavailable { cause: Some(_), .. }));
        assert_eq!(down.status_and_body().0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
