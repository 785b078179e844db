//! Crash tests of the archive protocol, on both backends (SQLite + folder, and DynamoDB + S3 on
//! the emulator): a failpoint (the `fail` crate, feature `failpoints`) stops a run at one step as
//! if the process had died there; the test checks what a user could see right then, reruns, and
//! checks the invariants of CONTRACT section 6a:
//!
//! - every record is hot or in exactly one live line of one committed object, never both,
//!   never lost, and reads back whole;
//! - counters equal a recount;
//! - a deleted user's records are unreadable at once and absent from every object's bytes
//!   after the next run;
//! - no object without a committed row, no pending row, no tombstone left.
//!
//! Failpoints are process-global, so every test here holds a `FailScenario` (which serializes
//! them), also those that set none: a run of theirs would meet another test's failpoints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use collector::app::{App, AppError};
use collector::config::Config;
use collector::domain::archive::ObjectState;
use collector::domain::input::ArchiveRequest;
use collector::domain::types::{Caller, Id, Role, UserId};
use collector::ports::conformance::noise;
use collector::ports::{HotStore, ObjectStore, StoreError};
use serde_json::{Value, json};

const USERS: [&str; 2] = ["alice", "bob"];
const PER_USER: usize = 10;

/// One backend's stores; the guard keeps a temp dir alive.
struct Backend {
    hot: Arc<dyn HotStore>,
    objects: Arc<dyn ObjectStore>,
    _guard: Option<tempfile::TempDir>,
}

async fn local() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let hot = collector::adapters::sqlite::SqliteStore::open(&dir.path().join("hot.db")).expect("sqlite");
    let objects = collector::adapters::fs::FolderStore::new(dir.path().join("objects"));
    Backend { hot: Arc::new(hot), objects: Arc::new(objects), _guard: Some(dir) }
}

async fn aws() -> Option<Backend> {
    let emu = collector::testing::Emulator::connect().await?;
    let stack = emu.create_stack().await;
    let objects = Arc::new(collector::adapters::s3::S3Store::new(emu.s3(), stack.bucket.clone()));
    let hot = collector::adapters::dynamodb::DynamoStore::new(
        emu.dynamodb(),
        stack.table.clone(),
        stack.archive_table.clone(),
        objects.clone(),
        30,
    );
    Some(Backend { hot: Arc::new(hot), objects, _guard: None })
}

fn app(b: &Backend) -> App {
    let config = Config::from_lookup(|_| None).expect("default config");
    App::new(config, b.hot.clone(), b.objects.clone())
}

fn caller(sub: &str, role: Role) -> Caller {
    Caller { sub: UserId::parse(sub).expect("user id"), role }
}

fn admin() -> Caller {
    caller("root", Role::Admin)
}

/// What the test expects to be stored: id -> (owner, message).
type Expected = BTreeMap<Id, (String, String)>;

/// Old records of two users (old enough to archive), every third with feedback.
async fn seed(app: &App) -> Expected {
    let service = caller("svc", Role::Service);
    let day = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    let mut out = Expected::new();
    for (u, user) in USERS.iter().enumerate() {
        for i in 0..PER_USER {
            let created =
                day.and_hms_opt(10, 0, 0).expect("time").and_utc() + chrono::Duration::seconds((u * 100 + i) as i64);
            let message = format!("{user} #{i} {}", noise(48_000, (u * 1000 + i) as u64 + 7));
            let body = json!({"user_id": user, "platform": "n8n", "user_message": message, "ai_response": "ok",
                              "created_at": created.to_rfc3339()});
            let id = match app
                .log_interaction(&service, collector::domain::input::Parsed::interaction(body))
                .await
                .expect("log")
            {
                collector::app::IngestOutcome::Created(r) => r.interaction_id,
                other => panic!("not created: {other:?}"),
            };
            if i % 3 == 0 {
                let fb = json!({"interaction_id": id.to_string(), "feedback_type": "thumbs_up"});
                app.submit_feedback(
                    &service,
                    collector::domain::input::NewFeedback::parse(&fb).expect("feedback body"),
                )
                .await
                .expect("feedback");
            }
            out.insert(id, (user.to_string(), message));
        }
    }
    out
}

fn run_request() -> ArchiveRequest {
    ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false }
}

async fn archive(app: &App) -> Result<collector::app::ArchiveReport, AppError> {
    app.archive(&run_request(), None, None).await
}

/// The right of access: every record of `user` readable through the app, as (id, message).
async fn access(app: &App, user: &str) -> Vec<(Id, String)> {
    let mut rx = app.access_export(UserId::parse(user).expect("user"));
    let mut bytes = Vec::new();
    while let Some(chunk) = rx.recv().await {
        bytes.extend_from_slice(&chunk.expect("access export"));
    }
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).expect("jsonl");
            (v["record_type"] == "interaction").then(|| {
                let id = Id::parse(v["interaction_id"].as_str().expect("id")).expect("id");
                (id, v["user_message"].as_str().expect("message").to_owned())
            })
        })
        .collect()
}

/// What a user can see, at any moment, even right after a crash: every expected record reads
/// back whole, exactly once, and deleted ones do not; the counters agree.
async fn check_visible(app: &App, expected: &Expected, deleted: &HashSet<Id>) {
    for user in USERS {
        let mut seen: Vec<(Id, String)> = access(app, user).await;
        seen.sort();
        let mut want: Vec<(Id, String)> =
            expected.iter().filter(|(_, (u, _))| u == user).map(|(id, (_, m))| (*id, m.clone())).collect();
        want.sort();
        assert_eq!(seen.len(), want.len(), "{user}: every record exactly once");
        assert!(seen == want, "{user}: the records read back whole");
    }
    for (id, (_, message)) in expected.iter().step_by(5) {
        let rec = app.get_interaction(&admin(), *id).await.expect("readable");
        assert_eq!(&rec.user_message, message);
    }
    for id in deleted {
        assert!(matches!(app.get_interaction(&admin(), *id).await, Err(AppError::NotFound)), "deleted stays deleted");
    }
    let counters = app.hot.counters().await.expect("counters");
    let total: i64 = counters.values().map(|c| c.total).sum();
    assert_eq!(total, expected.len() as i64, "counters equal a recount");
}

/// Every line of every object in the store, by object key.
async fn object_lines(objects: &dyn ObjectStore) -> HashMap<String, Vec<Value>> {
    let mut out = HashMap::new();
    for key in objects.list("archive/").await.expect("list") {
        let gz = objects.get(&key).await.expect("get");
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text).expect("gzip");
        let lines =
            text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("line")).collect();
        out.insert(key, lines);
    }
    out
}

/// The archive objects holding a line whose message contains one of `texts`. An object deleted
/// between the listing and its read holds nothing.
async fn objects_with_lines_of(objects: &dyn ObjectStore, texts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for key in objects.list("archive/").await.expect("list") {
        let gz = match objects.get(&key).await {
            Ok(gz) => gz,
            Err(StoreError::NotFound) => continue,
            Err(e) => panic!("get {key}: {e}"),
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text).expect("gzip");
        let hit = text.lines().filter(|l| !l.trim().is_empty()).any(|l| {
            let line: Value = serde_json::from_str(l).expect("line");
            let m = line["user_message"].as_str().unwrap_or("");
            texts.iter().any(|t| m.contains(t.as_str()))
        });
        if hit {
            out.push(key);
        }
    }
    out
}

