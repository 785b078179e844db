//! The database schema: the tables of each schema version and the migration that brings a
//! file of any older version up to this build's (run by `SqliteStore::open`).

use std::time::Duration;

use rusqlite::{Connection, Row, TransactionBehavior, params};

use super::codec::{Db, id_text};
use super::rows::{FCOLS, VCOLS, feedback_from_row, validation_from_row};
use crate::domain::records::NewLink;
use crate::ports::StoreError;

const SCHEMA_VERSION: i64 = 7;

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

/// Version 5: no index of archived entries by object. Nothing reads entries by object since
/// deletes became tombstones (an entry's `object_key` is its slot, which compaction keeps), and
/// every archived record paid an index insert for it in the archive commit.
const SCHEMA_V5: &str = r#"
DROP INDEX IF EXISTS archived_by_object;
"#;

/// Version 6: each interaction keeps the JSON bytes of its links (`FeedbackSummary::link_bytes`,
/// held under `MAX_LINK_BYTES`), counted for the links already stored by [`count_link_bytes`].
const SCHEMA_V6: &str = r#"
ALTER TABLE interactions ADD COLUMN link_bytes INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 7: the ids of deleted interactions, never used again (`Inserted::Erased`). Deletes
/// before this version left no trace, so their ids are not here.
const SCHEMA_V7: &str = r#"
CREATE TABLE erased (
    interaction_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
"#;

/// Each version's migration, in order: a file at version `v` runs `MIGRATIONS[v..]`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] =
    [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7];

/// Count the links stored before version 6 into their interactions' `link_bytes`, with the
/// domain's own measure (`NewLink::json_bytes`). Links are read in interaction order (their
/// indexes), one interaction's sum in memory at a time. Links of archived records are not in
/// these tables (the commit moved them into their lines), so every link here has a hot row.
fn count_link_bytes(tx: &Connection) -> Result<(), StoreError> {
    /// A link row's interaction (id text) and JSON bytes.
    type Measured = Result<(String, i64), StoreError>;
    let mut add = tx.prepare("UPDATE interactions SET link_bytes = link_bytes + ?2 WHERE id = ?1").db()?;
    let mut sum_by_interaction = |sql: &str, measure: &dyn Fn(&Row<'_>) -> Measured| {
        let mut stmt = tx.prepare(sql).db()?;
        let mut rows = stmt.query([]).db()?;
        let mut current: Option<(String, i64)> = None;
        while let Some(row) = rows.next().db()? {
            let (id, bytes) = measure(row)?;
            match &mut current {
                Some((cur, sum)) if *cur == id => *sum = sum.saturating_add(bytes),
                _ => {
                    if let Some((cur, sum)) = current.replace((id, bytes)) {
                        add.execute(params![cur, sum]).db()?;
                    }
                }
            }
        }
        if let Some((cur, sum)) = current {
            add.execute(params![cur, sum]).db()?;
        }
        Ok::<(), StoreError>(())
    };
    sum_by_interaction(&format!("SELECT {FCOLS} FROM feedback ORDER BY interaction_id"), &|row| {
        let fb = feedback_from_row(row)?;
        Ok((id_text(fb.interaction_id), NewLink::Feedback(&fb).json_bytes()))
    })?;
    sum_by_interaction(
        &format!("SELECT {VCOLS} FROM validations WHERE interaction_id IS NOT NULL ORDER BY interaction_id"),
        &|row| {
            let v = validation_from_row(row)?;
            let id = v.interaction_id.map(id_text).unwrap_or_default();
            Ok((id, NewLink::Validation(&v).json_bytes()))
        },
    )
}

/// Inside each write transaction: the file is still at this build's schema version. A newer
/// collector (a CLI run after an upgrade) may have migrated it while this process ran; writing
/// on with this build's rules could undo what the new version keeps (e.g. erased ids), so this
/// process stops writing and says why.
pub(super) fn check_version(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.prepare_cached("PRAGMA user_version").db()?.query_row([], |r| r.get(0)).db()?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::Internal(format!(
        "the database is now at schema version {version} (another collector changed it while this one ran, \
         at version {SCHEMA_VERSION}); restart this process with the collector that did"
    )))
}

