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
    /// Another archive run holds the lease (or took it over from this one).
    #[error("another archive run is in progress")]
    ArchiveRunning,
    #[error("store: {0}")]
    Store(StoreError),
    #[error("internal: {0}")]
    Internal(String),
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
        AppError::Internal(format!("stored payload: {e}"))
    }
}

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        AppError::Validation(vec![FieldError::new(field, message)])
    }
}
