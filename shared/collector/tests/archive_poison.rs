//! A poisoned archive object (an unreadable line among good ones, or a corrupt gzip tail), on
//! both backends (SQLite + folder, and DynamoDB + S3 on the emulator): the object is written by
//! a real archive run, then its bytes are replaced with a damaged version. Every reader passes
//! over what it cannot read, counts it and serves the rest: exports (`include_archived`), the
//! right of access, reads by id, deletes; compaction copies an unreadable line byte for byte
//! unless its id is found and deleted (docs/DESIGN.md, "Archive reading").

use std::io::{Read, Write};
use std::sync::Arc;

use collector::app::{App, AppError, ExportRequest};
use collector::config::Config;
use collector::domain::archive::StorageClass;
use collector::domain::export::ExportFilter;
use collector::domain::input::ArchiveRequest;
use collector::domain::types::{Caller, Id, Platform, Role, UserId};
use collector::ports::conformance::noise;
use collector::ports::{HotStore, ObjectStore};
use serde_json::{Value, json};

const PER_USER: usize = 4;

struct Backend {
    hot: Arc<dyn HotStore>,
    objects: Arc<dyn ObjectStore>,
    _guard: Option<tempfile::TempDir>,
}

fn local() -> Backend {
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
    App::new(Config::from_lookup(|_| None).expect("default config"), b.hot.clone(), b.objects.clone())
}

fn caller(sub: &str, role: Role) -> Caller {
    Caller { sub: UserId::parse(sub).expect("user id"), role }
}

fn admin() -> Caller {
    caller("root", Role::Admin)
}

#[derive(Debug, Clone)]
struct Rec {
    id: Id,
    user: &'static str,
    message: String,
}

/// Old records of alice then bob on one day (one object), every other one with feedback.
async fn seed(app: &App) -> Vec<Rec> {
    let service = caller("svc", Role::Service);
    let day = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    let mut out = Vec::new();
    for (u, user) in ["alice", "bob"].into_iter().enumerate() {
        for i in 0..PER_USER {
            let created =
                day.and_hms_opt(10, 0, 0).expect("time").and_utc() + chrono::Duration::seconds((u * 100 + i) as i64);
            let message = format!("{user} #{i} {}", noise(300, (u * 1000 + i) as u64 + 11));
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
            if i % 2 == 0 {
                let fb = json!({"interaction_id": id.to_string(), "feedback_type": "thumbs_up"});
                app.submit_feedback(
                    &service,
                    collector::domain::input::NewFeedback::parse(&fb).expect("feedback body"),
                )
                .await
                .expect("feedback");
            }
            out.push(Rec { id, user, message });
        }
    }
    out
}

async fn archive(app: &App) -> collector::app::ArchiveReport {
    let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
    let report = app.archive(&req, None, None).await.expect("archive run");
    assert!(report.complete);
    report
}

/// The one archive object's key.
async fn the_object(app: &App) -> String {
    let rows = app.hot.list_archive_objects(None).await.expect("rows");
    assert_eq!(rows.len(), 1, "one platform, one day: one object");
    rows[0].object_key.clone()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).expect("gzip");
    raw
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(raw).expect("gzip");
    gz.finish().expect("gzip")
}

/// The object's lines as stored (a valid gzip stream expected).
async fn raw_lines(app: &App, key: &str) -> Vec<Vec<u8>> {
    let raw = gunzip(&app.objects.get(key).await.expect("get"));
    raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn line_id(line: &[u8]) -> Option<Id> {
    let v: Value = serde_json::from_slice(line).ok()?;
    Id::parse(v["interaction_id"].as_str()?).ok()
}

/// Replace the line of `id` with one nested past serde_json's recursion limit (its id still
/// first, as every line has it); returns the bad line.
async fn poison(app: &App, key: &str, id: Id) -> Vec<u8> {
    let mut bad = Vec::new();
    let mut raw = Vec::new();
    for line in raw_lines(app, key).await {
        let line = if line_id(&line) == Some(id) {
            let text = String::from_utf8(line).expect("utf-8");
            let deep =
                text.replace("\"workflow\":null", &format!("\"workflow\":{}{}", "[".repeat(200), "]".repeat(200)));
            assert_ne!(deep, text, "the workflow was replaced");
            bad = deep.into_bytes();
            bad.clone()
        } else {
            line
        };
        raw.extend(line);
        raw.push(b'\n');
    }
    assert!(!bad.is_empty(), "the record's line was found");
    app.objects.put(key, gzip(&raw), StorageClass::Standard).await.expect("put");
    bad
}

/// The user messages an `include_archived` export holds, and its skipped-line count.
async fn export(app: &App) -> (Vec<String>, u64) {
    let filter = ExportFilter { include_archived: true, ..ExportFilter::default() };
    let (mut rx, summary) =
        app.export_counted(ExportRequest { platform: Platform::parse("n8n").expect("platform"), filter });
    let mut bytes = Vec::new();
    while let Some(chunk) = rx.recv().await {
        bytes.extend_from_slice(&chunk.expect("the export does not fail"));
    }
    let summary = summary.await.expect("summary");
    let mut users: Vec<String> = String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("jsonl");
            v["messages"][1]["content"].as_str().expect("user turn").to_owned()
        })
        .collect();
    users.sort();
    (users, summary.archive_skipped_lines)
}

