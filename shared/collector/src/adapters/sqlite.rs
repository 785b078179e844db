//! The embedded hot store: one SQLite file in WAL mode.
//!
//! Writes go to one thread that owns the only write connection (SQLite has one writer at a
//! time anyway) and commits queued writes together (see "group commit" below); reads run on a
//! small pool of query-only connections, which WAL lets run alongside the writer, on tokio's
//! blocking pool. Each write method is atomic on its own (a savepoint inside a `BEGIN
//! IMMEDIATE` transaction), so counters always move with the rows they count, also when
//! another process (the CLI) writes the same file.
//!
//! Times are stored as RFC 3339 text with nine fixed fractional digits, so text order is time
//! order and nanoseconds round-trip. Ids are hyphenated lowercase UUID text, whose text order is
//! the UUID's byte order (the order of [`Id`]). JSON values are stored as text.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, ToSql, TransactionBehavior, params, params_from_iter};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::domain::archive::{ArchiveObject, ObjectState, StorageClass};
use crate::domain::counters::{PlatformCounters, RecordFacts};
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{
    CuratedExample, Feedback, FeedbackSummary, FeedbackType, IngestReceipt, Interaction, TrainingMetric, ValidationLog,
};
use crate::domain::types::{Id, Kind, Platform, UserId};
use crate::domain::workflow::StoredWorkflow;
use crate::ports::{
    ArchiveItem, ArchivedEntry, Cursor, HotDeleted, HotStore, Inserted, Lease as ArchiveLease, Linked, ListQuery,
    ScanQuery, StoreError,
};

const SCHEMA_VERSION: i64 = 4;
const READERS: usize = 4;
/// Most writes committed together.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// What a caller should wait when another process holds the write lock past the busy timeout.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

const SCHEMA_V1: &str = r#"
CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_message TEXT NOT NULL,
    ai_response TEXT,
    intent TEXT,
    workflow BLOB,
    workflow_compressed INTEGER NOT NULL,
    workflow_original_bytes INTEGER NOT NULL,
    success INTEGER NOT NULL,
    error_message TEXT,
    processing_time_ms INTEGER,
    model_version TEXT,
    metadata TEXT,
    training_consent INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    feedback_count INTEGER NOT NULL,
    last_feedback_type TEXT,
    positive_feedback INTEGER NOT NULL,
    negative_feedback INTEGER NOT NULL,
    latest_negative INTEGER NOT NULL,
    good_validation INTEGER NOT NULL
) STRICT;
CREATE INDEX interactions_by_platform ON interactions (platform, created_at, id);
CREATE INDEX interactions_by_user ON interactions (user_id, created_at, id);
CREATE INDEX interactions_by_time ON interactions (created_at, id);

CREATE TABLE feedback (
    feedback_id TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL REFERENCES interactions (id),
    submitted_by TEXT NOT NULL,
    feedback_type TEXT NOT NULL,
    sentiment_score INTEGER,
    comment TEXT,
    corrected_workflow TEXT,
    issue_category TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX feedback_by_interaction ON feedback (interaction_id);

CREATE TABLE validations (
    validation_id TEXT PRIMARY KEY,
    interaction_id TEXT REFERENCES interactions (id),
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    passed INTEGER NOT NULL,
    score INTEGER NOT NULL,
    errors TEXT NOT NULL,
    warnings TEXT NOT NULL,
    diff TEXT,
    user_edited INTEGER NOT NULL,
    workflow TEXT NOT NULL,
    original_workflow TEXT,
    duration_ms REAL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX validations_by_interaction ON validations (interaction_id);
CREATE INDEX validations_by_user ON validations (user_id, created_at);

CREATE TABLE examples (
    example_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    user_message TEXT NOT NULL,
    workflow TEXT,
    ai_response TEXT,
    description TEXT,
    tags TEXT NOT NULL,
    usage_count INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX examples_by_platform ON examples (platform, created_at);

CREATE TABLE metrics (
    metric_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    model TEXT NOT NULL,
    dataset_size INTEGER NOT NULL,
    run_id TEXT,
    metrics TEXT NOT NULL,
    notes TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX metrics_by_platform ON metrics (platform, created_at);

CREATE TABLE counters (
    platform TEXT PRIMARY KEY,
    total INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    successful INTEGER NOT NULL DEFAULT 0,
    with_feedback INTEGER NOT NULL DEFAULT 0,
    positive_feedback INTEGER NOT NULL DEFAULT 0,
    negative_feedback INTEGER NOT NULL DEFAULT 0,
    quality INTEGER NOT NULL DEFAULT 0,
    curated_examples INTEGER NOT NULL DEFAULT 0,
    hot_bytes INTEGER NOT NULL DEFAULT 0,
    archive_bytes INTEGER NOT NULL DEFAULT 0,
    archived_raw_bytes INTEGER NOT NULL DEFAULT 0,
    archive_objects INTEGER NOT NULL DEFAULT 0,
    compressed_records INTEGER NOT NULL DEFAULT 0,
    compression_saved_bytes INTEGER NOT NULL DEFAULT 0,
    consented INTEGER NOT NULL DEFAULT 0,
    consented_successful INTEGER NOT NULL DEFAULT 0,
    consented_with_feedback INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE archive_objects (
    object_key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    date TEXT NOT NULL,
    run_id TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    compressed_bytes INTEGER NOT NULL,
    storage_class TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX archive_objects_by_platform ON archive_objects (platform, date);

CREATE TABLE archived (
    interaction_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    created_at TEXT NOT NULL,
    object_key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    receipt_compressed INTEGER NOT NULL,
    receipt_original_bytes INTEGER NOT NULL,
    receipt_stored_bytes INTEGER NOT NULL,
    facts TEXT NOT NULL
) STRICT;
CREATE INDEX archived_by_user ON archived (user_id, created_at);
CREATE INDEX archived_by_object ON archived (object_key);
"#;

/// Version 2: the two-phase archive commit, tombstones and the archive lease. An archive row's
/// `object_key` column is its slot (what `archived.object_key` and tombstones refer to);
/// `location` is where its bytes are now (NULL: at the slot's key).
const SCHEMA_V2: &str = r#"
ALTER TABLE archive_objects ADD COLUMN location TEXT;
ALTER TABLE archive_objects ADD COLUMN state TEXT NOT NULL DEFAULT 'committed';

CREATE TABLE tombstones (
    slot TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    PRIMARY KEY (slot, interaction_id)
) STRICT;

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
"#;

/// Version 3: platforms admins added (CONTRACT section 7a); the configured ones are not stored.
const SCHEMA_V3: &str = r#"
CREATE TABLE platforms (
    platform TEXT PRIMARY KEY
) STRICT;
"#;

/// Version 4: export manifests (CONTRACT section 4a). `exports` holds each manifest (JSON);
/// `export_records` the records each export held, keyed by interaction (the lookup of a
/// single-record delete) and indexed by user (a user's erasure), so a delete finds its exports
/// without reading any manifest.
const SCHEMA_V4: &str = r#"
CREATE TABLE exports (
    export_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    manifest TEXT NOT NULL
) STRICT;

CREATE TABLE export_records (
    interaction_id TEXT NOT NULL,
    export_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (interaction_id, export_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX export_records_by_user ON export_records (user_id, export_id);
"#;

/// Each version's migration, in order: a file at version `v` runs `MIGRATIONS[v..]`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4];

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
        let mut writer = Connection::open(path).db()?;
        writer.busy_timeout(BUSY_TIMEOUT).db()?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Internal(format!("sqlite refused WAL mode (got {mode})")));
        }
        // synchronous = FULL: every commit is fsynced before its callers are answered, so an
        // acknowledged write (a 201, a delete's 200) survives a power loss; group commit (below)
        // shares one fsync among the writes of a batch. Checkpoints every 16 MB of WAL rather
        // than 4 MB: index and counter pages rewritten by many commits are copied back fewer
        // times (measured ~10% less writer CPU under load).
        // temp_store = FILE on the writer: each write runs in a savepoint, whose statement
        // journal SQLite keeps in memory up to 64 KiB and then spills to a temp file. With
        // temp_store = MEMORY it never spills, and truncating an in-memory journal walks it from
        // the start at every statement: an archive commit (thousands of deletes in one
        // savepoint) went quadratic (3.4 MB/s, 96% of the writer in memjrnlTruncate) and held
        // every original page in memory (docs/PERFORMANCE.md, "Archive throughput").
        writer
            .execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = FILE; \
                 PRAGMA wal_autocheckpoint = 4000;",
            )
            .db()?;
        migrate(&mut writer)?;
        writer.set_prepared_statement_cache_capacity(64);

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open(path).db()?;
            r.busy_timeout(BUSY_TIMEOUT).db()?;
            // Readers scan (exports, archiving): a 4 MiB page cache each keeps the b-trees'
            // interior pages; a scan reads each leaf once. (At 16 MiB, the readers' caches were
            // about 57 MiB of an archive run's 114 MiB peak RSS: docs/PERFORMANCE.md.)
            // No mmap: mapped pages would count in RSS and grow with the database.
            r.execute_batch("PRAGMA query_only = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096;")
                .db()?;
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

    /// Run `f` on the writer thread inside a write transaction; the answer comes after the commit.
    /// `f`'s writes are kept exactly when it returns Ok.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_as(false, f).await
    }

    /// [`SqliteStore::write`] for a large write (an archive commit: thousands of rows): it runs
    /// as its own transaction, between batches, not inside a batch's savepoint. Every page a
    /// savepoint's write changes is first copied to its statement journal (a temp file past
    /// 64 KiB), and pages freed inside a savepoint are still written to the WAL; on its own the
    /// write skips both (the writer's CPU in the archive bench fell by about a third). Atomic
    /// the same way: kept exactly when `f` returns Ok.
    async fn write_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_as(true, f).await
    }

    async fn write_as<T, F>(&self, alone: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob { f: Some(f), out: None, reply, span: tracing::Span::current(), alone };
        let gone = || StoreError::Internal("the sqlite writer has stopped".into());
        let jobs = self.inner.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(job)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Run `f` in one read transaction (a consistent snapshot) on a pooled reader.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut lease = Lease::take(&inner)?;
                let tx = lease.conn()?.transaction().db()?;
                let out = f(&tx)?;
                tx.commit().db()?;
                Ok(out)
            })
        })
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite task failed: {e}")))?
    }
}

