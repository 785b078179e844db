//! The Lambda functions' routers fed real API Gateway (HTTP API, payload 2.0) events from
//! `events/`: each event is loaded, patched (claims, path, body) as JSON, turned into a request
//! by lambda_http exactly as the runtime does (`lambda_http::request::from_str`), and sent
//! through the function's router with `oneshot`. The store is the embedded one (the routers
//! do not care), so these run without AWS.
//!
//! Needs the `lambda` feature: `cargo test -p collector --features lambda --test lambda_events`
//! (`cargo test --workspace` turns it on, since the functions depend on it).
#![cfg(feature = "lambda")]

use std::path::PathBuf;

use axum::Router;
use axum::http::StatusCode;
use collector::app::App;
use collector::config::Config;
use collector::http::{HttpState, routes, spill};
use serde_json::{Value, json};
use tower::ServiceExt;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load(rel: &str) -> Value {
    let path = events_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event JSON")
}

/// An HTTP event of `events/http/{function}/{name}.json`.
fn event(function: &str, name: &str) -> Ev {
    Ev(load(&format!("http/{function}/{name}.json")))
}

struct Ev(Value);

impl Ev {
    /// The claims of `events/claims/{who}.json`, or none (no authorizer at all).
    fn who(mut self, who: Option<&str>) -> Ev {
        let ctx = self.0["requestContext"].as_object_mut().expect("requestContext");
        match who {
            None => {
                ctx.remove("authorizer");
            }
            Some(w) => {
                ctx.insert(
                    "authorizer".into(),
                    json!({"jwt": {"claims": load(&format!("claims/{w}.json")), "scopes": null}}),
                );
            }
        }
        self
    }
    /// Set (or with None remove) one claim.
    fn claim(mut self, name: &str, value: Option<&str>) -> Ev {
        let claims = self.0["requestContext"]["authorizer"]["jwt"]["claims"].as_object_mut().expect("claims");
        match value {
            Some(v) => claims.insert(name.into(), v.into()),
            None => claims.remove(name),
        };
        self
    }
    fn sub(self, sub: &str) -> Ev {
        self.claim("sub", Some(sub))
    }
    /// Replace the path (rawPath and the context's), keeping the query.
    fn path(mut self, path: &str) -> Ev {
        self.0["rawPath"] = path.into();
        self.0["requestContext"]["http"]["path"] = path.into();
        self
    }
    fn query(mut self, q: &str) -> Ev {
        self.0["rawQueryString"] = q.into();
        let map: serde_json::Map<String, Value> = q
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.0["queryStringParameters"] = Value::Object(map);
        self
    }
    /// Patch a field of the JSON body.
    fn field(mut self, name: &str, value: Value) -> Ev {
        let mut body: Value =
            serde_json::from_str(self.0["body"].as_str().expect("event has a body")).expect("JSON body");
        body[name] = value;
        self.0["body"] = body.to_string().into();
        self
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, String::from_utf8_lossy(&self.body)))
    }
    #[track_caller]
    fn expect(&self, status: u16, code: Option<&str>) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&self.body));
        if let Some(code) = code {
            assert_eq!(self.json()["error"]["code"], code);
            return self.json();
        }
        if self.headers.get("content-type").is_some_and(|v| v == "application/json") {
            self.json()
        } else {
            Value::Null
        }
    }
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("JSONL"))
            .collect()
    }
}

/// The functions' routers over one fresh embedded store.
struct Functions {
    state: HttpState,
    _dir: tempfile::TempDir,
}

/// A temp data folder and the default config pointing at it.
fn data_dir_config() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_string_lossy().into_owned();
    let config = Config::from_lookup(|k| match k {
        "COLLECTOR_DATA_DIR" => Some(data.clone()),
        _ => None,
    })
    .expect("config");
    (dir, config)
}

impl Functions {
    fn new() -> Functions {
        let (dir, config) = data_dir_config();
        let app = App::open_local(config).expect("open");
        Functions { state: HttpState::lambda(app), _dir: dir }
    }