/// After a complete run: the catalog and the bytes agree exactly.
async fn check_settled(app: &App, expected: &Expected, deleted: &HashSet<Id>, deleted_text: &[String]) {
    check_visible(app, expected, deleted).await;
    let rows = app.hot.list_archive_objects(None).await.expect("rows");
    assert!(rows.iter().all(|r| r.state == ObjectState::Committed), "no pending row is left");
    assert!(app.hot.tombstoned_slots().await.expect("tombstones").is_empty(), "every tombstone was compacted");
    let lines = object_lines(app.objects.as_ref()).await;
    let row_keys: HashSet<&String> = rows.iter().map(|r| &r.object_key).collect();
    let object_keys: HashSet<&String> = lines.keys().collect();
    assert_eq!(row_keys, object_keys, "every object has a committed row and every row its object");
    let mut count: HashMap<Id, usize> = HashMap::new();
    for (key, ls) in &lines {
        let row = rows.iter().find(|r| &r.object_key == key).expect("row");
        assert_eq!(row.record_count, ls.len() as i64, "{key}: the row counts its lines");
        for l in ls {
            let id = Id::parse(l["interaction_id"].as_str().expect("id")).expect("id");
            *count.entry(id).or_default() += 1;
            for t in deleted_text {
                assert!(!l["user_message"].as_str().unwrap_or("").contains(t.as_str()), "deleted text left in {key}");
            }
        }
    }
    let mut archived = 0i64;
    for id in expected.keys() {
        let in_hot = app.hot.get_linked(*id).await.expect("get").is_some();
        let entry = app.hot.archived_entry(*id).await.expect("entry");
        let lines_of = count.get(id).copied().unwrap_or(0);
        match (in_hot, entry) {
            (true, None) => assert_eq!(lines_of, 0, "a hot record has no archive line"),
            (false, Some(_)) => {
                assert_eq!(lines_of, 1, "an archived record has exactly one line");
                archived += 1;
            }
            (hot, e) => panic!("record {id} is hot={hot} and archived={}", e.is_some()),
        }
    }
    for id in deleted {
        assert_eq!(count.get(id), None, "a deleted record is in no object");
    }
    let counters = app.hot.counters().await.expect("counters");
    assert_eq!(counters.values().map(|c| c.archived).sum::<i64>(), archived, "archived counter equals a recount");
    assert_eq!(counters.values().map(|c| c.archive_objects).sum::<i64>(), rows.len() as i64);
    assert_eq!(
        counters.values().map(|c| c.archive_bytes).sum::<i64>(),
        rows.iter().map(|r| r.compressed_bytes).sum::<i64>(),
        "archive bytes equal the rows'"
    );
}

/// Stop the first archive run at `point` (`action`: the fail crate's syntax), then rerun.
async fn crash_archive_then_rerun(b: Backend, point: &str, action: &str) {
    let app = app(&b);
    let expected = seed(&app).await;
    fail::cfg(point, action).expect("failpoint");
    let crashed = archive(&app).await;
    fail::remove(point);
    assert!(crashed.is_err(), "{point}: the run must stop there");
    check_visible(&app, &expected, &HashSet::new()).await;
    // A training export reads the cut run's pending row (its object written or not) and
    // serves every record once.
    let during = exported_messages(&app).await.expect("an export right after the crash");
    assert_eq!(during.len(), expected.len(), "{point}: every record exported once");
    let report = archive(&app).await.expect("rerun");
    assert!(report.complete);
    check_settled(&app, &expected, &HashSet::new(), &[]).await;
    assert_eq!(during, exported_messages(&app).await.expect("export after the rerun"), "{point}");
    let counters = app.hot.counters().await.expect("counters");
    assert_eq!(
        counters.values().map(|c| c.archived).sum::<i64>(),
        expected.len() as i64,
        "{point}: all archived after the rerun"
    );
}

/// Archive cleanly, delete bob, stop the compaction at `point`, then rerun.
async fn crash_compaction_then_rerun(b: Backend, point: &str) {
    let app = app(&b);
    let mut expected = seed(&app).await;
    archive(&app).await.expect("first run");
    let bob = UserId::parse("bob").expect("user");
    let deletion = app.delete_user(&bob).await.expect("delete");
    assert_eq!(deletion.deleted.archived_records, PER_USER as i64);
    assert_eq!(deletion.deleted.feedback, PER_USER.div_ceil(3) as i64, "feedback counted from the lines");
    assert!(deletion.pending_erasure_objects >= 1);
    let deleted: HashSet<Id> = expected.iter().filter(|(_, (u, _))| u == "bob").map(|(id, _)| *id).collect();
    let deleted_text: Vec<String> =
        expected.values().filter(|(u, _)| u == "bob").map(|(_, m)| m[..40].to_owned()).collect();
    expected.retain(|id, _| !deleted.contains(id));
    // Gone from every read path when the delete answers.
    assert!(access(&app, "bob").await.is_empty());
    check_visible(&app, &expected, &deleted).await;

    fail::cfg(point, "return").expect("failpoint");
    let crashed = archive(&app).await;
    fail::remove(point);
    assert!(crashed.is_err(), "{point}: the run must stop there");
    check_visible(&app, &expected, &deleted).await;
    let report = archive(&app).await.expect("rerun");
    assert!(report.complete);
    check_settled(&app, &expected, &deleted, &deleted_text).await;
}

const ARCHIVE_POINTS: [(&str, &str); 4] = [
    ("archive.after_pending_row", "return"),
    ("archive.mid_upload", "return"),
    ("archive.before_upload_finish", "return"),
    ("archive.after_upload", "return"),
];
/// DynamoDB commits in transactions of many records (three in these tests, through
/// `commit.batch_records`, so a cut falls mid-commit); SQLite commits an object in one transaction.
const DYNAMO_COMMIT_POINTS: [(&str, &str); 2] =
    [("commit.between_records", "5*off->return"), ("commit.before_flip", "return")];
