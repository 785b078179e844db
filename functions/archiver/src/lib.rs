//! The archiver's handler. One function takes two event sources (template.yaml):
//!
//! - **Schedule** (EventBridge): one archive run with the defaults, the same as
//!   `POST /api/feedback/archive` with an empty body (records older than `DATA_RETENTION_DAYS`,
//!   every platform). With archiving disabled it does nothing. A failed run returns `Err`; a rerun is safe (CONTRACT §6), and the next
//!   schedule tick retries anyway.
//! - **Stream** (the hot table's DynamoDB stream, `ReportBatchItemFailures`): **a stub for the
//!   archiver issue.** It only counts the batch's records (inserts, modifies, a user's removes,
//!   TTL removes, told apart by `userIdentity`) and logs the counts; it archives nothing and
//!   reports no failures, so the stream never stalls on it. Archiving TTL-expired records from
//!   their old images, with per-record `SequenceNumber` failures, is that work.

use aws_lambda_events::dynamodb;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::streams::DynamoDbEventResponse;
use collector::app::{App, AppError, ArchiveReport};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};

/// What invokes the archiver. Untagged: a stream batch has `Records`, a schedule event has
/// `detail-type` and `source`; anything else fails to deserialize (an invocation error).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum ArchiverEvent {
    Stream(dynamodb::Event),
    Schedule(EventBridgeEvent),
}

/// The answer: the stream's partial-batch response, or the run's report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ArchiverResponse {
    Stream(DynamoDbEventResponse),
    Schedule(ArchiveReport),
    /// `ENABLE_DATA_ARCHIVING=false`: the schedule's tick does nothing (not an error, or every
    /// tick would alarm).
    Disabled {
        archiving_disabled: bool,
    },
}

/// What a stream batch held (the stub's whole output, logged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub inserts: usize,
    pub modifies: usize,
    /// Deleted by a request (a user's or an admin's delete): never archived.
    pub removes: usize,
    /// Expired by the table's TTL (`userIdentity` Service / dynamodb.amazonaws.com).
    pub ttl_removes: usize,
}

pub async fn handle(app: &App, event: LambdaEvent<ArchiverEvent>) -> Result<ArchiverResponse, lambda_runtime::Error> {
    match event.payload {
        ArchiverEvent::Schedule(_) => {
            let report = match app.archive(None, false, None, None).await {
                Ok(r) => r,
                Err(AppError::ArchivingDisabled) => return Ok(ArchiverResponse::Disabled { archiving_disabled: true }),
                Err(e) => return Err(e.into()),
            };
            tracing::info!(archived_records = report.archived_records, objects = report.archives.len(), "scheduled archive run");
            Ok(ArchiverResponse::Schedule(report))
        }
        ArchiverEvent::Stream(batch) => {
            let c = count(&batch);
            tracing::info!(
                inserts = c.inserts,
                modifies = c.modifies,
                removes = c.removes,
                ttl_removes = c.ttl_removes,
                "stream batch (stub)"
            );
            Ok(ArchiverResponse::Stream(DynamoDbEventResponse::default()))
        }
    }
}

/// Count a batch's records by kind.
pub fn count(batch: &dynamodb::Event) -> StreamCounts {
    let mut c = StreamCounts::default();
    for r in &batch.records {
        match r.event_name.as_str() {
            "INSERT" => c.inserts += 1,
            "MODIFY" => c.modifies += 1,
            "REMOVE" if is_ttl_expiry(r) => c.ttl_removes += 1,
            "REMOVE" => c.removes += 1,
            _ => {}
        }
    }
    c
}

/// A TTL deletion is made by the DynamoDB service itself.
pub fn is_ttl_expiry(r: &dynamodb::EventRecord) -> bool {
    r.user_identity.as_ref().is_some_and(|u| u.type_ == "Service" && u.principal_id == "dynamodb.amazonaws.com")
}
