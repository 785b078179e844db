use crate::domain::types::FieldError;
use crate::domain::workflow::PayloadError;
use crate::ports::StoreError;

/// Expected failures of the use cases. `http::error` maps each to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Adding a platform would pass `MAX_PLATFORMS`.
    #[error("platform limit ({max}) reached")]
    PlatformLimit { max: u32 },
    #[error("archiving is disabled")]
    ArchivingDisabled,
    /// The answer would pass a size limit although the request was within its own (413).
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// Another archive run holds the lease (or took it over from this one).
    #[error("another archive run is in progress")]
    ArchiveRunning,
    #[error("store: {0}")]
    Store(StoreError),
    /// Our fault, not the caller's: `what` says which step failed, `source` why (kept whole for
    /// the log, which `http::error` writes once with the answer; never rendered).
    #[error("internal: {what}{}", .source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Internal {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            // A fenced write means another run holds the lease now.
            StoreError::Fenced => AppError::ArchiveRunning,
            other => AppError::Store(other),
        }
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(e: Vec<FieldError>) -> Self {
        AppError::Validation(e)
    }
}

/// A stored payload that no longer inflates is our fault, not the caller's.
impl From<PayloadError> for AppError {
    fn from(e: PayloadError) -> Self {
        AppError::internal_from("stored payload", e)
    }
}

/// A validation whose issues or diff would pass their limit (`validators::MAX_REPORT_BYTES`).
impl From<crate::domain::validators::ReportTooLarge> for AppError {
    fn from(_: crate::domain::validators::ReportTooLarge) -> Self {
        AppError::TooLarge("the validation's issues or diff would hold more than 8 MiB of paths")
    }
}

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        AppError::Validation(vec![FieldError::new(field, message)])
    }

    /// An internal failure found by our own check (no underlying error).
    pub fn internal(what: impl Into<String>) -> AppError {
        AppError::Internal { what: what.into(), source: None }
    }

    /// An internal failure caused by `source` (kept as the error's source).
    pub fn internal_from(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> AppError {
        AppError::Internal { what: what.into(), source: Some(Box::new(source)) }
    }
}
