//! Archiving: hot records older than the cutoff become gzip JSONL objects, one per platform and
//! day. One run at a time, under a lease (see docs/DESIGN.md, "Archive runs"):
//!
//! 1. **Reconcile**: pending rows left by a run that died are rolled forward (the object exists:
//!    its records still hot are moved, the rest tombstoned) or back (it was never written).
//! 2. **Compact**: objects with tombstones (deleted records) are rewritten without those lines
//!    under a new key; the row swaps to it in one write and the old object goes.
//! 3. **Sweep**: objects no row points at, written before this run's catalog snapshot, go.
//! 4. **Archive**: for each new object, a pending row first, then the object is streamed and
//!    made durable, then its records move out of hot (two-phase commit).
//!
//! Every catalog write names the lease, and the store refuses it once another run has taken
//! the lease over, so a stalled run cannot undo a newer one's work.
//!
//! This file holds the run itself (step 4 and the reports); the lease and steps 1-3 are in
//! `maintenance`, the gzip JSON lines writer and reader in `lines`.
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use tokio::time::Instant;

use super::{App, AppError};
use crate::domain::archive::{self, ArchiveObject, StorageClass};
use crate::domain::input::ArchiveRequest;
use crate::domain::records::FullRecord;
use crate::domain::stats::{Overview, overview};
use crate::domain::types::Platform;
use crate::ports::{Cursor, Lease, ScanQuery};

/// Raw JSONL bytes per object at most, so reading or rewriting one stays bounded.
const MAX_RAW_BYTES_PER_OBJECT: i64 = 64 * 1024 * 1024;
const SCAN_PAGE: u32 = 500;
/// Compressed bytes go to the object writer in chunks of about this size.
const OUT_CHUNK: usize = 256 * 1024;
/// gzip level of archive objects, chosen by measurement (docs/PERFORMANCE.md, "Archive
/// throughput"): on archive lines, zlib-rs at level 1 is several times faster than at the
/// default 6 for somewhat larger objects, and compression was most of an archive run's CPU.
const ARCHIVE_GZIP_LEVEL: u32 = 1;
/// Compressed bytes are inflated this many at a time, which bounds one step's output
/// (deflate expands at most about 1000x).
const INFLATE_STEP: usize = 8 * 1024;
/// How long a lease holds without renewal. A run renews it at every page and object, so only a
/// run that stalls (or died) this long loses it.
pub const LEASE_TTL: StdDuration = StdDuration::from_secs(120);
/// A run renews its lease once this much of it has passed.
const LEASE_RENEW_AFTER: StdDuration = StdDuration::from_secs(30);
/// How long `wait` waits for a busy lease at most when the caller gave no deadline.
const LEASE_WAIT_MAX: StdDuration = StdDuration::from_secs(600);
/// Records a commit moves per second at least, as a run with a deadline counts on (DynamoDB
/// commits about 1,000 a second, docs/AWS.md; SQLite many more): an object stops filling once
/// its commit at this rate would end past the deadline, so the object in flight commits in time.
const COMMIT_RECORDS_PER_SEC_FLOOR: f64 = 500.0;
/// A run with a deadline starts no object that could hold fewer records than this before it.
const MIN_OBJECT_RECORDS: usize = 200;
/// How often a long run compacts between its objects: [`HOUSEKEEPING_EVERY`], or the
/// milliseconds of the failpoint `archive.compact_every` set to `return(N)` (tests).
fn compact_every() -> StdDuration {
    fail::fail_point!("archive.compact_every", |v: Option<String>| {
        v.and_then(|n| n.trim().parse::<u64>().ok()).map_or(HOUSEKEEPING_EVERY, StdDuration::from_millis)
    });
    HOUSEKEEPING_EVERY
}

/// How often `collector serve` looks for deleted lines to erase.
pub const HOUSEKEEPING_EVERY: StdDuration = StdDuration::from_secs(30);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchivedObjectReport {
    pub platform: String,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub object_key: String,
    pub record_count: i64,
    pub raw_bytes: i64,
    pub compressed_bytes: i64,
    pub compression_ratio: f64,
    pub storage_class: StorageClass,
}