// -- group commit -------------------------------------------------------------------------------
//
// Writes queue up for one thread that owns the write connection. It runs whatever is queued (up
// to MAX_BATCH) in one transaction, each write inside its own savepoint so a failing write is
// undone alone, then commits once and answers everyone. Under load this turns many small commits
// (WAL appends, file locks, thread wake-ups) into one, and no answer is sent before its commit.

/// A queued write.
trait Job: Send {
    /// Run inside the batch transaction; true when its writes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answer the caller: `Ok` when the batch committed, else the batch's error.
    fn finish(self: Box<Self>, batch: Result<(), &StoreError>);
    /// Runs as its own transaction, not in a batch ([`SqliteStore::write_alone`]).
    fn alone(&self) -> bool;
}

struct WriteJob<F, T> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    span: tracing::Span,
    alone: bool,
}

impl<F, T> Job for WriteJob<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking write must not take the writer thread (and every later write) down with it.
        let out = self.span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))));
        let out = out.unwrap_or_else(|_| Err(StoreError::Internal("sqlite write panicked".into())));
        let keep = out.is_ok();
        self.out = Some(out);
        keep
    }

    fn finish(self: Box<Self>, batch: Result<(), &StoreError>) {
        let answer = match (self.out, batch) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(copy_error(e)),
            (None, Ok(())) => Err(StoreError::Internal("sqlite write did not run".into())),
        };
        // The caller may have gone away; the write stands either way.
        let _ = self.reply.send(answer);
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m),
        StoreError::Throttled { retry_after } => StoreError::Throttled { retry_after: *retry_after },
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
        StoreError::Fenced => StoreError::Fenced,
    }
}

fn writer_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    // A job that runs alone, taken from the queue while a batch was being gathered: it runs
    // right after that batch, so the queue's order is kept.
    let mut next: Option<Box<dyn Job>> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match queue.blocking_recv() {
                Some(job) => job,
                None => break,
            },
        };
        if first.alone() {
            run_alone(&conn, first);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) if job.alone() => {
                    next = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
}

/// One job in its own transaction: committed when it returns Ok, rolled back otherwise.
fn run_alone(conn: &Connection, mut job: Box<dyn Job>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        job.finish(Err(&e));
        return;
    }
    let keep = job.run(conn);
    let result = if conn.is_autocommit() {
        // An I/O error made SQLite roll the transaction back.
        Err(StoreError::Internal("sqlite transaction was rolled back".into()))
    } else if keep {
        exec(conn, "COMMIT")
    } else {
        // The job answers its own error.
        exec(conn, "ROLLBACK")
    };
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    job.finish(result.as_ref().map(|_| ()));
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql).db()?.execute([]).db()?;
    Ok(())
}

fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        for job in batch {
            job.finish(Err(&e));
        }
        return;
    }
    let mut broken = None;
    for job in &mut batch {
        // An I/O error can make SQLite roll the whole transaction back; nothing more may run then.
        if conn.is_autocommit() {
            broken = Some(StoreError::Internal("sqlite transaction was rolled back".into()));
            break;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            broken = Some(e);
            break;
        }
        let end = if job.run(conn) { exec(conn, "RELEASE job") } else { undo_savepoint(conn) };
        if let Err(e) = end {
            broken = Some(e);
            break;
        }
    }
    let result = match broken {
        None if conn.is_autocommit() => Err(StoreError::Internal("sqlite transaction was rolled back".into())),
        None => exec(conn, "COMMIT"),
        Some(e) => Err(e),
    };
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for job in batch {
        job.finish(result.as_ref().map(|_| ()));
    }
}

fn undo_savepoint(conn: &Connection) -> Result<(), StoreError> {
    exec(conn, "ROLLBACK TO job")?;
    exec(conn, "RELEASE job")
}

/// A reader borrowed from the pool, returned on drop.
struct Lease<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
}

impl<'a> Lease<'a> {
    fn take(inner: &'a Inner) -> Result<Lease<'a>, StoreError> {
        let poisoned = || StoreError::Internal("sqlite reader pool lock poisoned".into());
        let mut idle = inner.readers.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Lease { inner, conn: Some(conn) });
            }
            idle = inner.reader_free.wait(idle).map_err(|_| poisoned())?;
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.conn.as_mut().ok_or_else(|| StoreError::Internal("sqlite reader lease is empty".into()))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut idle) = self.inner.readers.lock()
        {
            idle.push(conn);
            self.inner.reader_free.notify_one();
        }
    }
}

fn added_platforms(tx: &Connection) -> Result<BTreeSet<Platform>, StoreError> {
    let names = collect(&mut tx.prepare_cached("SELECT platform FROM platforms").db()?, [], |r| r.get::<_, String>(0).db())?;
    names.iter().map(|n| parse_platform(n)).collect()
}

/// The condition on `export_records` for a record (its primary key) or a user
/// (`export_records_by_user`), with its arguments.
fn held_where(by: HeldBy<'_>) -> (&'static str, Vec<String>) {
    match by {
        HeldBy::Record { id, user } => ("interaction_id = ?1 AND user_id = ?2", vec![id_text(id), user.as_str().to_owned()]),
        HeldBy::User(user) => ("user_id = ?1", vec![user.as_str().to_owned()]),
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    match version {
        older @ 0..SCHEMA_VERSION => {
            for step in &MIGRATIONS[older as usize..] {
                tx.execute_batch(step).db()?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).db()?;
        }
        SCHEMA_VERSION => {}
        newer => {
            return Err(StoreError::Internal(format!(
                "the database has schema version {newer}, newer than this build's {SCHEMA_VERSION}"
            )));
        }
    }
    tx.commit().db()
}

// -- errors ---------------------------------------------------------------------------------

trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(db_error)
    }
}

