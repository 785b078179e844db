//! The embedded hot store: one SQLite file in WAL mode.
//!
//! Writes go to one thread that owns the only write connection (SQLite has one writer at a
//! time anyway) and commits queued writes together (group commit, in `writer`); reads run on a
//! small pool of query-only connections, which WAL lets run alongside the writer, on tokio's
//! blocking pool (`readers`). Each write method is atomic on its own (a savepoint inside a `BEGIN
//! IMMEDIATE` transaction), so counters always move with the rows they count, also when
//! another process (the CLI) writes the same file.
//!
//! Times are stored as RFC 3339 text with nine fixed fractional digits, so text order is time
//! order and nanoseconds round-trip. Ids are hyphenated lowercase UUID text, whose text order is
//! the UUID's byte order (the order of [`Id`]). JSON values are stored as text.
//!
//! This file holds the store itself: opening the file and the [`HotStore`] impl, which hands
//! each method to the module of its tables. The rest, one job per file:
//! - `schema`: the tables and the migrations between schema versions;
//! - `writer` and `readers`: the writer thread with its group commit, the reader pool;
//! - `codec`: SQLite errors as [`StoreError`]s, value encoding (times, ids, JSON);
//! - `rows`: each record's columns, to and from a row;
//! - `interactions`, `training`, `counters`, `platforms`, `exports`, `archive`: the methods
//!   on each group of tables, with their queries.

mod archive;
mod codec;
mod counters;
mod exports;
mod interactions;
mod platforms;
mod readers;
mod rows;
mod schema;
mod training;
mod writer;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Connection;
use tokio::sync::mpsc;

use crate::domain::archive::ArchiveObject;
use crate::domain::counters::PlatformCounters;
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{CuratedExample, Feedback, Interaction, TrainingMetric, ValidationLog};
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{
    ArchiveItem, ArchivedEntry, Cursor, HotDeleted, HotStore, Inserted, Lease as ArchiveLease, Linked, ListQuery,
    ScanQuery, StoreError,
};

use archive::{archived_entry, object_row};
use codec::Db;
use platforms::added_platforms;
use schema::{CHECKPOINT_BYTES, PAGE_SIZE, adopt_page_size, enter_wal, migrate};
use writer::{Job, QUEUE_DEPTH, WRITER_CACHE_KIB, set_cache_size, writer_loop};

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite [`HotStore`]. Cheap to clone; clones share the connections and the writer thread.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    reader_free: Condvar,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer once it has drained; join so the file is closed on return.
        self.jobs.take();
        if let Some(handle) = self.writer.take()
            && handle.thread().id() != thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create the data directory: {e}")))?;
        }
        let writer = open_writer(path).map_err(|e| match e {
            // Waited out the busy timeout on another process's lock: its write transaction, or
            // the exclusive lock of its migration or page-size rebuild.
            StoreError::Throttled { .. } => StoreError::Unavailable(
                "another collector holds the store's write lock (a migration or a page-size rebuild of a \
                 large file, or a long write); try again once it is done"
                    .into(),
            ),
            e => e,
        })?;
        writer.set_prepared_statement_cache_capacity(64);

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open(path).db()?;
            r.busy_timeout(BUSY_TIMEOUT).db()?;
            // Readers scan (exports, archiving): a 4 MiB page cache each keeps the b-trees'
            // interior pages; a scan reads each leaf once. (At 16 MiB, the readers' caches were
            // about 57 MiB of an archive run's 114 MiB peak RSS: docs/PERFORMANCE.md.)
            // No mmap: mapped pages would count in RSS and grow with the database.
            r.execute_batch("PRAGMA query_only = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096;").db()?;
            r.set_prepared_statement_cache_capacity(64);
            readers.push(r);
        }

        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let handle = thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer, queue))
            .map_err(|e| StoreError::Internal(format!("cannot start the sqlite writer: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                writer: Some(handle),
                readers: Mutex::new(readers),
                reader_free: Condvar::new(),
            }),
        })
    }
}

