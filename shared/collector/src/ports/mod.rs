//! Ports: what the application needs from storage. Adapters implement them; they speak domain
//! types and [`StoreError`] only.
//!
//! Two ports:
//! - [`HotStore`]: interactions, feedback, validation logs, curated examples, training metrics,
//!   maintained counters, and the archive catalog (metadata rows plus an index of archived
//!   interactions). The catalog lives with the hot records so that moving a record out of hot
//!   and pointing at its archive line is one write of the store's own (SQLite: one transaction
//!   per object; DynamoDB: one transaction per batch of records, each record moved whole).
//!
//! Each method's doc says what is atomic. Where the two adapters differ, it says how; the
//! conformance suite (`conformance.rs`) holds both to the same observable behaviour.
//! - [`ObjectStore`]: archive objects (gzip JSONL), written durably before any hot row goes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::archive::{ArchiveObject, ClassPolicy};
use crate::domain::counters::{PlatformCounters, RecordFacts};
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{CuratedExample, Feedback, Interaction, TrainingMetric, ValidationLog};
use crate::domain::types::{Id, Platform, UserId};

#[cfg(feature = "test-suite")]
pub mod conformance;
pub mod keys;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("store throttled")]
    Throttled { retry_after: Duration },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Found by the store itself (an unreadable value, a newer schema): the message says what.
    #[error("store internal error: {0}")]
    Internal(String),
    /// A failure of the library the store runs on (SQLite, JSON encoding, the file system),
    /// kept whole as the source (shared, so a group commit can answer every waiter with it).
    #[error("store internal error: {what}: {source}")]
    Backend {
        what: &'static str,
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The archive lease named by a write is no longer held (another run took it over).
    #[error("archive lease lost")]
    Fenced,
}

impl StoreError {
    /// An encoding failure (a value that does not serialize), kept as the source.
    pub fn internal<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
        StoreError::backend("encoding", e)
    }

    /// A failure of the library underneath, named by `what`, kept as the source.
    pub fn backend<E: std::error::Error + Send + Sync + 'static>(what: &'static str, e: E) -> StoreError {
        StoreError::Backend { what, source: std::sync::Arc::new(e) }
    }
}

/// A link past its interaction's [`crate::domain::records::MAX_LINK_BYTES`] is refused as a
/// conflict with the record's state (409), not as a request too large: the request itself is fine.
impl From<crate::domain::records::LinksFull> for StoreError {
    fn from(_: crate::domain::records::LinksFull) -> StoreError {
        StoreError::Conflict(crate::domain::records::LinksFull::MESSAGE)
    }
}

/// Outcome of inserting an interaction under a client-chosen id.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    New,
    /// The id was taken (hot or archived): the stored content hash and receipt, nothing written.
    Existing {
        content_hash: String,
        receipt: crate::domain::records::IngestReceipt,
    },
    /// The id is of an interaction that was deleted: it is never used again, so a late retry of
    /// its log cannot bring deleted data back (nor be moved into the deleted record's archive
    /// line by a commit of a run cut before the delete). Nothing written.
    Erased,
}

/// Keyset position in a listing: (created_at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Id,
}

/// `GET /api/interactions`: newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub user_id: Option<UserId>,
    pub platform: Option<Platform>,
    /// Return records strictly older than this position.
    pub before: Option<Cursor>,
    pub limit: u32,
}

/// Oldest-first scan of one platform's hot records (export, archiving).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanQuery {
    pub platform: Platform,
    /// Strictly after this position.
    pub after: Option<Cursor>,
    /// Only records with created_at >= since.
    pub since: Option<DateTime<Utc>>,
    /// Only records with created_at < until.
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// An interaction with its feedback and validations (each oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Linked {
    pub interaction: Interaction,
    pub feedback: Vec<Feedback>,
    pub validations: Vec<ValidationLog>,
}

/// Hot-store rows removed by a delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotDeleted {
    pub interactions: i64,
    pub feedback: i64,
    pub validation_logs: i64,
}

