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

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration as StdDuration;

use bytes::{Buf, Bytes};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use flate2::{Compression, write::GzDecoder, write::GzEncoder};
use futures::StreamExt;
use serde::Serialize;
use tokio::time::Instant;

use super::{App, AppError};
use crate::domain::archive::{self, ArchiveObject, ClassPolicy, MAX_RECORDS_PER_OBJECT, ObjectState, StorageClass};
use crate::domain::input::ArchiveRequest;
use crate::domain::records::FullRecord;
use crate::domain::stats::{Overview, overview};
use crate::domain::types::{Id, Platform};
use crate::ports::{ArchiveItem, Cursor, Lease, Linked, ObjectStore, ObjectStream, ObjectWriter, ScanQuery, StoreError};

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
    /// Objects no row pointed at, deleted.
    pub swept_objects: i64,
    /// Unreadable lines a compaction copied as they were (their id was unknown or not deleted),
    /// and corrupt gzip segments it could not copy (logged at error level).
    pub copied_unreadable_lines: i64,
    pub dropped_corrupt_segments: i64,
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

/// Where an object's compressed bytes go: the store's writer, or nowhere (a dry run, which
/// still compresses to report sizes).
enum Sink {
    Discard,
    Writer(Box<dyn ObjectWriter>),
}

/// One object being filled: records are gzipped as they come and the compressed bytes
/// streamed to the writer, so memory is about one [`OUT_CHUNK`] whatever the object's size.
struct Pending {
    platform: Platform,
    date: NaiveDate,
    key: String,
    items: Vec<ArchiveItem>,
    /// Unreadable lines copied as they were (compaction), besides the records in `items`.
    copied_lines: i64,
    raw_bytes: i64,
    compressed_bytes: i64,
    gz: GzEncoder<Vec<u8>>,
    sink: Sink,
    /// The line being written (reused).
    line: Vec<u8>,
}

/// A finished object's facts, before it is recorded.
struct Written {
    key: String,
    items: Vec<ArchiveItem>,
    copied_lines: i64,
    raw_bytes: i64,
    compressed_bytes: i64,
    storage_class: StorageClass,
}

impl Written {
    /// The committed row of this object in `slot` (its own key for a new object, the old one's
    /// slot for a compaction).
    fn object(&self, slot: String, platform: Platform, date: NaiveDate, run_id: &str) -> ArchiveObject {
        ArchiveObject {
            object_key: self.key.clone(),
            slot,
            state: ObjectState::Committed,
            platform,
            date,
            run_id: run_id.to_owned(),
            // Every line: an unreadable one copied by a compaction is still someone's record.
            record_count: self.items.len() as i64 + self.copied_lines,
            raw_bytes: self.raw_bytes,
            compressed_bytes: self.compressed_bytes,
            storage_class: self.storage_class,
            created_at: Utc::now(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// A failpoint of the crash tests (feature `failpoints`): when tripped, the step fails as if
/// the process had died there (the caller's error path runs, nothing else of the run does).
macro_rules! crash_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| Err(AppError::Internal(concat!("failpoint ", $name).into())))
    };
}

impl Pending {
    /// Open `key` for writing (nothing is written on a dry run).
    async fn open(
        objects: &dyn ObjectStore,
        platform: Platform,
        date: NaiveDate,
        key: String,
        dry_run: bool,
    ) -> Result<Pending, AppError> {
        let sink = if dry_run { Sink::Discard } else { Sink::Writer(objects.writer(&key, ClassPolicy::BySize).await?) };
        Ok(Pending {
            platform,
            date,
            key,
            items: Vec::new(),
            copied_lines: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            gz: GzEncoder::new(Vec::with_capacity(OUT_CHUNK), Compression::new(ARCHIVE_GZIP_LEVEL)),
            sink,
            line: Vec::new(),
        })
    }

    /// A hot record with its links, written as its `FullRecord` line straight from the stored
    /// workflow text ([`archive::write_line`]): the workflow is not parsed into a `Value`.
    async fn push_linked(&mut self, l: &Linked) -> Result<(), AppError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        archive::write_line(&mut line, &l.interaction, &l.feedback, &l.validations)?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(internal)?;
        self.raw_bytes += line.len() as i64;
        self.line = line;
        self.items.push(ArchiveItem {
            id: l.interaction.id,
            links: (l.feedback.len() + l.validations.len()) as i64,
        });
        self.send_if_full().await
    }

    async fn push(&mut self, rec: &FullRecord) -> Result<(), AppError> {
        let mut line = serde_json::to_vec(rec).map_err(internal)?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(internal)?;
        self.raw_bytes += line.len() as i64;
        self.items.push(ArchiveItem {
            id: rec.interaction_id,
            links: (rec.feedback.len() + rec.validations.len()) as i64,
        });
        self.send_if_full().await
    }