impl From<&ArchiveObject> for ArchivedObjectReport {
    fn from(o: &ArchiveObject) -> Self {
        ArchivedObjectReport {
            platform: o.platform.to_string(),
            date: o.date,
            object_key: o.object_key.clone(),
            record_count: o.record_count,
            raw_bytes: o.raw_bytes,
            compressed_bytes: o.compressed_bytes,
            compression_ratio: o.compression_ratio(),
            storage_class: o.storage_class,
        }
    }
}

/// What a run did before archiving: reconcile, compaction (erasure) and sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Maintenance {
    /// Pending objects of an earlier run rolled forward (committed) or back (dropped).
    pub rolled_forward: i64,
    pub rolled_back: i64,
    /// Objects rewritten without their deleted lines, and the lines erased.
    pub compacted_objects: i64,
    pub erased_lines: i64,
    /// Objects no row pointed at, deleted, and staging files of writes whose process died.
    pub swept_objects: i64,
    /// Unreadable lines a compaction copied as they were (their id was unknown or not deleted),
    /// and corrupt gzip segments it could not copy (logged at error level).
    pub copied_unreadable_lines: i64,
    pub dropped_corrupt_segments: i64,
    /// Objects with deleted lines that could not be compacted (the object missing or
    /// unreadable: logged at error level with its key). Their tombstones stay, so their deleted
    /// lines stay unreadable and the next run tries again; every other object is compacted and
    /// the run goes on.
    pub failed_compactions: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchiveReport {
    pub dry_run: bool,
    /// False when the run stopped for its time budget; a later run carries on.
    pub complete: bool,
    pub cutoff: DateTime<Utc>,
    pub archived_records: i64,
    pub before: Overview,
    pub after: Overview,
    pub archives: Vec<ArchivedObjectReport>,
    pub maintenance: Maintenance,
}

/// A failure writing an archive object's gzip stream (or encoding a line into it).
fn internal(e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::internal_from("archive object", e)
}

/// A failpoint of the crash tests (feature `failpoints`): when tripped, the step fails as if
/// the process had died there (the caller's error path runs, nothing else of the run does).
macro_rules! crash_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| Err(AppError::internal(concat!("failpoint ", $name))))
    };
}

// After `crash_point!`, which they use.
mod lines;
mod maintenance;
#[cfg(test)]
mod tests;

pub(crate) use lines::ArchiveLines;
use lines::Pending;

/// Progress callback for long runs (the CLI draws a bar from it): records archived so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// One run's state: its keys, its lease (none on a dry run) and its time budget.
struct Run {
    run_id: String,
    next_object: usize,
    lease: Option<Lease>,
    renewed: Instant,
    deadline: Option<Instant>,
    /// When the run last compacted (its maintenance, then between objects).
    compacted: Instant,
}