/// The write connection, set up: WAL, this build's page size, the pragmas, the schema migrated.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut writer = Connection::open(path).db()?;
    writer.busy_timeout(BUSY_TIMEOUT).db()?;
    // A new file takes its page size from the first write; an existing one ignores this
    // (`schema::adopt_page_size` converts it).
    writer.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}")).db()?;
    enter_wal(&writer)?;
    let page_size = adopt_page_size(&writer, BUSY_TIMEOUT)?;
    // synchronous = FULL: every commit is fsynced before its callers are answered, so an
    // acknowledged write (a 201, a delete's 200) survives a power loss; group commit (below)
    // shares one fsync among the writes of a batch. Checkpoints every 16 MB of WAL rather
    // than 4 MB (`CHECKPOINT_BYTES`, counted in pages): index and counter pages rewritten by
    // many commits are copied back fewer times (measured ~10% less writer CPU under load).
    // temp_store = FILE on the writer: each write runs in a savepoint, whose statement
    // journal SQLite keeps in memory up to 64 KiB and then spills to a temp file. With
    // temp_store = MEMORY it never spills, and truncating an in-memory journal walks it from
    // the start at every statement: an archive commit (thousands of deletes in one
    // savepoint) went quadratic (3.4 MB/s, 96% of the writer in memjrnlTruncate) and held
    // every original page in memory (docs/PERFORMANCE.md, "Archive throughput").
    // secure_delete: a delete overwrites what it removes (the row's bytes on its page, and
    // pages it frees) with zeros, so a user's deleted data does not stay readable in the
    // file's free space for anyone with a copy of it. journal_size_limit: when the WAL
    // starts over after a checkpoint, it is cut back to 16 MiB (what a checkpoint interval
    // writes), so frames a large write (an archive commit) added past that, with what they
    // held, do not stay in the file.
    writer
        .execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = FILE; \
             PRAGMA secure_delete = ON; PRAGMA wal_autocheckpoint = {}; \
             PRAGMA journal_size_limit = {CHECKPOINT_BYTES};",
            CHECKPOINT_BYTES / page_size
        ))
        .db()?;
    set_cache_size(&writer, WRITER_CACHE_KIB);
    migrate(&mut writer)?;
    Ok(writer)
}

#[async_trait]
impl HotStore for SqliteStore {
    async fn insert_interaction(&self, rec: &Interaction) -> Result<Inserted, StoreError> {
        interactions::insert_interaction(self, rec).await
    }

    async fn get_linked(&self, id: Id) -> Result<Option<Linked>, StoreError> {
        interactions::get_linked(self, id).await
    }

    async fn hot_owner(&self, id: Id) -> Result<Option<UserId>, StoreError> {
        interactions::hot_owner(self, id).await
    }

    async fn list_interactions(&self, q: &ListQuery) -> Result<Vec<Interaction>, StoreError> {
        interactions::list_interactions(self, q).await
    }

    async fn scan_platform(&self, q: &ScanQuery) -> Result<Vec<Linked>, StoreError> {
        interactions::scan_platform(self, q).await
    }

    async fn scan_user(&self, user: &UserId, after: Option<Cursor>, limit: u32) -> Result<Vec<Linked>, StoreError> {
        interactions::scan_user(self, user, after, limit).await
    }

    async fn unlinked_validations(
        &self,
        user: &UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<ValidationLog>, StoreError> {
        interactions::unlinked_validations(self, user, after, limit).await
    }

    async fn add_feedback(&self, fb: &Feedback) -> Result<(), StoreError> {
        interactions::add_feedback(self, fb).await
    }

    async fn add_validation(&self, v: &ValidationLog) -> Result<(), StoreError> {
        interactions::add_validation(self, v).await
    }

    async fn delete_interaction(&self, id: Id) -> Result<HotDeleted, StoreError> {
        interactions::delete_interaction(self, id).await
    }

    async fn delete_user(&self, user: &UserId) -> Result<HotDeleted, StoreError> {
        interactions::delete_user(self, user).await
    }

    async fn insert_example(&self, ex: &CuratedExample) -> Result<(), StoreError> {
        training::insert_example(self, ex).await
    }

    async fn list_examples(&self, platform: Option<&Platform>) -> Result<Vec<CuratedExample>, StoreError> {
        training::list_examples(self, platform).await
    }

    async fn delete_example(&self, id: Id) -> Result<bool, StoreError> {
        training::delete_example(self, id).await
    }

    async fn increment_example_usage(&self, ids: &[Id]) -> Result<(), StoreError> {
        training::increment_example_usage(self, ids).await
    }

    async fn insert_metric(&self, m: &TrainingMetric) -> Result<(), StoreError> {
        training::insert_metric(self, m).await
    }

    async fn list_metrics(&self, platform: Option<&Platform>) -> Result<Vec<TrainingMetric>, StoreError> {
        training::list_metrics(self, platform).await
    }

    async fn counters(&self) -> Result<BTreeMap<Platform, PlatformCounters>, StoreError> {
        counters::counters(self).await
    }

    async fn added_platforms(&self) -> Result<BTreeSet<Platform>, StoreError> {
        self.read(added_platforms).await
    }

    async fn add_platform(&self, p: &Platform, limit: &PlatformLimit) -> Result<PlatformAdded, StoreError> {
        platforms::add_platform(self, p, limit).await
    }

    async fn record_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        exports::record_export(self, manifest, held).await
    }

