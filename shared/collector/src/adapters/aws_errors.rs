//! The one mapping from an AWS SDK error to [`StoreError`], for both clients: DynamoDB's and S3's
//! errors are the same smithy runtime types (`SdkError`, its HTTP response, `ProvideErrorMetadata`).
//!
//! - throttling (a throttling code, or HTTP 429/503) -> `Throttled`, waiting what `Retry-After`
//!   says (seconds), else [`DEFAULT_RETRY_AFTER`];
//! - a missing object (`NoSuchKey`, or 404 without another code) -> `NotFound`;
//! - a missing table, 5xx, no answer or an unreadable answer -> `Unavailable`;
//! - anything else (access denied, a missing bucket, a bad request) -> `Internal`.
//!
//! Messages keep the service, the operation, the error code and the HTTP status: never the
//! service's own message, which can quote keys or item data.

use std::time::Duration;

// Re-exports of aws-smithy-runtime-api's types, the same in every SDK crate.
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::ports::StoreError;

/// What a caller waits when a service throttled us without saying for how long (after the
/// SDK's own retries).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Error codes that mean "slow down", DynamoDB's and S3's.
const THROTTLE_CODES: [&str; 10] = [
    "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded",
    "ThrottlingException",
    "ThrottlingError",
    "Throttling",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "TooManyRequests",
    "ServiceUnavailable",
];

/// Whether an error code (also a transaction's cancellation reason) means throttling.
pub fn is_throttle_code(code: &str) -> bool {
    THROTTLE_CODES.contains(&code)
}

/// Map one SDK failure of `service`'s operation `op`.
pub fn store_error<E>(service: &'static str, op: &'static str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        // The connector's own message (refused, DNS, timeout) names no key or data.
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return StoreError::Unavailable(format!("{service} {op}: no answer: {}", DisplayErrorContext(e)));
        }
        SdkError::ResponseError(_) => return StoreError::Unavailable(format!("{service} {op}: unreadable response")),
        _ => {}
    }
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code();
    match (code, status) {
        (Some("NoSuchKey"), _) | (None | Some("NotFound"), Some(404)) => StoreError::NotFound,
        (Some(c), _) if is_throttle_code(c) => StoreError::Throttled { retry_after: retry_after(e) },
        (_, Some(429 | 503)) => StoreError::Throttled { retry_after: retry_after(e) },
        (Some("ResourceNotFoundException"), _) => StoreError::Unavailable(format!("{service} {op}: table not found")),
        (c, Some(s)) if s >= 500 => {
            StoreError::Unavailable(format!("{service} {op}: {} (HTTP {s})", c.unwrap_or("no code")))
        }
        (c, s) => StoreError::Internal(format!(
            "{service} {op}: {} (HTTP {})",
            c.unwrap_or("no code"),
            s.map_or_else(|| "none".to_owned(), |s| s.to_string())
        )),
    }
}

fn retry_after<E>(e: &SdkError<E, HttpResponse>) -> Duration {
    e.raw_response()
        .and_then(|r| r.headers().get("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    /// The emulator never throttles, so the mapping is checked on hand-built responses.
    fn raw(status: u16, retry_after: Option<&str>) -> HttpResponse {
        let mut raw = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
        if let Some(r) = retry_after {
            raw.headers_mut().insert("retry-after", r.to_owned());
        }
        raw
    }

    fn meta(code: Option<&str>) -> ErrorMetadata {
        let mut meta = ErrorMetadata::builder().message("The specified key archive/secret does not exist");
        if let Some(c) = code {
            meta = meta.code(c);
        }
        meta.build()
    }

    fn s3(status: u16, code: Option<&str>, retry_after: Option<&str>) -> StoreError {
        store_error(
            "s3",
            "get",
            &SdkError::service_error(GetObjectError::generic(meta(code)), raw(status, retry_after)),
        )
    }

    fn dynamodb(status: u16, code: Option<&str>, retry_after: Option<&str>) -> StoreError {
        store_error(
            "dynamodb",
            "get_item",
            &SdkError::service_error(GetItemError::generic(meta(code)), raw(status, retry_after)),
        )
    }

    #[test]
    fn both_services_throttle_the_same_way_and_honour_retry_after() {
        for map in [s3, dynamodb] {
            assert!(matches!(
                map(503, Some("SlowDown"), Some("7")),
                StoreError::Throttled { retry_after } if retry_after == Duration::from_secs(7)
            ));
            assert!(matches!(
                map(400, Some("ProvisionedThroughputExceededException"), Some("3")),
                StoreError::Throttled { retry_after } if retry_after == Duration::from_secs(3)
            ));
            assert!(matches!(
                map(429, None, None),
                StoreError::Throttled { retry_after } if retry_after == DEFAULT_RETRY_AFTER
            ));
            assert!(matches!(map(400, Some("ThrottlingException"), Some("soon")), StoreError::Throttled { .. }));
        }
    }

    #[test]
    fn errors_keep_codes_and_never_the_services_text() {
        assert!(matches!(s3(404, Some("NoSuchKey"), None), StoreError::NotFound));
        assert!(matches!(s3(404, None, None), StoreError::NotFound));
        match s3(404, Some("NoSuchBucket"), None) {
            StoreError::Internal(m) => assert_eq!(m, "s3 get: NoSuchBucket (HTTP 404)"),
            other => panic!("a missing bucket is a deployment error, got {other:?}"),
        }
        match dynamodb(400, Some("ResourceNotFoundException"), None) {
            StoreError::Unavailable(m) => assert_eq!(m, "dynamodb get_item: table not found"),
            other => panic!("a missing table is unavailable, got {other:?}"),
        }
        for e in [s3(500, Some("InternalError"), None), dynamodb(500, Some("InternalServerError"), None)] {
            match e {
                StoreError::Unavailable(m) => assert!(!m.contains("secret"), "the service's message is not kept: {m}"),
                other => panic!("a 500 is retryable, got {other:?}"),
            }
        }
        assert!(matches!(s3(403, Some("AccessDenied"), None), StoreError::Internal(_)));
        match dynamodb(400, Some("ValidationException"), None) {
            StoreError::Internal(m) => assert_eq!(m, "dynamodb get_item: ValidationException (HTTP 400)"),
            other => panic!("a bad request is ours, got {other:?}"),
        }
    }
}