fn db_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            // Another process held the write lock for the whole busy timeout.
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Throttled { retry_after: BUSY_RETRY_AFTER };
            }
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return StoreError::Conflict("id already exists");
            }
            ErrorCode::DiskFull | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::ReadOnly => {
                return StoreError::Unavailable(e.to_string());
            }
            _ => {}
        }
    }
    StoreError::Internal(format!("sqlite: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("sqlite store holds an unreadable {what}"))
}

// -- value encoding -------------------------------------------------------------------------

fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt("timestamp"))
}

fn id_text(id: Id) -> String {
    id.to_string()
}

fn parse_id(s: &str) -> Result<Id, StoreError> {
    Id::parse(s).map_err(|_| corrupt("id"))
}

fn parse_user(s: &str) -> Result<UserId, StoreError> {
    UserId::parse(s).map_err(|_| corrupt("user id"))
}

fn parse_platform(s: &str) -> Result<Platform, StoreError> {
    Platform::parse(s).map_err(|_| corrupt("platform"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::internal)
}

fn opt_json<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>, StoreError> {
    v.map(to_json).transpose()
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|_| corrupt(what))
}

fn opt_from_json<T: serde::de::DeserializeOwned>(s: Option<String>, what: &str) -> Result<Option<T>, StoreError> {
    s.map(|s| from_json(&s, what)).transpose()
}

/// JSON array of id texts, for `IN (SELECT value FROM json_each(?))`: one cached statement for any count.
fn id_list(ids: &[Id]) -> Result<String, StoreError> {
    to_json(&ids.iter().map(|id| id_text(*id)).collect::<Vec<_>>())
}

fn collect<T>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = stmt.query(params).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(map(row)?);
    }
    Ok(out)
}

// -- interactions -----------------------------------------------------------------------------

const ICOLS: &str = "id, user_id, platform, kind, user_message, ai_response, intent, workflow, workflow_compressed, \
     workflow_original_bytes, success, error_message, processing_time_ms, model_version, metadata, training_consent, \
     created_at, content_hash, feedback_count, last_feedback_type, positive_feedback, negative_feedback, \
     latest_negative, good_validation";

static INSERT_INTERACTION: LazyLock<String> = LazyLock::new(|| {
    let n = ICOLS.split(',').count();
    let marks = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO interactions ({ICOLS}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING")
});

static SELECT_INTERACTION: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ICOLS} FROM interactions WHERE id = ?1"));

/// The hot rows of a JSON list of ids, each with its number of links (after [`ICOLS`]).
static SELECT_FOR_COMMIT: LazyLock<String> = LazyLock::new(|| {
    let cols = ICOLS.split(',').map(|c| format!("i.{}", c.trim())).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT {cols}, (SELECT count(*) FROM feedback f WHERE f.interaction_id = i.id) + \
         (SELECT count(*) FROM validations v WHERE v.interaction_id = i.id) \
         FROM json_each(?1) AS j CROSS JOIN interactions AS i ON i.id = j.value"
    )
});

fn insert_interaction_row(tx: &Connection, rec: &Interaction) -> Result<bool, StoreError> {
    let wf = rec.workflow.as_ref();
    let metadata = rec.metadata.as_ref().map(to_json).transpose()?;
    let s = &rec.summary;
    let mut stmt = tx.prepare_cached(&INSERT_INTERACTION).db()?;
    let n = stmt
        .execute(params![
            id_text(rec.id),
            rec.user_id.as_str(),
            rec.platform.as_str(),
            rec.kind.as_str(),
            rec.user_message,
            rec.ai_response,
            rec.intent,
            wf.map(|w| &w.bytes),
            wf.is_some_and(|w| w.compressed),
            wf.map_or(0, |w| w.original_bytes),
            rec.success,
            rec.error_message,
            // Bit-preserving: u64 values above i64::MAX come back unchanged.
            rec.processing_time_ms.map(|v| v as i64),
            rec.model_version,
            metadata,
            rec.training_consent,
            ts(&rec.created_at),
            rec.content_hash,
            s.feedback_count,
            s.last_feedback_type.map(FeedbackType::as_str),
            s.positive_feedback,
            s.negative_feedback,
            s.latest_negative,
            s.good_validation,
        ])
        .db()?;
    Ok(n == 1)
}

fn interaction_from_row(r: &Row<'_>) -> Result<Interaction, StoreError> {
    let workflow = match r.get::<_, Option<Vec<u8>>>(7).db()? {
        Some(bytes) => Some(StoredWorkflow { bytes, compressed: r.get(8).db()?, original_bytes: r.get(9).db()? }),
        None => None,
    };
    let last_feedback_type = match r.get::<_, Option<String>>(19).db()? {
        Some(t) => Some(FeedbackType::parse(&t).ok_or_else(|| corrupt("feedback type"))?),
        None => None,
    };
    Ok(Interaction {
        id: parse_id(&r.get::<_, String>(0).db()?)?,
        user_id: parse_user(&r.get::<_, String>(1).db()?)?,
        platform: parse_platform(&r.get::<_, String>(2).db()?)?,
        kind: Kind::parse(&r.get::<_, String>(3).db()?).ok_or_else(|| corrupt("kind"))?,
        user_message: r.get(4).db()?,
        ai_response: r.get(5).db()?,
        intent: r.get(6).db()?,
        workflow,
        success: r.get(10).db()?,
        error_message: r.get(11).db()?,
        processing_time_ms: r.get::<_, Option<i64>>(12).db()?.map(|v| v as u64),
        model_version: r.get(13).db()?,
        metadata: opt_from_json::<Map<String, Value>>(r.get(14).db()?, "metadata")?,
        training_consent: r.get(15).db()?,
        created_at: parse_ts(&r.get::<_, String>(16).db()?)?,
        content_hash: r.get(17).db()?,
        summary: FeedbackSummary {
            feedback_count: r.get(18).db()?,
            last_feedback_type,
            positive_feedback: r.get(20).db()?,
            negative_feedback: r.get(21).db()?,
            latest_negative: r.get(22).db()?,
            good_validation: r.get(23).db()?,
        },
    })
}

fn load_interaction(conn: &Connection, id: Id) -> Result<Option<Interaction>, StoreError> {
    let mut stmt = conn.prepare_cached(&SELECT_INTERACTION).db()?;
    let mut rows = stmt.query([id_text(id)]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(interaction_from_row(row)?)),
        None => Ok(None),
    }
}

fn write_summary(tx: &Connection, id: Id, s: &FeedbackSummary) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE interactions SET feedback_count = ?2, last_feedback_type = ?3, positive_feedback = ?4, \
             negative_feedback = ?5, latest_negative = ?6, good_validation = ?7 WHERE id = ?1",
        )
        .db()?;
    stmt.execute(params![
        id_text(id),
        s.feedback_count,
        s.last_feedback_type.map(FeedbackType::as_str),
        s.positive_feedback,
        s.negative_feedback,
        s.latest_negative,
        s.good_validation,
    ])
    .db()?;
    Ok(())
}

