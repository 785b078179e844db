//! The archiver's handler. One function takes two event sources (template.yaml):
//!
//! - **Schedule** (EventBridge): archive runs with the defaults, the same as
//!   `POST /api/feedback/archive` with an empty body (records older than `DATA_RETENTION_DAYS`,
//!   every platform), one after another until a run is complete or the invocation's time is
//!   nearly up (each run stops starting objects [`MARGIN`] before the deadline). With archiving
//!   disabled it still erases deleted lines (compaction), and archives nothing. Another run
//!   holding the lease is not an error (it does the work). A failed run returns `Err`; a rerun
//!   is safe (CONTRACT §6), and the next schedule tick retries anyway.
//! - **Stream** (the hot table's DynamoDB stream, `ReportBatchItemFailures`, filtered in
//!   template.yaml to tombstone inserts and TTL removals): the eraser. A delete of an archived
//!   record writes a tombstone; a batch holding one runs the compaction ([`App::compact_now`])
//!   at once, so the deleted lines leave the objects' bytes within about a minute, as under
//!   `collector serve`, not at the next daily run. When another run holds the lease it waits
//!   [`BUSY_WAIT`] and reports the tombstones as failures, so Lambda redelivers them; a batch
//!   dropped after its retries loses nothing (the next run compacts first anyway). The table
//!   has no TTL and no item carries `expires_at` (docs/AWS.md, "Expiry"): records leave the hot
//!   table only through an archive run or a delete, so nothing on the stream needs archiving.
//!   A TTL removal, which means someone turned TTL on and a record may have left without an
//!   archive line, is logged at error level for an alarm.
use aws_lambda_events::dynamodb;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::streams::DynamoDbEventResponse;
use std::time::Duration;

use collector::app::{App, AppError, ArchiveReport};
use collector::domain::input::ArchiveRequest;
use tokio::time::Instant;
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
    /// Another run (the HTTP route, the CLI) holds the lease.
    Busy {
        archive_running: bool,
    },
}

/// What a stream batch held (logged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub inserts: usize,
    /// Of the inserts: tombstones (deletes of archived records), which start an erasure.
    pub tombstones: usize,
    pub modifies: usize,
    /// Deleted by a request (a user's or an admin's delete): never archived.
    pub removes: usize,
    /// Expired by the table's TTL (`userIdentity` Service / dynamodb.amazonaws.com).
    pub ttl_removes: usize,
}

/// How long a batch with tombstones waits when another run holds the lease, before it asks
/// Lambda to redeliver them (so a long run does not turn into a storm of retries).
pub const BUSY_WAIT: Duration = Duration::from_secs(20);

/// Time left for the object in flight to be written and committed when a run stops.
pub const MARGIN: Duration = Duration::from_secs(10);

/// When runs of this invocation must stop starting objects: the invocation's deadline (epoch
/// milliseconds) minus [`MARGIN`]; now when that has passed.
pub fn run_deadline(deadline_ms: u64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(MARGIN);
    Instant::now() + left
}

pub async fn handle(app: &App, event: LambdaEvent<ArchiverEvent>) -> Result<ArchiverResponse, lambda_runtime::Error> {
    handle_waiting(app, event, BUSY_WAIT).await
}

/// [`handle`], waiting `busy_wait` (instead of [`BUSY_WAIT`]) before a busy lease's redelivery.
pub async fn handle_waiting(
    app: &App,
    event: LambdaEvent<ArchiverEvent>,
    busy_wait: Duration,
) -> Result<ArchiverResponse, lambda_runtime::Error> {
    match event.payload {
        ArchiverEvent::Schedule(_) => {
            let deadline = run_deadline(event.context.deadline);
            let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
            loop {
                let report = match app.archive(&req, Some(deadline), None).await {
                    Ok(r) => r,
                    Err(AppError::ArchivingDisabled) => {
                        app.compact_now().await?;
                        return Ok(ArchiverResponse::Disabled { archiving_disabled: true });
                    }
                    Err(AppError::ArchiveRunning) => {
                        tracing::info!("scheduled archive run: another run holds the lease");
                        return Ok(ArchiverResponse::Busy { archive_running: true });
                    }
                    Err(e) => return Err(e.into()),
                };
                if report.complete || Instant::now() >= deadline {
                    return Ok(ArchiverResponse::Schedule(report));
                }
            }
        }
        ArchiverEvent::Stream(batch) => {
            let c = count(&batch);
            tracing::info!(
                inserts = c.inserts,
                tombstones = c.tombstones,
                modifies = c.modifies,
                removes = c.removes,
                ttl_removes = c.ttl_removes,
                "stream batch"
            );
            if c.ttl_removes > 0 {
                // Ids and counts only: never the old image's user text.
                tracing::error!(
                    ttl_removes = c.ttl_removes,
                    "TTL removed hot items: the table must have no TTL (records may have left without an archive line)"
                );
            }
            if c.tombstones == 0 {
                return Ok(ArchiverResponse::Stream(DynamoDbEventResponse::default()));
            }
            match app.compact_now().await {
                Ok(Some(m)) => {
                    tracing::info!(compacted_objects = m.compacted_objects, erased_lines = m.erased_lines, "stream: erased deleted lines");
                    Ok(ArchiverResponse::Stream(DynamoDbEventResponse::default()))
                }
                Ok(None) => {
                    tracing::info!(tombstones = c.tombstones, "stream: another run holds the lease; the tombstones will be redelivered");
                    tokio::time::sleep(busy_wait).await;
                    Ok(ArchiverResponse::Stream(retry_tombstones(&batch)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "stream: erasure failed; the tombstones will be redelivered");
                    Ok(ArchiverResponse::Stream(retry_tombstones(&batch)))
                }
            }
        }
    }
}

/// A partial-batch answer naming the batch's tombstone records, for Lambda to deliver again.
pub fn retry_tombstones(batch: &dynamodb::Event) -> DynamoDbEventResponse {
    let mut resp = DynamoDbEventResponse::default();
    for r in batch.records.iter().filter(|r| is_tombstone_insert(r)) {
        let mut failure = aws_lambda_events::streams::DynamoDbBatchItemFailure::default();
        failure.item_identifier = r.change.sequence_number.clone();
        resp.batch_item_failures.push(failure);
    }
    resp
}

/// A tombstone written: the delete of an archived record.
pub fn is_tombstone_insert(r: &dynamodb::EventRecord) -> bool {
    r.event_name == "INSERT"
        && matches!(r.change.keys.get("pk"), Some(serde_dynamo::AttributeValue::S(pk)) if collector::adapters::dynamodb::is_tombstone_partition(pk))
}

/// Count a batch's records by kind.
pub fn count(batch: &dynamodb::Event) -> StreamCounts {
    let mut c = StreamCounts::default();
    for r in &batch.records {
        match r.event_name.as_str() {
            "INSERT" => {
                c.inserts += 1;
                c.tombstones += usize::from(is_tombstone_insert(r));
            }
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
