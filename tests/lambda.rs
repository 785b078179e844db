//! End to end on the AWS path: the real function binaries, run by `cargo lambda watch` (the
//! Lambda runtime API emulator), over DynamoDB and S3 on the local emulator (moto), invoked with
//! the API Gateway events of `events/` as API Gateway would invoke them.
//!
//! Needs `infra/emulator.sh start` and cargo-lambda; without them the test prints why and passes
//! locally, and fails under CI. The watchers and the invoker: `lambda_support.rs`.

mod lambda_support;

use std::time::{Duration, Instant};

use lambda_support::{Functions, emulator_and_cargo_lambda, event};
use serde_json::{Value, json};

/// The functions this test invokes (binary names; packages are `fn-{name}`).
const FUNCTIONS: [&str; 7] = ["log", "submit", "validate-log", "stats", "export", "delete", "curation"];

fn set_body_field(ev: &mut Value, name: &str, value: Value) {
    let mut body: Value = serde_json::from_str(ev["body"].as_str().expect("body")).expect("JSON body");
    body[name] = value;
    ev["body"] = body.to_string().into();
}

fn set_path(ev: &mut Value, path: &str) {
    ev["rawPath"] = path.into();
    ev["requestContext"]["http"]["path"] = path.into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_under_cargo_lambda_over_the_emulator() {
    let Some((emu, stack, path)) = emulator_and_cargo_lambda().await else { return };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let functions =
        Functions::start(&FUNCTIONS, &path, &lambda_support::stack_env(&emu, &stack, &[]), dir.path()).await;
    let fx = functions.invoker();

    let checks = async move {
        // log: the service logs alice's interaction.
        let mut ev = event("http/log/post-interactions.json");
        set_body_field(&mut ev, "interaction_id", Value::Null);
        let r = fx.http("log", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let id = r.json()["interaction_id"].as_str().expect("id").to_owned();
        // No identity: our 401 body.
        ev["requestContext"].as_object_mut().expect("ctx").remove("authorizer");
        let r = fx.http("log", &ev).await;
        assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("unauthenticated")));

        // submit: alice's thumbs up.
        let mut ev = event("http/submit/post-feedback-submit.json");
        set_body_field(&mut ev, "interaction_id", id.clone().into());
        let r = fx.http("submit", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

        // validate-log: alice validates the workflow, linked.
        let mut ev = event("http/validate-log/post-workflow-validate.json");
        set_body_field(&mut ev, "interaction_id", id.clone().into());
        let r = fx.http("validate-log", &ev).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["passed"], true);

        // stats: the counters saw all of it.
        let r = fx.http("stats", &event("http/stats/get-feedback-stats.json")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let s = r.json();
        assert_eq!(s["overview"]["total_records"], 1, "{s}");
        assert_eq!(s["overview"]["with_feedback"], 1, "{s}");
        assert_eq!(s["overview"]["positive_feedback"], 1, "{s}");
        let r = fx.http("stats", &event("http/stats/get-health.json")).await;
        assert_eq!((r.status, r.json()["backend"].clone()), (200, json!("aws")));

        // export: one JSONL line for the admin.
        let r = fx.http("export", &event("http/export/get-feedback-export.json")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.headers["content-type"], "application/jsonl");
        let lines: Vec<Value> =
            String::from_utf8_lossy(&r.body).lines().map(|l| serde_json::from_str(l).expect("a JSONL line")).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["messages"][1]["content"], "Post new webhook leads to #sales on Slack");
        // Its manifest (CONTRACT 4a): named in X-Export-Id, listed with the body's hash.
        let export_id = r.headers["x-export-id"].as_str().expect("X-Export-Id").to_owned();
        let sha256 = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&r.body))
        };
        let r = fx.http("export", &event("http/export/get-exports.json")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let m = &r.json()["items"][0];
        assert_eq!(
            (m["export_id"].as_str(), m["sha256"].as_str(), m["lines"].as_u64()),
            (Some(export_id.as_str()), Some(sha256.as_str()), Some(1))
        );

        // delete: bob cannot see it; alice deletes it and everything linked.
        let mut ev = event("http/delete/delete-feedback-data-one.json");
        set_path(&mut ev, &format!("/api/feedback/data/{id}"));
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "bob".into();
        assert_eq!(fx.http("delete", &ev).await.status, 404);
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "alice".into();
        let r = fx.http("delete", &ev).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()["deleted"],
            json!({"interactions": 1, "feedback": 1, "validation_logs": 1, "examples": 0, "archived_records": 0})
        );
        assert_eq!(r.json()["affected_exports"], json!([export_id]), "the export above held it");
        let r = fx.http("stats", &event("http/stats/get-feedback-stats.json")).await;
        assert_eq!(r.json()["overview"]["total_records"], 0);

        // Platforms (CONTRACT 7a): log refuses one that is not known; an admin adds it on
        // curation (another function, another process); log sees it once its re-read is due.
        let mut ev = event("http/log/post-interactions.json");
        set_body_field(&mut ev, "interaction_id", Value::Null);
        set_body_field(&mut ev, "platform", "airflow".into());
        let r = fx.http("log", &ev).await;
        assert_eq!((r.status, r.json()["error"]["details"][0]["field"].clone()), (400, json!("platform")));
        let r = fx.http("curation", &event("http/curation/post-platforms.json")).await;
        assert_eq!((r.status, r.json()), (201, json!({"platform": "airflow", "added": true})));
        tokio::time::sleep(collector::app::REREAD_AT_MOST_EVERY + Duration::from_millis(200)).await;
        let r = fx.http("log", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = fx.http("curation", &event("http/curation/get-platforms.json")).await;
        assert_eq!(r.json()["items"][3]["platform"], "airflow");
    };
    functions.check(checks).await;
    eprintln!("end to end in {:.0?}", started.elapsed());
}
