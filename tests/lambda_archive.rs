//! End to end on the AWS path, the functions `tests/lambda.rs` does not run: `readiness`,
//! `archive-run` and the `archiver` (a schedule tick and a stream batch), and `curation`'s
//! platform list, as real binaries under
//! `cargo lambda watch`, over DynamoDB and S3 on the local emulator, invoked with the events of
//! `events/` as API Gateway, EventBridge and the table's stream would invoke them. With
//! `tests/lambda.rs` that is all ten functions of template.yaml (checked below).
//!
//! The records are seeded through the library (a service logging 100-day-old history), so this
//! test builds only its three functions. Needs `infra/emulator.sh start` and cargo-lambda
//! (`infra/tools.sh`); without them it prints why and passes locally, and fails under CI.

mod lambda_support;

use std::sync::Arc;
use std::time::Instant;

use collector::adapters::dynamodb::DynamoStore;
use collector::adapters::s3::S3Store;
use collector::app::{App, IngestOutcome};
use collector::config::Config;
use collector::domain::types::{Caller, Role, UserId};
use lambda_support::{Functions, Invoker, emulator_and_cargo_lambda, event, root};
use serde_json::{Value, json};

/// The functions this test invokes (binary names; packages are `fn-{name}`). `curation` is also
/// run by tests/lambda.rs; here it only lists the platforms.
const FUNCTIONS: [&str; 4] = ["readiness", "archive-run", "archiver", "curation"];

fn set_body(ev: &mut Value, body: Value) {
    ev["body"] = body.to_string().into();
}

fn event_with_body(rel: &str, body: Value) -> Value {
    let mut ev = event(rel);
    set_body(&mut ev, body);
    ev
}

/// An HTTP function's status and JSON body (served as JSON).
async fn http(fx: &Invoker, function: &str, event: &Value) -> (u16, Value) {
    let r = fx.http(function, event).await;
    assert_eq!(r.headers["content-type"], "application/json", "{function} {}", r.status);
    (r.status, r.json())
}

/// Log an interaction of `user`, `days` old, as the AI service would; returns its id.
async fn old_record(app: &App, user: &str, days: i64) -> String {
    let service = Caller { sub: UserId::parse("ai-backend").expect("id"), role: Role::Service };
    let created = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    let body = json!({"user_id": user, "platform": "n8n", "kind": "conversation", "user_message": format!("{user}'s question"),
                      "ai_response": "an answer", "created_at": created});
    match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("logged") {
        IngestOutcome::Created(r) => r.interaction_id.to_string(),
        other => panic!("not created: {other:?}"),
    }
}

