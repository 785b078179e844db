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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collector::adapters::dynamodb::DynamoStore;
use collector::adapters::s3::S3Store;
use collector::app::{App, IngestOutcome};
use collector::config::Config;
use collector::domain::types::{Caller, Role, UserId};
use collector::testing::Emulator;
use serde_json::{Value, json};

/// The functions this test invokes (binary names; packages are `fn-{name}`). `curation` is also
/// run by tests/lambda.rs; here it only lists the platforms.
const FUNCTIONS: [&str; 4] = ["readiness", "archive-run", "archiver", "curation"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// cargo-lambda on PATH, else in the venv `infra/tools.sh` makes. Returns a PATH that has it.
fn cargo_lambda_path() -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let has = |dir: &Path| dir.join("cargo-lambda").is_file();
    if std::env::split_paths(&path).any(|d| has(&d)) {
        return Some(path);
    }
    let venv = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/collector-venv/bin");
    has(&venv).then(|| format!("{}:{path}", venv.display()))
}

/// `cargo lambda watch` in its own process group, stopped (group and all) on drop.
struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn event(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(rel)).expect("event file");
    serde_json::from_str(&text).expect("event JSON")
}

fn set_body(ev: &mut Value, body: Value) {
    ev["body"] = body.to_string().into();
}

fn event_with_body(rel: &str, body: Value) -> Value {
    let mut ev = event(rel);
    set_body(&mut ev, body);
    ev
}

struct Invoker {
    client: reqwest::Client,
    bases: std::collections::HashMap<&'static str, String>,
}