    fn router(&self, function: &str) -> Router {
        routes::by_name(function, self.state.clone()).unwrap_or_else(|| panic!("no function {function}"))
    }

    /// Send an event to a function, the way lambda_http's runtime adapter does.
    async fn call(&self, function: &str, ev: Ev) -> Reply {
        let req = lambda_http::request::from_str(&ev.0.to_string()).expect("an API Gateway v2 event");
        let resp = self.router(function).oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.expect("body").to_vec();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    /// Log alice's interaction (as the service) and return its id.
    async fn logged(&self) -> String {
        let r = self.call("log", event("log", "post-interactions").field("interaction_id", Value::Null)).await;
        r.expect(201, None)["interaction_id"].as_str().expect("id").to_owned()
    }
}

/// One event per route of the table (`http::routes::ROUTES`), under its function's folder, and
/// each one a request lambda_http accepts.
#[test]
fn every_event_file_is_a_request_lambda_http_accepts() {
    let mut found = Vec::new();
    for function in routes::NAMES {
        let dir = events_dir().join("http").join(function);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for f in entries {
            let f = f.expect("entry").path();
            let text = std::fs::read_to_string(&f).expect("read");
            let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(req.uri().path().starts_with('/'), "{}", f.display());
            let ev: Value = serde_json::from_str(&text).expect("JSON");
            found.push(format!("{function} {}", ev["routeKey"].as_str().expect("routeKey")));
        }
    }
    found.sort();
    let mut expected: Vec<String> =
        routes::ROUTES.iter().map(|r| format!("{} {} {}", r.function, r.method.as_str(), r.path)).collect();
    expected.sort();
    assert_eq!(found, expected, "one event per route (python3 events/generate.py)");
}

#[tokio::test]
async fn log_function() {
    let f = Functions::new();
    // No identity: 401, with our body.
    f.call("log", event("log", "post-interactions").who(None)).await.expect(401, Some("unauthenticated"));
    // The service logs for alice: 201, then the same id and content: 200, other content: 409.
    let id = "01936f4e-7a00-7000-8000-0000000000aa";
    let ev = || event("log", "post-interactions").field("interaction_id", id.into());
    assert_eq!(f.call("log", ev()).await.expect(201, None)["interaction_id"], id);
    f.call("log", ev()).await.expect(200, None);
    f.call("log", ev().field("user_message", "changed".into())).await.expect(409, Some("conflict"));
    // A user may not log for someone else.
    let as_alice = || event("log", "post-interactions").who(Some("user")).field("interaction_id", Value::Null);
    f.call("log", as_alice().field("user_id", "bob".into())).await.expect(403, Some("forbidden"));
    f.call("log", as_alice().field("created_at", "2026-01-01T00:00:00Z".into())).await.expect(403, Some("forbidden"));
    // Batch: service yes, user no.
    let r = f.call("log", event("log", "post-interactions-batch")).await.expect(200, None);
    assert_eq!(r["results"].as_array().map(Vec::len), Some(2));
    f.call("log", event("log", "post-interactions-batch").who(Some("user"))).await.expect(403, Some("forbidden"));
    // Owner reads it; another user gets 404, not 403.
    let path = format!("/api/interactions/{id}");
    let r = f.call("log", event("log", "get-interaction").path(&path)).await.expect(200, None);
    assert_eq!(r["user_id"], "alice");
    f.call("log", event("log", "get-interaction").path(&path).sub("bob")).await.expect(404, Some("not_found"));
    f.call("log", event("log", "get-interaction").path(&path).who(Some("service"))).await.expect(200, None);
    // Listing: alice's own three.
    let r = f.call("log", event("log", "get-interactions")).await.expect(200, None);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(3), "{r}");
    let r = f.call("log", event("log", "get-interactions").sub("bob")).await.expect(200, None);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(0));
    let r = f.call("log", event("log", "get-interactions").query("platform=zapier")).await.expect(200, None);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(0));
    f.call("log", event("log", "get-interactions").query("limit=500")).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn bodies_arrive_base64_and_without_content_type() {
    let f = Functions::new();
    use base64::Engine;
    let mut ev = event("log", "post-interactions").field("interaction_id", Value::Null);
    let raw = ev.0["body"].as_str().expect("body").to_owned();
    ev.0["body"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
    ev.0["isBase64Encoded"] = true.into();
    ev.0["headers"].as_object_mut().expect("headers").remove("content-type");
    f.call("log", ev).await.expect(201, None);
    // Not JSON: our 400.
    let mut ev = event("log", "post-interactions");
    ev.0["body"] = "{not json".into();
    f.call("log", ev).await.expect(400, Some("invalid_json"));
}

#[tokio::test]
async fn groups_claim_as_api_gateway_string_and_json_text() {
    let f = Functions::new();
    let export = || event("export", "get-feedback-export");
    // The events carry API Gateway's form "[admin]".
    f.call("export", export()).await.expect(200, None);
    f.call("export", export().claim("cognito:groups", Some("[service admin]"))).await.expect(200, None);
    // A JSON array rendered as text (some issuers) reads the same.
    f.call("export", export().claim("cognito:groups", Some(r#"["admin","service"]"#))).await.expect(200, None);
    // Wrong role: 403; no groups at all: a user, 403.
    f.call("export", export().claim("cognito:groups", Some("[service]"))).await.expect(403, Some("forbidden"));
    f.call("export", export().claim("cognito:groups", None)).await.expect(403, Some("forbidden"));
    // Claims without `sub` are no identity.
    f.call("export", export().claim("sub", None)).await.expect(401, Some("unauthenticated"));
    // A JSON array *value* never reaches us: API Gateway sends claims as strings, and lambda_http
    // rejects such an event before any handler runs (the array form is the local JWT's, tested
    // in http::auth).
    let mut ev = export();
    ev.0["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = json!(["admin"]);
    assert!(lambda_http::request::from_str(&ev.0.to_string()).is_err());
}

#[tokio::test]
async fn groups_claim_name_is_configurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_string_lossy().into_owned();
    let config = Config::from_lookup(|k| match k {
        "COLLECTOR_DATA_DIR" => Some(data.clone()),
        "COLLECTOR_GROUPS_CLAIM" => Some("roles".into()),
        _ => None,
    })
    .expect("config");
    let router = routes::export(HttpState::lambda(App::open_local(config).expect("open")));
    let ev = event("export", "get-feedback-export").claim("cognito:groups", None).claim("roles", Some("[admin]"));
    let req = lambda_http::request::from_str(&ev.0.to_string()).expect("event");
    assert_eq!(router.oneshot(req).await.expect("infallible").status(), StatusCode::OK);
}

#[tokio::test]
async fn submit_and_validate_functions() {
    let f = Functions::new();
    let id = f.logged().await;
    let fb = || event("submit", "post-feedback-submit").field("interaction_id", id.clone().into());
    f.call("submit", fb().who(None)).await.expect(401, Some("unauthenticated"));
    f.call("submit", fb().sub("bob")).await.expect(404, Some("not_found"));
    let r = f.call("submit", fb()).await.expect(201, None);
    assert_eq!(r["interaction_id"], id.as_str());
    f.call("submit", fb().field("feedback_type", "meh".into())).await.expect(400, Some("validation_failed"));

    let v = || event("validate-log", "post-workflow-validate").field("interaction_id", id.clone().into());
    let r = f.call("validate-log", v()).await.expect(200, None);
    assert_eq!(r["passed"], true);
    assert_eq!(r["interaction_id"], id.as_str());
    f.call("validate-log", v().sub("bob")).await.expect(404, Some("not_found"));
    f.call("validate-log", v().who(None)).await.expect(401, Some("unauthenticated"));
}

#[tokio::test]
async fn stats_readiness_and_public_routes() {
    let f = Functions::new();
    f.logged().await;
    f.call("stats", event("stats", "get-feedback-stats").who(None)).await.expect(401, Some("unauthenticated"));
    let r = f.call("stats", event("stats", "get-feedback-stats")).await.expect(200, None);
    assert_eq!(r["overview"]["total_records"], 1);
    assert_eq!(r["by_platform"]["n8n"]["total"], 1);
    // Public: no authorizer on these routes.
    let r = f.call("stats", event("stats", "get-health")).await.expect(200, None);
    assert_eq!(r["status"], "ok");
    let r = f.call("stats", event("stats", "get-openapi")).await.expect(200, None);
    assert!(r["paths"]["/api/feedback/stats"].is_object());

    let r = f.call("readiness", event("readiness", "get-feedback-readiness")).await.expect(200, None);
    assert_eq!(r["platform"], "n8n");
    assert_eq!(r["metrics"]["total_examples"], 1);
    f.call("readiness", event("readiness", "get-feedback-readiness").path("/api/feedback/readiness/Bad!"))
        .await
        .expect(400, Some("validation_failed"));
    // The admin dashboard: public (no authorizer on these routes), a strict policy.
    for (name, ty) in
        [("get-admin", "text/html"), ("get-admin-script", "text/javascript"), ("get-admin-style", "text/css")]
    {
        let r = f.call("readiness", event("readiness", name)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(content_type.starts_with(ty), "{name}: {content_type}");
        assert_eq!(r.headers["content-security-policy"], collector::http::dashboard::CONTENT_SECURITY_POLICY);
    }
}

#[tokio::test]
async fn export_function() {
    let f = Functions::new();
    f.logged().await;
    f.call("export", event("export", "get-feedback-export").who(Some("user"))).await.expect(403, Some("forbidden"));
    let r = f.call("export", event("export", "get-feedback-export")).await;
    r.expect(200, None);
    assert_eq!(r.headers["content-type"], "application/jsonl");
    let lines = r.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["messages"][1]["content"], "Post new webhook leads to #sales on Slack");

    // Its manifest (CONTRACT 4a), listed and read by id from the same function.
    let id = r.headers["x-export-id"].to_str().expect("x-export-id").to_owned();
    f.call("export", event("export", "get-exports").who(None)).await.expect(401, Some("unauthenticated"));
    f.call("export", event("export", "get-exports").who(Some("user"))).await.expect(403, Some("forbidden"));
    let list = f.call("export", event("export", "get-exports")).await.expect(200, None);
    assert_eq!(list["items"][0]["export_id"], id.as_str());
    assert_eq!(list["items"][0]["lines"], 1);
    assert_eq!(list["next_cursor"], Value::Null);
    let one = || event("export", "get-export").path(&format!("/api/exports/{id}"));
    f.call("export", one().who(Some("user"))).await.expect(403, Some("forbidden"));
    let m = f.call("export", one()).await.expect(200, None);
    assert_eq!((m["export_id"].as_str(), m["bytes"].as_u64()), (Some(id.as_str()), Some(r.body.len() as u64)));
    f.call("export", event("export", "get-export")).await.expect(404, Some("not_found"));
}

#[tokio::test]
async fn delete_function() {
    let f = Functions::new();
    let id = f.logged().await;
    let one = || event("delete", "delete-feedback-data-one").path(&format!("/api/feedback/data/{id}"));
    f.call("delete", one().who(None)).await.expect(401, Some("unauthenticated"));
    f.call("delete", one().sub("bob")).await.expect(404, Some("not_found"));
    f.call("delete", one().who(Some("service"))).await.expect(403, Some("forbidden"));
    let r = f.call("delete", one()).await.expect(200, None);
    assert_eq!(r["deleted"]["interactions"], 1);
    assert_eq!(r["affected_exports"], json!([]), "no export held it");
    f.call("delete", one()).await.expect(404, Some("not_found"));

    f.logged().await;
    let r = f.call("delete", event("delete", "get-me-data")).await;
    r.expect(200, None);
    assert_eq!(r.lines().len(), 1);
    f.call("delete", event("delete", "delete-feedback-data-user").who(Some("user")))
        .await
        .expect(403, Some("forbidden"));
    let r = f.call("delete", event("delete", "delete-feedback-data-user")).await.expect(200, None);
    assert_eq!(r["deleted"]["interactions"], 1);
    let r = f.call("delete", event("delete", "delete-me-data")).await.expect(200, None);
    assert_eq!(r["deleted"]["interactions"], 0);
    f.call("delete", event("delete", "delete-me-data").who(Some("admin"))).await.expect(403, Some("forbidden"));
}

#[tokio::test]
async fn curation_and_archive_run_functions() {
    let f = Functions::new();
    f.call("curation", event("curation", "post-examples").who(Some("user"))).await.expect(403, Some("forbidden"));
    let r = f.call("curation", event("curation", "post-examples")).await.expect(201, None);
    let ex = r["example_id"].as_str().expect("example_id").to_owned();
    let r = f.call("curation", event("curation", "get-examples")).await.expect(200, None);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(1));
    let r = f
        .call("curation", event("curation", "delete-example").path(&format!("/api/examples/{ex}")))
        .await
        .expect(200, None);
    assert_eq!(r["deleted"]["examples"], 1);
    f.call("curation", event("curation", "delete-example")).await.expect(404, Some("not_found"));
    f.call("curation", event("curation", "post-training-metrics")).await.expect(201, None);
    let r = f.call("curation", event("curation", "get-training-metrics")).await.expect(200, None);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(1));

    f.call("archive-run", event("archive-run", "post-feedback-archive").who(Some("service")))
        .await
        .expect(403, Some("forbidden"));
    let r = f.call("archive-run", event("archive-run", "post-feedback-archive")).await.expect(200, None);
    assert_eq!(r["dry_run"], true);
}

/// CONTRACT 7a on the Lambda path: the curation function lists and adds platforms; the log
/// function refuses a platform until an admin has added it.
#[tokio::test]
async fn platforms_on_the_curation_function() {
    let f = Functions::new();
    let r = f.call("curation", event("curation", "get-platforms")).await.expect(200, None);
    let names: Vec<&str> =
        r["items"].as_array().expect("items").iter().filter_map(|i| i["platform"].as_str()).collect();
    assert_eq!((names, r["max_platforms"].as_u64()), (vec!["n8n", "zapier", "make"], Some(32)));
    f.call("curation", event("curation", "get-platforms").who(None)).await.expect(401, Some("unauthenticated"));

    let airflow =
        || event("log", "post-interactions").field("interaction_id", Value::Null).field("platform", json!("airflow"));
    let r = f.call("log", airflow()).await.expect(400, Some("validation_failed"));
    assert_eq!(r["error"]["details"][0]["field"], "platform");
    assert!(r["error"]["details"][0]["message"].as_str().is_some_and(|m| m.contains("make, n8n, zapier")), "{r}");

    f.call("curation", event("curation", "post-platforms").who(Some("user"))).await.expect(403, Some("forbidden"));
    f.call("curation", event("curation", "post-platforms").who(Some("service"))).await.expect(403, Some("forbidden"));
    let r = f.call("curation", event("curation", "post-platforms")).await.expect(201, None);
    assert_eq!(r, json!({"platform": "airflow", "added": true}));
    let r = f.call("curation", event("curation", "post-platforms")).await.expect(200, None);
    assert_eq!(r, json!({"platform": "airflow", "added": false}));
    f.call("curation", event("curation", "post-platforms").field("platform", json!("Air Flow")))
        .await
        .expect(400, Some("validation_failed"));
    f.call("log", airflow()).await.expect(201, None);
    let r = f.call("curation", event("curation", "get-platforms")).await.expect(200, None);
    assert_eq!(r["items"][3], json!({"platform": "airflow", "configured": false, "validator": false}));
}

#[tokio::test]
async fn a_function_answers_only_its_routes() {
    let f = Functions::new();
    // A stats event sent to the submit function: our 404 body, not axum's empty one.
    f.call("submit", event("stats", "get-feedback-stats")).await.expect(404, Some("not_found"));
    // Its own path with another method: 405.
    let mut ev = event("submit", "post-feedback-submit");
    ev.0["requestContext"]["http"]["method"] = "GET".into();
    f.call("submit", ev).await.expect(405, Some("method_not_allowed"));
    // Bearer headers mean nothing on Lambda: only the authorizer's claims count.
    let mut ev = event("stats", "get-feedback-stats").who(None);
    ev.0["headers"]["authorization"] = "Bearer whatever".into();
    f.call("stats", ev).await.expect(401, Some("unauthenticated"));
}

/// On Lambda, an export over 5 MiB goes to the bucket (S3 on the emulator) and the answer is a
/// 303 to a presigned URL that serves the whole file; a small one is answered inline. The hot
/// records sit in the embedded store (only the object store matters here).
/// Functions over the embedded hot store and S3 on the emulator; None when it is not running.
async fn with_bucket() -> Option<(Functions, collector::testing::Emulator, collector::testing::Stack)> {
    let emu = collector::testing::Emulator::connect().await?;
    let stack = emu.create_stack().await;
    let (dir, config) = data_dir_config();
    let hot = collector::adapters::sqlite::SqliteStore::open(&dir.path().join("hot.sqlite3")).expect("sqlite");
    let objects = collector::adapters::s3::S3Store::new(emu.s3(), stack.bucket.clone());
    let app = App::new(config, std::sync::Arc::new(hot), std::sync::Arc::new(objects));
    Some((Functions { state: HttpState::lambda(app), _dir: dir }, emu, stack))
}

#[tokio::test]
async fn large_exports_spill_to_the_bucket_with_a_303() {
    let Some((f, emu, stack)) = with_bucket().await else { return };
    // An archive object with an unreadable line: the spilled export's 303 reports it too.
    poisoned_archive(&f.state.app).await;

    // One record: inline.
    let big = "lorem ipsum dolor sit amet ".repeat(4 * 1024); // ~108 KiB of assistant text
    let log = |i: usize| {
        event("log", "post-interactions")
            .field("interaction_id", Value::Null)
            .field("kind", "conversation".into())
            .field("workflow", Value::Null)
            .field("user_message", format!("question {i}").into())
            .field("ai_response", big.clone().into())
    };
    f.call("log", log(0)).await.expect(201, None);
    let r = f.call("export", event("export", "get-feedback-export")).await;
    r.expect(200, None);
    assert_eq!(r.lines().len(), 1);

    // Over 5 MiB: 303 to the file (archived records first, then the hot ones).
    for i in 1..52 {
        f.call("log", log(i)).await.expect(201, None);
    }
    let r = f.call("export", event("export", "get-feedback-export").query("format=openai&include_archived=true")).await;
    let j = r.expect(303, None);
    let location = r.headers["location"].to_str().expect("location").to_owned();
    assert_eq!(j["location"], location.as_str());
    assert!(j["bytes"].as_i64().unwrap_or(0) > 5 * 1024 * 1024, "{j}");
    assert_eq!(r.headers["x-export-lines"], "53");
    assert_eq!(r.headers["x-archive-skipped-lines"], "1");
    assert!(r.headers["content-disposition"].to_str().unwrap_or("").contains("training_data_n8n_"));
    let (status, body) = http_get(&location).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body[..body.len().min(500)]));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&body).lines().map(|l| serde_json::from_str(l).expect("JSONL")).collect();
    assert_eq!(lines.len(), 53);
    assert_eq!(lines[0]["messages"][1]["content"], "archived 0");
    assert_eq!(lines[52]["messages"][1]["content"], "question 51");
    // The 303 names the export's manifest, whose hash and size are the file's.
    let id = r.headers["x-export-id"].to_str().expect("x-export-id").to_owned();
    let m = f.call("export", event("export", "get-export").path(&format!("/api/exports/{id}"))).await.expect(200, None);
    use sha2::Digest as _;
    assert_eq!(m["sha256"], hex::encode(sha2::Sha256::digest(&body)).as_str());
    assert_eq!((m["bytes"].as_u64(), m["lines"].as_u64()), (Some(body.len() as u64), Some(53)));
    assert_eq!(m["filters"]["include_archived"], true);
    let keys = emu.s3().list_objects_v2().bucket(&stack.bucket).prefix("exports/").send().await.expect("list");
    assert_eq!(keys.contents().len(), 1);
    // STANDARD, not STANDARD_IA (which its size would pick): it expires in 7 days, and IA
    // bills 30. S3 leaves the header out for STANDARD.
    let key = keys.contents()[0].key().expect("key");
    let head = emu.s3().head_object().bucket(&stack.bucket).key(key).send().await.expect("head");
    assert!(matches!(head.storage_class().map(|c| c.as_str()), None | Some("STANDARD")), "{:?}", head.storage_class());
}