/// A user's archived and hot records through the right of access, and its skipped count.
async fn access(app: &App, user: &str) -> (Vec<String>, u64) {
    let (mut rx, summary) = app.access_export_counted(UserId::parse(user).expect("user"));
    let mut bytes = Vec::new();
    while let Some(chunk) = rx.recv().await {
        bytes.extend_from_slice(&chunk.expect("the access export does not fail"));
    }
    let mut messages: Vec<String> = String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("jsonl")["user_message"].as_str().expect("message").to_owned())
        .collect();
    messages.sort();
    (messages, summary.await.expect("summary").archive_skipped_lines)
}

fn messages<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> Vec<String> {
    let mut m: Vec<String> = recs.into_iter().map(|r| r.message.clone()).collect();
    m.sort();
    m
}

async fn a_bad_line_among_good_ones(b: Backend) {
    let app = app(&b);
    let recs = seed(&app).await;
    assert_eq!(archive(&app).await.archived_records, (2 * PER_USER) as i64);
    let key = the_object(&app).await;
    let (alice, bob): (Vec<Rec>, Vec<Rec>) = recs.iter().cloned().partition(|r| r.user == "alice");
    let poisoned = alice[1].clone();
    let bad = poison(&app, &key, poisoned.id).await;
    let good = || recs.iter().filter(|r| r.id != poisoned.id);

    // Every good record exports; the bad line is reported.
    assert_eq!(export(&app).await, (messages(good()), 1));
    // A good archived record reads; the bad one is an error, not a 404.
    assert_eq!(app.get_interaction(&admin(), alice[0].id).await.expect("readable").user_message, alice[0].message);
    assert!(matches!(app.get_interaction(&admin(), poisoned.id).await, Err(AppError::Internal { .. })));
    // The right of access: the owner's other records, and the count of the unreadable one.
    assert_eq!(access(&app, "alice").await, (messages(alice.iter().filter(|r| r.id != poisoned.id)), 1));
    assert_eq!(access(&app, "bob").await, (messages(&bob), 0));

    // Deletes of good records work: one by id (its owner), then all of bob's.
    let d = app.delete_interaction(&caller("alice", Role::User), alice[2].id).await.expect("delete by id");
    assert_eq!(
        (d.deleted.interactions, d.deleted.archived_records, d.deleted.feedback),
        (1, 1, 1),
        "feedback from the line"
    );
    let d = app.delete_user(&UserId::parse("bob").expect("user")).await.expect("delete user");
    assert_eq!((d.deleted.archived_records, d.deleted.feedback), (PER_USER as i64, PER_USER.div_ceil(2) as i64));
    assert_eq!(d.pending_erasure_objects, 1);
    let left = [alice[0].clone(), alice[3].clone()];
    assert_eq!(export(&app).await, (messages(&left), 1));

    // The next run's compaction erases them and copies the bad line as it is.
    let m = archive(&app).await.maintenance;
    assert_eq!(
        (m.compacted_objects, m.erased_lines, m.copied_unreadable_lines, m.dropped_corrupt_segments),
        (1, 1 + PER_USER as i64, 1, 0)
    );
    let key = the_object(&app).await;
    let lines = raw_lines(&app, &key).await;
    assert_eq!(
        lines,
        vec![lines_of(&app, &key, alice[0].id).await, bad.clone(), lines_of(&app, &key, alice[3].id).await]
    );
    let rows = app.hot.list_archive_objects(None).await.expect("rows");
    assert_eq!(rows[0].record_count, 3, "the row counts every line, the unreadable one too");
    for r in bob.iter().chain([&alice[2]]) {
        let needle = &r.message[..40];
        assert!(!lines.iter().any(|l| String::from_utf8_lossy(l).contains(needle)), "a deleted record's text is left");
    }
    assert_eq!(export(&app).await, (messages(&left), 1));
    assert_eq!(app.get_interaction(&admin(), alice[3].id).await.expect("readable").user_message, alice[3].message);

    // The bad line's id is found: deleting its record drops it at the next compaction.
    let d = app.delete_interaction(&admin(), poisoned.id).await.expect("delete the unreadable record");
    assert_eq!((d.deleted.interactions, d.deleted.archived_records), (1, 1));
    assert_eq!(export(&app).await, (messages(&left), 0), "a deleted record's line is not reported");
    let m = archive(&app).await.maintenance;
    assert_eq!((m.compacted_objects, m.erased_lines, m.copied_unreadable_lines), (1, 1, 0));
    let key = the_object(&app).await;
    let lines = raw_lines(&app, &key).await;
    assert_eq!(lines.iter().map(|l| line_id(l)).collect::<Vec<_>>(), vec![Some(alice[0].id), Some(alice[3].id)]);
    assert_eq!(access(&app, "alice").await, (messages(&left), 0));
    let counters = app.hot.counters().await.expect("counters");
    assert_eq!(counters.values().map(|c| c.total).sum::<i64>(), 2);
    assert!(app.hot.tombstoned_slots().await.expect("tombstones").is_empty());
}