#[test]
fn with_tests_lambda_rs_every_function_of_the_template_runs() {
    let template = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    let lambda_rs = std::fs::read_to_string(root().join("tests/lambda.rs")).expect("tests/lambda.rs");
    let others = lambda_rs
        .split("const FUNCTIONS")
        .nth(1)
        .and_then(|s| s.split(';').nth(1))
        .expect("lambda.rs FUNCTIONS")
        .to_owned();
    for line in template.lines() {
        if let Some(binary) = line.trim().strip_prefix("Binary: ") {
            let here = FUNCTIONS.contains(&binary);
            let there = others.contains(&format!("\"{binary}\""));
            assert!(here || there, "function {binary} is run by neither tests/lambda.rs nor this test");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_archive_run_and_the_archiver_under_cargo_lambda() {
    let Some((emu, stack, path)) = emulator_and_cargo_lambda().await else { return };
    let started = Instant::now();

    // The app the test seeds and inspects with: the same tables and bucket.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let config = Config::from_lookup(|k| (k == "COLLECTOR_DATA_DIR").then(|| data.clone())).expect("config");
    let objects = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
    let hot = DynamoStore::new(emu.dynamodb(), stack.table.clone(), stack.archive_table.clone(), objects.clone(), 30);
    let app = App::new(config, Arc::new(hot), objects);

    let env = lambda_support::stack_env(&emu, &stack, &[("DATA_RETENTION_DAYS", "30")]);
    let functions = Functions::start(&FUNCTIONS, &path, &env, dir.path()).await;
    let fx = functions.invoker();

    let checks = async move {
        // curation (any identity may list the platforms).
        let (status, r) = http(&fx, "curation", &event("http/curation/get-platforms.json")).await;
        assert_eq!((status, r["items"][0]["platform"].clone()), (200, json!("n8n")), "{r}");

        // History: alice's and bob's records, 100 days old.
        old_record(&app, "alice", 100).await;
        let bobs = old_record(&app, "bob", 100).await;

        // readiness (any identity): both records count.
        let (status, r) = http(&fx, "readiness", &event("http/readiness/get-feedback-readiness.json")).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["platform"].clone(), r["metrics"]["total_examples"].clone()), (json!("n8n"), json!(2)), "{r}");

        // archive-run (admin): a dry run writes nothing; a run archives both.
        let (status, r) = http(&fx, "archive-run", &event("http/archive-run/post-feedback-archive.json")).await;
        assert_eq!((status, r["dry_run"].clone()), (200, json!(true)), "{r}");
        assert!(app.hot.list_archive_objects(None).await.expect("objects").is_empty(), "a dry run wrote an object");
        let mut ev = event("http/archive-run/post-feedback-archive.json");
        set_body(&mut ev, json!({}));
        let (status, r) = http(&fx, "archive-run", &ev).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["archived_records"].clone(), r["complete"].clone()), (json!(2), json!(true)), "{r}");
        assert_eq!(r["archives"][0]["platform"], "n8n", "{r}");
        // Not an admin: 403.
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[service]".into();
        assert_eq!(http(&fx, "archive-run", &ev).await.0, 403);

        // Readiness counts archived records too.
        let (_, r) = http(&fx, "readiness", &event("http/readiness/get-feedback-readiness.json")).await;
        assert_eq!(r["metrics"]["total_examples"], 2, "{r}");

        // alice's data deleted: her archived line is unreadable at once and leaves the object's
        // bytes when the archiver gets the tombstone from the stream.
        app.delete_user(&UserId::parse("alice").expect("id")).await.expect("deleted");
        assert_eq!(app.hot.tombstoned_slots().await.expect("slots").len(), 1);
        let out = fx.invoke("archiver", &event("archiver/stream-insert-tombstone.json")).await;
        assert_eq!(out, json!({"batchItemFailures": []}));
        assert!(app.hot.tombstoned_slots().await.expect("slots").is_empty(), "the deleted line was not erased");
        let objects = app.hot.list_archive_objects(None).await.expect("objects");
        assert_eq!(objects.iter().map(|o| o.record_count).sum::<i64>(), 1, "bob's line alone is left");
        let admin = Caller { sub: UserId::parse("root").expect("id"), role: Role::Admin };
        let rec = app
            .get_interaction(&admin, collector::domain::types::Id::parse(&bobs).expect("id"))
            .await
            .expect("bob's record");
        assert!(rec.archived);

        // The schedule's tick runs an archive run to the invocation's deadline. `cargo lambda
        // watch` sends every invocation the same deadline, 600,000 ms after the epoch (long
        // past), so the run starts no object: `complete: false`, nothing archived, no error,
        // which is what a run out of time answers (the next tick carries on). Lambda's own
        // deadline is the real one (functions/archiver/tests/handler.rs runs one through).
        old_record(&app, "carol", 45).await;
        let out = fx.invoke("archiver", &event("archiver/schedule.json")).await;
        assert_eq!(
            (out["dry_run"].clone(), out["complete"].clone(), out["archived_records"].clone()),
            (json!(false), json!(false), json!(0)),
            "{out}"
        );
        assert_eq!(
            (out["before"]["active_records"].clone(), out["before"]["archived_records"].clone()),
            (json!(1), json!(1)),
            "carol hot, bob archived: {out}"
        );
        // Carol's record goes with the next run (archive-run's own 20 s budget).
        let (status, r) =
            http(&fx, "archive-run", &event_with_body("http/archive-run/post-feedback-archive.json", json!({}))).await;
        assert_eq!((status, r["archived_records"].clone(), r["complete"].clone()), (200, json!(1), json!(true)), "{r}");
        // A batch with nothing to act on (the filter would not even send it): no failures.
        let out = fx.invoke("archiver", &event("archiver/stream-insert.json")).await;
        assert_eq!(out, json!({"batchItemFailures": []}));
        let (_, r) = http(&fx, "readiness", &event("http/readiness/get-feedback-readiness.json")).await;
        assert_eq!(r["metrics"]["total_examples"], 2, "bob and carol: {r}");
    };
    functions.check(checks).await;
    eprintln!("end to end in {:.0?}", started.elapsed());
}