    /// A line that does not read as a record, copied byte for byte (compaction keeps what it
    /// cannot read rather than lose it).
    async fn push_raw(&mut self, raw: &[u8]) -> Result<(), AppError> {
        self.gz.write_all(raw).map_err(internal)?;
        self.gz.write_all(b"\n").map_err(internal)?;
        self.raw_bytes += raw.len() as i64 + 1;
        self.copied_lines += 1;
        self.send_if_full().await
    }

    async fn send_if_full(&mut self) -> Result<(), AppError> {
        if self.gz.get_ref().len() >= OUT_CHUNK {
            let chunk = std::mem::replace(self.gz.get_mut(), Vec::with_capacity(OUT_CHUNK));
            self.send(chunk).await?;
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), AppError> {
        self.compressed_bytes += chunk.len() as i64;
        if let Sink::Writer(w) = &mut self.sink
            && !chunk.is_empty()
        {
            w.write(Bytes::from(chunk)).await?;
            crash_point!("archive.mid_upload");
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.items.len() >= MAX_RECORDS_PER_OBJECT || self.raw_bytes >= MAX_RAW_BYTES_PER_OBJECT
    }

    /// Write the gzip trailer (without it the object would be silently truncated), send the
    /// last bytes and make the object durable.
    async fn finish(self) -> Result<Written, AppError> {
        let Pending { key, items, copied_lines, raw_bytes, mut compressed_bytes, gz, sink, .. } = self;
        // What is still buffered, then the trailer.
        let tail = gz.finish().map_err(internal)?;
        compressed_bytes += tail.len() as i64;
        let storage_class = match sink {
            Sink::Discard => StorageClass::for_size(compressed_bytes),
            Sink::Writer(mut w) => {
                // On an error the writer is dropped, which removes whatever it had written.
                w.write(Bytes::from(tail)).await?;
                crash_point!("archive.before_upload_finish");
                let done = w.finish().await?;
                if done.bytes != compressed_bytes {
                    return Err(AppError::Internal("archive object size mismatch after writing".into()));
                }
                done.storage_class
            }
        };
        Ok(Written { key, items, copied_lines, raw_bytes, compressed_bytes, storage_class })
    }

    /// Give up on the object: nothing of it stays in the store.
    async fn abort(self) {
        if let Sink::Writer(w) = self.sink
            && let Err(e) = w.abort().await
        {
            tracing::warn!(error = %e, "archive: aborting an unfinished object failed");
        }
    }
}

/// Progress callback for long runs (the CLI draws a bar from it): records archived so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// One run's state: its keys, its lease (none on a dry run) and its time budget.
struct Run {
    run_id: String,
    next_object: usize,
    lease: Option<Lease>,
    renewed: Instant,
    deadline: Option<Instant>,
}

impl Run {
    fn lease(&self) -> Result<&Lease, AppError> {
        self.lease.as_ref().ok_or_else(|| AppError::Internal("archive write without a lease".into()))
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
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
        let mut run = Run { run_id, next_object: 0, lease, renewed: Instant::now(), deadline };
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

    /// Erase deleted records from archive objects now (reconcile, compact, sweep), if no other
    /// run holds the lease; None when one does (it compacts anyway). Runs with archiving
    /// disabled too: erasure is not optional.
    pub async fn compact_now(&self) -> Result<Option<Maintenance>, AppError> {
        let Ok(_local) = self.local_runs.try_lock() else { return Ok(None) };
        let run_id = archive::new_run_id(Utc::now());
        let Some(lease) = self.hot.acquire_lease(&run_id, Utc::now(), LEASE_TTL).await? else {
            return Ok(None);
        };
        let mut run = Run { run_id, next_object: 0, lease: Some(lease), renewed: Instant::now(), deadline: None };
        let mut m = Maintenance::default();
        let result = self.maintain(&mut run, &mut m).await;
        self.release(&run).await;
        result.map(|_| Some(m))
    }

    /// `collector serve`'s own scheduler, for a machine without one: every
    /// [`HOUSEKEEPING_EVERY`] it erases deleted lines from archive objects (so bytes go within a
    /// minute of a delete), and once a day, when `COLLECTOR_ARCHIVE_AT` (UTC) passes, it runs
    /// the archive. Failures are logged and retried at the next tick.
    pub async fn housekeeping(self) {
        self.housekeeping_every(HOUSEKEEPING_EVERY).await
    }

    /// [`App::housekeeping`] with another period (tests).
    pub async fn housekeeping_every(self, every: StdDuration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Started after today's time: the first run is tomorrow's, not one at every restart.
        let mut last_daily = self.config.archive_at.filter(|at| Utc::now().time() >= *at).map(|_| Utc::now().date_naive());
        loop {
            tick.tick().await;
            match self.hot.tombstoned_slots().await {
                Ok(slots) if !slots.is_empty() => match self.compact_now().await {
                    Ok(Some(m)) => tracing::info!(compacted = m.compacted_objects, erased = m.erased_lines, "erasure"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "erasure failed; retrying at the next tick"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "erasure: reading tombstones failed"),
            }
            let now = Utc::now();
            let Some(at) = self.config.archive_at else { continue };
            if !self.config.enable_data_archiving || now.time() < at || last_daily == Some(now.date_naive()) {
                continue;
            }
            last_daily = Some(now.date_naive());
            let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
            match self.archive(&req, None, None).await {
                Ok(_) | Err(AppError::ArchiveRunning) => {}
                Err(e) => tracing::warn!(error = %e, "daily archive run failed"),
            }
        }
    }

    async fn release(&self, run: &Run) {
        if let Some(lease) = &run.lease
            && let Err(e) = self.hot.release_lease(lease).await
        {
            // It expires by itself.
            tracing::warn!(error = %e, "archive: releasing the lease failed");
        }
    }

    async fn take_lease(&self, holder: &str, wait: bool, deadline: Option<Instant>) -> Result<Lease, AppError> {
        let give_up = deadline.unwrap_or_else(|| Instant::now() + LEASE_WAIT_MAX);
        loop {
            if let Some(lease) = self.hot.acquire_lease(holder, Utc::now(), LEASE_TTL).await? {
                return Ok(lease);
            }
            if !wait || Instant::now() >= give_up {
                return Err(AppError::ArchiveRunning);
            }
            tokio::time::sleep(StdDuration::from_millis(250)).await;
        }
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
                .archive_platform(&p, cutoff, run, &mut pending, &mut archives, &mut archived_records, progress)
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

    /// Reconcile, compact, sweep. False when the time budget ran out first.
    async fn maintain(&self, run: &mut Run, m: &mut Maintenance) -> Result<bool, AppError> {
        self.reconcile(run, m).await?;
        if !self.compact(run, m).await? {
            return Ok(false);
        }
        self.sweep(run, m).await?;
        Ok(true)
    }

    /// Pending rows are runs that died between their first and last step: roll each forward
    /// when its object was written (records still hot with the same links move; the rest are
    /// tombstoned), back when it was not.
    async fn reconcile(&self, run: &mut Run, m: &mut Maintenance) -> Result<(), AppError> {
        let pending: Vec<ArchiveObject> = self
            .hot
            .list_archive_objects(None)
            .await?
            .into_iter()
            .filter(|o| o.state == ObjectState::Pending)
            .collect();
        for row in pending {
            run.keep_lease(self, false).await?;
            let lease = run.lease()?.clone();
            match self.object_contents(&row.object_key).await? {
                None => {
                    self.hot.abort_archive(&lease, &row).await?;
                    m.rolled_back += 1;
                }
                Some(c) => {
                    let obj = ArchiveObject {
                        state: ObjectState::Committed,
                        record_count: c.lines,
                        raw_bytes: c.raw_bytes,
                        compressed_bytes: c.compressed_bytes,
                        storage_class: StorageClass::for_size(c.compressed_bytes),
                        ..row
                    };
                    self.hot.commit_archive(&lease, &obj, &c.items).await?;
                    m.rolled_forward += 1;
                }
            }
        }
        Ok(())
    }

    /// What an object holds (ids with their link counts, sizes), or None when it does not exist.
    async fn object_contents(&self, key: &str) -> Result<Option<ObjectContents>, AppError> {
        let mut lines = match ArchiveLines::open(self.objects.as_ref(), key).await {
            Ok(l) => l,
            Err(AppError::Store(StoreError::NotFound)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (mut items, mut count) = (Vec::new(), 0i64);
        while let Some(line) = lines.next_line().await? {
            count += 1;
            match line {
                Line::Record(rec) => {
                    items.push(ArchiveItem { id: rec.interaction_id, links: (rec.feedback.len() + rec.validations.len()) as i64 })
                }
                // A line no reader can serve must not replace its record: a link count no record
                // has makes the commit leave the record hot and tombstone the line (the next
                // compaction erases it). A line without a known id stays, read by no one.
                Line::Bad { id: Some(id), .. } => items.push(ArchiveItem { id, links: -1 }),
                Line::Bad { id: None, .. } => {}
            }
        }
        Ok(Some(ObjectContents { items, lines: count, raw_bytes: lines.raw_bytes, compressed_bytes: lines.compressed_bytes }))
    }

    /// Rewrite every object that has tombstones without those lines: the new object under a new
    /// key, the row swapped to it with the tombstones cleared in one write, the old object
    /// deleted. False when the time budget ran out first.
    async fn compact(&self, run: &mut Run, m: &mut Maintenance) -> Result<bool, AppError> {
        let slots = self.hot.tombstoned_slots().await?;
        if slots.is_empty() {
            return Ok(true);
        }
        let rows: HashMap<String, ArchiveObject> =
            self.hot.list_archive_objects(None).await?.into_iter().map(|o| (o.slot.clone(), o)).collect();
        for slot in slots {
            if run.out_of_time() {
                return Ok(false);
            }
            run.keep_lease(self, false).await?;
            let dead = self.hot.tombstones(&slot).await?;
            let cleared: Vec<Id> = dead.iter().copied().collect();
            let lease = run.lease()?.clone();
            let Some(row) = rows.get(&slot) else {
                // The row went with an earlier compaction that was cut short.
                self.hot.clear_tombstones(&lease, &slot, &cleared).await?;
                continue;
            };
            if row.state == ObjectState::Pending {
                continue;
            }
            let key = run.next_key(&row.platform, row.date);
            let mut kept = Pending::open(self.objects.as_ref(), row.platform.clone(), row.date, key, false).await?;
            let (mut erased, mut copied_bad, mut lost) = (0i64, 0i64, 0u64);
            let copied: Result<(), AppError> = async {
                let mut lines = ArchiveLines::open(self.objects.as_ref(), &row.object_key).await?;
                while let Some(line) = lines.next_line().await? {
                    match line {
                        Line::Record(rec) if dead.contains(&rec.interaction_id) => erased += 1,
                        Line::Record(rec) => kept.push(&rec).await?,
                        // An unreadable line is dropped only when its id is found and deleted;
                        // any other is copied byte for byte, never lost.
                        Line::Bad { id: Some(id), .. } if dead.contains(&id) => erased += 1,
                        Line::Bad { number, raw, .. } => {
                            tracing::warn!(object_key = %row.object_key, line = number, "compaction: an unreadable line is copied as it is");
                            kept.push_raw(&raw).await?;
                            copied_bad += 1;
                        }
                    }
                }
                lost = lines.unreadable.segments;
                if lost > 0 {
                    // Nothing can inflate it (no reader ever served it); keeping the bytes would
                    // also keep any deleted line inside them.
                    tracing::error!(object_key = %row.object_key, "compaction: a corrupt gzip segment cannot be copied and is dropped");
                }
                crash_point!("compact.before_upload");
                Ok(())
            }
            .await;
            if let Err(e) = copied {
                kept.abort().await;
                return Err(e);
            }
            let new = if kept.items.is_empty() && kept.copied_lines == 0 {
                kept.abort().await;
                None
            } else {
                let w = kept.finish().await?;
                Some(w.object(row.slot.clone(), row.platform.clone(), row.date, &run.run_id))
            };
            let swapped: Result<(), AppError> = async {
                crash_point!("compact.before_swap");
                self.hot.apply_compaction(&lease, row, new.as_ref(), &cleared).await?;
                Ok(())
            }
            .await;
            if let Err(e) = swapped {
                // The new object is unreferenced; the sweep would get it anyway.
                if let Some(n) = &new
                    && let Err(d) = self.objects.delete(&n.object_key).await
                {
                    tracing::warn!(error = %d, "archive: dropping an unused compacted object failed");
                }
                return Err(e);
            }
            crash_point!("compact.after_swap");
            self.objects.delete(&row.object_key).await?;
            m.compacted_objects += 1;
            m.erased_lines += erased;
            m.copied_unreadable_lines += copied_bad;
            m.dropped_corrupt_segments += lost as i64;
        }
        Ok(true)
    }

    /// Delete objects under `archive/` that no row points at (left by a run that died before
    /// its pending row was rolled back, or by a compaction cut short). The objects are listed
    /// before the rows are read: every object a run writes has its row first (a pending row, or
    /// the row it replaces), so an object in the listing without a row afterwards is garbage,
    /// even if this run stalls and another takes the lease meanwhile.
    async fn sweep(&self, run: &mut Run, m: &mut Maintenance) -> Result<(), AppError> {
        run.keep_lease(self, true).await?;
        let listed = self.objects.list("archive/").await?;
        let live: HashSet<String> =
            self.hot.list_archive_objects(None).await?.into_iter().map(|o| o.object_key).collect();
        for key in listed {
            if !live.contains(&key) {
                self.objects.delete(&key).await?;
                m.swept_objects += 1;
            }
        }
        Ok(())
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
                .scan_platform(&ScanQuery { platform: p.clone(), after, since: None, until: Some(cutoff), limit: SCAN_PAGE })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
            let short = (page.len() as u32) < SCAN_PAGE;
            for l in page {
                if run.out_of_time() {
                    // The object in flight is finished below with what it holds.
                    complete = false;
                    break 'scan;
                }
                let date = l.interaction.created_at.date_naive();
                if pending.as_ref().is_some_and(|pe| pe.date != date || pe.full())
                    && let Some(done) = pending.take()
                {
                    let obj = self.finish_object(done, run).await?;
                    report(&obj);
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
            if short {
                break;
            }
        }
        if let Some(done) = pending.take() {
            let obj = self.finish_object(done, run).await?;
            report(&obj);
        }
        Ok(complete)
    }

    /// Phase one: the pending row, then the writer (none on a dry run).
    async fn open_object(&self, run: &mut Run, p: &Platform, date: NaiveDate, key: String) -> Result<Pending, AppError> {
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
    /// records read as usual.
    pub(crate) async fn read_archived(&self, entry: &crate::ports::ArchivedEntry) -> Result<FullRecord, AppError> {
        let obj = self.object_of(entry).await?;
        let id = entry.interaction_id;
        let mut found = None;
        let unreadable = for_each_line(self.objects.as_ref(), &obj.object_key, |rec| {
            if rec.interaction_id == id {
                found = Some(rec);
            }
            Ok(())
        })
        .await?;
        match found {
            Some(rec) => Ok(rec),
            None if unreadable.total() > 0 => {
                Err(AppError::Internal(format!("archived record {id} is in an unreadable part of {}", obj.object_key)))
            }
            None => Err(AppError::NotFound),
        }
    }

    /// Where an archived record's line is now: its slot's row (read consistently).
    pub(crate) async fn object_of(&self, entry: &crate::ports::ArchivedEntry) -> Result<ArchiveObject, AppError> {
        self.hot
            .archive_object(&entry.platform, entry.created_at.date_naive(), &entry.object_key)
            .await?
            .ok_or_else(|| AppError::Internal("archived entry points at an unknown object".into()))
    }
}

/// What [`App::object_contents`] found.
struct ObjectContents {
    items: Vec<ArchiveItem>,
    /// Every line, readable or not.
    lines: i64,
    raw_bytes: i64,
    compressed_bytes: i64,
}

/// The parts of an object that could not be read: its bad lines (each with its
/// `interaction_id` when that could still be found, [`archive::line_interaction_id`]) and its
/// corrupt gzip segments (at most one: nothing after the damage can be inflated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub(crate) lines: Vec<Option<Id>>,
    pub(crate) segments: u64,
}

impl Unreadable {
    /// What a reader reports as skipped: each bad line, and each corrupt segment as one.
    pub(crate) fn total(&self) -> u64 {
        self.lines.len() as u64 + self.segments
    }
}

/// One line of an archive object.
pub(crate) enum Line {
    Record(Box<FullRecord>),
    /// A line that does not read as a record: its number in the object (from 1), its bytes as
    /// stored (compaction copies them) and its id when it can still be found. Already logged.
    Bad { number: u64, raw: Vec<u8>, id: Option<Id> },
}

/// An archive object's records, one at a time, read through the store's streamed reader and
/// inflated step by step: memory is one line plus one inflate step's output, whatever the
/// object's size.
///
/// A bad line (not JSON, not UTF-8, nested past serde_json's limit, not an interaction) is
/// logged once (object key, line number, error category; never its content), counted in
/// [`ArchiveLines::unreadable`] and passed over: the object's other lines read as usual. A
/// corrupt gzip stream (cut short, a bad checksum, damaged deflate data, bytes after its end)
/// gives the lines inflated before the damage, then ends; the rest counts as one unreadable
/// segment, logged. Only the store's own errors (the object is missing, a read fails) are
/// errors.
pub(crate) struct ArchiveLines {
    stream: ObjectStream,
    /// Inflated bytes collect in the decoder's inner buffer; `pos` is where unread ones start.
    gz: GzDecoder<Vec<u8>>,
    pos: usize,
    /// Compressed bytes received but not yet inflated.
    input: Bytes,
    ended: bool,
    /// Why the gzip stream could not be read to its end, once it could not.
    corrupt: Option<&'static str>,
    key: String,
    /// Lines read so far, blank ones included (a bad line's number).
    line_no: u64,
    /// Inflated bytes consumed so far (lines with their newlines) and compressed bytes received.
    pub(crate) raw_bytes: i64,
    pub(crate) compressed_bytes: i64,
    pub(crate) unreadable: Unreadable,
}

impl ArchiveLines {
    pub(crate) async fn open(
        objects: &dyn ObjectStore,
        key: &str,
    ) -> Result<ArchiveLines, AppError> {
        Ok(ArchiveLines {
            stream: objects.reader(key).await?,
            gz: GzDecoder::new(Vec::new()),
            pos: 0,
            input: Bytes::new(),
            ended: false,
            corrupt: None,
            key: key.to_owned(),
            line_no: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            unreadable: Unreadable::default(),
        })
    }

    /// The next readable record, or `None` after the last one; bad lines are passed over
    /// (counted and logged).
    pub(crate) async fn next(&mut self) -> Result<Option<FullRecord>, AppError> {
        loop {
            match self.next_line().await? {
                Some(Line::Record(rec)) => return Ok(Some(*rec)),
                Some(Line::Bad { .. }) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next line, readable or not, or `None` after the last one (the gzip trailer checked).
    pub(crate) async fn next_line(&mut self) -> Result<Option<Line>, AppError> {
        loop {
            let buf = self.gz.get_ref();
            let unread = &buf[self.pos..];
            let line_end = match unread.iter().position(|&b| b == b'\n') {
                Some(i) => Some((i, i + 1)),
                // The last line may lack its newline, unless the stream is corrupt: then it is
                // cut, part of the unreadable segment.
                None if self.ended && self.corrupt.is_none() && !unread.is_empty() => Some((unread.len(), unread.len())),
                None => None,
            };
            if let Some((end, next)) = line_end {
                let line = &unread[..end];
                self.pos += next;
                self.raw_bytes += next as i64;
                self.line_no += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(match serde_json::from_slice::<FullRecord>(line) {
                    Ok(rec) => Line::Record(Box::new(rec)),
                    Err(e) => {
                        let id = archive::line_interaction_id(line);
                        // Position and category only: serde's message can quote stored user text.
                        tracing::warn!(
                            object_key = %self.key,
                            line = self.line_no,
                            category = ?e.classify(),
                            column = e.column(),
                            id_found = id.is_some(),
                            "archive: unreadable line skipped"
                        );
                        self.unreadable.lines.push(id);
                        Line::Bad { number: self.line_no, raw: line.to_vec(), id }
                    }
                }));
            }
            if self.ended {
                if let Some(why) = self.corrupt.take() {
                    tracing::warn!(
                        object_key = %self.key,
                        after_line = self.line_no,
                        why,
                        "archive: corrupt gzip stream; the rest of the object is skipped"
                    );
                    self.unreadable.segments += 1;
                    // Whatever part of a line is left belongs to the lost segment.
                    self.pos = self.gz.get_ref().len();
                }
                return Ok(None);
            }
            // Drop what was read before inflating more.
            let pos = std::mem::take(&mut self.pos);
            self.gz.get_mut().drain(..pos);
            if self.input.is_empty() {
                match self.stream.next().await {
                    Some(chunk) => {
                        self.input = chunk?;
                        self.compressed_bytes += self.input.len() as i64;
                    }
                    None => {
                        if self.gz.try_finish().is_err() {
                            self.corrupt = Some("cut short or a bad checksum");
                        }
                        self.ended = true;
                        continue;
                    }
                }
            }
            let step = self.input.len().min(INFLATE_STEP);
            match self.gz.write(&self.input[..step]) {
                Ok(n) if n > 0 => self.input.advance(n),
                Ok(_) => self.lose_rest("bytes after the end of the gzip stream"),
                Err(_) => self.lose_rest("corrupt gzip data"),
            }
        }
    }

    /// The stream cannot be inflated further: what was inflated before the damage is still
    /// read, the rest is one unreadable segment (counted and logged once the reader gets there).
    fn lose_rest(&mut self, why: &'static str) {
        // Moves output the decoder still holds into the buffer; its own error is the one we know.
        let _ = self.gz.try_finish();
        self.corrupt = Some(why);
        self.ended = true;
    }
}

/// Read an archive object line by line (memory: one line plus one inflate step), passing each
/// readable record to `f`. Returns what could not be read (bad lines are logged by the reader).
pub(crate) async fn for_each_line(
    objects: &dyn ObjectStore,
    key: &str,
    mut f: impl FnMut(FullRecord) -> Result<(), AppError>,
) -> Result<Unreadable, AppError> {
    let mut lines = ArchiveLines::open(objects, key).await?;
    while let Some(rec) = lines.next().await? {
        f(rec)?;
    }
    Ok(lines.unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::fs::FolderStore;
    use crate::domain::fixtures;
    use crate::domain::types::Kind;

    fn record(i: usize) -> FullRecord {
        FullRecord {
            // Poorly compressible text, so the object spans many chunks.
            user_message: (0..400).map(|j| format!("{:x}", (i * 7919 + j * 104_729) % 65_521)).collect(),
            ai_response: Some(format!("answer {i}")),
            workflow: None,
            archived: true,
            ..fixtures::record(Kind::Conversation)
        }
    }

    const KEY: &str = "archive/platform=n8n/date=2026-01-05/run-0.jsonl.gz";

    async fn open_pending(objects: &FolderStore, dry_run: bool) -> Pending {
        let date = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        Pending::open(objects, Platform::parse("n8n").expect("platform"), date, KEY.into(), dry_run).await.expect("open")
    }

    async fn read_all(objects: &dyn ObjectStore, key: &str) -> Result<Vec<FullRecord>, AppError> {
        Ok(read_counted(objects, key).await?.0)
    }

    /// The readable records, and what could not be read.
    async fn read_counted(objects: &dyn ObjectStore, key: &str) -> Result<(Vec<FullRecord>, Unreadable), AppError> {
        let mut out = Vec::new();
        let unreadable = for_each_line(objects, key, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok((out, unreadable))
    }

    fn line(rec: &FullRecord) -> Vec<u8> {
        let mut l = serde_json::to_vec(rec).expect("json");
        l.push(b'\n');
        l
    }

    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(raw).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[tokio::test]
    async fn a_large_object_streams_out_and_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let mut p = open_pending(&objects, false).await;
        let recs: Vec<FullRecord> = (0..2000).map(record).collect();
        for r in &recs {
            p.push(r).await.expect("push");
        }
        let w = p.finish().await.expect("finish");
        assert!(
            w.compressed_bytes > 4 * OUT_CHUNK as i64,
            "several chunks were streamed"
        );
        assert_eq!(w.storage_class, StorageClass::StandardIa);
        assert_eq!(
            objects.get(KEY).await.expect("get").len() as i64,
            w.compressed_bytes
        );
        let back = read_all(&objects, KEY).await.expect("read");
        assert_eq!(
            back.iter().map(|r| r.interaction_id).collect::<Vec<_>>(),
            w.items.iter().map(|i| i.id).collect::<Vec<_>>()
        );
        assert_eq!(back, recs);
    }

    /// An object written before archives moved to zlib-rs at level 1 (miniz_oxide at gzip
    /// level 6, three of the bench's records, by the code of 2026-12-01) reads as it did: every
    /// line a record, each the bytes its record serializes to; and rewritten by this code (as a
    /// compaction does), the records come back the same.
    #[tokio::test]
    async fn an_object_written_before_zlib_rs_still_reads() {
        const OLD: &[u8] = include_bytes!("../../tests/fixtures/archive-miniz-level6.jsonl.gz");
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().join("old"));
        objects.put(KEY, OLD.to_vec(), StorageClass::Standard).await.expect("put");
        let (recs, unreadable) = read_counted(&objects, KEY).await.expect("read");
        assert_eq!((recs.len(), unreadable.total()), (3, 0));
        let mut raw = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(OLD), &mut raw).expect("inflate");
        let lines: Vec<&str> = raw.lines().collect();
        assert_eq!(lines.len(), 3);
        for (rec, line) in recs.iter().zip(lines) {
            assert_eq!(serde_json::to_string(rec).expect("json"), line);
            assert!(rec.archived && rec.workflow.is_some());
        }
        let again = FolderStore::new(dir.path().join("new"));
        let mut p = open_pending(&again, false).await;
        for rec in &recs {
            p.push(rec).await.expect("push");
        }
        p.finish().await.expect("finish");
        assert_eq!(read_all(&again, KEY).await.expect("read"), recs);
    }

    #[tokio::test]
    async fn a_dry_run_counts_without_writing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let mut p = open_pending(&objects, true).await;
        let mut raw = Vec::new();
        for i in 0..50 {
            let r = record(i);
            raw.extend(serde_json::to_vec(&r).expect("json"));
            raw.push(b'\n');
            p.push(&r).await.expect("push");
        }
        let w = p.finish().await.expect("finish");
        assert_eq!(w.raw_bytes, raw.len() as i64);
        // The same writes, one line at a time (zlib-rs's block boundaries follow the writes).
        assert_eq!(w.compressed_bytes, {
            let mut gz = GzEncoder::new(Vec::new(), Compression::new(ARCHIVE_GZIP_LEVEL));
            for line in raw.split_inclusive(|&b| b == b'\n') {
                gz.write_all(line).expect("gzip");
            }
            gz.finish().expect("gzip").len() as i64
        });
        assert!(objects.list("").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn blank_lines_and_a_missing_last_newline_are_fine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let (a, b) = (record(1), record(2));
        let mut raw = serde_json::to_vec(&a).expect("json");
        raw.extend(b"\n\n  \n");
        raw.extend(serde_json::to_vec(&b).expect("json"));
        objects
            .put(KEY, gzip(&raw), StorageClass::Standard)
            .await
            .expect("put");
        assert_eq!(read_all(&objects, KEY).await.expect("read"), vec![a, b]);
    }

    /// Each kind of bad line is passed over, counted with its id when the id can still be
    /// found, and the lines around it read as usual.
    #[tokio::test]
    async fn a_bad_line_of_any_kind_is_skipped_and_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let recs: Vec<FullRecord> = (0..8).map(record).collect();
        // Nested past serde_json's recursion limit (128): valid JSON, unreadable as a record.
        let too_deep = String::from_utf8(line(&recs[1]))
            .expect("utf-8")
            .replace("\"workflow\":null", &format!("\"workflow\":{}{}", "[".repeat(200), "]".repeat(200)));
        assert_ne!(too_deep.as_bytes(), line(&recs[1]).as_slice(), "the workflow was replaced");
        // Not UTF-8 inside the user message.
        let mut not_utf8 = line(&recs[3]);
        let at = not_utf8.windows(16).position(|w| w == b"\"user_message\":\"").expect("field") + 18;
        not_utf8[at] = 0xff;
        let cases: [(&str, Vec<u8>, Option<Id>); 5] = [
            ("too deep", too_deep.into_bytes(), Some(recs[1].interaction_id)),
            ("not JSON", b"{\"interaction_id\": oops\n".to_vec(), None),
            ("not UTF-8", not_utf8, Some(recs[3].interaction_id)),
            ("not an interaction", b"{\"hello\":\"world\"}\n".to_vec(), None),
            (
                "an interaction's id, the rest not",
                format!("{{\"interaction_id\":\"{}\",\"user_id\":5}}\n", recs[5].interaction_id).into_bytes(),
                Some(recs[5].interaction_id),
            ),
        ];
        for (what, bad, id) in cases {
            let mut raw = Vec::new();
            raw.extend(line(&recs[0]));
            raw.extend(&bad);
            raw.extend(line(&recs[2]));
            objects.put(KEY, gzip(&raw), StorageClass::Standard).await.expect("put");
            let (back, unreadable) = read_counted(&objects, KEY).await.expect(what);
            assert_eq!(back, vec![recs[0].clone(), recs[2].clone()], "{what}: the other lines read");
            assert_eq!(unreadable, Unreadable { lines: vec![id], segments: 0 }, "{what}");
            assert_eq!(unreadable.total(), 1, "{what}");
            // The raw line is what compaction would copy.
            let mut lines = ArchiveLines::open(&objects, KEY).await.expect("open");
            let mut bad_lines = Vec::new();
            while let Some(l) = lines.next_line().await.expect("line") {
                if let Line::Bad { number, raw, id: found } = l {
                    bad_lines.push((number, raw, found));
                }
            }
            let want = bad.strip_suffix(b"\n").unwrap_or(&bad).to_vec();
            assert_eq!(bad_lines, vec![(2, want, id)], "{what}: line 2, as stored");
        }
        // Every line bad: nothing, all counted.
        objects.put(KEY, gzip(b"x\ny\n\nz"), StorageClass::Standard).await.expect("put");
        let (back, unreadable) = read_counted(&objects, KEY).await.expect("read");
        assert!(back.is_empty());
        assert_eq!(unreadable.total(), 3);
    }

    /// A damaged gzip stream gives the lines inflated before the damage; the rest is one
    /// unreadable segment. Only the store's own errors are errors.
    #[tokio::test]
    async fn a_corrupt_gzip_stream_gives_what_precedes_the_damage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let recs: Vec<FullRecord> = (0..20).map(record).collect();
        let raw: Vec<u8> = recs.iter().flat_map(line).collect();
        let whole = gzip(&raw);
        let mut flipped = whole.clone();
        let mid = flipped.len() / 2;
        for b in &mut flipped[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let mut extra = whole.clone();
        extra.extend(b"junk");
        /// What the reader gives back.
        enum Served {
            Every,
            /// Some records, each whole, in order, and not all.
            APrefix,
            /// The records before the damage, whole. Damaged deflate data can inflate to other
            /// bytes that still parse (gzip's checksum fails only at the end, after they were
            /// read): only the first, well before the damage, is checked.
            TheStart,
        }
        let cases: [(&str, Vec<u8>, Served); 5] = [
            ("a cut trailer", whole[..whole.len() - 4].to_vec(), Served::Every),
            ("a cut body", whole[..whole.len() / 2].to_vec(), Served::APrefix),
            ("a damaged middle", flipped, Served::TheStart),
            ("bytes after the trailer", extra, Served::Every),
            ("a damaged header", b"not gzip at all".to_vec(), Served::APrefix),
        ];
        for (what, bytes, served) in cases {
            objects.put(KEY, bytes, StorageClass::Standard).await.expect("put");
            let (back, unreadable) = read_counted(&objects, KEY).await.expect(what);
            assert_eq!(unreadable.segments, 1, "{what}: one unreadable segment");
            match served {
                Served::Every => assert_eq!(back, recs, "{what}"),
                Served::APrefix => {
                    assert!(back.len() < recs.len(), "{what}: the damaged part is not served");
                    assert_eq!(back, recs[..back.len()], "{what}: the records before the damage, whole");
                }
                Served::TheStart => assert_eq!(back.first(), recs.first(), "{what}"),
            }
        }
        assert!(matches!(
            read_all(&objects, "archive/missing.jsonl.gz").await,
            Err(AppError::Store(_)) | Err(AppError::NotFound)
        ));
    }
}
