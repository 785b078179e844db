//! The store conformance suite on the embedded adapters: SQLite for hot records, a folder for
//! archive objects. Each test gets a fresh temp dir.

mod sqlite {
    use collector::adapters::sqlite::SqliteStore;

    collector::hot_store_conformance!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("hot.db")).expect("open sqlite store");
        (store, dir)
    });
}

mod folder {
    use collector::adapters::fs::FolderStore;

    collector::object_store_conformance!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        (FolderStore::new(dir.path().join("objects")), dir)
    });
}

/// What only the SQLite adapter promises: the file outlives the process, and batched writes fail alone.
mod sqlite_only {
    use std::sync::Arc;

    use collector::adapters::sqlite::SqliteStore;
    use collector::domain::records::FeedbackType;
    use collector::domain::types::Id;
    use collector::ports::conformance::{at, expected_counters, feedback, interaction};
    use collector::ports::{HotStore, Inserted, StoreError};

    #[tokio::test]
    async fn reopening_keeps_records_counters_and_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("hot.db");
        let rec = interaction("alice", "n8n", at(0));
        let fb = feedback(&rec, FeedbackType::ThumbsUp, at(1));
        {
            let store = SqliteStore::open(&path).expect("open");
            assert_eq!(store.insert_interaction(&rec).await.expect("insert"), Inserted::New);
            store.add_feedback(&fb).await.expect("feedback");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        let linked = store.get_linked(rec.id).await.expect("get").expect("kept");
        assert_eq!(linked.feedback, vec![fb]);
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&linked.interaction, false)], &[]));
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 7);
    }

    /// A newer collector that migrates the file while this process runs (a CLI run after an
    /// upgrade) stops this process's writes, with the reason: writing on with this build's rules
    /// could undo what the new schema keeps. Its reads go on.
    #[tokio::test]
    async fn a_file_migrated_by_a_newer_build_stops_this_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        let store = SqliteStore::open(&path).expect("open");
        let before = interaction("alice", "n8n", at(0));
        assert_eq!(store.insert_interaction(&before).await.expect("insert"), Inserted::New);
        rusqlite::Connection::open(&path).and_then(|c| c.execute_batch("PRAGMA user_version = 8")).expect("bump");
        let after = interaction("alice", "n8n", at(1));
        match store.insert_interaction(&after).await {
            Err(StoreError::Internal(m)) => assert!(m.contains("schema version 8"), "{m}"),
            other => panic!("written on an upgraded file: {other:?}"),
        }
        assert!(store.get_linked(before.id).await.expect("read").is_some(), "reads go on");
        assert!(store.get_linked(after.id).await.expect("read").is_none());
    }

    /// Opening a store whose write lock another process holds past the busy timeout (a newer
    /// collector migrating a large file, say) fails with an error that says so, not "throttled".
    #[tokio::test]
    async fn opening_a_store_another_process_is_writing_says_why_it_failed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        drop(SqliteStore::open(&path).expect("create"));
        let other = rusqlite::Connection::open(&path).expect("raw open");
        other.execute_batch("BEGIN IMMEDIATE").expect("hold the write lock");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("write lock"), "{m}"),
            Err(e) => panic!("unclear error: {e:?}"),
            Ok(_) => panic!("opened while another process held the write lock"),
        }
        other.execute_batch("ROLLBACK").expect("release");
        SqliteStore::open(&path).expect("opens once the lock is free");
    }

    /// A collector that opens the file while another rebuilds it (the rebuild holds an exclusive
    /// lock, outside WAL mode) fails after the busy timeout with an error that says why.
    #[tokio::test]
    async fn opening_a_store_during_another_processs_rebuild_says_why_it_failed() {
        let (_dir, path, rec) = file_with_a_record().await;
        let other = rusqlite::Connection::open(&path).expect("raw open");
        let mode: String = other.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).expect("leave WAL");
        assert_eq!(mode, "delete");
        other.execute_batch("BEGIN EXCLUSIVE").expect("hold the file as a rebuild does");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("write lock") && m.contains("rebuild"), "{m}"),
            Err(e) => panic!("unclear error: {e:?}"),
            Ok(_) => panic!("opened during another process's rebuild"),
        }
        other.execute_batch("COMMIT").expect("release");
        drop(other);
        let store = SqliteStore::open(&path).expect("opens once the rebuild is done");
        assert!(store.get_linked(rec.id).await.expect("get").is_some(), "kept");
    }

    /// A deleted record's text is not left in the file's free pages (the writer runs with
    /// `secure_delete`): once the WAL is checkpointed into the file, no byte of it remains, for
    /// a text on the row's own page and one long enough for overflow pages alike.
    #[tokio::test]
    async fn a_deleted_records_text_is_not_left_in_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        let short_marker = format!("erase-me-short-{}", Id::new());
        let long_marker = format!("erase-me-long-{}", Id::new());
        {
            let store = SqliteStore::open(&path).expect("open");
            let mut kept = interaction("bob", "n8n", at(0));
            kept.user_message = "kept".into();
            store.insert_interaction(&kept).await.expect("insert");
            let mut short = interaction("alice", "n8n", at(1));
            short.user_message = short_marker.clone();
            let mut long = interaction("alice", "n8n", at(2));
            // Longer than a 32 KiB page holds, so its text goes to overflow pages.
            long.user_message = format!("{long_marker} {}", "y".repeat(100_000));
            for rec in [&short, &long] {
                store.insert_interaction(rec).await.expect("insert");
            }
            let deleted = store.delete_user(&collector::domain::types::UserId::parse("alice").expect("id")).await;
            assert_eq!(deleted.expect("delete").interactions, 2);
        }
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
        drop(conn);
        let mut bytes = std::fs::read(&path).expect("read file");
        bytes.extend(std::fs::read(dir.path().join("hot.db-wal")).unwrap_or_default());
        let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(holds("kept"), "the search finds text that is there");
        assert!(!holds(&short_marker), "a deleted short text is still in the file");
        assert!(!holds(&long_marker), "a deleted long text is still in the file");
    }

    fn page_size(path: &std::path::Path) -> i64 {
        let conn = rusqlite::Connection::open(path).expect("raw open");
        conn.query_row("PRAGMA page_size", [], |r| r.get(0)).expect("page size")
    }

    /// Rebuild the file at `path` with 4 KiB pages, SQLite's default, which every store had
    /// before the collector chose its own.
    fn with_small_pages(path: &std::path::Path) {
        let conn = rusqlite::Connection::open(path).expect("raw open");
        let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).expect("leave WAL");
        assert_eq!(mode, "delete");
        conn.execute_batch("PRAGMA page_size = 4096; VACUUM;").expect("small pages");
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("back to WAL");
        assert_eq!(mode, "wal");
        drop(conn);
        assert_eq!(page_size(path), 4096);
    }

    /// A new store is made with 32 KiB pages; one made with SQLite's 4 KiB pages (every store
    /// before) is rebuilt with them when opened, keeping its records, links and counters, and
    /// stays in WAL mode.
    #[tokio::test]
    async fn a_file_with_small_pages_is_rebuilt_with_large_ones_and_keeps_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        let rec = interaction("alice", "n8n", at(0));
        let fb = feedback(&rec, FeedbackType::ThumbsDown, at(1));
        {
            let store = SqliteStore::open(&path).expect("open");
            store.insert_interaction(&rec).await.expect("insert");
            store.add_feedback(&fb).await.expect("feedback");
        }
        assert_eq!(page_size(&path), 32 * 1024, "a new store's page size");
        with_small_pages(&path);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(page_size(&path), 32 * 1024, "rebuilt at open");
        let linked = store.get_linked(rec.id).await.expect("get").expect("kept");
        assert_eq!(linked.feedback, vec![fb]);
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&linked.interaction, false)], &[]));
        let later = interaction("bob", "n8n", at(2));
        assert_eq!(store.insert_interaction(&later).await.expect("insert"), Inserted::New);
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
    }

    /// When another process has the file open (a server beside a CLI command), the rebuild
    /// cannot run: the store opens at once with its old page size and works; the next open
    /// with the file to itself rebuilds it.
    #[tokio::test]
    async fn a_file_another_process_has_open_opens_at_once_and_is_rebuilt_later() {
        let (_dir, path, rec) = file_with_a_record().await;
        with_small_pages(&path);
        let other = rusqlite::Connection::open(&path).expect("raw open");
        let held: i64 = other.query_row("SELECT count(*) FROM interactions", [], |r| r.get(0)).expect("read");
        assert_eq!(held, 1);
        let started = std::time::Instant::now();
        let store = SqliteStore::open(&path).expect("opens beside another connection");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "waited {:?}", started.elapsed());
        assert_eq!(page_size(&path), 4096, "not rebuilt under another connection");
        assert!(store.get_linked(rec.id).await.expect("get").is_some());
        // The skipped rebuild gave back the busy timeout: a write waits for another process's
        // short transaction instead of failing.
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let holder = {
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = rusqlite::Connection::open(&path).expect("raw open");
                conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
                locked_tx.send(()).expect("signal");
                std::thread::sleep(std::time::Duration::from_millis(300));
                conn.execute_batch("COMMIT").expect("release");
            })
        };
        locked.recv().expect("the lock is held");
        let later = interaction("bob", "n8n", at(2));
        assert_eq!(store.insert_interaction(&later).await.expect("waits, then inserts"), Inserted::New);
        holder.join().expect("holder");
        drop(store);
        drop(other);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(page_size(&path), 32 * 1024);
        for id in [rec.id, later.id] {
            assert!(store.get_linked(id).await.expect("get").is_some(), "kept");
        }
    }

    /// A store file holding one record (in a temp dir, kept while the first value lives).
    async fn file_with_a_record() -> (tempfile::TempDir, std::path::PathBuf, collector::domain::records::Interaction) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        let rec = interaction("alice", "n8n", at(0));
        {
            let store = SqliteStore::open(&path).expect("open");
            store.insert_interaction(&rec).await.expect("insert");
        }
        (dir, path, rec)
    }

    /// Make the file at `path` an older version's, with `sql` on a raw connection (every older
    /// version lacks version 7's table of erased ids).
    fn downgrade(path: &std::path::Path, sql: &str) {
        let sql = format!("DROP TABLE erased; {sql}");
        rusqlite::Connection::open(path).and_then(|c| c.execute_batch(&sql)).expect("downgrade");
    }

    /// A version 6 file gains the table of erased ids: its records stay, and an id deleted
    /// from now on is not used again.
    #[tokio::test]
    async fn a_version_6_file_is_migrated() {
        let (_dir, path, rec) = file_with_a_record().await;
        downgrade(&path, "PRAGMA user_version = 6;");
        let store = SqliteStore::open(&path).expect("migrate");
        assert!(store.get_linked(rec.id).await.expect("get").is_some(), "kept");
        store.delete_interaction(rec.id).await.expect("delete");
        assert_eq!(store.insert_interaction(&rec).await.expect("insert"), Inserted::Erased);
    }

    /// A version 5 file gains each interaction's link bytes, counted from the links it holds
    /// (what adding them one by one would have counted), so the limit holds for old records too.
    #[tokio::test]
    async fn a_version_5_file_is_migrated_with_its_links_counted() {
        use collector::domain::records::{FeedbackSummary, NewLink};
        use collector::ports::conformance::validation;
        let (_dir, path, rec) = file_with_a_record().await;
        let other = interaction("bob", "make", at(5));
        let up = feedback(&rec, FeedbackType::ThumbsUp, at(1));
        let edit = feedback(&rec, FeedbackType::Edit, at(2));
        let checked = validation("alice", "n8n", Some(rec.id), 90, at(3));
        let unlinked = validation("alice", "n8n", None, 90, at(4));
        {
            let store = SqliteStore::open(&path).expect("open");
            store.insert_interaction(&other).await.expect("insert");
            store.add_feedback(&up).await.expect("feedback");
            store.add_feedback(&edit).await.expect("feedback");
            store.add_validation(&checked).await.expect("validation");
            store.add_validation(&unlinked).await.expect("validation");
        }
        let want = FeedbackSummary::default().with_feedback(&up).with_feedback(&edit).with_validation(&checked);
        assert_eq!(
            want.link_bytes,
            NewLink::Feedback(&up).json_bytes()
                + NewLink::Feedback(&edit).json_bytes()
                + NewLink::Validation(&checked).json_bytes()
        );
        downgrade(&path, "ALTER TABLE interactions DROP COLUMN link_bytes; PRAGMA user_version = 5;");
        let store = SqliteStore::open(&path).expect("migrate");
        let got = store.get_linked(rec.id).await.expect("get").expect("hot");
        assert_eq!(got.interaction.summary, want, "the migration counts the links already stored");
        assert_eq!(got.feedback, vec![up, edit]);
        let other = store.get_linked(other.id).await.expect("get").expect("hot");
        assert_eq!(other.interaction.summary.link_bytes, 0, "a record without links counts none");
    }

    /// A version 4 file loses the index of archived entries by object (version 5), and keeps
    /// its records.
    #[tokio::test]
    async fn a_version_4_file_is_migrated() {
        let (_dir, path, rec) = file_with_a_record().await;
        let index_count = |path: &std::path::Path| -> i64 {
            rusqlite::Connection::open(path)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'archived_by_object'", [], |r| {
                        r.get(0)
                    })
                })
                .expect("schema")
        };
        assert_eq!(index_count(&path), 0, "a new file has no such index");
        downgrade(
            &path,
            "ALTER TABLE interactions DROP COLUMN link_bytes; \
             CREATE INDEX archived_by_object ON archived (object_key); PRAGMA user_version = 4;",
        );
        assert_eq!(index_count(&path), 1);
        let store = SqliteStore::open(&path).expect("migrate");
        assert!(store.get_linked(rec.id).await.expect("get").is_some());
        drop(store);
        assert_eq!(index_count(&path), 0, "migrated");
    }

    /// A version 3 file (before export manifests) gains the manifest tables, empty, and keeps
    /// its records.
    #[tokio::test]
    async fn a_version_3_file_is_migrated() {
        use collector::domain::lineage::{HeldBy, HeldRecords};
        let (_dir, path, rec) = file_with_a_record().await;
        downgrade(
            &path,
            "ALTER TABLE interactions DROP COLUMN link_bytes; DROP TABLE export_records; DROP TABLE exports; \
             PRAGMA user_version = 3;",
        );
        let store = SqliteStore::open(&path).expect("migrate");
        assert!(store.get_linked(rec.id).await.expect("get").is_some());
        assert!(store.list_exports(None, 10).await.expect("manifests").is_empty());
        let m = collector::ports::conformance::manifest(1, false);
        let mut held = HeldRecords::default();
        held.add(&rec.user_id, rec.id);
        store.record_export(&m, &held).await.expect("record");
        let found = store.exports_holding(HeldBy::Record { id: rec.id, user: &rec.user_id }).await.expect("lookup");
        assert_eq!(found.into_iter().collect::<Vec<_>>(), vec![m.export_id]);
    }

    /// A version 2 file (before admin-added platforms) gains the platforms table, empty, and
    /// keeps its records.
    #[tokio::test]
    async fn a_version_2_file_is_migrated() {
        let (_dir, path, rec) = file_with_a_record().await;
        downgrade(
            &path,
            "ALTER TABLE interactions DROP COLUMN link_bytes; DROP TABLE export_records; DROP TABLE exports; \
             DROP TABLE platforms; PRAGMA user_version = 2;",
        );
        let store = SqliteStore::open(&path).expect("migrate");
        assert!(store.added_platforms().await.expect("platforms").is_empty());
        assert!(store.get_linked(rec.id).await.expect("get").is_some());
        let limit = collector::domain::platforms::PlatformLimit { configured: Default::default(), max: 1 };
        let airflow = collector::domain::types::Platform::parse("airflow").expect("slug");
        assert_eq!(
            store.add_platform(&airflow, &limit).await.expect("add"),
            collector::domain::platforms::PlatformAdded::Added
        );
    }

    /// A version 1 file (before the two-phase archive commit) is migrated in place: its archive
    /// rows read back as committed objects at their own keys, and the new tables exist.
    #[tokio::test]
    async fn a_version_1_file_is_migrated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        drop(SqliteStore::open(&path).expect("open"));
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(
            "ALTER TABLE interactions DROP COLUMN link_bytes; DROP TABLE erased; \
             DROP TABLE export_records; DROP TABLE exports; DROP TABLE platforms; DROP TABLE tombstones; DROP TABLE leases; \
             ALTER TABLE archive_objects DROP COLUMN location; ALTER TABLE archive_objects DROP COLUMN state; \
             INSERT INTO archive_objects VALUES ('archive/platform=n8n/date=2026-01-05/r-0.jsonl.gz', 'n8n', \
               '2026-01-05', 'r', 3, 300, 100, 'STANDARD', '2026-02-05T00:00:00.000000000Z'); \
             PRAGMA user_version = 1;",
        )
        .expect("downgrade to version 1");
        drop(conn);
        let store = SqliteStore::open(&path).expect("migrate");
        let rows = store.list_archive_objects(None).await.expect("objects");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, collector::domain::archive::ObjectState::Committed);
        assert_eq!(rows[0].object_key, rows[0].slot);
        assert!(store.tombstoned_slots().await.expect("tombstones").is_empty());
        assert!(
            store
                .acquire_lease("t", chrono::Utc::now(), std::time::Duration::from_secs(5))
                .await
                .expect("lease")
                .is_some()
        );
    }

    /// Two processes on one file (two stores here) add platforms at once: the limit holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn platform_adds_from_two_processes_hold_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        let a: Arc<dyn HotStore> = Arc::new(SqliteStore::open(&path).expect("open"));
        let b: Arc<dyn HotStore> = Arc::new(SqliteStore::open(&path).expect("open again"));
        collector::ports::conformance::race_platform_adds(vec![a, b]).await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hot.db");
        drop(SqliteStore::open(&path).expect("open"));
        rusqlite::Connection::open(&path).and_then(|c| c.execute_batch("PRAGMA user_version = 99")).expect("bump");
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::Internal(_))));
    }

    /// Writes that fail (unknown interaction, duplicate feedback id) share batches with writes that
    /// succeed; each is undone alone, including the summary update made before its failing insert.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_is_undone_alone_within_a_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn HotStore> = Arc::new(SqliteStore::open(&dir.path().join("hot.db")).expect("open"));
        let target = interaction("alice", "n8n", at(0));
        store.insert_interaction(&target).await.expect("insert");
        let fb = feedback(&target, FeedbackType::ThumbsUp, at(1));
        store.add_feedback(&fb).await.expect("feedback");

        let mut tasks = Vec::new();
        let mut recs = Vec::new();
        for i in 0..48 {
            let s = store.clone();
            let job = match i % 3 {
                0 => {
                    let rec = interaction("bob", "n8n", at(10 + i));
                    recs.push(rec.clone());
                    tokio::spawn(async move { s.insert_interaction(&rec).await.map(|r| assert_eq!(r, Inserted::New)) })
                }
                1 => {
                    let mut stray = feedback(&target, FeedbackType::ThumbsDown, at(100 + i));
                    stray.interaction_id = Id::new();
                    tokio::spawn(async move {
                        assert!(matches!(s.add_feedback(&stray).await, Err(StoreError::NotFound)));
                        Ok(())
                    })
                }
                _ => {
                    let dup = fb.clone();
                    tokio::spawn(async move {
                        assert!(matches!(s.add_feedback(&dup).await, Err(StoreError::Conflict(_))));
                        Ok(())
                    })
                }
            };
            tasks.push(job);
        }
        for t in tasks {
            t.await.expect("task").expect("write");
        }
        let linked = store.get_linked(target.id).await.expect("get").expect("hot");
        assert_eq!(linked.feedback, vec![fb]);
        assert_eq!(linked.interaction.summary.feedback_count, 1, "rejected feedback left no summary change");
        let mut all: Vec<(&collector::domain::records::Interaction, bool)> = recs.iter().map(|r| (r, false)).collect();
        all.push((&linked.interaction, false));
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&all, &[]));
    }
}