impl Run {
    fn lease(&self) -> Result<&Lease, AppError> {
        self.lease.as_ref().ok_or_else(|| AppError::internal("archive write without a lease"))
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// How many records a commit started now can move by the deadline (at
    /// [`COMMIT_RECORDS_PER_SEC_FLOOR`]); None without a deadline or on a dry run (no commit).
    fn commit_room(&self) -> Option<usize> {
        let d = self.deadline.filter(|_| self.lease.is_some())?;
        Some((d.saturating_duration_since(Instant::now()).as_secs_f64() * COMMIT_RECORDS_PER_SEC_FLOOR) as usize)
    }

    fn next_key(&mut self, p: &Platform, date: NaiveDate) -> String {
        let key = archive::object_key(p, date, &self.run_id, self.next_object);
        self.next_object += 1;
        key
    }

    /// Renew the lease when due; losing it ends the run.
    async fn keep_lease(&mut self, app: &App, force: bool) -> Result<(), AppError> {
        let Some(lease) = &self.lease else { return Ok(()) };
        if !force && self.renewed.elapsed() < LEASE_RENEW_AFTER {
            return Ok(());
        }
        match app.hot.renew_lease(lease, Utc::now(), LEASE_TTL).await? {
            Some(l) => {
                self.lease = Some(l);
                self.renewed = Instant::now();
                Ok(())
            }
            None => Err(AppError::ArchiveRunning),
        }
    }
}

impl App {
    /// Archive hot records older than `days_old` days (default: DATA_RETENTION_DAYS), after
    /// reconciling, compacting and sweeping. `deadline`: stop starting objects once it has
    /// passed (the report then says `complete: false`).
    pub async fn archive(
        &self,
        req: &ArchiveRequest,
        deadline: Option<Instant>,
        progress: Option<Progress<'_>>,
    ) -> Result<ArchiveReport, AppError> {
        // A run without a platform covers every platform with data, known or not.
        self.require_platform_if(req.platform.as_ref()).await?;
        if !self.config.enable_data_archiving {
            return Err(AppError::ArchivingDisabled);
        }
        let now = Utc::now();
        let cutoff = now - Duration::days(i64::from(req.days_old.unwrap_or(self.config.data_retention_days)));
        let run_id = archive::new_run_id(now);
        let _local = if req.dry_run { None } else { Some(self.local_runs.lock().await) };
        let lease = if req.dry_run { None } else { Some(self.take_lease(&run_id, req.wait, deadline).await?) };
        let mut run =
            Run { run_id, next_object: 0, lease, renewed: Instant::now(), deadline, compacted: Instant::now() };
        let result = self.archive_under_lease(&mut run, req, cutoff, progress).await;
        self.release(&run).await;
        let report = result?;
        tracing::info!(
            archived_records = report.archived_records,
            objects = report.archives.len(),
            complete = report.complete,
            dry_run = report.dry_run,
            compacted = report.maintenance.compacted_objects,
            erased = report.maintenance.erased_lines,
            "archive run"
        );
        Ok(report)
    }

    async fn archive_under_lease(
        &self,
        run: &mut Run,
        req: &ArchiveRequest,
        cutoff: DateTime<Utc>,
        progress: Option<Progress<'_>>,
    ) -> Result<ArchiveReport, AppError> {
        let before = overview(&self.counters_by_name().await?);
        let mut maintenance = Maintenance::default();
        let mut complete = true;
        if run.lease.is_some() {
            complete = self.maintain(run, &mut maintenance).await?;
        }
        let platforms: Vec<Platform> = match &req.platform {
            Some(p) => vec![p.clone()],
            None => self.hot.counters().await?.into_keys().collect(),
        };
        let mut archives = Vec::new();
        let mut archived_records = 0i64;
        for p in platforms {
            if !complete || run.out_of_time() {
                complete = false;
                break;
            }
            let mut pending: Option<Pending> = None;
            let done = self
                .archive_platform(
                    &p,
                    cutoff,
                    run,
                    &mut pending,
                    &mut archives,
                    &mut archived_records,
                    &mut maintenance,
                    progress,
                )
                .await;
            match done {
                Ok(finished) => complete &= finished,
                Err(e) => {
                    // An object left half-written is dropped and its row rolled back; its
                    // records are still hot. (If this fails too, the next run reconciles.)
                    if let Some(pe) = pending.take() {
                        let slot = pe.key.clone();
                        let (platform, date) = (pe.platform.clone(), pe.date);
                        pe.abort().await;
                        self.roll_back(run, platform, date, slot).await;
                    }
                    return Err(e);
                }
            }
        }
        let after = overview(&self.counters_by_name().await?);
        Ok(ArchiveReport {
            dry_run: run.lease.is_none(),
            complete,
            cutoff,
            archived_records,
            before,
            after,
            archives,
            maintenance,
        })
    }

    async fn roll_back(&self, run: &Run, platform: Platform, date: NaiveDate, slot: String) {
        let Some(lease) = &run.lease else { return };
        let row = ArchiveObject::pending(platform, date, slot, &run.run_id, Utc::now());
        if let Err(e) = self.hot.abort_archive(lease, &row).await {
            tracing::warn!(error = %e, "archive: rolling back a pending row failed; the next run reconciles it");
        }
    }