impl Invoker {
    /// The function's raw answer (the archiver's report or batch response; an HTTP function's
    /// API Gateway response object).
    async fn invoke(&self, function: &str, event: &Value) -> Value {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.bases[function]);
        let resp = self.client.post(&url).json(event).send().await.unwrap_or_else(|e| panic!("invoke {function}: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("invoke body");
        assert!(status.is_success(), "invoke {function}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("invoke {function}: not JSON: {text}"))
    }

    /// An HTTP function: (status, JSON body).
    async fn http(&self, function: &str, event: &Value) -> (u16, Value) {
        let out = self.invoke(function, event).await;
        let status = out["statusCode"].as_u64().unwrap_or_else(|| panic!("{function}: no statusCode: {out}")) as u16;
        let raw = out["body"].as_str().unwrap_or_default();
        let body = if out["isBase64Encoded"] == true {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(raw).expect("base64 body");
            String::from_utf8(bytes).expect("UTF-8 body")
        } else {
            raw.to_owned()
        };
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{function} {status}: not JSON: {body}")))
    }
}

/// Log an interaction of `user`, `days` old, as the AI service would; returns its id.
async fn old_record(app: &App, user: &str, days: i64) -> String {
    let service = Caller { sub: UserId::parse("ai-backend").expect("id"), role: Role::Service };
    let created = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    let body = json!({"user_id": user, "platform": "n8n", "kind": "conversation", "user_message": format!("{user}'s question"),
                      "ai_response": "an answer", "created_at": created});
    match app.log_interaction(&service, body).await.expect("logged") {
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
    let Some(emu) = Emulator::connect().await else { return };
    let Some(path) = cargo_lambda_path() else {
        return skip_or_fail("cargo-lambda is not on PATH (infra/tools.sh installs it)");
    };
    let stack = emu.create_stack().await;
    let started = Instant::now();

    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root()).arg("build").arg("--quiet");
    for f in FUNCTIONS {
        build.args(["-p", &format!("fn-{f}")]);
    }
    assert!(build.status().expect("cargo build").success(), "building the functions failed");
    eprintln!("functions built in {:.0?}", started.elapsed());

    // The app the test seeds and inspects with: the same tables and bucket.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let config = Config::from_lookup(|k| (k == "COLLECTOR_DATA_DIR").then(|| data.clone())).expect("config");
    let objects = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
    let hot = DynamoStore::new(emu.dynamodb(), stack.table.clone(), stack.archive_table.clone(), objects.clone(), 30);
    let app = App::new(config, Arc::new(hot), objects);

    let env_file = dir.path().join("functions.env");
    let mut f = std::fs::File::create(&env_file).expect("env file");
    for (k, v) in [
        ("COLLECTOR_BACKEND", "aws"),
        ("TABLE_NAME", stack.table.as_str()),
        ("ARCHIVE_TABLE_NAME", stack.archive_table.as_str()),
        ("S3_BUCKET_NAME", stack.bucket.as_str()),
        ("DYNAMODB_ENDPOINT", emu.endpoint.as_str()),
        ("S3_ENDPOINT", emu.endpoint.as_str()),
        ("S3_ACCESS_KEY", "test"),
        ("S3_SECRET_KEY", "test"),
        ("S3_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("DATA_RETENTION_DAYS", "30"),
        ("RUST_LOG", "info"),
    ] {
        writeln!(f, "{k}={v}").expect("write env");
    }
    drop(f);

    let mut watchers = Vec::new();
    let mut bases = std::collections::HashMap::new();
    for function in FUNCTIONS {
        let port = free_port();
        let log = dir.path().join(format!("watch-{function}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("cargo")
                .current_dir(root())
                .env("PATH", &path)
                .args(["lambda", "watch", "--package", &format!("fn-{function}"), "--ignore-changes", "--quiet"])
                .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
                .arg("--env-file")
                .arg(&env_file)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .process_group(0)
                .spawn()
                .expect("cargo lambda watch")
        };
        watchers.push(Watcher { child, log });
        bases.insert(function, format!("http://127.0.0.1:{port}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let w = watchers.last().expect("watcher");
            assert!(Instant::now() < deadline, "cargo lambda watch ({function}) did not listen:\n{}", w.log_tail());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let logs =
        || watchers.iter().map(|w| format!("== {}\n{}", w.log.display(), w.log_tail())).collect::<Vec<_>>().join("\n");
    let fx = Invoker {
        client: reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client"),
        bases,
    };

    let result = tokio::spawn(async move {
        // curation (any identity may list the platforms).
        let (status, r) = fx.http("curation", &event("http/curation/get-platforms.json")).await;
        assert_eq!((status, r["items"][0]["platform"].clone()), (200, json!("n8n")), "{r}");

        // History: alice's and bob's records, 100 days old.
        old_record(&app, "alice", 100).await;
        let bobs = old_record(&app, "bob", 100).await;

        // readiness (any identity): both records count.
        let (status, r) = fx.http("readiness", &event("http/readiness/get-feedback-readiness.json")).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["platform"].clone(), r["metrics"]["total_examples"].clone()), (json!("n8n"), json!(2)), "{r}");

        // archive-run (admin): a dry run writes nothing; a run archives both.
        let (status, r) = fx.http("archive-run", &event("http/archive-run/post-feedback-archive.json")).await;
        assert_eq!((status, r["dry_run"].clone()), (200, json!(true)), "{r}");
        assert!(app.hot.list_archive_objects(None).await.expect("objects").is_empty(), "a dry run wrote an object");
        let mut ev = event("http/archive-run/post-feedback-archive.json");
        set_body(&mut ev, json!({}));
        let (status, r) = fx.http("archive-run", &ev).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!((r["archived_records"].clone(), r["complete"].clone()), (json!(2), json!(true)), "{r}");
        assert_eq!(r["archives"][0]["platform"], "n8n", "{r}");
        // Not an admin: 403.
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[service]".into();
        assert_eq!(fx.http("archive-run", &ev).await.0, 403);

        // Readiness counts archived records too.
        let (_, r) = fx.http("readiness", &event("http/readiness/get-feedback-readiness.json")).await;
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
            fx.http("archive-run", &event_with_body("http/archive-run/post-feedback-archive.json", json!({}))).await;
        assert_eq!((status, r["archived_records"].clone(), r["complete"].clone()), (200, json!(1), json!(true)), "{r}");
        // A batch with nothing to act on (the filter would not even send it): no failures.
        let out = fx.invoke("archiver", &event("archiver/stream-insert.json")).await;
        assert_eq!(out, json!({"batchItemFailures": []}));
        let (_, r) = fx.http("readiness", &event("http/readiness/get-feedback-readiness.json")).await;
        assert_eq!(r["metrics"]["total_examples"], 2, "bob and carol: {r}");
    });
    match tokio::time::timeout(Duration::from_secs(600), result).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let msg = e.try_into_panic().ok().and_then(|p| p.downcast::<String>().ok().map(|s| *s)).unwrap_or_default();
            panic!("{msg}\ncargo lambda watch said:\n{}", logs());
        }
        Err(_) => panic!("timed out; cargo lambda watch said:\n{}", logs()),
    }
    eprintln!("end to end in {:.0?}", started.elapsed());
}