/// The stored answer for an id that is already taken, hot or archived.
fn existing(conn: &Connection, id: Id) -> Result<Option<Inserted>, StoreError> {
    if let Some(e) = archived_entry(conn, id)? {
        return Ok(Some(Inserted::Existing { content_hash: e.content_hash, receipt: e.receipt }));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT content_hash, created_at, workflow_compressed, workflow_original_bytes, length(workflow) \
             FROM interactions WHERE id = ?1",
        )
        .db()?;
    let row = stmt
        .query_row([id_text(id)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()
        .db()?;
    let Some((content_hash, created_at, compressed, original_bytes, stored)) = row else {
        return Ok(None);
    };
    let receipt = IngestReceipt {
        interaction_id: id,
        created_at: parse_ts(&created_at)?,
        compressed,
        original_bytes,
        stored_bytes: stored.unwrap_or(0),
    };
    Ok(Some(Inserted::Existing { content_hash, receipt }))
}

/// Delete a hot interaction's links and row; returns (feedback, validations) removed.
fn delete_hot(tx: &Connection, id: Id) -> Result<(i64, i64), StoreError> {
    let key = id_text(id);
    let fb = tx.prepare_cached("DELETE FROM feedback WHERE interaction_id = ?1").db()?.execute([&key]).db()?;
    let val = tx.prepare_cached("DELETE FROM validations WHERE interaction_id = ?1").db()?.execute([&key]).db()?;
    tx.prepare_cached("DELETE FROM interactions WHERE id = ?1").db()?.execute([&key]).db()?;
    Ok((fb as i64, val as i64))
}

// -- links ------------------------------------------------------------------------------------

const FCOLS: &str = "feedback_id, interaction_id, submitted_by, feedback_type, sentiment_score, comment, corrected_workflow, issue_category, created_at";
const VCOLS: &str = "validation_id, interaction_id, user_id, platform, passed, score, errors, warnings, diff, user_edited, \
     workflow, original_workflow, duration_ms, created_at";

fn feedback_from_row(r: &Row<'_>) -> Result<Feedback, StoreError> {
    Ok(Feedback {
        feedback_id: parse_id(&r.get::<_, String>(0).db()?)?,
        interaction_id: parse_id(&r.get::<_, String>(1).db()?)?,
        submitted_by: parse_user(&r.get::<_, String>(2).db()?)?,
        feedback_type: FeedbackType::parse(&r.get::<_, String>(3).db()?).ok_or_else(|| corrupt("feedback type"))?,
        sentiment_score: r.get(4).db()?,
        comment: r.get(5).db()?,
        corrected_workflow: opt_from_json(r.get(6).db()?, "corrected workflow")?,
        issue_category: r.get(7).db()?,
        created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
    })
}

fn validation_from_row(r: &Row<'_>) -> Result<ValidationLog, StoreError> {
    Ok(ValidationLog {
        validation_id: parse_id(&r.get::<_, String>(0).db()?)?,
        interaction_id: r.get::<_, Option<String>>(1).db()?.map(|s| parse_id(&s)).transpose()?,
        user_id: parse_user(&r.get::<_, String>(2).db()?)?,
        platform: parse_platform(&r.get::<_, String>(3).db()?)?,
        passed: r.get(4).db()?,
        score: u32::try_from(r.get::<_, i64>(5).db()?).map_err(|_| corrupt("score"))?,
        errors: from_json(&r.get::<_, String>(6).db()?, "validation errors")?,
        warnings: from_json(&r.get::<_, String>(7).db()?, "validation warnings")?,
        diff: opt_from_json(r.get(8).db()?, "diff")?,
        user_edited: r.get(9).db()?,
        workflow: from_json(&r.get::<_, String>(10).db()?, "workflow")?,
        original_workflow: opt_from_json(r.get(11).db()?, "original workflow")?,
        // SQLite stores NaN as NULL.
        duration_ms: r.get::<_, Option<f64>>(12).db()?.unwrap_or(f64::NAN),
        created_at: parse_ts(&r.get::<_, String>(13).db()?)?,
    })
}

fn insert_validation_row(tx: &Connection, v: &ValidationLog) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO validations ({VCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))
        .db()?;
    stmt.execute(params![
        id_text(v.validation_id),
        v.interaction_id.map(id_text),
        v.user_id.as_str(),
        v.platform.as_str(),
        v.passed,
        i64::from(v.score),
        to_json(&v.errors)?,
        to_json(&v.warnings)?,
        opt_json(v.diff.as_ref())?,
        v.user_edited,
        to_json(&v.workflow)?,
        opt_json(v.original_workflow.as_ref())?,
        v.duration_ms,
        ts(&v.created_at),
    ])
    .db()?;
    Ok(())
}

/// Feedback and validations of a page of interactions: one query per link table.
fn attach_links(conn: &Connection, recs: Vec<Interaction>) -> Result<Vec<Linked>, StoreError> {
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
    let list = id_list(&ids)?;
    let mut feedback: HashMap<Id, Vec<Feedback>> = HashMap::new();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {FCOLS} FROM feedback WHERE interaction_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, rowid"
        ))
        .db()?;
    for f in collect(&mut stmt, [&list], feedback_from_row)? {
        feedback.entry(f.interaction_id).or_default().push(f);
    }
    let mut validations: HashMap<Id, Vec<ValidationLog>> = HashMap::new();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {VCOLS} FROM validations WHERE interaction_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, rowid"
        ))
        .db()?;
    for v in collect(&mut stmt, [&list], validation_from_row)? {
        if let Some(id) = v.interaction_id {
            validations.entry(id).or_default().push(v);
        }
    }
    Ok(recs
        .into_iter()
        .map(|interaction| Linked {
            feedback: feedback.remove(&interaction.id).unwrap_or_default(),
            validations: validations.remove(&interaction.id).unwrap_or_default(),
            interaction,
        })
        .collect())
}

/// Oldest-first page of interactions matching `filter` (`column = value` pairs) and bounds.
fn scan(
    conn: &Connection,
    filter: &[(&str, String)],
    after: Option<Cursor>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<Linked>, StoreError> {
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    for (col, val) in filter {
        args.push(SqlValue::Text(val.clone()));
        clauses.push(format!("{col} = ?{}", args.len()));
    }
    if let Some(c) = after {
        args.push(SqlValue::Text(ts(&c.created_at)));
        args.push(SqlValue::Text(id_text(c.id)));
        clauses.push(format!("(created_at, id) > (?{}, ?{})", args.len() - 1, args.len()));
    }
    if let Some(t) = since {
        args.push(SqlValue::Text(ts(&t)));
        clauses.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = until {
        args.push(SqlValue::Text(ts(&t)));
        clauses.push(format!("created_at < ?{}", args.len()));
    }
    args.push(SqlValue::Integer(i64::from(limit)));
    let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let sql = format!("SELECT {ICOLS} FROM interactions {where_} ORDER BY created_at, id LIMIT ?{}", args.len());
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let recs = collect(&mut stmt, params_from_iter(args), interaction_from_row)?;
    attach_links(conn, recs)
}

// -- counters ---------------------------------------------------------------------------------

static COUNTERS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let cols = PlatformCounters::FIELDS.join(", ");
    let marks = (2..=PlatformCounters::FIELDS.len() + 1).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let sets =
        PlatformCounters::FIELDS.iter().map(|f| format!("{f} = {f} + excluded.{f}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO counters (platform, {cols}) VALUES (?1, {marks}) ON CONFLICT (platform) DO UPDATE SET {sets}")
});

static COUNTERS_SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT platform, {} FROM counters", PlatformCounters::FIELDS.join(", ")));

fn add_counters(tx: &Connection, platform: &Platform, d: &PlatformCounters) -> Result<(), StoreError> {
    if d.is_zero() {
        return Ok(());
    }
    let values = d.values();
    let name = platform.as_str();
    let mut args: Vec<&dyn ToSql> = Vec::with_capacity(values.len() + 1);
    args.push(&name);
    for v in &values {
        args.push(v);
    }
    tx.prepare_cached(&COUNTERS_UPSERT).db()?.execute(&*args).db()?;
    Ok(())
}

fn add_all(tx: &Connection, deltas: &BTreeMap<Platform, PlatformCounters>) -> Result<(), StoreError> {
    for (p, d) in deltas {
        add_counters(tx, p, d)?;
    }
    Ok(())
}

// -- archive catalog ----------------------------------------------------------------------------

const OCOLS: &str = "object_key, platform, date, run_id, record_count, raw_bytes, compressed_bytes, storage_class, \
     created_at, location, state";
const ACOLS: &str = "interaction_id, user_id, platform, created_at, object_key, content_hash, receipt_compressed, \
     receipt_original_bytes, receipt_stored_bytes, facts";

fn object_from_row(r: &Row<'_>) -> Result<ArchiveObject, StoreError> {
    let slot: String = r.get(0).db()?;
    let location: Option<String> = r.get(9).db()?;
    Ok(ArchiveObject {
        object_key: location.unwrap_or_else(|| slot.clone()),
        slot,
        state: ObjectState::parse(&r.get::<_, String>(10).db()?).ok_or_else(|| corrupt("object state"))?,
        platform: parse_platform(&r.get::<_, String>(1).db()?)?,
        date: NaiveDate::parse_from_str(&r.get::<_, String>(2).db()?, "%Y-%m-%d").map_err(|_| corrupt("date"))?,
        run_id: r.get(3).db()?,
        record_count: r.get(4).db()?,
        raw_bytes: r.get(5).db()?,
        compressed_bytes: r.get(6).db()?,
        storage_class: StorageClass::parse(&r.get::<_, String>(7).db()?).ok_or_else(|| corrupt("storage class"))?,
        created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
    })
}

fn insert_object_row(tx: &Connection, o: &ArchiveObject) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO archive_objects ({OCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))
        .db()?;
    stmt.execute(params![
        o.slot,
        o.platform.as_str(),
        o.date.format("%Y-%m-%d").to_string(),
        o.run_id,
        o.record_count,
        o.raw_bytes,
        o.compressed_bytes,
        o.storage_class.as_str(),
        ts(&o.created_at),
        (o.object_key != o.slot).then_some(o.object_key.as_str()),
        o.state.as_str(),
    ])
    .map_err(|e| match db_error(e) {
        StoreError::Conflict(_) => StoreError::Conflict("archive object key already recorded"),
        other => other,
    })?;
    Ok(())
}

