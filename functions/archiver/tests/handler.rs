//! The archiver's handler fed the events of `events/archiver/`, over the embedded store (the
//! handler does not care which store; no AWS needed), with a `LambdaEvent` on a default context
//! as the runtime would build it.

use std::path::PathBuf;

use collector::app::App;
use collector::config::Config;
use collector::domain::input::ArchiveRequest;
use collector::domain::types::{Caller, Role, UserId};
use fn_archiver::{ArchiverEvent, ArchiverResponse, StreamCounts, count, handle, handle_waiting};
use lambda_runtime::{Context, LambdaEvent};

fn load(name: &str) -> ArchiverEvent {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/archiver").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn open(dir: &tempfile::TempDir, archiving: bool) -> App {
    let data = dir.path().to_string_lossy().into_owned();
    let config = Config::from_lookup(|k| match k {
        "COLLECTOR_DATA_DIR" => Some(data.clone()),
        "ENABLE_DATA_ARCHIVING" => Some(archiving.to_string()),
        _ => None,
    })
    .expect("config");
    App::open_local(config).expect("open")
}

#[test]
fn events_pick_their_variant() {
    assert!(matches!(load("schedule.json"), ArchiverEvent::Schedule(_)));
    for f in ["stream-insert.json", "stream-remove-user.json", "stream-remove-ttl.json", "stream-insert-tombstone.json"]
    {
        assert!(matches!(load(f), ArchiverEvent::Stream(_)), "{f}");
    }
    assert!(
        serde_json::from_str::<ArchiverEvent>(r#"{"hello": "world"}"#).is_err(),
        "anything else is an invocation error"
    );
}

#[test]
fn ttl_removes_are_told_from_a_users_delete() {
    let counts = |f| match load(f) {
        ArchiverEvent::Stream(b) => count(&b),
        ArchiverEvent::Schedule(_) => unreachable!(),
    };
    assert_eq!(counts("stream-insert.json"), StreamCounts { inserts: 1, ..Default::default() });
    assert_eq!(counts("stream-remove-user.json"), StreamCounts { removes: 1, ..Default::default() });
    assert_eq!(counts("stream-remove-ttl.json"), StreamCounts { ttl_removes: 1, ..Default::default() });
    assert_eq!(
        counts("stream-insert-tombstone.json"),
        StreamCounts { inserts: 1, tombstones: 1, ..Default::default() }
    );
}

#[tokio::test]
async fn stream_batches_report_no_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = open(&dir, true);
    for f in ["stream-insert.json", "stream-remove-user.json", "stream-remove-ttl.json"] {
        let out = handle(&app, LambdaEvent::new(load(f), Context::default())).await.expect("handled");
        let ArchiverResponse::Stream(resp) = out else { panic!("{f}: not a stream response") };
        assert!(resp.batch_item_failures.is_empty());
        // The wire form Lambda reads.
        assert_eq!(
            serde_json::to_value(ArchiverResponse::Stream(resp)).unwrap(),
            serde_json::json!({"batchItemFailures": []})
        );
    }
}

#[tokio::test]
async fn the_schedule_runs_an_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = open(&dir, true);
    let out = handle(&app, LambdaEvent::new(load("schedule.json"), Context::default())).await.expect("ran");
    let ArchiverResponse::Schedule(report) = out else { panic!("not a run report") };
    assert!(!report.dry_run);
    assert_eq!(report.archived_records, 0);

    let off = tempfile::tempdir().expect("tempdir");
    let out = handle(&open(&off, false), LambdaEvent::new(load("schedule.json"), Context::default()))
        .await
        .expect("no error");
    assert_eq!(serde_json::to_value(out).unwrap(), serde_json::json!({"archiving_disabled": true}));
}

/// An archived record of `user`, 100 days old; returns its id.
async fn archived_record(app: &App, user: &str) -> String {
    let service = Caller { sub: UserId::parse("ai-backend").expect("id"), role: Role::Service };
    let created = (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339();
    let body =
        serde_json::json!({"user_id": user, "platform": "n8n", "user_message": "archive me", "created_at": created});
    let id =
        match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("logged")
        {
            collector::app::IngestOutcome::Created(r) => r.interaction_id.to_string(),
            other => panic!("not created: {other:?}"),
        };
    let req = ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
    assert_eq!(app.archive(&req, None, None).await.expect("archived").archived_records, 1);
    id
}

#[tokio::test]
async fn a_tombstone_on_the_stream_erases_the_deleted_lines_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = open(&dir, true);
    archived_record(&app, "alice").await;
    let keep = archived_record(&app, "bob").await;
    let deleted = app.delete_user(&UserId::parse("alice").expect("id")).await.expect("deleted");
    assert_eq!(deleted.pending_erasure_objects, 1);
    assert_eq!(app.hot.tombstoned_slots().await.expect("slots").len(), 1);

    let out = handle(&app, LambdaEvent::new(load("stream-insert-tombstone.json"), Context::default()))
        .await
        .expect("handled");
    let ArchiverResponse::Stream(resp) = out else { panic!("not a stream response") };
    assert!(resp.batch_item_failures.is_empty());
    assert!(app.hot.tombstoned_slots().await.expect("slots").is_empty(), "the deleted line left the object's bytes");
    // The other user's archived record is still there, in a rewritten object.
    let objects = app.hot.list_archive_objects(None).await.expect("objects");
    assert_eq!(objects.iter().map(|o| o.record_count).sum::<i64>(), 1);
    let admin = Caller { sub: UserId::parse("root").expect("id"), role: Role::Admin };
    let rec = app
        .get_interaction(&admin, collector::domain::types::Id::parse(&keep).expect("id"))
        .await
        .expect("bob's record");
    assert!(rec.archived);
}

#[tokio::test]
async fn a_tombstone_meeting_a_busy_lease_is_handed_back_for_redelivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = open(&dir, true);
    archived_record(&app, "alice").await;
    app.delete_user(&UserId::parse("alice").expect("id")).await.expect("deleted");
    let lease = app
        .hot
        .acquire_lease("another-run", chrono::Utc::now(), std::time::Duration::from_secs(60))
        .await
        .expect("lease")
        .expect("free");

    let out = handle_waiting(
        &app,
        LambdaEvent::new(load("stream-insert-tombstone.json"), Context::default()),
        std::time::Duration::ZERO,
    )
    .await
    .expect("handled");
    let wire = serde_json::to_value(out).expect("json");
    assert_eq!(wire, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000000000000004"}]}));
    assert_eq!(app.hot.tombstoned_slots().await.expect("slots").len(), 1, "nothing erased under another run's lease");

    // Redelivered once the lease is free: erased.
    app.hot.release_lease(&lease).await.expect("release");
    let out = handle(&app, LambdaEvent::new(load("stream-insert-tombstone.json"), Context::default()))
        .await
        .expect("handled");
    assert_eq!(serde_json::to_value(out).expect("json"), serde_json::json!({"batchItemFailures": []}));
    assert!(app.hot.tombstoned_slots().await.expect("slots").is_empty());
}
