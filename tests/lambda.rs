//! End to end on the AWS path: the real function binaries, run by `cargo lambda watch` (the
//! Lambda runtime API emulator), over DynamoDB and S3 on the local emulator (moto), invoked with
//! the API Gateway events of `events/` as API Gateway would invoke them.
//!
//! Needs `infra/emulator.sh start` and cargo-lambda (`infra/tools.sh` installs both; its venv
//! `bin` is looked up after PATH). Without them the test prints why and passes locally; under CI
//! (`CI` set) it fails. The functions are built once (debug, `cargo build -p fn-NAME ...`) before
//! the watchers start, so each watcher's own `cargo run -p fn-NAME` finds its binary up to date.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collector::testing::Emulator;
use serde_json::{Value, json};

/// The functions this test invokes (binary names; packages are `fn-{name}`).
const FUNCTIONS: [&str; 7] = ["log", "submit", "validate-log", "stats", "export", "delete", "curation"];

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
    let text = std::fs::read_to_string(root().join("events/http").join(rel)).expect("event file");
    serde_json::from_str(&text).expect("event JSON")
}

fn set_body_field(ev: &mut Value, name: &str, value: Value) {
    let mut body: Value = serde_json::from_str(ev["body"].as_str().expect("body")).expect("JSON body");
    body[name] = value;
    ev["body"] = body.to_string().into();
}

fn set_path(ev: &mut Value, path: &str) {
    ev["rawPath"] = path.into();
    ev["requestContext"]["http"]["path"] = path.into();
}

/// What API Gateway would get back from the function.
struct Answer {
    status: u16,
    headers: Value,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, String::from_utf8_lossy(&self.body)))
    }
}

struct Invoker {
    client: reqwest::Client,
    /// Each function's runtime API emulator.
    bases: std::collections::HashMap<&'static str, String>,
}

impl Invoker {
    async fn invoke(&self, function: &str, event: &Value) -> Answer {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.bases[function]);
        let resp = self.client.post(&url).json(event).send().await.unwrap_or_else(|e| panic!("invoke {function}: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("invoke body");
        assert!(status.is_success(), "invoke {function}: {status}: {text}");
        let out: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("invoke {function}: not a response: {text}"));
        let raw = out["body"].as_str().unwrap_or_default();
        let body = if out["isBase64Encoded"] == true {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(raw).expect("base64 body")
        } else {
            raw.as_bytes().to_vec()
        };
        Answer {
            status: out["statusCode"].as_u64().unwrap_or_else(|| panic!("invoke {function}: no statusCode: {text}"))
                as u16,
            headers: out["headers"].clone(),
            body,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_under_cargo_lambda_over_the_emulator() {
    let Some(emu) = Emulator::connect().await else { return };
    let Some(path) = cargo_lambda_path() else {
        return skip_or_fail("cargo-lambda is not on PATH (infra/tools.sh installs it)");
    };
    let stack = emu.create_stack().await;
    let started = Instant::now();

    // Build the functions once, in the workspace (the watcher's `cargo run` then finds them fresh).
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root()).arg("build").arg("--quiet");
    for f in FUNCTIONS {
        build.args(["-p", &format!("fn-{f}")]);
    }
    let status = build.status().expect("cargo build");
    assert!(status.success(), "building the functions failed");
    eprintln!("functions built in {:.0?}", started.elapsed());

    let dir = tempfile::tempdir().expect("tempdir");
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
        ("RUST_LOG", "info"),
    ] {
        writeln!(f, "{k}={v}").expect("write env");
    }
    drop(f);

    // One watcher per function, each running its own package (`cargo run -p fn-NAME`), so the
    // binaries are the lean ones: collector with `lambda` only, as `sam build` makes them.
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
        // log: the service logs alice's interaction.
        let mut ev = event("log/post-interactions.json");
        set_body_field(&mut ev, "interaction_id", Value::Null);
        let r = fx.invoke("log", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let id = r.json()["interaction_id"].as_str().expect("id").to_owned();
        // No identity: our 401 body.
        ev["requestContext"].as_object_mut().expect("ctx").remove("authorizer");
        let r = fx.invoke("log", &ev).await;
        assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("unauthenticated")));

        // submit: alice's thumbs up.
        let mut ev = event("submit/post-feedback-submit.json");
        set_body_field(&mut ev, "interaction_id", id.clone().into());
        let r = fx.invoke("submit", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

        // validate-log: alice validates the workflow, linked.
        let mut ev = event("validate-log/post-workflow-validate.json");
        set_body_field(&mut ev, "interaction_id", id.clone().into());
        let r = fx.invoke("validate-log", &ev).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["passed"], true);

        // stats: the counters saw all of it.
        let r = fx.invoke("stats", &event("stats/get-feedback-stats.json")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let s = r.json();
        assert_eq!(s["overview"]["total_records"], 1, "{s}");
        assert_eq!(s["overview"]["with_feedback"], 1, "{s}");
        assert_eq!(s["overview"]["positive_feedback"], 1, "{s}");
        let r = fx.invoke("stats", &event("stats/get-health.json")).await;
        assert_eq!((r.status, r.json()["backend"].clone()), (200, json!("aws")));

        // export: one JSONL line for the admin.
        let r = fx.invoke("export", &event("export/get-feedback-export.json")).await;
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
        let r = fx.invoke("export", &event("export/get-exports.json")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let m = &r.json()["items"][0];
        assert_eq!(
            (m["export_id"].as_str(), m["sha256"].as_str(), m["lines"].as_u64()),
            (Some(export_id.as_str()), Some(sha256.as_str()), Some(1))
        );

        // delete: bob cannot see it; alice deletes it and everything linked.
        let mut ev = event("delete/delete-feedback-data-one.json");
        set_path(&mut ev, &format!("/api/feedback/data/{id}"));
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "bob".into();
        assert_eq!(fx.invoke("delete", &ev).await.status, 404);
        ev["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "alice".into();
        let r = fx.invoke("delete", &ev).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()["deleted"],
            json!({"interactions": 1, "feedback": 1, "validation_logs": 1, "examples": 0, "archived_records": 0})
        );
        assert_eq!(r.json()["affected_exports"], json!([export_id]), "the export above held it");
        let r = fx.invoke("stats", &event("stats/get-feedback-stats.json")).await;
        assert_eq!(r.json()["overview"]["total_records"], 0);

        // Platforms (CONTRACT 7a): log refuses one that is not known; an admin adds it on
        // curation (another function, another process); log sees it once its re-read is due.
        let mut ev = event("log/post-interactions.json");
        set_body_field(&mut ev, "interaction_id", Value::Null);
        set_body_field(&mut ev, "platform", "airflow".into());
        let r = fx.invoke("log", &ev).await;
        assert_eq!((r.status, r.json()["error"]["details"][0]["field"].clone()), (400, json!("platform")));
        let r = fx.invoke("curation", &event("curation/post-platforms.json")).await;
        assert_eq!((r.status, r.json()), (201, json!({"platform": "airflow", "added": true})));
        tokio::time::sleep(collector::app::REREAD_AT_MOST_EVERY + Duration::from_millis(200)).await;
        let r = fx.invoke("log", &ev).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = fx.invoke("curation", &event("curation/get-platforms.json")).await;
        assert_eq!(r.json()["items"][3]["platform"], "airflow");
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