    /// One platform's old records into objects. `pending` is the object being written, left
    /// to the caller to abort on error. False when the time budget ran out first.
    #[allow(clippy::too_many_arguments)]
    async fn archive_platform(
        &self,
        p: &Platform,
        cutoff: DateTime<Utc>,
        run: &mut Run,
        pending: &mut Option<Pending>,
        archives: &mut Vec<ArchivedObjectReport>,
        archived_records: &mut i64,
        maintenance: &mut Maintenance,
        progress: Option<Progress<'_>>,
    ) -> Result<bool, AppError> {
        let mut after: Option<Cursor> = None;
        let mut report = |obj: &ArchiveObject| {
            *archived_records += obj.record_count;
            archives.push(ArchivedObjectReport::from(obj));
            if let Some(cb) = progress {
                cb(*archived_records as u64);
            }
        };
        let mut complete = true;
        'scan: loop {
            run.keep_lease(self, false).await?;
            let page = self
                .hot
                .scan_platform(&ScanQuery {
                    platform: p.clone(),
                    after,
                    since: None,
                    until: Some(cutoff),
                    limit: SCAN_PAGE,
                })
                .await?;
            // A page can be short (its records' bytes): only an empty one is the end.
            let Some(last) = page.last() else { break };
            after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
            for l in page {
                let room = run.commit_room();
                let no_room_for_another = pending.is_none() && room.is_some_and(|r| r < MIN_OBJECT_RECORDS);
                if run.out_of_time() || no_room_for_another {
                    // The object in flight is finished below with what it holds.
                    complete = false;
                    break 'scan;
                }
                let date = l.interaction.created_at.date_naive();
                // Full, or as many records as can still commit before the deadline: a run on
                // Lambda must answer before its function's timeout, the commit included.
                let ends = |pe: &Pending| pe.date != date || pe.full() || room.is_some_and(|r| pe.records() >= r);
                if pending.as_ref().is_some_and(ends)
                    && let Some(done) = pending.take()
                {
                    let obj = self.finish_object(done, run).await?;
                    report(&obj);
                    self.compact_between_objects(run, maintenance).await?;
                    if run.commit_room().is_some_and(|r| r < MIN_OBJECT_RECORDS) {
                        complete = false;
                        break 'scan;
                    }
                }
                let pe = match pending.take() {
                    Some(pe) => pending.insert(pe),
                    None => {
                        let key = run.next_key(p, date);
                        pending.insert(self.open_object(run, p, date, key).await?)
                    }
                };
                pe.push_linked(&l).await?;
            }
        }
        if let Some(done) = pending.take() {
            let obj = self.finish_object(done, run).await?;
            report(&obj);
            // After the platform's last object too: between platforms, and at the run's end.
            self.compact_between_objects(run, maintenance).await?;
        }
        Ok(complete)
    }

    /// Between the objects of a long run (a backlog through the CLI can take minutes): erase
    /// the lines deleted since the run began, at most every [`HOUSEKEEPING_EVERY`], so a delete
    /// is erased within a minute while a run holds the lease (`collector serve`'s own
    /// compaction waits for the lease). The object being filled is not open here.
    async fn compact_between_objects(&self, run: &mut Run, m: &mut Maintenance) -> Result<(), AppError> {
        fail::fail_point!("archive.between_objects");
        // A run short of time leaves the tombstones to the next run, as at its start.
        let short_of_time = run.commit_room().is_some_and(|r| r < MIN_OBJECT_RECORDS);
        if run.lease.is_none() || short_of_time || run.compacted.elapsed() < compact_every() {
            return Ok(());
        }
        run.compacted = Instant::now();
        self.compact(run, m).await.map(|_| ())
    }

    /// Phase one: the pending row, then the writer (none on a dry run).
    async fn open_object(
        &self,
        run: &mut Run,
        p: &Platform,
        date: NaiveDate,
        key: String,
    ) -> Result<Pending, AppError> {
        let Some(lease) = run.lease.clone() else {
            return Pending::open(self.objects.as_ref(), p.clone(), date, key, true).await;
        };
        let row = ArchiveObject::pending(p.clone(), date, key.clone(), &run.run_id, Utc::now());
        self.hot.begin_archive(&lease, &row).await?;
        crash_point!("archive.after_pending_row");
        match Pending::open(self.objects.as_ref(), p.clone(), date, key.clone(), false).await {
            Ok(pe) => Ok(pe),
            Err(e) => {
                self.roll_back(run, p.clone(), date, key).await;
                Err(e)
            }
        }
    }

