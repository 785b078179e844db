//! The one mapping from failures to HTTP: status, code and a message fit for a human.
//! Internal details are logged once here and never rendered.

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
    },
    Internal,
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
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is busy; retry shortly".into(), None)
            }
            ApiError::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side".into(), None)
            }
        };
        let mut error = json!({"code": code, "message": message});
        if let Some(d) = details {
            error["details"] = d;
        }
        (status, json!({ "error": error }))
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
            AppError::ArchiveRunning => ApiError::ArchiveRunning,
            AppError::Store(s) => s.into(),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::Internal
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Throttled { retry_after } => ApiError::Unavailable { retry_after },
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                ApiError::Unavailable { retry_after: Duration::from_secs(1) }
            }
            StoreError::Internal(detail) => {
                tracing::error!(error = %detail, "store error");
                ApiError::Internal
            }
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
        let (status, body) = self.status_and_body();
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::Unavailable { retry_after } = self {
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
    tracing::error!("handler panicked");
    ApiError::Internal.into_response()
}