/// An interaction that lives in an archive object; the hot store keeps only this pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedEntry {
    pub interaction_id: Id,
    pub user_id: UserId,
    pub platform: Platform,
    pub created_at: DateTime<Utc>,
    pub object_key: String,
    /// For idempotent ingest of an id that has since been archived.
    pub content_hash: String,
    pub receipt: crate::domain::records::IngestReceipt,
    /// Its contribution to counters (archived = true), removed when it is deleted.
    pub facts: RecordFacts,
}

impl ArchivedEntry {
    /// `rec` once it is in the archive object `object_key`: its catalog entry, and what the move
    /// changes in its platform's counters (its hot contribution out, its archived one in).
    pub fn archiving(rec: &Interaction, object_key: &str) -> (ArchivedEntry, PlatformCounters) {
        let facts = rec.facts(true);
        let delta = PlatformCounters::delta(&rec.facts(false).contribution(), &facts.contribution());
        let entry = ArchivedEntry {
            interaction_id: rec.id,
            user_id: rec.user_id.clone(),
            platform: rec.platform.clone(),
            created_at: rec.created_at,
            object_key: object_key.to_owned(),
            content_hash: rec.content_hash.clone(),
            receipt: rec.receipt(),
            facts,
        };
        (entry, delta)
    }
}

/// The archive run's lease: one run at a time across every process and function (the
/// schedule, the stream, the HTTP route, the CLI). `token` grows by one at every acquisition and
/// fences the holder: every catalog write of a run names its lease, and the store refuses it
/// with [`StoreError::Fenced`] once another run has taken the lease over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: i64,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

/// One record of an object being committed, with the number of links (feedback plus
/// validations) its line holds. Interactions change only by gaining links, so a hot record with
/// the same count is the record the line was written from; one with more changed meanwhile and
/// stays hot (its line is tombstoned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveItem {
    pub id: Id,
    pub links: i64,
}

/// How far past `now + ttl` a lease's expiry may lie before [`HotStore::acquire_lease`] takes
/// it for one set under a clock that went back: far more than the clocks of machines sharing a
/// store differ (a laptop running the CLI against the AWS backend included), so a live run is
/// not taken over for skew; a clock set back by less than this delays runs by at most this.
pub const LEASE_CLOCK_SLACK: Duration = Duration::from_secs(600);

#[async_trait]
pub trait HotStore: Send + Sync {
    // -- interactions ---------------------------------------------------------------------
    /// Insert a new interaction (summary as given) and add `rec.facts(false).contribution()` to
    /// its platform's counters, atomically. If the id exists, hot or archived, write nothing and
    /// return [`Inserted::Existing`]. Safe under concurrent inserts of the same id.
    async fn insert_interaction(&self, rec: &Interaction) -> Result<Inserted, StoreError>;

    /// A hot interaction with its feedback and validations.
    async fn get_linked(&self, id: Id) -> Result<Option<Linked>, StoreError>;

    /// The owner of a hot interaction, read without its links or payload (the access check of a
    /// link or a delete; a record's links can hold 16 MiB). None when it is not hot.
    async fn hot_owner(&self, id: Id) -> Result<Option<UserId>, StoreError>;

    /// Hot interactions, newest first by (created_at, id), filtered by owner and platform.
    async fn list_interactions(&self, q: &ListQuery) -> Result<Vec<Interaction>, StoreError>;

    /// Hot interactions of one platform with their links, oldest first by (created_at, id): at
    /// most `limit`, and fewer once their [`Interaction::scan_bytes`] pass
    /// [`crate::domain::records::SCAN_PAGE_BYTES`] (a [`crate::domain::records::PageBudget`]). So a short page does not
    /// mean the end: an empty one does.
    async fn scan_platform(&self, q: &ScanQuery) -> Result<Vec<Linked>, StoreError>;

    /// One user's hot interactions with their links, oldest first, after `after`: pages as
    /// [`Self::scan_platform`]'s (an empty page is the end).
    async fn scan_user(&self, user: &UserId, after: Option<Cursor>, limit: u32) -> Result<Vec<Linked>, StoreError>;