/// `compact.swap_answer_lost`: the swap is written, then the run fails as if its answer had been
/// lost; the new object it points at must stay.
const COMPACTION_POINTS: [&str; 4] =
    ["compact.before_upload", "compact.before_swap", "compact.swap_answer_lost", "compact.after_swap"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_crashes_at_every_step_lose_nothing_and_duplicate_nothing() {
    let scenario = fail::FailScenario::setup();
    for (point, action) in ARCHIVE_POINTS {
        crash_archive_then_rerun(local().await, point, action).await;
    }
    for point in COMPACTION_POINTS {
        crash_compaction_then_rerun(local().await, point).await;
    }
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_crashes_at_every_step_lose_nothing_and_duplicate_nothing() {
    let scenario = fail::FailScenario::setup();
    if aws().await.is_none() {
        return;
    }
    for (point, action) in ARCHIVE_POINTS {
        crash_archive_then_rerun(aws().await.expect("emulator"), point, action).await;
    }
    fail::cfg("commit.batch_records", "return(3)").expect("failpoint");
    for (point, action) in DYNAMO_COMMIT_POINTS {
        crash_archive_then_rerun(aws().await.expect("emulator"), point, action).await;
    }
    fail::remove("commit.batch_records");
    for point in COMPACTION_POINTS {
        crash_compaction_then_rerun(aws().await.expect("emulator"), point).await;
    }
    scenario.teardown();
}

/// Two processes' runs, deletes of users whose records are being archived, and ingest, all at
/// once; then a settling run. The lease lets one run write at a time; the other answers
/// `archive_running` (or waits).
async fn everything_at_once(b: Backend) {
    let first = app(&b);
    let second = app(&b); // another process: its own in-process queue, the same store
    let mut expected = seed(&first).await;
    let service = caller("svc", Role::Service);
    let runs = {
        let (a, b2) = (first.clone(), second.clone());
        tokio::spawn(async move {
            let (plain, wait) = (run_request(), ArchiveRequest { wait: true, ..run_request() });
            let (x, y) = tokio::join!(a.archive(&plain, None, None), b2.archive(&wait, None, None));
            for r in [x, y] {
                assert!(matches!(r, Ok(_) | Err(AppError::ArchiveRunning)), "{r:?}");
            }
        })
    };
    let bob = UserId::parse("bob").expect("user");
    let deletes = {
        let s = second.clone();
        let bob = bob.clone();
        tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..4 {
                n += s.delete_user(&bob).await.expect("delete").deleted.interactions;
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            }
            n
        })
    };
    let mut fresh = Vec::new();
    for i in 0..10 {
        let message = format!("fresh {i}");
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": message, "ai_response": "ok"});
        if let collector::app::IngestOutcome::Created(r) =
            first.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("log")
        {
            fresh.push((r.interaction_id, message));
        }
    }
    runs.await.expect("runs");
    let deleted_count = deletes.await.expect("deletes");
    // Bob's records that a delete caught while they moved are gone; a last delete takes the rest.
    let last = first.delete_user(&bob).await.expect("delete");
    assert_eq!(
        deleted_count + last.deleted.interactions,
        PER_USER as i64,
        "each of bob's records deleted exactly once"
    );
    let deleted: HashSet<Id> = expected.iter().filter(|(_, (u, _))| u == "bob").map(|(id, _)| *id).collect();
    let deleted_text: Vec<String> =
        expected.values().filter(|(u, _)| u == "bob").map(|(_, m)| m[..40].to_owned()).collect();
    expected.retain(|id, _| !deleted.contains(id));
    for (id, m) in fresh {
        expected.insert(id, ("alice".into(), m));
    }
    check_visible(&first, &expected, &deleted).await;
    let settle = ArchiveRequest { wait: true, ..run_request() };
    assert!(first.archive(&settle, None, None).await.expect("settling run").complete);
    check_settled(&first, &expected, &deleted, &deleted_text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runs_deletes_and_ingest_at_once_keep_the_invariants() {
    let scenario = fail::FailScenario::setup();
    everything_at_once(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_runs_deletes_and_ingest_at_once_keep_the_invariants() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        everything_at_once(b).await;
    }
    scenario.teardown();
}

/// A request held at a failpoint while the test does something else, then let go.
struct Hold {
    point: &'static str,
    reached: Arc<std::sync::atomic::AtomicBool>,
    go: Arc<std::sync::atomic::AtomicBool>,
}

impl Hold {
    /// Whatever reaches `point` from now on waits there until [`Hold::release`].
    fn at(point: &'static str) -> Hold {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let (reached, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (r, g) = (reached.clone(), go.clone());
        fail::cfg_callback(point, move || {
            r.store(true, SeqCst);
            // Off the worker, whose queued tasks (the SDK's connections) move to another thread.
            tokio::task::block_in_place(|| {
                while !g.load(SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
        })
        .expect("failpoint");
        Hold { point, reached, go }
    }

    async fn reached(&self) {
        while !self.reached.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn release(&self) {
        self.go.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
        fail::remove(self.point);
    }
}

/// A delete of one record that read it hot while an archive run moved it before the delete's
/// write: the delete still removes it (from the archive now) and answers so, and the record is
/// unreadable at once and gone from the objects after the next run. The delete is held at that
/// point (a failpoint callback) while the whole run goes through.
async fn delete_racing_a_commit(b: Backend) {
    let app = app(&b);
    let mut expected = seed(&app).await;
    let (id, owner, text) = expected
        .iter()
        .find(|(_, (u, _))| u == "alice")
        .map(|(id, (u, m))| (*id, u.clone(), m[..40].to_owned()))
        .expect("a record of alice");
    let hold = Hold::at("delete.before_hot_delete");
    let who = caller(&owner, Role::User);
    let deleting = tokio::spawn({
        let app = app.clone();
        async move { app.delete_interaction(&who, id).await }
    });
    hold.reached().await;
    let report = archive(&app).await.expect("a run while the delete waits");
    assert_eq!(report.archived_records, expected.len() as i64, "the run moved the record being deleted");
    hold.release();
    let deletion = deleting.await.expect("delete task").expect("delete");
    drop(hold);
    assert_eq!(deletion.deleted.interactions, 1, "the delete removed the record it was asked to");
    assert_eq!(deletion.deleted.archived_records, 1, "from the archive, where the run had moved it");
    expected.remove(&id);
    let deleted = HashSet::from([id]);
    check_visible(&app, &expected, &deleted).await;
    assert!(archive(&app).await.expect("settling run").complete);
    check_settled(&app, &expected, &deleted, &[text]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_delete_racing_an_archive_commit_still_deletes() {
    let scenario = fail::FailScenario::setup();
    delete_racing_a_commit(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_delete_racing_an_archive_commit_still_deletes() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        delete_racing_a_commit(b).await;
    }
    scenario.teardown();
}

/// The user messages of an `include_archived` training export.
async fn exported_messages(app: &App) -> Result<Vec<String>, AppError> {
    use collector::app::ExportRequest;
    use collector::domain::export::ExportFilter;
    let filter = ExportFilter { include_archived: true, ..ExportFilter::default() };
    let mut rx = app.export(ExportRequest {
        platform: collector::domain::types::Platform::parse("n8n").expect("platform"),
        filter,
    });
    let mut bytes = Vec::new();
    while let Some(chunk) = rx.recv().await {
        bytes.extend_from_slice(&chunk?);
    }
    let mut out: Vec<String> = String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("jsonl")["messages"][1]["content"]
                .as_str()
                .expect("turn")
                .to_owned()
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Records whose links are large make scan pages short (2 of 5 per page here, by their bytes):
/// the right of access and the archive run page on until an empty page, so none is missed.
async fn short_pages_miss_no_record(b: Backend) {
    use collector::ports::conformance::{at, interaction};
    let app = app(&b);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut rec = interaction("alice", "n8n", at(i));
        rec.summary.link_bytes = 7 * 1024 * 1024;
        b.hot.insert_interaction(&rec).await.expect("insert");
        ids.push(rec.id);
    }
    let seen = |got: Vec<(Id, String)>| got.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(seen(access(&app, "alice").await), ids, "every hot record, oldest first");
    let report = archive(&app).await.expect("archive");
    assert_eq!((report.archived_records, report.complete), (5, true), "{report:?}");
    let mut after = seen(access(&app, "alice").await);
    after.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(after, want, "every record, archived");
}

#[tokio::test]
async fn local_short_pages_miss_no_record() {
    let scenario = fail::FailScenario::setup();
    short_pages_miss_no_record(local().await).await;
    scenario.teardown();
}

#[tokio::test]
async fn aws_short_pages_miss_no_record() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        short_pages_miss_no_record(b).await;
    }
    scenario.teardown();
}

/// An export whose records are deleted after it read them and before it records its manifest
/// is not served: 409, no manifest, nothing held (the delete could not name it). One recorded
/// before a delete is named by that delete, and forgets the user.
async fn an_export_racing_a_delete(b: Backend) {
    use collector::app::ExportRequest;
    use collector::domain::export::ExportFilter;
    use collector::domain::lineage::HeldBy;
    let app = app(&b);
    seed(&app).await;
    archive(&app).await.expect("archive");
    seed(&app).await; // hot ones too
    // A curated example gains a use only from an export that is served.
    let ex = collector::ports::conformance::example("n8n", chrono::Utc::now());
    b.hot.insert_example(&ex).await.expect("example");
    let uses = || async {
        let examples = app.hot.list_examples(None).await.expect("examples");
        examples.iter().find(|e| e.example_id == ex.example_id).map(|e| e.usage_count)
    };
    let req = || ExportRequest {
        platform: collector::domain::types::Platform::parse("n8n").expect("platform"),
        filter: ExportFilter { include_archived: true, ..ExportFilter::default() },
    };
    let run = |req: ExportRequest| {
        let app = app.clone();
        async move {
            let (mut rx, summary) = app.export_counted(req);
            while let Some(chunk) = rx.recv().await {
                chunk.expect("export");
            }
            summary.await.expect("summary")
        }
    };
    let alice = UserId::parse("alice").expect("user");
    let read = run(req()).await;
    assert!(read.lines > 0);
    let deleted = app.delete_user(&alice).await.expect("delete alice");
    assert!(deleted.affected_exports.is_empty(), "not recorded yet: {:?}", deleted.affected_exports);
    let recorded = app.record_export("root", &req(), &read).await;
    assert!(matches!(recorded, Err(AppError::Conflict(_))), "{recorded:?}");
    assert_eq!(uses().await, Some(0), "a refused export used no example");
    assert!(app.hot.list_exports(None, 10).await.expect("list").is_empty(), "its manifest is taken back");
    assert!(app.hot.exports_holding(HeldBy::User(&alice)).await.expect("held").is_empty());

    // Recorded first, then a delete: the delete names it and forgets the user.
    let bob = UserId::parse("bob").expect("user");
    let read = run(req()).await;
    let m = app.record_export("root", &req(), &read).await.expect("record").expect("a manifest");
    assert_eq!(uses().await, Some(1), "a served export used the example");
    let deleted = app.delete_user(&bob).await.expect("delete bob");
    assert_eq!(deleted.affected_exports, vec![m.export_id]);
    assert!(app.hot.exports_holding(HeldBy::User(&bob)).await.expect("held").is_empty());
}

#[tokio::test]
async fn local_an_export_racing_a_delete_is_not_served() {
    let scenario = fail::FailScenario::setup();
    an_export_racing_a_delete(local().await).await;
    scenario.teardown();
}

#[tokio::test]
async fn aws_an_export_racing_a_delete_is_not_served() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        an_export_racing_a_delete(b).await;
    }
    scenario.teardown();
}

/// An `include_archived` export that listed the objects before a compaction swapped one (and
/// deleted the old one): it reads the object's row again, so it serves the compacted object,
/// whole and without the deleted user's lines. The export is held after its listing (a
/// failpoint callback) while the compacting run goes through.
async fn export_racing_a_compaction(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    archive(&app).await.expect("first run");
    app.delete_user(&UserId::parse("bob").expect("user")).await.expect("delete");
    let hold = Hold::at("export.before_object");
    let exporting = tokio::spawn({
        let app = app.clone();
        async move { exported_messages(&app).await }
    });
    hold.reached().await;
    let report = archive(&app).await.expect("the compacting run");
    assert_eq!(report.maintenance.compacted_objects, 1, "the run compacted the object the export listed");
    hold.release();
    let raced = exporting.await.expect("export task").expect("the export does not fail");
    drop(hold);
    assert!(!raced.is_empty());
    for (user, message) in expected.values() {
        let exported = raced.binary_search(message).is_ok();
        if user == "bob" {
            assert!(!exported, "a deleted user's line is not exported");
        }
    }
    assert_eq!(raced, exported_messages(&app).await.expect("export after the run"), "the same lines as after the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_an_export_racing_a_compaction_serves_live_lines_only() {
    let scenario = fail::FailScenario::setup();
    export_racing_a_compaction(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_an_export_racing_a_compaction_serves_live_lines_only() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        export_racing_a_compaction(b).await;
    }
    scenario.teardown();
}

/// An `include_archived` export that listed the objects before an archive run moved every
/// record out of the hot store, and scans the hot store after: it reads the objects listed
/// since, so it misses no record and writes none twice. Held between its listing and its scan.
async fn export_racing_an_archive_run(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    let hold = Hold::at("export.before_hot_scan");
    let exporting = tokio::spawn({
        let app = app.clone();
        async move { exported_messages(&app).await }
    });
    hold.reached().await;
    let report = archive(&app).await.expect("a run while the export waits");
    assert_eq!(report.archived_records, expected.len() as i64, "the run moved every record");
    hold.release();
    let raced = exporting.await.expect("export task").expect("the export does not fail");
    drop(hold);
    assert_eq!(raced.len(), expected.len(), "every record exactly once");
    assert_eq!(raced, exported_messages(&app).await.expect("export after the run"), "the same lines as after the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_an_export_racing_an_archive_run_misses_no_record() {
    let scenario = fail::FailScenario::setup();
    export_racing_an_archive_run(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_an_export_racing_an_archive_run_misses_no_record() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        export_racing_an_archive_run(b).await;
    }
    scenario.teardown();
}

/// An export that listed a cut run's pending object and read its tombstones, then a rerun rolls
/// the object forward, tombstoning a record that changed meanwhile (new thumbs-down feedback: it
/// stays hot), and is cut before its compaction. The export reads the row as committed now, but
/// its tombstones are from before: it must still decide by the records' entries, so the changed
/// record's stale line (without the thumbs-down) is not exported.
async fn export_racing_a_roll_forward(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    fail::cfg("archive.after_upload", "return").expect("failpoint");
    let crashed = archive(&app).await;
    fail::remove("archive.after_upload");
    assert!(crashed.is_err());
    let (changed, (_, message)) = expected.iter().find(|(_, (u, _))| u == "alice").expect("a record of alice");
    let fb = json!({"interaction_id": changed.to_string(), "feedback_type": "thumbs_down"});
    app.submit_feedback(
        &caller("svc", Role::Service),
        collector::domain::input::NewFeedback::parse(&fb).expect("feedback body"),
    )
    .await
    .expect("feedback");
    let hold = Hold::at("export.after_tombstones");
    let exporting = tokio::spawn({
        let app = app.clone();
        async move { exported_messages(&app).await }
    });
    hold.reached().await;
    // The rerun rolls the object forward (tombstoning the changed record), then is cut before
    // its compaction would rewrite the object without that line.
    fail::cfg("compact.before_upload", "return").expect("failpoint");
    let cut = archive(&app).await;
    fail::remove("compact.before_upload");
    assert!(cut.is_err(), "cut at the compaction");
    let rows = app.hot.list_archive_objects(None).await.expect("rows");
    assert!(rows.iter().all(|r| r.state == ObjectState::Committed), "rolled forward: {rows:?}");
    hold.release();
    let raced = exporting.await.expect("export task").expect("the export does not fail");
    drop(hold);
    assert!(raced.binary_search(message).is_err(), "the changed record's stale line is not exported");
    assert_eq!(raced.len(), expected.len() - 1, "every other record once");
    assert!(archive(&app).await.expect("the settling run").complete);
    assert_eq!(raced, exported_messages(&app).await.expect("export after the run"), "the same lines as after the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_an_export_racing_a_roll_forward_serves_no_stale_line() {
    let scenario = fail::FailScenario::setup();
    export_racing_a_roll_forward(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_an_export_racing_a_roll_forward_serves_no_stale_line() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        export_racing_a_roll_forward(b).await;
    }
    scenario.teardown();
}

/// The right of access, held after it read the user's archived entries (none yet) while an
/// archive run moves every record: it reads the entries again after its hot scan, so the user
/// gets every record exactly once.
async fn access_racing_an_archive_run(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    let hold = Hold::at("access.before_hot_scan");
    let reading = tokio::spawn({
        let app = app.clone();
        async move { access(&app, "alice").await }
    });
    hold.reached().await;
    archive(&app).await.expect("a run while the access export waits");
    hold.release();
    let mut raced = reading.await.expect("access task");
    drop(hold);
    raced.sort();
    let mut want: Vec<(Id, String)> =
        expected.iter().filter(|(_, (u, _))| u == "alice").map(|(id, (_, m))| (*id, m.clone())).collect();
    want.sort();
    assert_eq!(raced.len(), want.len(), "every record exactly once");
    assert!(raced == want, "every record, read back whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_the_right_of_access_racing_an_archive_run_misses_no_record() {
    let scenario = fail::FailScenario::setup();
    access_racing_an_archive_run(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_the_right_of_access_racing_an_archive_run_misses_no_record() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        access_racing_an_archive_run(b).await;
    }
    scenario.teardown();
}

/// A run stalled before its sweep lists the objects, while another run takes the lease over and
/// writes a compaction's new object (whose row comes only at the swap). The stalled run lists
/// that object and finds no row for it; it must not delete it. It checks the lease again after
/// reading the rows, and stops there.
async fn a_stalled_sweep_spares_the_new_holders_object(b: Backend) {
    let app = app(&b);
    seed(&app).await;
    archive(&app).await.expect("first run");
    let hold = Hold::at("sweep.before_listing");
    let stalled = tokio::spawn({
        let app = app.clone();
        async move { archive(&app).await }
    });
    hold.reached().await;
    // As if the stalled run's lease had expired: another run takes it and writes an object.
    let later = chrono::Utc::now() + chrono::Duration::seconds(600);
    let lease = app
        .hot
        .acquire_lease("the other run", later, collector::app::LEASE_TTL)
        .await
        .expect("acquire")
        .expect("the lease is taken over");
    let platform = collector::domain::types::Platform::parse("n8n").expect("platform");
    let day = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    let key = collector::domain::archive::object_key(&platform, day, "run-other", 0);
    app.objects
        .put(&key, b"not yet swapped in".to_vec(), collector::domain::archive::StorageClass::StandardIa)
        .await
        .expect("put");
    hold.release();
    let result = stalled.await.expect("run task");
    drop(hold);
    assert!(matches!(result, Err(AppError::ArchiveRunning)), "the stalled run stops: {result:?}");
    assert!(app.objects.list("archive/").await.expect("list").contains(&key), "the new holder's object is still there");
    app.hot.release_lease(&lease).await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_stalled_sweep_spares_the_new_holders_object() {
    let scenario = fail::FailScenario::setup();
    a_stalled_sweep_spares_the_new_holders_object(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_stalled_sweep_spares_the_new_holders_object() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        a_stalled_sweep_spares_the_new_holders_object(b).await;
    }
    scenario.teardown();
}

/// `collector serve` erases deleted archived lines by itself: its housekeeping task looks for
/// tombstones every `HOUSEKEEPING_EVERY` (30 s, so within a minute of a delete); here with a
/// 200 ms period, so the test takes a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_erases_deleted_lines_by_itself() {
    let scenario = fail::FailScenario::setup();
    assert!(collector::app::HOUSEKEEPING_EVERY <= std::time::Duration::from_secs(30));
    let b = local().await;
    let app = app(&b);
    let expected = seed(&app).await;
    archive(&app).await.expect("archive run");
    let period = std::time::Duration::from_millis(200);
    let housekeeping = tokio::spawn(app.clone().housekeeping_every(period));
    tokio::time::sleep(period * 2).await;
    let deletion = app.delete_user(&UserId::parse("bob").expect("user")).await.expect("delete");
    assert!(deletion.pending_erasure_objects >= 1);
    let deleted_at = std::time::Instant::now();
    let bob_text: Vec<String> =
        expected.values().filter(|(u, _)| u == "bob").map(|(_, m)| m[..40].to_owned()).collect();
    // A compaction swaps the rows and clears the tombstones in one transaction, then deletes the
    // old object: wait for both. The task keeps running meanwhile, so an object listed here may
    // be gone when it is read (it was being deleted); that one holds no line any more.
    loop {
        let tombstoned = app.hot.tombstoned_slots().await.expect("tombstones");
        let left = objects_with_lines_of(app.objects.as_ref(), &bob_text).await;
        if tombstoned.is_empty() && left.is_empty() {
            break;
        }
        assert!(
            deleted_at.elapsed() < period * 50,
            "not erased by the housekeeping task: tombstones in {tombstoned:?}, bob's lines in {left:?}"
        );
        tokio::time::sleep(period / 2).await;
    }
    housekeeping.abort();
    scenario.teardown();
}

/// A user's delete whose first hot pass missed a record (on DynamoDB the pass lists records
/// from an index that lags writes by a moment; here the record is logged while the delete is
/// held just after that pass, which is what a lagging index looks like to it) still removes
/// it: the answer counts it and it is unreadable afterwards, on every read path.
async fn user_delete_missing_a_record_in_its_first_pass(b: Backend) {
    let app = app(&b);
    let mut expected = seed(&app).await;
    assert!(archive(&app).await.expect("run").complete);
    let hold = Hold::at("delete_user.after_hot_pass");
    let deleting = tokio::spawn({
        let app = app.clone();
        async move { app.delete_user(&UserId::parse("alice").expect("user")).await }
    });
    hold.reached().await;
    let body = json!({"user_id": "alice", "platform": "n8n", "user_message": "logged as her delete ran"});
    let late = match app
        .log_interaction(&caller("svc", Role::Service), collector::domain::input::Parsed::interaction(body))
        .await
        .expect("log")
    {
        collector::app::IngestOutcome::Created(r) => r.interaction_id,
        other => panic!("not created: {other:?}"),
    };
    hold.release();
    let deletion = deleting.await.expect("delete task").expect("delete");
    drop(hold);
    let of_alice: HashSet<Id> = expected.iter().filter(|(_, (u, _))| u == "alice").map(|(id, _)| *id).collect();
    assert_eq!(deletion.deleted.interactions, of_alice.len() as i64 + 1, "the archived records and the late one");
    assert!(matches!(app.get_interaction(&admin(), late).await, Err(AppError::NotFound)), "the late record is gone");
    assert!(access(&app, "alice").await.is_empty(), "nothing of alice is readable");
    expected.retain(|id, _| !of_alice.contains(id));
    let mut deleted = of_alice;
    deleted.insert(late);
    check_visible(&app, &expected, &deleted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_user_delete_removes_a_record_its_first_pass_missed() {
    let scenario = fail::FailScenario::setup();
    user_delete_missing_a_record_in_its_first_pass(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_user_delete_removes_a_record_its_first_pass_missed() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        user_delete_missing_a_record_in_its_first_pass(b).await;
    }
    scenario.teardown();
}

/// DynamoDB: an archive commit cut right after one of its transactions, before the overflow
/// objects of the records it stubbed are deleted, leaves none of them behind once a run has
/// gone through. Three old records overflow their items (a 1 MiB workflow each), one of them
/// also through an edit's 1 MiB correction (a link). Before, nothing pointed at those objects
/// after the transaction, and a cut left them for good, with a user's data in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_commit_cut_after_its_transaction_leaves_no_overflow_object() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        let app = app(&b);
        let service = caller("svc", Role::Service);
        let created = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
        let mut expected = Expected::new();
        for i in 0..3u64 {
            let message = format!("large #{i}");
            let body = json!({"user_id": "alice", "platform": "n8n", "user_message": message, "created_at": created,
                              "kind": "workflow_generation", "workflow": {"nodes": [], "blob": noise(1 << 20, 40 + i)}});
            let id = match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await {
                Ok(collector::app::IngestOutcome::Created(r)) => r.interaction_id,
                other => panic!("not created: {other:?}"),
            };
            if i == 0 {
                let fb = json!({"interaction_id": id.to_string(), "feedback_type": "edit",
                                "corrected_workflow": {"nodes": [], "blob": noise(1 << 20, 50)}});
                let fb = collector::domain::input::NewFeedback::parse(&fb).expect("feedback body");
                app.submit_feedback(&service, fb).await.expect("feedback");
            }
            expected.insert(id, ("alice".to_owned(), message));
        }
        let before = b.objects.list("overflow/").await.expect("list");
        assert_eq!(before.len(), 4, "three heads and one link overflow: {before:?}");
        fail::cfg("commit.after_transaction", "1*return").expect("failpoint");
        assert!(archive(&app).await.is_err(), "the run is cut after its first transaction");
        fail::remove("commit.after_transaction");
        assert!(archive(&app).await.expect("rerun").complete);
        assert!(archive(&app).await.expect("next run").complete);
        let left = b.objects.list("overflow/").await.expect("list");
        assert!(left.is_empty(), "overflow objects of archived records left: {left:?}");
        for (id, (_, message)) in &expected {
            let rec = app.get_interaction(&admin(), *id).await.expect("archived record readable");
            assert_eq!(&rec.user_message, message);
            assert!(rec.archived);
        }
    }
    scenario.teardown();
}

/// An archive object that cannot be read (here: gone from storage) does not stop the erasure
/// of the others, nor archiving: the run compacts every other object with deleted lines,
/// reports the one it could not (`failed_compactions`), and keeps its tombstones, so its
/// deleted record stays unreadable and the next run tries again.
async fn an_unreadable_object_does_not_block_erasure(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    assert!(archive(&app).await.expect("first run").complete);
    let first: Vec<String> =
        b.hot.list_archive_objects(None).await.expect("rows").into_iter().map(|o| o.object_key).collect();
    assert_eq!(first.len(), 1, "one day, one platform");
    let service = caller("svc", Role::Service);
    let created = (chrono::Utc::now() - chrono::Duration::days(41)).to_rfc3339();
    let mut later = Vec::new();
    for i in 0..3 {
        let message = format!("another day #{i} {}", noise(2_000, 90 + i as u64));
        let body = json!({"user_id": "bob", "platform": "n8n", "user_message": message, "created_at": created});
        match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await {
            Ok(collector::app::IngestOutcome::Created(r)) => later.push((r.interaction_id, message)),
            other => panic!("not created: {other:?}"),
        }
    }
    assert!(archive(&app).await.expect("second run").complete);
    let second: Vec<String> = b
        .hot
        .list_archive_objects(None)
        .await
        .expect("rows")
        .into_iter()
        .map(|o| o.object_key)
        .filter(|k| !first.contains(k))
        .collect();
    assert_eq!(second.len(), 1, "the other day's object");
    b.objects.delete(&first[0]).await.expect("the first object goes missing");
    let (gone_in_first, _) = expected.iter().next().expect("a record");
    let (gone_in_second, gone_text) = later[0].clone();
    for id in [*gone_in_first, gone_in_second] {
        let d = app.delete_interaction(&admin(), id).await.expect("delete");
        assert_eq!(d.deleted.archived_records, 1);
    }
    let report = archive(&app).await.expect("a run with one unreadable object");
    assert!(report.complete);
    assert_eq!(report.maintenance.failed_compactions, 1, "{:?}", report.maintenance);
    assert_eq!(report.maintenance.compacted_objects, 1, "the readable object was compacted");
    assert_eq!(report.maintenance.erased_lines, 1);
    let still = objects_with_lines_of(b.objects.as_ref(), &[gone_text[..40].to_owned()]).await;
    assert!(still.is_empty(), "the deleted line is gone from the readable object: {still:?}");
    for id in [*gone_in_first, gone_in_second] {
        assert!(matches!(app.get_interaction(&admin(), id).await, Err(AppError::NotFound)), "stays deleted");
    }
    let again = archive(&app).await.expect("next run");
    assert_eq!(again.maintenance.failed_compactions, 1, "its tombstones stay and it is tried again");
}

#[tokio::test]
async fn local_an_unreadable_object_does_not_block_erasure() {
    let scenario = fail::FailScenario::setup();
    an_unreadable_object_does_not_block_erasure(local().await).await;
    scenario.teardown();
}

#[tokio::test]
async fn aws_an_unreadable_object_does_not_block_erasure() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        an_unreadable_object_does_not_block_erasure(b).await;
    }
    scenario.teardown();
}

/// A run with a deadline (on Lambda: the function's time left) ends each object once its
/// commit could no longer end by the deadline at the rate the run counts on (500 records a
/// second): with a second left, no object takes more than 500 records, where one object took
/// all 1,200 and its commit ran past the function's timeout. Nothing is lost, and a run without
/// a deadline carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_run_with_a_deadline_sizes_its_objects_to_commit_in_time() {
    let scenario = fail::FailScenario::setup();
    let b = local().await;
    let app = app(&b);
    let service = caller("svc", Role::Service);
    let created = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    for i in 0..1200 {
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": format!("small #{i}"), "created_at": created});
        app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("log");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    let report = app.archive(&run_request(), Some(deadline), None).await.expect("run with a deadline");
    assert!(!report.archives.is_empty(), "it archived something");
    for o in &report.archives {
        assert!(o.record_count <= 500, "an object of {} records cannot commit in the second left", o.record_count);
    }
    let rest = archive(&app).await.expect("run without a deadline");
    assert!(rest.complete);
    let archived: i64 = report.archived_records + rest.archived_records;
    assert_eq!(archived, 1200, "every record archived once");
    let counters = app.hot.counters().await.expect("counters");
    assert_eq!(counters.values().map(|c| c.total).sum::<i64>(), 1200);
    scenario.teardown();
}

/// DynamoDB: a feedback that comes in between the archive scan's read of a record's head and
/// its read of the links does not give the archived line a feedback summary that disagrees
/// with its own feedback (the commit moves it: the links it holds are the partition's). The
/// scan reads the partition again until head and links agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_feedback_during_the_scan_leaves_the_archived_summary_true() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        let app = app(&b);
        let service = caller("svc", Role::Service);
        let created = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": "rated twice", "created_at": created});
        let id = match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await {
            Ok(collector::app::IngestOutcome::Created(r)) => r.interaction_id,
            other => panic!("not created: {other:?}"),
        };
        let feedback = |kind: &str| {
            let fb = json!({"interaction_id": id.to_string(), "feedback_type": kind});
            collector::domain::input::NewFeedback::parse(&fb).expect("feedback body")
        };
        app.submit_feedback(&service, feedback("thumbs_up")).await.expect("first feedback");
        let hold = Hold::at("scan.before_links");
        let running = tokio::spawn({
            let app = app.clone();
            async move { archive(&app).await }
        });
        hold.reached().await;
        app.submit_feedback(&service, feedback("thumbs_down")).await.expect("feedback during the scan");
        hold.release();
        let report = running.await.expect("run task").expect("run");
        drop(hold);
        assert_eq!(report.archived_records, 1);
        let rec = app.get_interaction(&admin(), id).await.expect("archived record");
        assert!(rec.archived);
        assert_eq!(rec.feedback.len(), 2, "both feedbacks are in the line");
        assert_eq!((rec.positive_feedback, rec.negative_feedback), (1, 1), "and the summary counts both");
        assert_eq!(rec.last_feedback_type.map(|t| t.as_str()), Some("thumbs_down"));
    }
    scenario.teardown();
}

/// The folder store, recording which keys a run made durable, and what the hot store held of
/// the seed when it did.
struct RecordingFolder {
    inner: collector::adapters::fs::FolderStore,
    hot: Arc<dyn HotStore>,
    durable: std::sync::Mutex<Vec<(String, i64)>>,
}

#[async_trait::async_trait]
impl ObjectStore for RecordingFolder {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        class: collector::domain::archive::StorageClass,
    ) -> Result<(), StoreError> {
        self.inner.put(key, bytes, class).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn writer(
        &self,
        key: &str,
        class: collector::domain::archive::ClassPolicy,
    ) -> Result<Box<dyn collector::ports::ObjectWriter>, StoreError> {
        self.inner.writer(key, class).await
    }
    async fn reader(&self, key: &str) -> Result<collector::ports::ObjectStream, StoreError> {
        self.inner.reader(key).await
    }
    async fn presigned_get(&self, key: &str, expires: std::time::Duration) -> Result<Option<String>, StoreError> {
        self.inner.presigned_get(key, expires).await
    }
    async fn remove_abandoned_writes(&self, prefix: &str, older_than: std::time::Duration) -> Result<u64, StoreError> {
        self.inner.remove_abandoned_writes(prefix, older_than).await
    }
    async fn make_durable(&self, key: &str) -> Result<(), StoreError> {
        let hot: i64 = self.hot.counters().await?.values().map(|c| c.total - c.archived).sum();
        self.durable.lock().expect("durable").push((key.to_owned(), hot));
        self.inner.make_durable(key).await
    }
}

/// A run that died after its object became visible (its writer may have died before making it
/// durable: a folder's file renamed into place before its directories were synced) is rolled
/// forward only after the object is made durable: the records leave the hot store after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_roll_forward_makes_the_object_durable_before_the_records_leave() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let hot: Arc<dyn HotStore> =
        Arc::new(collector::adapters::sqlite::SqliteStore::open(&dir.path().join("hot.db")).expect("sqlite"));
    let objects = Arc::new(RecordingFolder {
        inner: collector::adapters::fs::FolderStore::new(dir.path().join("objects")),
        hot: hot.clone(),
        durable: std::sync::Mutex::new(Vec::new()),
    });
    let b = Backend { hot: hot.clone(), objects: objects.clone(), _guard: None };
    let app = app(&b);
    let expected = seed(&app).await;
    fail::cfg("archive.after_upload", "return").expect("failpoint");
    assert!(archive(&app).await.is_err(), "the run dies after its upload");
    fail::remove("archive.after_upload");
    let pending: Vec<String> = hot
        .list_archive_objects(None)
        .await
        .expect("rows")
        .into_iter()
        .filter(|o| o.state == ObjectState::Pending)
        .map(|o| o.object_key)
        .collect();
    assert_eq!(pending.len(), 1);
    objects.durable.lock().expect("durable").clear();
    assert!(archive(&app).await.expect("rerun").complete);
    let durable = objects.durable.lock().expect("durable").clone();
    assert_eq!(durable, vec![(pending[0].clone(), expected.len() as i64)], "made durable while its records were hot");
    check_visible(&app, &expected, &HashSet::new()).await;
    scenario.teardown();
}

/// A run that died left a pending object (written, records still hot) and a staging file
/// (a writer that never finished). `collector serve`'s housekeeping settles both within a tick
/// or two, without a delete to trigger it and without waiting for the staging file to age:
/// their bytes can hold records deleted since, which would otherwise stay there until the
/// next daily run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_settles_what_a_dead_run_left_by_itself() {
    let scenario = fail::FailScenario::setup();
    let b = local().await;
    let objects_dir = b._guard.as_ref().expect("temp dir").path().join("objects");
    let app = app(&b);
    let expected = seed(&app).await;
    fail::cfg("archive.after_upload", "return").expect("failpoint");
    assert!(archive(&app).await.is_err(), "the run dies after its upload");
    fail::remove("archive.after_upload");
    let key = "archive/platform=n8n/date=2026-01-05/dead-run-0.jsonl.gz";
    let mut w = b.objects.writer(key, collector::domain::archive::ClassPolicy::BySize).await.expect("writer");
    w.write(bytes::Bytes::from(vec![b'x'; 300 * 1024])).await.expect("write");
    std::mem::forget(w);
    let staging = || {
        let mut out = Vec::new();
        let mut dirs = vec![objects_dir.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else if e.file_name().to_string_lossy().starts_with('.') {
                    out.push(e.path());
                }
            }
        }
        out
    };
    assert_eq!(staging().len(), 1, "the dead writer's staging file");
    let period = std::time::Duration::from_millis(200);
    let housekeeping = tokio::spawn(app.clone().housekeeping_every(period));
    let started = std::time::Instant::now();
    loop {
        let pending =
            app.hot.list_archive_objects(None).await.expect("rows").iter().any(|o| o.state == ObjectState::Pending);
        if !pending && staging().is_empty() {
            break;
        }
        assert!(started.elapsed() < period * 50, "pending row: {pending}, staging files: {:?}", staging());
        tokio::time::sleep(period / 2).await;
    }
    housekeeping.abort();
    check_visible(&app, &expected, &HashSet::new()).await;
    let counters = app.hot.counters().await.expect("counters");
    assert_eq!(counters.values().map(|c| c.archived).sum::<i64>(), expected.len() as i64, "rolled forward");
    scenario.teardown();
}

/// A long run erases what is deleted while it runs: between its objects it compacts the
/// objects that gained tombstones (at most every `HOUSEKEEPING_EVERY`; here every time,
/// through the failpoint `archive.compact_every`), so a delete is erased within a minute even
/// while a run holds the lease that `collector serve`'s own compaction waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_long_run_erases_what_is_deleted_while_it_runs() {
    let scenario = fail::FailScenario::setup();
    let b = local().await;
    let app = app(&b);
    let service = caller("svc", Role::Service);
    // Two days: the older one's object is committed first.
    let mut first_day = Vec::new();
    for (days, n) in [(41, 3), (40, 3)] {
        let created = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
        for i in 0..n {
            let message = format!("day -{days} #{i} {}", noise(1_000, (days * 10 + i) as u64));
            let body = json!({"user_id": "alice", "platform": "n8n", "user_message": message, "created_at": created});
            match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await {
                Ok(collector::app::IngestOutcome::Created(r)) if days == 41 => {
                    first_day.push((r.interaction_id, message))
                }
                Ok(collector::app::IngestOutcome::Created(_)) => {}
                other => panic!("not created: {other:?}"),
            }
        }
    }
    fail::cfg("archive.compact_every", "return(0)").expect("failpoint");
    let hold = Hold::at("archive.between_objects");
    let running = tokio::spawn({
        let app = app.clone();
        async move { archive(&app).await }
    });
    hold.reached().await;
    let (gone, gone_text) = first_day[0].clone();
    let d = app.delete_interaction(&admin(), gone).await.expect("delete during the run");
    assert_eq!(d.deleted.archived_records, 1, "the first day's object is committed");
    hold.release();
    let report = running.await.expect("run task").expect("run");
    drop(hold);
    fail::remove("archive.compact_every");
    assert_eq!(report.archived_records, 6);
    assert_eq!(report.maintenance.compacted_objects, 1, "{:?}", report.maintenance);
    assert_eq!(report.maintenance.erased_lines, 1);
    let left = objects_with_lines_of(b.objects.as_ref(), &[gone_text[..30].to_owned()]).await;
    assert!(left.is_empty(), "erased by the run it was deleted during: {left:?}");
    assert!(app.hot.tombstoned_slots().await.expect("tombstones").is_empty());
    scenario.teardown();
}