fn entry_from_row(r: &Row<'_>) -> Result<ArchivedEntry, StoreError> {
    let interaction_id = parse_id(&r.get::<_, String>(0).db()?)?;
    let created_at = parse_ts(&r.get::<_, String>(3).db()?)?;
    Ok(ArchivedEntry {
        interaction_id,
        user_id: parse_user(&r.get::<_, String>(1).db()?)?,
        platform: parse_platform(&r.get::<_, String>(2).db()?)?,
        created_at,
        object_key: r.get(4).db()?,
        content_hash: r.get(5).db()?,
        receipt: IngestReceipt {
            interaction_id,
            created_at,
            compressed: r.get(6).db()?,
            original_bytes: r.get(7).db()?,
            stored_bytes: r.get(8).db()?,
        },
        facts: from_json::<RecordFacts>(&r.get::<_, String>(9).db()?, "record facts")?,
    })
}

fn archived_entry(conn: &Connection, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ACOLS} FROM archived WHERE interaction_id = ?1")).db()?;
    let mut rows = stmt.query([id_text(id)]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(entry_from_row(row)?)),
        None => Ok(None),
    }
}

fn insert_entry(tx: &Connection, e: &ArchivedEntry) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("INSERT INTO archived ({ACOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))
        .db()?;
    stmt.execute(params![
        id_text(e.interaction_id),
        e.user_id.as_str(),
        e.platform.as_str(),
        ts(&e.created_at),
        e.object_key,
        e.content_hash,
        e.receipt.compressed,
        e.receipt.original_bytes,
        e.receipt.stored_bytes,
        to_json(&e.facts)?,
    ])
    .db()?;
    Ok(())
}

const LEASE_NAME: &str = "archive";

/// Fencing: a run's write goes through only while its lease is the current one.
fn check_lease(tx: &Connection, lease: &ArchiveLease) -> Result<(), StoreError> {
    let token: Option<i64> = tx
        .prepare_cached("SELECT token FROM leases WHERE name = ?1")
        .db()?
        .query_row([LEASE_NAME], |r| r.get(0))
        .optional()
        .db()?;
    if token == Some(lease.token) { Ok(()) } else { Err(StoreError::Fenced) }
}

fn object_row(conn: &Connection, slot: &str) -> Result<Option<ArchiveObject>, StoreError> {
    let sql = format!("SELECT {OCOLS} FROM archive_objects WHERE object_key = ?1");
    Ok(collect(&mut conn.prepare_cached(&sql).db()?, [slot], object_from_row)?.pop())
}

fn insert_tombstone(tx: &Connection, slot: &str, id: Id) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO tombstones (slot, interaction_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .db()?
        .execute(params![slot, id_text(id)])
        .db()?;
    Ok(())
}

fn delete_tombstones(tx: &Connection, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("DELETE FROM tombstones WHERE slot = ?1 AND interaction_id = ?2").db()?;
    for id in ids {
        stmt.execute(params![slot, id_text(*id)]).db()?;
    }
    Ok(())
}


#[async_trait]
impl HotStore for SqliteStore {
    async fn insert_interaction(&self, rec: &Interaction) -> Result<Inserted, StoreError> {
        let rec = rec.clone();
        self.write(move |tx| {
            // The writer lock plus BEGIN IMMEDIATE serialise this check with every other insert.
            if let Some(e) = archived_entry(tx, rec.id)? {
                return Ok(Inserted::Existing { content_hash: e.content_hash, receipt: e.receipt });
            }
            if !insert_interaction_row(tx, &rec)? {
                return existing(tx, rec.id)?.ok_or_else(|| StoreError::Internal("conflicting id vanished".into()));
            }
            add_counters(tx, &rec.platform, &rec.facts(false).contribution())?;
            Ok(Inserted::New)
        })
        .await
    }

    async fn get_linked(&self, id: Id) -> Result<Option<Linked>, StoreError> {
        self.read(move |tx| match load_interaction(tx, id)? {
            Some(rec) => Ok(attach_links(tx, vec![rec])?.pop()),
            None => Ok(None),
        })
        .await
    }

    async fn list_interactions(&self, q: &ListQuery) -> Result<Vec<Interaction>, StoreError> {
        let q = q.clone();
        self.read(move |tx| {
            let mut clauses = Vec::new();
            let mut args: Vec<SqlValue> = Vec::new();
            if let Some(u) = &q.user_id {
                args.push(SqlValue::Text(u.as_str().to_owned()));
                clauses.push(format!("user_id = ?{}", args.len()));
            }
            if let Some(p) = &q.platform {
                args.push(SqlValue::Text(p.as_str().to_owned()));
                clauses.push(format!("platform = ?{}", args.len()));
            }
            if let Some(c) = q.before {
                args.push(SqlValue::Text(ts(&c.created_at)));
                args.push(SqlValue::Text(id_text(c.id)));
                clauses.push(format!("(created_at, id) < (?{}, ?{})", args.len() - 1, args.len()));
            }
            args.push(SqlValue::Integer(i64::from(q.limit)));
            let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
            let sql = format!(
                "SELECT {ICOLS} FROM interactions {where_} ORDER BY created_at DESC, id DESC LIMIT ?{}",
                args.len()
            );
            let mut stmt = tx.prepare_cached(&sql).db()?;
            collect(&mut stmt, params_from_iter(args), interaction_from_row)
        })
        .await
    }

    async fn scan_platform(&self, q: &ScanQuery) -> Result<Vec<Linked>, StoreError> {
        let q = q.clone();
        self.read(move |tx| {
            scan(tx, &[("platform", q.platform.as_str().to_owned())], q.after, q.since, q.until, q.limit)
        })
        .await
    }