/// The line of `id` in the object at `key`.
async fn lines_of(app: &App, key: &str, id: Id) -> Vec<u8> {
    raw_lines(app, key).await.into_iter().find(|l| line_id(l) == Some(id)).expect("the record's line")
}

/// The object's gzip stream cut short: what precedes the cut is served, the rest is one
/// skipped segment; deletes work; compaction writes a whole object of what could be read.
async fn a_corrupt_gzip_tail(b: Backend) {
    let app = app(&b);
    let recs = seed(&app).await;
    archive(&app).await;
    let key = the_object(&app).await;
    let gz = app.objects.get(&key).await.expect("get");
    app.objects.put(&key, gz[..gz.len() * 2 / 3].to_vec(), StorageClass::Standard).await.expect("put");

    let (served, skipped) = export(&app).await;
    assert_eq!(skipped, 1, "the lost tail is one skipped segment");
    assert!(!served.is_empty() && served.len() < recs.len(), "what precedes the cut is served: {}", served.len());
    // In the object's order (alice, then bob), each whole.
    let in_order: Vec<&Rec> = recs.iter().take(served.len()).collect();
    assert_eq!(served, messages(in_order.iter().copied()));

    let d = app.delete_user(&UserId::parse("bob").expect("user")).await.expect("delete user");
    assert_eq!(d.deleted.archived_records, PER_USER as i64);
    let m = archive(&app).await.maintenance;
    assert_eq!((m.compacted_objects, m.dropped_corrupt_segments), (1, 1));
    let key = the_object(&app).await;
    let lines = raw_lines(&app, &key).await;
    let alice_served: Vec<&Rec> = in_order.iter().copied().filter(|r| r.user == "alice").collect();
    assert_eq!(
        lines.iter().map(|l| line_id(l)).collect::<Vec<_>>(),
        alice_served.iter().map(|r| Some(r.id)).collect::<Vec<_>>()
    );
    assert_eq!(export(&app).await, (messages(alice_served.iter().copied()), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_bad_line_costs_only_itself() {
    a_bad_line_among_good_ones(local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_bad_line_costs_only_itself() {
    if let Some(b) = aws().await {
        a_bad_line_among_good_ones(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_corrupt_gzip_tail_costs_only_the_tail() {
    a_corrupt_gzip_tail(local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_corrupt_gzip_tail_costs_only_the_tail() {
    if let Some(b) = aws().await {
        a_corrupt_gzip_tail(b).await;
    }
}