/// A DynamoDB store and its bucket on a fresh emulator stack, with the overflow grace given
/// (`None`: the default).
async fn dynamo_with_grace(
    grace: Option<std::time::Duration>,
) -> Option<(collector::adapters::dynamodb::DynamoStore, Arc<collector::adapters::s3::S3Store>)> {
    let emu = collector::testing::Emulator::connect().await?;
    let stack = emu.create_stack().await;
    let objects = Arc::new(collector::adapters::s3::S3Store::new(emu.s3(), stack.bucket.clone()));
    let store = collector::adapters::dynamodb::DynamoStore::new(
        emu.dynamodb(),
        stack.table,
        stack.archive_table,
        objects.clone(),
        30,
    );
    Some((grace.map_or(store.clone(), |g| store.with_overflow_grace(g)), objects))
}

/// A record whose item is too big for DynamoDB: its message goes to an overflow object.
fn overflowing(seed: u64) -> collector::domain::records::Interaction {
    let mut rec = collector::ports::conformance::interaction("alice", "n8n", chrono::Utc::now());
    rec.user_message = noise(450 * 1024, seed);
    rec
}

/// A writer that dies between its overflow upload and its item's transaction leaves an object
/// no item points at. Its note keeps it while the writer may still be at work, and the
/// maintenance erases it once the note is due: a payload nobody stored is not kept for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_an_overflow_write_cut_after_its_upload_is_erased_when_due() {
    let scenario = fail::FailScenario::setup();
    let Some((store, objects)) = dynamo_with_grace(None).await else { return };
    let rec = overflowing(31);
    let prefix = format!("overflow/{}/", rec.id);
    fail::cfg("overflow.after_upload", "1*return").expect("failpoint");
    assert!(store.insert_interaction(&rec).await.is_err(), "cut after the upload");
    fail::remove("overflow.after_upload");
    assert_eq!(objects.list(&prefix).await.expect("list").len(), 1, "the upload is there");
    assert_eq!(store.get_linked(rec.id).await.expect("get"), None, "no item");

    store.finish_payload_erasures().await.expect("maintenance");
    assert_eq!(objects.list(&prefix).await.expect("list").len(), 1, "kept while its writer may be at work");
    let later = store.clone().with_overflow_grace(std::time::Duration::ZERO);
    assert_eq!(later.finish_payload_erasures().await.expect("maintenance"), 1);
    assert!(objects.list(&prefix).await.expect("list").is_empty(), "erased once due");

    // The client's retry stores the record whole.
    assert_eq!(store.insert_interaction(&rec).await.expect("retry"), collector::ports::Inserted::New);
    let got = store.get_linked(rec.id).await.expect("get").expect("hot");
    assert_eq!(got.interaction.user_message, rec.user_message);
    assert_eq!(later.finish_payload_erasures().await.expect("maintenance"), 0);
    assert_eq!(objects.list(&prefix).await.expect("list").len(), 1, "the stored record's object stays");
    scenario.teardown();
}