    async fn scan_user(&self, user: &UserId, after: Option<Cursor>, limit: u32) -> Result<Vec<Linked>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |tx| scan(tx, &[("user_id", user)], after, None, None, limit)).await
    }

    async fn unlinked_validations(&self, user: &UserId) -> Result<Vec<ValidationLog>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {VCOLS} FROM validations WHERE user_id = ?1 AND interaction_id IS NULL ORDER BY created_at, rowid"
                ))
                .db()?;
            collect(&mut stmt, [&user], validation_from_row)
        })
        .await
    }

    async fn add_feedback(&self, fb: &Feedback) -> Result<(), StoreError> {
        let fb = fb.clone();
        self.write(move |tx| {
            let mut rec = load_interaction(tx, fb.interaction_id)?.ok_or(StoreError::NotFound)?;
            let before = rec.facts(false).contribution();
            rec.summary = rec.summary.with_feedback(&fb);
            let after = rec.facts(false).contribution();
            write_summary(tx, rec.id, &rec.summary)?;
            let mut stmt = tx
                .prepare_cached(&format!("INSERT INTO feedback ({FCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))
                .db()?;
            stmt.execute(params![
                id_text(fb.feedback_id),
                id_text(fb.interaction_id),
                fb.submitted_by.as_str(),
                fb.feedback_type.as_str(),
                fb.sentiment_score,
                fb.comment,
                opt_json(fb.corrected_workflow.as_ref())?,
                fb.issue_category,
                ts(&fb.created_at),
            ])
            .db()?;
            add_counters(tx, &rec.platform, &PlatformCounters::delta(&before, &after))
        })
        .await
    }

    async fn add_validation(&self, v: &ValidationLog) -> Result<(), StoreError> {
        let v = v.clone();
        self.write(move |tx| {
            if let Some(id) = v.interaction_id {
                let mut rec = load_interaction(tx, id)?.ok_or(StoreError::NotFound)?;
                let before = rec.facts(false).contribution();
                let summary = rec.summary.with_validation(&v);
                if summary != rec.summary {
                    rec.summary = summary;
                    write_summary(tx, id, &rec.summary)?;
                }
                let after = rec.facts(false).contribution();
                insert_validation_row(tx, &v)?;
                add_counters(tx, &rec.platform, &PlatformCounters::delta(&before, &after))
            } else {
                insert_validation_row(tx, &v)
            }
        })
        .await
    }

    async fn delete_interaction(&self, id: Id) -> Result<HotDeleted, StoreError> {
        self.write(move |tx| {
            let Some(rec) = load_interaction(tx, id)? else {
                return Ok(HotDeleted::default());
            };
            let (feedback, validation_logs) = delete_hot(tx, id)?;
            add_counters(tx, &rec.platform, &rec.facts(false).contribution().negated())?;
            Ok(HotDeleted { interactions: 1, feedback, validation_logs })
        })
        .await
    }

    async fn delete_user(&self, user: &UserId) -> Result<HotDeleted, StoreError> {
        let user = user.as_str().to_owned();
        self.write(move |tx| {
            // Streamed: one record in memory at a time, however many the user has.
            let mut deltas: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
            let mut stmt = tx.prepare_cached(&format!("SELECT {ICOLS} FROM interactions WHERE user_id = ?1")).db()?;
            let mut rows = stmt.query([&user]).db()?;
            while let Some(row) = rows.next().db()? {
                let rec = interaction_from_row(row)?;
                deltas.entry(rec.platform.clone()).or_default().sub(&rec.facts(false).contribution());
            }
            drop(rows);
            let run = |sql: &str| -> Result<i64, StoreError> {
                Ok(tx.prepare_cached(sql).db()?.execute([&user]).db()? as i64)
            };
            let feedback =
                run("DELETE FROM feedback WHERE interaction_id IN (SELECT id FROM interactions WHERE user_id = ?1)")?;
            let linked = run(
                "DELETE FROM validations WHERE interaction_id IN (SELECT id FROM interactions WHERE user_id = ?1)",
            )?;
            let interactions = run("DELETE FROM interactions WHERE user_id = ?1")?;
            let unlinked = run("DELETE FROM validations WHERE user_id = ?1 AND interaction_id IS NULL")?;
            add_all(tx, &deltas)?;
            Ok(HotDeleted { interactions, feedback, validation_logs: linked + unlinked })
        })
        .await
    }

    async fn insert_example(&self, ex: &CuratedExample) -> Result<(), StoreError> {
        let ex = ex.clone();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO examples (example_id, platform, user_message, workflow, ai_response, description, tags, \
                     usage_count, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .db()?;
            stmt.execute(params![
                id_text(ex.example_id),
                ex.platform.as_str(),
                ex.user_message,
                opt_json(ex.workflow.as_ref())?,
                ex.ai_response,
                ex.description,
                to_json(&ex.tags)?,
                ex.usage_count,
                ex.created_by.as_str(),
                ts(&ex.created_at),
            ])
            .db()?;
            add_counters(tx, &ex.platform, &PlatformCounters { curated_examples: 1, ..PlatformCounters::default() })
        })
        .await
    }

    async fn list_examples(&self, platform: Option<&Platform>) -> Result<Vec<CuratedExample>, StoreError> {
        let platform = platform.map(|p| p.as_str().to_owned());
        self.read(move |tx| {
            let cols = "example_id, platform, user_message, workflow, ai_response, description, tags, usage_count, \
                        created_by, created_at";
            let map = |r: &Row<'_>| -> Result<CuratedExample, StoreError> {
                Ok(CuratedExample {
                    example_id: parse_id(&r.get::<_, String>(0).db()?)?,
                    platform: parse_platform(&r.get::<_, String>(1).db()?)?,
                    user_message: r.get(2).db()?,
                    workflow: opt_from_json(r.get(3).db()?, "example workflow")?,
                    ai_response: r.get(4).db()?,
                    description: r.get(5).db()?,
                    tags: from_json(&r.get::<_, String>(6).db()?, "tags")?,
                    usage_count: r.get(7).db()?,
                    created_by: parse_user(&r.get::<_, String>(8).db()?)?,
                    created_at: parse_ts(&r.get::<_, String>(9).db()?)?,
                })
            };
            match platform {
                Some(p) => {
                    let sql = format!(
                        "SELECT {cols} FROM examples WHERE platform = ?1 ORDER BY created_at DESC, example_id DESC"
                    );
                    collect(&mut tx.prepare_cached(&sql).db()?, [&p], map)
                }
                None => {
                    let sql = format!("SELECT {cols} FROM examples ORDER BY created_at DESC, example_id DESC");
                    collect(&mut tx.prepare_cached(&sql).db()?, [], map)
                }
            }
        })
        .await
    }

    async fn delete_example(&self, id: Id) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let platform: Option<String> = tx
                .prepare_cached("DELETE FROM examples WHERE example_id = ?1 RETURNING platform")
                .db()?
                .query_row([id_text(id)], |r| r.get(0))
                .optional()
                .db()?;
            let Some(platform) = platform else { return Ok(false) };
            let minus_one = PlatformCounters { curated_examples: -1, ..PlatformCounters::default() };
            add_counters(tx, &parse_platform(&platform)?, &minus_one)?;
            Ok(true)
        })
        .await
    }

    async fn increment_example_usage(&self, ids: &[Id]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = serde_json::to_string(&ids.iter().map(|i| id_text(*i)).collect::<Vec<_>>()).map_err(StoreError::internal)?;
        self.write(move |tx| {
            tx.prepare_cached("UPDATE examples SET usage_count = usage_count + 1 WHERE example_id IN (SELECT value FROM json_each(?1))")
                .db()?
                .execute([ids])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn insert_metric(&self, m: &TrainingMetric) -> Result<(), StoreError> {
        let m = m.clone();
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO metrics (metric_id, platform, model, dataset_size, run_id, metrics, notes, created_by, \
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .db()?;
            stmt.execute(params![
                id_text(m.metric_id),
                m.platform.as_str(),
                m.model,
                m.dataset_size,
                m.run_id,
                to_json(&m.metrics)?,
                m.notes,
                m.created_by.as_str(),
                ts(&m.created_at),
            ])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn list_metrics(&self, platform: Option<&Platform>) -> Result<Vec<TrainingMetric>, StoreError> {
        let platform = platform.map(|p| p.as_str().to_owned());
        self.read(move |tx| {
            let cols = "metric_id, platform, model, dataset_size, run_id, metrics, notes, created_by, created_at";
            let map = |r: &Row<'_>| -> Result<TrainingMetric, StoreError> {
                Ok(TrainingMetric {
                    metric_id: parse_id(&r.get::<_, String>(0).db()?)?,
                    platform: parse_platform(&r.get::<_, String>(1).db()?)?,
                    model: r.get(2).db()?,
                    dataset_size: r.get(3).db()?,
                    run_id: r.get(4).db()?,
                    metrics: from_json(&r.get::<_, String>(5).db()?, "metrics")?,
                    notes: r.get(6).db()?,
                    created_by: parse_user(&r.get::<_, String>(7).db()?)?,
                    created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
                })
            };
            match platform {
                Some(p) => {
                    let sql = format!(
                        "SELECT {cols} FROM metrics WHERE platform = ?1 ORDER BY created_at DESC, metric_id DESC"
                    );
                    collect(&mut tx.prepare_cached(&sql).db()?, [&p], map)
                }
                None => {
                    let sql = format!("SELECT {cols} FROM metrics ORDER BY created_at DESC, metric_id DESC");
                    collect(&mut tx.prepare_cached(&sql).db()?, [], map)
                }
            }
        })
        .await
    }

    async fn counters(&self) -> Result<BTreeMap<Platform, PlatformCounters>, StoreError> {
        self.read(move |tx| {
            let mut stmt = tx.prepare_cached(&COUNTERS_SELECT).db()?;
            let rows = collect(&mut stmt, [], |r| {
                let platform = parse_platform(&r.get::<_, String>(0).db()?)?;
                let mut values = [0i64; PlatformCounters::FIELDS.len()];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = r.get(i + 1).db()?;
                }
                Ok((platform, PlatformCounters::from_values(values)))
            })?;
            Ok(rows.into_iter().filter(|(_, c)| !c.is_zero()).collect())
        })
        .await
    }

    async fn added_platforms(&self) -> Result<BTreeSet<Platform>, StoreError> {
        self.read(|tx| added_platforms(tx)).await
    }

    async fn add_platform(&self, p: &Platform, limit: &PlatformLimit) -> Result<PlatformAdded, StoreError> {
        let (p, limit) = (p.clone(), limit.clone());
        // One write transaction (BEGIN IMMEDIATE): the count and the insert cannot interleave
        // with another process's add.
        self.write(move |tx| {
            let added = added_platforms(tx)?;
            if added.contains(&p) {
                return Ok(PlatformAdded::AlreadyAdded);
            }
            if !limit.has_room(&added) {
                return Ok(PlatformAdded::LimitReached);
            }
            tx.prepare_cached("INSERT INTO platforms (platform) VALUES (?1)").db()?.execute([p.as_str()]).db()?;
            Ok(PlatformAdded::Added)
        })
        .await
    }

    async fn record_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        let (manifest, held) = (manifest.clone(), held.clone());
        // One transaction: the manifest and every held record appear together.
        self.write(move |tx| {
            let export_id = id_text(manifest.export_id);
            tx.prepare_cached("INSERT INTO exports (export_id, created_at, manifest) VALUES (?1, ?2, ?3)")
                .db()?
                .execute(params![export_id, ts(&manifest.created_at), to_json(&manifest)?])
                .db()?;
            let mut stmt = tx
                .prepare_cached("INSERT INTO export_records (interaction_id, export_id, user_id) VALUES (?1, ?2, ?3)")
                .db()?;
            for (user, ids) in held.by_user() {
                for id in ids {
                    stmt.execute(params![id_text(id), export_id, user.as_str()]).db()?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn list_exports(&self, before: Option<Id>, limit: u32) -> Result<Vec<ExportManifest>, StoreError> {
        self.read(move |tx| {
            let map = |r: &Row<'_>| from_json::<ExportManifest>(&r.get::<_, String>(0).db()?, "export manifest");
            match before {
                Some(b) => collect(
                    &mut tx
                        .prepare_cached("SELECT manifest FROM exports WHERE export_id < ?1 ORDER BY export_id DESC LIMIT ?2")
                        .db()?,
                    params![id_text(b), i64::from(limit)],
                    map,
                ),
                None => collect(
                    &mut tx.prepare_cached("SELECT manifest FROM exports ORDER BY export_id DESC LIMIT ?1").db()?,
                    params![i64::from(limit)],
                    map,
                ),
            }
        })
        .await
    }

    async fn export_manifest(&self, id: Id) -> Result<Option<ExportManifest>, StoreError> {
        self.read(move |tx| {
            let raw: Option<String> = tx
                .prepare_cached("SELECT manifest FROM exports WHERE export_id = ?1")
                .db()?
                .query_row([id_text(id)], |r| r.get(0))
                .optional()
                .db()?;
            raw.map(|m| from_json(&m, "export manifest")).transpose()
        })
        .await
    }

    async fn exports_holding(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
        let (cond, args) = held_where(by);
        let sql = format!("SELECT DISTINCT export_id FROM export_records WHERE {cond}");
        self.read(move |tx| {
            let ids = collect(&mut tx.prepare_cached(&sql).db()?, params_from_iter(args), |r| r.get::<_, String>(0).db())?;
            ids.iter().map(|i| parse_id(i)).collect()
        })
        .await
    }

    async fn forget_held(&self, by: HeldBy<'_>) -> Result<(), StoreError> {
        let (cond, args) = held_where(by);
        let sql = format!("DELETE FROM export_records WHERE {cond}");
        self.write(move |tx| {
            tx.prepare_cached(&sql).db()?.execute(params_from_iter(args)).db()?;
            Ok(())
        })
        .await
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ArchiveLease>, StoreError> {
        let holder = holder.to_owned();
        let expires = now + chrono::Duration::from_std(ttl).map_err(StoreError::internal)?;
        self.write(move |tx| {
            let held: Option<(i64, String)> = tx
                .prepare_cached("SELECT token, expires_at FROM leases WHERE name = ?1")
                .db()?
                .query_row([LEASE_NAME], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?;
            let token = match held {
                Some((_, until)) if parse_ts(&until)? > now => return Ok(None),
                Some((token, _)) => token + 1,
                None => 1,
            };
            tx.prepare_cached(
                "INSERT INTO leases (name, holder, token, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET holder = ?2, token = ?3, expires_at = ?4",
            )
            .db()?
            .execute(params![LEASE_NAME, holder, token, ts(&expires)])
            .db()?;
            Ok(Some(ArchiveLease { token, holder, expires_at: expires }))
        })
        .await
    }

    async fn renew_lease(
        &self,
        lease: &ArchiveLease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ArchiveLease>, StoreError> {
        let lease = lease.clone();
        let expires = now + chrono::Duration::from_std(ttl).map_err(StoreError::internal)?;
        self.write(move |tx| {
            let n = tx
                .prepare_cached("UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND token = ?2")
                .db()?
                .execute(params![LEASE_NAME, lease.token, ts(&expires)])
                .db()?;
            Ok((n == 1).then(|| ArchiveLease { expires_at: expires, ..lease }))
        })
        .await
    }

    async fn release_lease(&self, lease: &ArchiveLease) -> Result<(), StoreError> {
        let token = lease.token;
        self.write(move |tx| {
            // Expired at once, token kept: the next holder's token is still larger.
            tx.prepare_cached("UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND token = ?2")
                .db()?
                .execute(params![LEASE_NAME, token, ts(&DateTime::<Utc>::UNIX_EPOCH)])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn begin_archive(&self, lease: &ArchiveLease, obj: &ArchiveObject) -> Result<(), StoreError> {
        let (lease, obj) = (lease.clone(), obj.clone());
        self.write(move |tx| {
            check_lease(tx, &lease)?;
            match object_row(tx, &obj.slot)? {
                Some(row) if row == obj => Ok(()),
                Some(_) => Err(StoreError::Conflict("archive object key already recorded")),
                None => insert_object_row(tx, &obj),
            }
        })
        .await
    }

    async fn commit_archive(
        &self,
        lease: &ArchiveLease,
        obj: &ArchiveObject,
        items: &[ArchiveItem],
    ) -> Result<Vec<Id>, StoreError> {
        let (lease, obj, items) = (lease.clone(), obj.clone(), items.to_vec());
        // One transaction: the stubs, the tombstones and the flip commit together. Up to
        // 20,000 records: alone, not in a batch's savepoint.
        self.write_alone(move |tx| {
            // Foreign keys checked at COMMIT, not after each statement (this transaction only; a
            // violation still fails the commit). An immediate check makes every DELETE of an
            // interaction a statement that may abort, which opens a statement journal: each page
            // it changes is copied there first, and a page it frees is still written to the WAL
            // (SQLite skips writing freed pages only with no savepoint or statement open). Its
            // links are deleted before it, so no violation is expected.
            tx.execute_batch("PRAGMA defer_foreign_keys = ON").db()?;
            check_lease(tx, &lease)?;
            let row = object_row(tx, &obj.slot)?.ok_or(StoreError::NotFound)?;
            let mut deltas: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
            // The items' hot rows with their link counts, read in one statement and moved as
            // they come (one row in memory at a time); then their rows and links go in three
            // set deletes. A record still hot with the line's number of links is the record the
            // line was written from: it moves. Every other item is handled below.
            let wanted: HashMap<Id, i64> = items.iter().map(|i| (i.id, i.links)).collect();
            let all_ids = id_list(&items.iter().map(|i| i.id).collect::<Vec<_>>())?;
            let mut moved: HashSet<Id> = HashSet::with_capacity(items.len());
            {
                let mut stmt = tx.prepare_cached(&SELECT_FOR_COMMIT).db()?;
                let mut rows = stmt.query([&all_ids]).db()?;
                let links_at = ICOLS.split(',').count();
                while let Some(r) = rows.next().db()? {
                    let rec = interaction_from_row(r)?;
                    let links: i64 = r.get(links_at).db()?;
                    if wanted.get(&rec.id) != Some(&links) || moved.contains(&rec.id) {
                        continue;
                    }
                    let (entry, delta) = ArchivedEntry::archiving(&rec, &obj.slot);
                    insert_entry(tx, &entry)?;
                    deltas.entry(rec.platform.clone()).or_default().add(&delta);
                    moved.insert(rec.id);
                }
            }
            if !moved.is_empty() {
                let list = id_list(&moved.iter().copied().collect::<Vec<_>>())?;
                for sql in [
                    "DELETE FROM feedback WHERE interaction_id IN (SELECT value FROM json_each(?1))",
                    "DELETE FROM validations WHERE interaction_id IN (SELECT value FROM json_each(?1))",
                    "DELETE FROM interactions WHERE id IN (SELECT value FROM json_each(?1))",
                ] {
                    tx.prepare_cached(sql).db()?.execute([&list]).db()?;
                }
            }
            // Deleted or changed meanwhile: a tombstone in this slot, unless the record's entry
            // already points here (a reconcile of a commit that went through).
            let mut tombstoned = Vec::new();
            for item in &items {
                if moved.contains(&item.id) {
                    continue;
                }
                if archived_entry(tx, item.id)?.is_none_or(|e| e.object_key != obj.slot) {
                    insert_tombstone(tx, &obj.slot, item.id)?;
                    tombstoned.push(item.id);
                }
            }
            if row.state == ObjectState::Pending {
                tx.prepare_cached(
                    "UPDATE archive_objects SET state = 'committed', record_count = ?2, raw_bytes = ?3, \
                     compressed_bytes = ?4, storage_class = ?5, created_at = ?6 WHERE object_key = ?1",
                )
                .db()?
                .execute(params![
                    obj.slot,
                    obj.record_count,
                    obj.raw_bytes,
                    obj.compressed_bytes,
                    obj.storage_class.as_str(),
                    ts(&obj.created_at)
                ])
                .db()?;
                deltas.entry(obj.platform.clone()).or_default().add(&obj.contribution());
            }
            add_all(tx, &deltas)?;
            Ok(tombstoned)
        })
        .await
    }

    async fn abort_archive(&self, lease: &ArchiveLease, obj: &ArchiveObject) -> Result<(), StoreError> {
        let (lease, slot) = (lease.clone(), obj.slot.clone());
        self.write(move |tx| {
            check_lease(tx, &lease)?;
            match object_row(tx, &slot)? {
                None => Ok(()),
                Some(row) if row.state == ObjectState::Committed => {
                    Err(StoreError::Conflict("archive object is committed"))
                }
                Some(_) => {
                    tx.prepare_cached("DELETE FROM archive_objects WHERE object_key = ?1")
                        .db()?
                        .execute([&slot])
                        .db()?;
                    Ok(())
                }
            }
        })
        .await
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
        self.write(move |tx| {
            let Some(entry) = archived_entry(tx, id)? else {
                return Ok(None);
            };
            tx.prepare_cached("DELETE FROM archived WHERE interaction_id = ?1").db()?.execute([id_text(id)]).db()?;
            insert_tombstone(tx, &entry.object_key, id)?;
            add_counters(tx, &entry.platform, &entry.facts.contribution().negated())?;
            Ok(Some(entry))
        })
        .await
    }

    async fn tombstones(&self, slot: &str) -> Result<HashSet<Id>, StoreError> {
        let slot = slot.to_owned();
        self.read(move |tx| {
            let ids = collect(
                &mut tx.prepare_cached("SELECT interaction_id FROM tombstones WHERE slot = ?1").db()?,
                [&slot],
                |r| parse_id(&r.get::<_, String>(0).db()?),
            )?;
            Ok(ids.into_iter().collect())
        })
        .await
    }

    async fn tombstoned_slots(&self) -> Result<BTreeSet<String>, StoreError> {
        self.read(move |tx| {
            let slots = collect(
                &mut tx.prepare_cached("SELECT DISTINCT slot FROM tombstones").db()?,
                [],
                |r| r.get::<_, String>(0).db(),
            )?;
            Ok(slots.into_iter().collect())
        })
        .await
    }

    async fn clear_tombstones(&self, lease: &ArchiveLease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        let (lease, slot, ids) = (lease.clone(), slot.to_owned(), ids.to_vec());
        self.write(move |tx| {
            check_lease(tx, &lease)?;
            delete_tombstones(tx, &slot, &ids)
        })
        .await
    }

    async fn apply_compaction(
        &self,
        lease: &ArchiveLease,
        old: &ArchiveObject,
        new: Option<&ArchiveObject>,
        cleared: &[Id],
    ) -> Result<(), StoreError> {
        let (lease, old, new, cleared) = (lease.clone(), old.clone(), new.cloned(), cleared.to_vec());
        self.write(move |tx| {
            check_lease(tx, &lease)?;
            let row = object_row(tx, &old.slot)?.ok_or(StoreError::Conflict("archive object row is gone"))?;
            if row.object_key != old.object_key {
                return Err(StoreError::Conflict("archive object was compacted by another run"));
            }
            let mut delta = old.contribution().negated();
            match &new {
                Some(n) => {
                    tx.prepare_cached(
                        "UPDATE archive_objects SET location = ?2, run_id = ?3, record_count = ?4, raw_bytes = ?5, \
                         compressed_bytes = ?6, storage_class = ?7, created_at = ?8 WHERE object_key = ?1",
                    )
                    .db()?
                    .execute(params![
                        old.slot,
                        (n.object_key != old.slot).then_some(n.object_key.as_str()),
                        n.run_id,
                        n.record_count,
                        n.raw_bytes,
                        n.compressed_bytes,
                        n.storage_class.as_str(),
                        ts(&n.created_at)
                    ])
                    .db()?;
                    delta.add(&n.contribution());
                }
                None => {
                    tx.prepare_cached("DELETE FROM archive_objects WHERE object_key = ?1")
                        .db()?
                        .execute([&old.slot])
                        .db()?;
                }
            }
            delete_tombstones(tx, &old.slot, &cleared)?;
            add_counters(tx, &old.platform, &delta)
        })
        .await
    }

    async fn list_archive_objects(&self, platform: Option<&Platform>) -> Result<Vec<ArchiveObject>, StoreError> {
        let platform = platform.map(|p| p.as_str().to_owned());
        self.read(move |tx| match platform {
            Some(p) => {
                let sql = format!(
                    "SELECT {OCOLS} FROM archive_objects WHERE platform = ?1 ORDER BY date, created_at, object_key"
                );
                collect(&mut tx.prepare_cached(&sql).db()?, [&p], object_from_row)
            }
            None => {
                let sql = format!("SELECT {OCOLS} FROM archive_objects ORDER BY date, created_at, object_key");
                collect(&mut tx.prepare_cached(&sql).db()?, [], object_from_row)
            }
        })
        .await
    }

    async fn archived_entry(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        self.read(move |tx| archived_entry(tx, id)).await
    }

    async fn archived_entries_of_user(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError> {
        let user = user.as_str().to_owned();
        self.read(move |tx| {
            let sql = format!("SELECT {ACOLS} FROM archived WHERE user_id = ?1 ORDER BY created_at, interaction_id");
            collect(&mut tx.prepare_cached(&sql).db()?, [&user], entry_from_row)
        })
        .await
    }
}