    async fn list_exports(&self, before: Option<Id>, limit: u32) -> Result<Vec<ExportManifest>, StoreError> {
        exports::list_exports(self, before, limit).await
    }

    async fn export_manifest(&self, id: Id) -> Result<Option<ExportManifest>, StoreError> {
        exports::export_manifest(self, id).await
    }

    async fn exports_holding(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
        exports::exports_holding(self, by).await
    }

    async fn drop_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        exports::drop_export(self, manifest, held).await
    }

    async fn live_records(&self, ids: &[Id]) -> Result<HashSet<Id>, StoreError> {
        exports::live_records(self, ids).await
    }

    async fn forget_held(&self, by: HeldBy<'_>) -> Result<(), StoreError> {
        exports::forget_held(self, by).await
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ArchiveLease>, StoreError> {
        archive::acquire_lease(self, holder, now, ttl).await
    }

    async fn renew_lease(
        &self,
        lease: &ArchiveLease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ArchiveLease>, StoreError> {
        archive::renew_lease(self, lease, now, ttl).await
    }

    async fn release_lease(&self, lease: &ArchiveLease) -> Result<(), StoreError> {
        archive::release_lease(self, lease).await
    }

    async fn begin_archive(&self, lease: &ArchiveLease, obj: &ArchiveObject) -> Result<(), StoreError> {
        archive::begin_archive(self, lease, obj).await
    }

    async fn commit_archive(
        &self,
        lease: &ArchiveLease,
        obj: &ArchiveObject,
        items: &[ArchiveItem],
    ) -> Result<Vec<Id>, StoreError> {
        archive::commit_archive(self, lease, obj, items).await
    }

    async fn abort_archive(&self, lease: &ArchiveLease, obj: &ArchiveObject) -> Result<(), StoreError> {
        archive::abort_archive(self, lease, obj).await
    }

    async fn archive_object(
        &self,
        _platform: &Platform,
        _date: NaiveDate,
        slot: &str,
    ) -> Result<Option<ArchiveObject>, StoreError> {
        let slot = slot.to_owned();
        self.read(move |tx| object_row(tx, &slot)).await
    }

    async fn delete_archived(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        archive::delete_archived(self, id).await
    }

    async fn tombstones(&self, slot: &str) -> Result<HashSet<Id>, StoreError> {
        archive::tombstones(self, slot).await
    }

    async fn finish_payload_erasures(&self) -> Result<u64, StoreError> {
        // Every payload is in the database file, deleted with its row.
        Ok(0)
    }

    async fn tombstoned_slots(&self) -> Result<BTreeSet<String>, StoreError> {
        archive::tombstoned_slots(self).await
    }

    async fn clear_tombstones(&self, lease: &ArchiveLease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        archive::clear_tombstones(self, lease, slot, ids).await
    }

    async fn apply_compaction(
        &self,
        lease: &ArchiveLease,
        old: &ArchiveObject,
        new: Option<&ArchiveObject>,
        cleared: &[Id],
    ) -> Result<(), StoreError> {
        archive::apply_compaction(self, lease, old, new, cleared).await
    }

    async fn list_archive_objects(&self, platform: Option<&Platform>) -> Result<Vec<ArchiveObject>, StoreError> {
        archive::list_archive_objects(self, platform).await
    }

    async fn archived_entry(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        self.read(move |tx| archived_entry(tx, id)).await
    }

    async fn archived_entries_of_user(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError> {
        archive::archived_entries_of_user(self, user).await
    }
}