/// A writer held past its note's due time, while the maintenance erases its object as a dead
/// writer's: its transaction's claim fails, so it never stores an item pointing at the erased
/// object; it writes the payload again and the record reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_late_overflow_writer_stores_nothing_pointing_at_an_erased_object() {
    let scenario = fail::FailScenario::setup();
    let Some((store, objects)) = dynamo_with_grace(Some(std::time::Duration::ZERO)).await else { return };
    let rec = overflowing(32);
    let prefix = format!("overflow/{}/", rec.id);
    let hold = Hold::at("overflow.after_upload");
    let writing = tokio::spawn({
        let (store, rec) = (store.clone(), rec.clone());
        async move { store.insert_interaction(&rec).await }
    });
    hold.reached().await;
    let first = objects.list(&prefix).await.expect("list");
    assert_eq!(first.len(), 1);
    assert_eq!(store.finish_payload_erasures().await.expect("maintenance"), 1, "taken as a dead writer's");
    assert!(objects.list(&prefix).await.expect("list").is_empty());
    hold.release();
    assert_eq!(writing.await.expect("task").expect("insert"), collector::ports::Inserted::New);
    drop(hold);
    let got = store.get_linked(rec.id).await.expect("readable").expect("hot");
    assert_eq!(got.interaction.user_message, rec.user_message, "whole");
    let now = objects.list(&prefix).await.expect("list");
    assert_eq!(now.len(), 1, "written again");
    assert_ne!(now, first);
    scenario.teardown();
}