    /// Write the object durably, then (phase two) move its records out of hot and commit the
    /// row. Returns the object as reported: records that were tombstoned (deleted or changed
    /// meanwhile) are not counted.
    async fn finish_object(&self, p: Pending, run: &Run) -> Result<ArchiveObject, AppError> {
        let (platform, date) = (p.platform.clone(), p.date);
        let w = p.finish().await?;
        let mut obj = w.object(w.key.clone(), platform, date, &run.run_id);
        let Some(lease) = &run.lease else { return Ok(obj) };
        crash_point!("archive.after_upload");
        let tombstoned = self.hot.commit_archive(lease, &obj, &w.items).await?;
        // Their lines go at the next run's compaction; they are not archived records.
        obj.record_count -= tombstoned.len() as i64;
        Ok(obj)
    }

    /// An archived record, read from its object. Its line unreadable (logged by the reader):
    /// an internal error, since the record exists but cannot be served; the object's other
    /// records read as usual. A slot with nothing to read ([`App::open_slot`]) holds no line of
    /// it: not found.
    pub(crate) async fn read_archived(&self, entry: &crate::ports::ArchivedEntry) -> Result<FullRecord, AppError> {
        let Some((obj, mut lines)) = self.open_entry_slot(entry).await? else {
            return Err(AppError::NotFound);
        };
        let id = entry.interaction_id;
        let mut found = None;
        while let Some(rec) = lines.next().await? {
            if rec.interaction_id == id {
                found = Some(rec);
            }
        }
        match found {
            Some(rec) => Ok(rec),
            None if lines.unreadable.total() > 0 => {
                Err(AppError::internal(format!("archived record {id} is in an unreadable part of {}", obj.object_key)))
            }
            None => Err(AppError::NotFound),
        }
    }

    /// [`App::open_slot`] of the slot an archived entry points at.
    pub(crate) async fn open_entry_slot(
        &self,
        entry: &crate::ports::ArchivedEntry,
    ) -> Result<Option<(ArchiveObject, ArchiveLines)>, AppError> {
        self.open_slot(&entry.platform, entry.created_at.date_naive(), &entry.object_key).await
    }

    /// A slot's row (read consistently) and its object opened where the row says its bytes are
    /// now, or `None` when the slot has nothing to read. The row is read before the object is
    /// opened. If the object is missing, the row is read again:
    /// - a compaction that swapped the row meanwhile deleted the old key; the new key holds the
    ///   same lines less the erased ones, so it is opened instead;
    /// - a pending row's object may not be written yet (its upload is under way, or was cut
    ///   short): none of its records has left the hot store then, so it has nothing to read;
    /// - a row that is gone (every line erased, or a pending row rolled back) has nothing either.
    pub(crate) async fn open_slot(
        &self,
        platform: &Platform,
        date: NaiveDate,
        slot: &str,
    ) -> Result<Option<(ArchiveObject, ArchiveLines)>, AppError> {
        let mut missing: Option<String> = None;
        // Each retry follows a compaction that finished in between; three in a row means
        // something else is wrong.
        for _ in 0..4 {
            let Some(row) = self.hot.archive_object(platform, date, slot).await? else { return Ok(None) };
            if missing.as_deref() == Some(row.object_key.as_str()) {
                if row.state == archive::ObjectState::Pending {
                    return Ok(None);
                }
                break;
            }
            match ArchiveLines::open(self.objects.as_ref(), &row.object_key).await {
                Ok(lines) => return Ok(Some((row, lines))),
                Err(AppError::Store(crate::ports::StoreError::NotFound)) => missing = Some(row.object_key),
                Err(e) => return Err(e),
            }
        }
        Err(AppError::internal(format!("archive object of slot {slot} is missing")))
    }
}
