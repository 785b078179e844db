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
//!   dropped after its retries loses nothing (the next run compacts first anyway).
//! - **Stream, TTL removals**: the table has no TTL and no item this code writes carries
//!   `expires_at` (docs/AWS.md, "Expiry"), so records leave the hot table only through an
//!   archive run or a delete. Should TTL remove one anyway (an item written by an older
//!   version, or a TTL someone turned on), it is put back from the event's old image and the
//!   batch then runs an archive run, which archives it exactly once through the two-phase
//!   commit ([`DynamoStore::recover_expired`]: once per event id, never for a delete). Each
//!   removal is logged at warn level (keys only), since it means the table is misconfigured.
//!   A removal that could not be handled is reported, with every TTL removal after it, as a
//!   batch item failure, so Lambda delivers them again.
use aws_lambda_events::dynamodb;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::streams::DynamoDbEventResponse;
use std::time::Duration;

use collector::adapters::dynamodb::{DynamoStore, Recovery};
use collector::app::{App, AppError, ArchiveReport};
use collector::domain::input::ArchiveRequest;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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
    /// Boxed: a report is much larger than the other answers.
    Schedule(Box<ArchiveReport>),
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

/// The function's handler: `table` is the app's own DynamoDB store (for the expiry recovery).
pub async fn handle_aws(
    app: &App,
    table: &DynamoStore,
    event: LambdaEvent<ArchiverEvent>,
) -> Result<ArchiverResponse, lambda_runtime::Error> {
    handle_with(app, Some(table), event, BUSY_WAIT).await
}

/// The handler over any store, without the expiry recovery (TTL removals are only logged).
pub async fn handle(app: &App, event: LambdaEvent<ArchiverEvent>) -> Result<ArchiverResponse, lambda_runtime::Error> {
    handle_with(app, None, event, BUSY_WAIT).await
}

/// [`handle`], waiting `busy_wait` (instead of [`BUSY_WAIT`]) before a busy lease's redelivery.
pub async fn handle_waiting(
    app: &App,
    event: LambdaEvent<ArchiverEvent>,
    busy_wait: Duration,
) -> Result<ArchiverResponse, lambda_runtime::Error> {
    handle_with(app, None, event, busy_wait).await
}

/// The handler: `table` (the app's DynamoDB store) enables the expiry recovery.
pub async fn handle_with(
    app: &App,
    table: Option<&DynamoStore>,
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
                    return Ok(ArchiverResponse::Schedule(Box::new(report)));
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
            let mut resp = DynamoDbEventResponse::default();
            if c.ttl_removes > 0 {
                match table {
                    Some(table) => {
                        // Boxed: these futures are deep, and the handler's would be too big otherwise.
                        let (restored, failed) = Box::pin(recover_expired(table, &batch)).await;
                        resp.batch_item_failures.extend(failed);
                        if restored > 0 {
                            Box::pin(archive_recovered(app, run_deadline(event.context.deadline))).await;
                        }
                    }
                    // Ids and counts only: never the old image's user text.
                    None => tracing::error!(
                        ttl_removes = c.ttl_removes,
                        "TTL removed hot items and this store cannot put them back: the table must have no TTL"
                    ),
                }
            }
            if c.tombstones == 0 {
                return Ok(ArchiverResponse::Stream(resp));
            }
            match app.compact_now().await {
                Ok(Some(m)) => {
                    tracing::info!(
                        compacted_objects = m.compacted_objects,
                        erased_lines = m.erased_lines,
                        "stream: erased deleted lines"
                    );
                }
                Ok(None) => {
                    tracing::info!(
                        tombstones = c.tombstones,
                        "stream: another run holds the lease; the tombstones will be redelivered"
                    );
                    tokio::time::sleep(busy_wait).await;
                    resp.batch_item_failures.extend(retry_tombstones(&batch).batch_item_failures);
                }
                Err(e) => {
                    tracing::error!(error = %e, "stream: erasure failed; the tombstones will be redelivered");
                    resp.batch_item_failures.extend(retry_tombstones(&batch).batch_item_failures);
                }
            }
            Ok(ArchiverResponse::Stream(resp))
        }
    }
}

/// Put back the batch's TTL removals, in stream order, each one tried whatever happened to the
/// ones before it; returns how many were put back and the failures to report (Lambda redelivers
/// from the first of them; a redelivered removal that was handled does nothing). Trying every
/// one means a removal that keeps failing never keeps the others from being put back while the
/// stream still holds their only copy.
pub async fn recover_expired(
    table: &DynamoStore,
    batch: &dynamodb::Event,
) -> (usize, Vec<aws_lambda_events::streams::DynamoDbBatchItemFailure>) {
    let mut restored = 0;
    let mut failures = Vec::new();
    for r in batch.records.iter().filter(|r| r.event_name == "REMOVE" && is_ttl_expiry(r)) {
        let image = r.change.old_image.clone().into();
        match table.recover_expired(image, r.change.approximate_creation_date_time, &r.event_id).await {
            Ok(outcome) => {
                restored += usize::from(outcome == Recovery::Restored);
                // Keys only: never the old image's user text.
                tracing::warn!(event_id = %r.event_id, pk = ?r.change.keys.get("pk"), outcome = ?outcome, "stream: TTL removed an item");
                continue;
            }
            Err(e) => {
                tracing::error!(event_id = %r.event_id, error = %e, "stream: a TTL removal could not be handled; it will be redelivered")
            }
        }
        let mut failure = aws_lambda_events::streams::DynamoDbBatchItemFailure::default();
        failure.item_identifier = r.change.sequence_number.clone();
        failures.push(failure);
    }
    (restored, failures)
}

/// After records were put back: one archive run takes them (best effort: they are hot and
/// safe, and the schedule's next run takes them otherwise).
async fn archive_recovered(app: &App, deadline: Instant) {
    let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
    match app.archive(&req, Some(deadline), None).await {
        Ok(report) => tracing::info!(
            archived_records = report.archived_records,
            complete = report.complete,
            "stream: archived put-back records"
        ),
        Err(AppError::ArchivingDisabled) => tracing::info!("stream: archiving is off; put-back records stay hot"),
        Err(AppError::ArchiveRunning) => {
            tracing::info!("stream: another run holds the lease; it or the next takes the put-back records")
        }
        Err(e) => tracing::error!(error = %e, "stream: archive run after a put-back failed; the next run takes them"),
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