/// An export recorded as holding every expected record; returns its id.
async fn export_holding(app: &App, expected: &Expected) -> Id {
    use collector::domain::export::ExportFilter;
    use collector::domain::lineage::{ExportManifest, HeldRecords, ManifestFilters, ManifestSplit};
    let mut held = HeldRecords::default();
    for (id, (user, _)) in expected {
        held.add(&UserId::parse(user).expect("user"), *id);
    }
    let filter = ExportFilter::default();
    let manifest = ExportManifest {
        export_id: Id::new(),
        created_at: chrono::Utc::now(),
        caller: "root".into(),
        platform: collector::domain::types::Platform::parse("n8n").expect("platform"),
        format: "openai".into(),
        filters: ManifestFilters::of(&filter),
        split: ManifestSplit::of(&filter),
        lines: expected.len() as u64,
        sha256: "0".repeat(64),
        bytes: 1,
    };
    app.hot.record_export(&manifest, &held).await.expect("record export");
    manifest.export_id
}

/// A store error in a delete's last steps (after the data is gone: the exports that held it
/// are looked up, then forget it) is retried, so the delete still answers whole and no export
/// keeps a held record of it; a client's retry could not do that for a single record (it is
/// gone: 404). Failpoint `delete.settle_lineage`: the forget goes through and its answer fails,
/// twice; the answer still names the export (looked up once, before the forget).
async fn delete_whose_lineage_step_fails(b: Backend) {
    let app = app(&b);
    let expected = seed(&app).await;
    let export = export_holding(&app, &expected).await;
    let (id, owner) =
        expected.iter().find(|(_, (u, _))| u == "alice").map(|(id, (u, _))| (*id, u.clone())).expect("one");
    let owner = UserId::parse(&owner).expect("user");
    let held = |by| {
        let app = app.clone();
        async move { app.hot.exports_holding(by).await.expect("held") }
    };
    assert_eq!(held(collector::domain::lineage::HeldBy::Record { id, user: &owner }).await.len(), 1);

    fail::cfg("delete.settle_lineage", "2*return").expect("failpoint");
    let deletion = app.delete_interaction(&caller("alice", Role::User), id).await;
    let deletion = deletion.expect("the delete answers whole");
    assert_eq!(deletion.deleted.interactions, 1);
    assert_eq!(deletion.affected_exports, vec![export]);
    assert!(held(collector::domain::lineage::HeldBy::Record { id, user: &owner }).await.is_empty(), "forgotten");

    let bob = UserId::parse("bob").expect("user");
    fail::cfg("delete.settle_lineage", "2*return").expect("failpoint");
    let deletion = app.delete_user(&bob).await.expect("the user's delete answers whole");
    fail::remove("delete.settle_lineage");
    assert_eq!(deletion.deleted.interactions, PER_USER as i64);
    assert_eq!(deletion.affected_exports, vec![export]);
    assert!(held(collector::domain::lineage::HeldBy::User(&bob)).await.is_empty(), "bob's held records forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_delete_whose_lineage_step_fails_still_forgets_the_held_records() {
    let scenario = fail::FailScenario::setup();
    delete_whose_lineage_step_fails(local().await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_delete_whose_lineage_step_fails_still_forgets_the_held_records() {
    let scenario = fail::FailScenario::setup();
    if let Some(b) = aws().await {
        delete_whose_lineage_step_fails(b).await;
    }
    scenario.teardown();
}

/// A transaction that went through but whose answer was lost, run again (failpoint
/// `transact.answer_lost`; DynamoDB itself answers such a resend from its request token, the
/// emulator runs it again): the second run fails on the item being there and on its overflow
/// claim, and the writer keeps the object its stored item points at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_resent_insert_keeps_the_overflow_object_it_stored() {
    let scenario = fail::FailScenario::setup();
    let Some((store, objects)) = dynamo_with_grace(None).await else { return };
    let rec = overflowing(33);
    fail::cfg("transact.answer_lost", "1*return").expect("failpoint");
    let answer = store.insert_interaction(&rec).await.expect("insert");
    fail::remove("transact.answer_lost");
    assert!(matches!(answer, collector::ports::Inserted::Existing { .. }), "{answer:?}");
    let got = store.get_linked(rec.id).await.expect("readable").expect("hot");
    assert_eq!(got.interaction.user_message, rec.user_message, "whole");
    assert_eq!(objects.list(&format!("overflow/{}/", rec.id)).await.expect("list").len(), 1);
    scenario.teardown();
}

/// A user's read of someone else's record is answered from its owner alone: 404, as for an
/// unknown id, even when the record's overflow payload cannot be read (which fails an owner's
/// or an admin's read with 5xx). Before, the whole record was loaded first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_someone_elses_record_is_404_without_being_read() {
    let scenario = fail::FailScenario::setup();
    let Some(b) = aws().await else { return };
    let app = app(&b);
    let body = json!({"user_id": "bob", "platform": "n8n", "user_message": noise(450 * 1024, 41), "ai_response": "ok"});
    let id = match app
        .log_interaction(&caller("svc", Role::Service), collector::domain::input::Parsed::interaction(body))
        .await
    {
        Ok(collector::app::IngestOutcome::Created(r)) => r.interaction_id,
        other => panic!("not created: {other:?}"),
    };
    let spilled = b.objects.list(&format!("overflow/{id}/")).await.expect("list");
    assert_eq!(spilled.len(), 1, "the message went to an overflow object");
    let damaged = b"not a payload".to_vec();
    b.objects.put(&spilled[0], damaged, collector::domain::archive::StorageClass::Standard).await.expect("damage");
    let admin_read = app.get_interaction(&admin(), id).await;
    assert!(matches!(admin_read, Err(AppError::Store(StoreError::Internal(_)))), "unreadable: {admin_read:?}");
    let alice = app.get_interaction(&caller("alice", Role::User), id).await;
    assert!(matches!(alice, Err(AppError::NotFound)), "{alice:?}");
    scenario.teardown();
}