    /// Validation logs of the user not linked to any interaction, oldest first by (created_at,
    /// validation_id), strictly after `after`: at most `limit`, and fewer once their JSON
    /// ([`ValidationLog::scan_bytes`]) passes `SCAN_PAGE_BYTES` (an empty page is the end).
    async fn unlinked_validations(
        &self,
        user: &UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<ValidationLog>, StoreError>;

    // -- feedback and validations --------------------------------------------------------
    /// Store the feedback, replace the interaction's summary with
    /// `summary.with_feedback(fb)` and apply the counters delta, in one atomic write.
    /// [`StoreError::NotFound`] when the interaction is not hot.
    async fn add_feedback(&self, fb: &Feedback) -> Result<(), StoreError>;

    /// Store a validation log. When it links an interaction, in the same write update the
    /// summary (`with_validation`) and counters; [`StoreError::NotFound`] if that one is not hot.
    async fn add_validation(&self, v: &ValidationLog) -> Result<(), StoreError>;

    // -- deletes --------------------------------------------------------------------------
    /// Delete one hot interaction with its feedback and validations; subtract its counters.
    /// Zero counts when it is not hot. The interaction, its counters and its first links go in
    /// one write; on DynamoDB links past one transaction's room are deleted right after (they
    /// are unreachable without their interaction, and a retry removes them).
    async fn delete_interaction(&self, id: Id) -> Result<HotDeleted, StoreError>;

    /// Delete all of a user's hot interactions (with links) and unlinked validation logs: one
    /// [`Self::delete_interaction`] each, not one write (a retry finishes what a cut-off call
    /// left).
    async fn delete_user(&self, user: &UserId) -> Result<HotDeleted, StoreError>;

    // -- curated examples and training metrics ---------------------------------------------
    /// Insert and count it in `curated_examples` of its platform.
    async fn insert_example(&self, ex: &CuratedExample) -> Result<(), StoreError>;
    /// Newest first; all platforms when None.
    async fn list_examples(&self, platform: Option<&Platform>) -> Result<Vec<CuratedExample>, StoreError>;
    /// Delete and uncount; false when unknown.
    async fn delete_example(&self, id: Id) -> Result<bool, StoreError>;
    /// Add one to `usage_count` of each example (an export used it); unknown ids are ignored.
    async fn increment_example_usage(&self, ids: &[Id]) -> Result<(), StoreError>;
    async fn insert_metric(&self, m: &TrainingMetric) -> Result<(), StoreError>;
    /// Newest first; all platforms when None.
    async fn list_metrics(&self, platform: Option<&Platform>) -> Result<Vec<TrainingMetric>, StoreError>;

    // -- counters -------------------------------------------------------------------------
    /// Maintained counters of every platform that has any. Never scans records.
    async fn counters(&self) -> Result<BTreeMap<Platform, PlatformCounters>, StoreError>;

    // -- platforms (CONTRACT section 7a) ----------------------------------------------------
    /// The platforms admins added (never the configured ones, which live in the config).
    /// Read consistently: an add acknowledged anywhere is in the answer.
    async fn added_platforms(&self) -> Result<BTreeSet<Platform>, StoreError>;

    /// Add `p` to the admin-added platforms unless it is there already, atomically with the
    /// limit: [`PlatformAdded::LimitReached`] (nothing written) when one more would not fit
    /// [`PlatformLimit::has_room`]. Concurrent adds from any number of processes never pass
    /// the limit and store a platform once.
    async fn add_platform(&self, p: &Platform, limit: &PlatformLimit) -> Result<PlatformAdded, StoreError>;

    // -- export manifests (CONTRACT section 4a) ---------------------------------------------
    /// Record an export's manifest with the records it held. Readers see the manifest only
    /// once every held record is stored (written together, or the held ones first), so a
    /// manifest never names fewer records than its export held. [`StoreError::Conflict`] if
    /// the id is taken.
    async fn record_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError>;

    /// Take back a recorded export that is not served (records it held were deleted while it
    /// ran): the manifest first, so no reader sees it, then its held records. Idempotent.
    async fn drop_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError>;

    /// Of `ids`, the interactions that still exist, hot or archived (not deleted). Read
    /// consistently.
    async fn live_records(&self, ids: &[Id]) -> Result<HashSet<Id>, StoreError>;

    /// Manifests newest first (by export id, a UUID v7), strictly older than `before`, at most
    /// `limit`.
    async fn list_exports(&self, before: Option<Id>, limit: u32) -> Result<Vec<ExportManifest>, StoreError>;

    /// One manifest (read consistently).
    async fn export_manifest(&self, id: Id) -> Result<Option<ExportManifest>, StoreError>;

    /// The exports with a manifest that hold the record, or any record of the user: an indexed
    /// lookup whose cost follows what that record or user is held in, never the number of
    /// manifests. Read consistently.
    async fn exports_holding(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError>;

    /// Erasure: forget that any export held the record, or any of the user's records. The
    /// manifests stay as they are (lines, hash and size describe a file that exists).
    async fn forget_held(&self, by: HeldBy<'_>) -> Result<(), StoreError>;

    // -- archive catalog ----------------------------------------------------------------------
    // Objects are immutable. A row names an object by its `slot` (the key it was first written
    // under, which stubs and tombstones refer to) and says where its bytes are now
    // (`object_key`: compaction writes a new object and swaps the row in one write).

    /// Take the archive lease if it is free or expired; None when another holder has it. A
    /// lease that expires more than `ttl` + [`LEASE_CLOCK_SLACK`] after `now` was taken under a
    /// clock that has since gone back (or is far ahead): it is free, else no run could start
    /// until the clock caught up with it (fencing keeps its holder, if alive, from writing).
    async fn acquire_lease(&self, holder: &str, now: DateTime<Utc>, ttl: Duration)
    -> Result<Option<Lease>, StoreError>;
    /// Extend a held lease; None when it was taken over (the holder must stop writing).
    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> Result<Option<Lease>, StoreError>;
    /// Give the lease up (a no-op when it was taken over).
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Phase one: record `obj` (state [`ObjectState::Pending`], sizes not yet known) before any
    /// byte of it is written, so that a run that dies leaves a row the next run reconciles.
    /// [`StoreError::Conflict`] if the slot is taken; [`StoreError::Fenced`] without the lease.
    async fn begin_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError>;

    /// Phase two, after the object is durably written: for each item still hot with the same
    /// number of links, replace the hot interaction and its links by an [`ArchivedEntry`] on
    /// `obj.slot` and move its counters (facts(false) -> facts(true)); every other item (deleted,
    /// changed, archived elsewhere) gets a tombstone in `obj.slot`, since its line is not live.
    /// Then the row becomes `obj` (committed, with its sizes) and the object's contribution is
    /// counted. Idempotent: a rerun counts items stubbed to this slot as done and a committed row
    /// once. Returns the ids that were tombstoned. Fenced like every run write. SQLite does all
    /// of it in one transaction; DynamoDB in transactions of up to 100 items (each record with
    /// its links and counters in one), the flip last, so a commit cut short leaves every record
    /// hot or stubbed, never both, and the pending row makes the next run finish it.
    async fn commit_archive(
        &self,
        lease: &Lease,
        obj: &ArchiveObject,
        items: &[ArchiveItem],
    ) -> Result<Vec<Id>, StoreError>;

    /// Roll a pending row back (its object was never written): the row goes. Refused with
    /// [`StoreError::Conflict`] when the row is committed.
    async fn abort_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError>;

    /// Metadata rows (pending and committed), oldest date first; filtered by platform.
    async fn list_archive_objects(&self, platform: Option<&Platform>) -> Result<Vec<ArchiveObject>, StoreError>;

    /// The row of one slot (read consistently).
    async fn archive_object(
        &self,
        platform: &Platform,
        date: NaiveDate,
        slot: &str,
    ) -> Result<Option<ArchiveObject>, StoreError>;

    async fn archived_entry(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError>;
    async fn archived_entries_of_user(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError>;

    /// Delete an archived record: its entry goes, its counters are subtracted and a tombstone
    /// (slot, id) is written, in one atomic write. From then on no read returns its line; the
    /// next archive run erases it from the object. None when the id is not archived.
    async fn delete_archived(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError>;

    /// Ids tombstoned in a slot (read consistently).
    async fn tombstones(&self, slot: &str) -> Result<HashSet<Id>, StoreError>;
    /// Slots that have tombstones: the objects the next run compacts.
    async fn tombstoned_slots(&self) -> Result<BTreeSet<String>, StoreError>;
    /// Finish erasing payloads a store keeps outside its records that a delete (or a write that
    /// lost, or a writer that died before storing its item) could not remove at once; returns
    /// how many it finished. DynamoDB: its overflow objects in S3 (`OVFDEL` notes; a note its
    /// item's write claimed is dropped, the object kept). SQLite keeps no such payload.
    async fn finish_payload_erasures(&self) -> Result<u64, StoreError>;

    /// Delete tombstones of a slot whose row is gone (left by a compaction cut short). Fenced.
    async fn clear_tombstones(&self, lease: &Lease, slot: &str, ids: &[Id]) -> Result<(), StoreError>;

    /// Compaction: `old` (the row as read) was rewritten without the `cleared` ids into `new`
    /// (same slot, new `object_key` and sizes), or into nothing. In one atomic write: the row
    /// becomes `new` (or goes), the object counters move by new - old, and the cleared
    /// tombstones go (on DynamoDB, tombstones past one transaction's room are deleted right
    /// after it; any a crash leaves make the next run compact the slot again, which clears
    /// them). [`StoreError::Conflict`] when the row no longer points at `old.object_key`;
    /// fenced like every run write.
    async fn apply_compaction(
        &self,
        lease: &Lease,
        old: &ArchiveObject,
        new: Option<&ArchiveObject>,
        cleared: &[Id],
    ) -> Result<(), StoreError>;
}

/// Archive objects by key. Local folder or S3; the same key layout.
///
/// Keys are relative, `/`-separated paths whose segments are neither empty nor hidden (no
/// leading `.`, so no `.` or `..`); anything else is refused by every adapter.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Write the whole object durably (a reader never sees a partial one).
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        storage_class: crate::domain::archive::StorageClass,
    ) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Keys under a prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Start a streamed write of `key`. Nothing is visible under the key until
    /// [`ObjectWriter::finish`] returns; `class` picks the storage class from the final size
    /// or fixes it (an object over one part is classed when its upload starts, by what it has
    /// written so far, which is already over the IA threshold).
    async fn writer(&self, key: &str, class: ClassPolicy) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// The object's bytes as a stream of chunks; memory stays at about one chunk.
    /// [`StoreError::NotFound`] when there is no such object.
    async fn reader(&self, key: &str) -> Result<ObjectStream, StoreError>;
    /// A URL that fetches the object with a plain GET until `expires` has passed, or `None`
    /// when the store cannot hand one out (the local folder).
    async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>, StoreError>;
    /// Remove what streamed writes under `prefix` left behind when their process died (neither
    /// finished nor aborted) and that nothing touched for `older_than`; returns how many. The
    /// folder removes its staging files. S3 leaves it to the bucket's lifecycle rule, which
    /// aborts incomplete multipart uploads two days after they started (template.yaml).
    async fn remove_abandoned_writes(&self, prefix: &str, older_than: Duration) -> Result<u64, StoreError>;
    /// Make an existing object durable, as [`ObjectWriter::finish`] does: for an object a
    /// writer whose process died may have made visible without finishing that (a folder's file
    /// renamed into place before its directories were synced), before anything relies on it.
    /// [`StoreError::NotFound`] when there is no such object. S3's objects are durable once
    /// visible: the default does nothing.
    async fn make_durable(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An object's bytes, chunk by chunk.
pub type ObjectStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>;

/// A streamed object write. Consume it with `finish` (the object appears whole) or `abort`
/// (nothing appears, nothing is left behind). Dropped without either, it is aborted in the
/// background as well as the adapter can.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Append a chunk. Adapters buffer; a failed write leaves the writer unusable (abort it).
    async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), StoreError>;
    /// Make the object durable under its key and say what was written.
    async fn finish(self: Box<Self>) -> Result<FinishedObject, StoreError>;
    /// Drop everything written so far.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// What a finished [`ObjectWriter`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedObject {
    pub bytes: i64,
    pub storage_class: crate::domain::archive::StorageClass,
}