/// Under 5 MiB, but Lambda's JSON payload would carry the body escaped (each `\"` of the JSONL
/// becomes `\\\"`): it would not fit in 6 MB, so it spills too.
#[tokio::test]
async fn exports_that_escape_past_the_lambda_payload_spill_too() {
    let Some((f, _emu, _stack)) = with_bucket().await else { return };
    let quotes = "\"".repeat(50 * 1024);
    for i in 0..34 {
        let ev = event("log", "post-interactions")
            .field("interaction_id", Value::Null)
            .field("kind", "conversation".into())
            .field("workflow", Value::Null)
            .field("user_message", format!("q{i}").into())
            .field("ai_response", quotes.clone().into());
        f.call("log", ev).await.expect(201, None);
    }
    let r = f.call("export", event("export", "get-feedback-export")).await;
    let j = r.expect(303, None);
    let bytes = j["bytes"].as_u64().expect("bytes") as usize;
    assert!(bytes < spill::SPILL_OVER_BYTES && bytes > 3 * 1024 * 1024, "{j}");
    let (status, body) = http_get(j["location"].as_str().expect("location")).await;
    assert_eq!((status, body.len()), (200, bytes));
}

/// A record too large for Lambda's answer (with its links, it can reach tens of MiB) and a
/// listing page holding it spill like an export: 303 to a presigned URL serving the JSON the
/// function would have answered. A small record is answered inline.
#[tokio::test]
async fn a_record_too_large_for_lambda_spills_with_a_303() {
    let Some((f, _emu, _stack)) = with_bucket().await else { return };
    let small = f.call("log", event("log", "post-interactions").field("interaction_id", Value::Null)).await;
    let small_id = small.expect(201, None)["interaction_id"].as_str().expect("id").to_owned();
    let r = f.call("log", event("log", "get-interaction").path(&format!("/api/interactions/{small_id}"))).await;
    assert_eq!(r.expect(200, None)["interaction_id"], small_id.as_str());

    let text = "lorem ipsum ".repeat(480 * 1024); // 5.6 MiB: a 6 MiB body, over the 5 MiB answer
    let ev = event("log", "post-interactions")
        .field("interaction_id", Value::Null)
        .field("ai_response", text.clone().into());
    let id = f.call("log", ev).await.expect(201, None)["interaction_id"].as_str().expect("id").to_owned();
    let r = f.call("log", event("log", "get-interaction").path(&format!("/api/interactions/{id}"))).await;
    let j = r.expect(303, None);
    let location = r.headers["location"].to_str().expect("location").to_owned();
    assert_eq!(j["location"], location.as_str());
    let (status, body) = http_get(&location).await;
    assert_eq!(status, 200);
    let rec: Value = serde_json::from_slice(&body).expect("the record's JSON");
    assert_eq!((rec["interaction_id"].as_str(), rec["ai_response"].as_str()), (Some(id.as_str()), Some(text.as_str())));
    assert_eq!(rec["feedback"], json!([]), "the whole record, links included");

    // A page always holds its first record, however large; the next one waits for the next page.
    let r = f.call("log", event("log", "get-interactions")).await;
    let j = r.expect(303, None);
    let (status, body) = http_get(j["location"].as_str().expect("location")).await;
    assert_eq!(status, 200);
    let page: Value = serde_json::from_slice(&body).expect("the page's JSON");
    let ids: Vec<&str> =
        page["items"].as_array().expect("items").iter().filter_map(|i| i["interaction_id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()], "the newest record alone");
    let next = page["next_cursor"].as_str().expect("a next page").to_owned();
    let r = f.call("log", event("log", "get-interactions").query(&format!("cursor={next}"))).await;
    assert_eq!(r.expect(200, None)["items"][0]["interaction_id"], small_id.as_str(), "then the older one, inline");
}

/// Two old records of alice archived into one object, then the second one's line cut in half:
/// an unreadable line among good ones. Returns (the good id, the bad id).
async fn poisoned_archive(app: &App) -> (String, String) {
    use std::io::{Read, Write};
    let service = collector::domain::types::Caller {
        sub: collector::domain::types::UserId::parse("svc").expect("sub"),
        role: collector::domain::types::Role::Service,
    };
    let mut ids = Vec::new();
    for i in 0..2 {
        let created = chrono::Utc::now() - chrono::Duration::days(45) + chrono::Duration::seconds(i);
        let body = json!({"user_id": "alice", "platform": "n8n", "user_message": format!("archived {i}"), "ai_response": "ok",
                          "created_at": created.to_rfc3339()});
        match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("log") {
            collector::app::IngestOutcome::Created(r) => ids.push(r.interaction_id.to_string()),
            other => panic!("not created: {other:?}"),
        }
    }
    let req = collector::domain::input::ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
    assert_eq!(app.archive(&req, None, None).await.expect("archive").archived_records, 2);
    let key = app.hot.list_archive_objects(None).await.expect("rows")[0].object_key.clone();
    let mut raw = String::new();
    flate2::read::GzDecoder::new(app.objects.get(&key).await.expect("get").as_slice())
        .read_to_string(&mut raw)
        .expect("gzip");
    let cut: String = raw
        .lines()
        .map(|l| if l.contains(&ids[1]) { format!("{}\n", &l[..l.len() / 2]) } else { format!("{l}\n") })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(cut.as_bytes()).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    app.objects.put(&key, bytes, collector::domain::archive::StorageClass::Standard).await.expect("put");
    (ids[0].clone(), ids[1].clone())
}

/// The export and delete functions answer from a poisoned archive object: its other records,
/// and `X-Archive-Skipped-Lines` (kept on a 303 when the answer spills, above).
#[tokio::test]
async fn a_poisoned_archive_line_is_reported_by_the_functions() {
    let f = Functions::new();
    let (good, _bad) = poisoned_archive(&f.state.app).await;
    let r = f.call("export", event("export", "get-feedback-export").query("format=openai&include_archived=true")).await;
    r.expect(200, None);
    assert_eq!(r.lines().len(), 1);
    assert_eq!(r.headers["x-archive-skipped-lines"], "1");
    let r = f.call("delete", event("delete", "get-me-data")).await;
    r.expect(200, None);
    assert_eq!(r.lines().len(), 1);
    assert_eq!(r.lines()[0]["interaction_id"], good.as_str());
    assert_eq!(r.headers["x-archive-skipped-lines"], "1");
    let r = f.call("delete", event("delete", "delete-me-data")).await;
    assert_eq!(r.expect(200, None)["deleted"]["archived_records"], 2, "the unreadable record is deleted too");
}

/// A plain HTTP/1.1 GET (what `curl -L` does with the Location), without credentials.
async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL on the emulator");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked answer: {head}");
    (status, raw[split + 4..].to_vec())
}
