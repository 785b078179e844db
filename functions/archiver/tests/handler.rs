//! The archiver's handler fed the events of `events/archiver/`, over the embedded store (the
//! handler does not care which store; no AWS needed), with a `LambdaEvent` on a default context
//! as the runtime would build it.

use std::path::PathBuf;

use collector::app::App;
use collector::config::Config;
use fn_archiver::{ArchiverEvent, ArchiverResponse, StreamCounts, count, handle};
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
    for f in ["stream-insert.json", "stream-remove-user.json", "stream-remove-ttl.json"] {
        assert!(matches!(load(f), ArchiverEvent::Stream(_)), "{f}");
    }
    assert!(serde_json::from_str::<ArchiverEvent>(r#"{"hello": "world"}"#).is_err(), "anything else is an invocation error");
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
        assert_eq!(serde_json::to_value(ArchiverResponse::Stream(resp)).unwrap(), serde_json::json!({"batchItemFailures": []}));
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
    let out = handle(&open(&off, false), LambdaEvent::new(load("schedule.json"), Context::default())).await.expect("no error");
    assert_eq!(serde_json::to_value(out).unwrap(), serde_json::json!({"archiving_disabled": true}));
}