/// The page size of the store's file, in bytes. SQLite's default (4 KiB) holds one typical record
/// (2-3 KB) a page, so archiving a record (deleting its hot row) emptied a page, and SQLite
/// rebalanced the pages around it and, with `secure_delete`, wrote the freed page out as zeros.
/// At 32 KiB a page holds about ten: the archive run's CPU fell by about a third on the bench's
/// 60k store (docs/PERFORMANCE.md, "Archive with 32 KiB pages").
pub(super) const PAGE_SIZE: i64 = 32 * 1024;

/// How much WAL a checkpoint lets build up, in bytes (SQLite counts it in pages).
pub(super) const CHECKPOINT_BYTES: i64 = 16 * 1024 * 1024;

/// Puts the file in WAL mode (kept in the file: once set, every connection uses it).
pub(super) fn enter_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!("sqlite refused WAL mode (got {mode})")));
    }
    Ok(())
}

/// Gives a file made with another page size (every store before `PAGE_SIZE` was set) this build's
/// page size, once, at open: SQLite can change it only by rebuilding the file (`VACUUM`), outside
/// WAL mode, with no other connection open. The rebuild is atomic (a rollback journal beside the
/// file, synced with its directory: `synchronous = EXTRA` while it runs) and takes a few seconds a
/// GB. It needs free space for a copy of the file in SQLite's temp directory and for the journal.
/// While it runs, other processes cannot open the file (they wait out their busy timeout, then
/// say another collector holds the write lock). When it cannot run (another process has the file
/// open, a full disk) the store keeps its page size, which is only slower, and the next open tries
/// again. Runs before the writer's other pragmas, which set `synchronous` back to FULL. Returns
/// the page size the file has.
/// The attempt never waits on other connections (a CLI command beside a running server must not
/// be slowed at every start): it runs with no busy timeout, and `busy_timeout` is restored after.
pub(super) fn adopt_page_size(conn: &Connection, busy_timeout: Duration) -> Result<i64, StoreError> {
    let page_size = |conn: &Connection| conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0)).db();
    let before = page_size(conn)?;
    if before == PAGE_SIZE {
        return Ok(before);
    }
    conn.busy_timeout(Duration::ZERO).db()?;
    let mode = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)).db();
    let rebuilt = match mode {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {
            conn.execute_batch(&format!("PRAGMA synchronous = EXTRA; PRAGMA page_size = {PAGE_SIZE}; VACUUM;")).db()
        }
        Ok(_) => Err(StoreError::Unavailable("another connection has the file open".into())),
        Err(e) => Err(e),
    };
    conn.busy_timeout(busy_timeout).db()?;
    enter_wal(conn)?;
    let after = page_size(conn)?;
    match rebuilt {
        Ok(()) if after == PAGE_SIZE => {
            tracing::info!(from = before, to = after, "rebuilt the store's file with larger pages")
        }
        // Another process put the file back in WAL mode between the switch and the VACUUM.
        Ok(()) => tracing::warn!(
            page_size = after,
            "kept the store's page size (another process opened it during the rebuild; tried again at the next open)"
        ),
        // Busy, a full disk or temp directory: expected now and then.
        Err(e @ (StoreError::Throttled { .. } | StoreError::Unavailable(_))) => tracing::warn!(
            page_size = before,
            error = %e,
            "kept the store's page size (the rebuild to larger pages will be tried at the next open)"
        ),
        // Anything else (a damaged file, say) needs someone to look.
        Err(e) => tracing::error!(
            page_size = before,
            error = %e,
            "rebuilding the store's file with larger pages failed; it keeps its page size"
        ),
    }
    Ok(after)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    match version {
        older @ 0..SCHEMA_VERSION => {
            for step in &MIGRATIONS[older as usize..] {
                tx.execute_batch(step).db()?;
            }
            if older < 6 {
                count_link_bytes(&tx)?;
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
