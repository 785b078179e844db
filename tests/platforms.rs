//! CONTRACT section 7a, Platforms, end to end: the real router on a real port, over the
//! embedded store (and, with the emulator, two apps over one DynamoDB table as two Lambdas).

use std::sync::Arc;

use collector::app::App;
use collector::config::Config;
use collector::http::{self, HttpState};
use collector_e2e::*;
use reqwest::Method;
use serde_json::{Value, json};

const A: Who = Who::User("alice");

/// The fields of a 400's details, and the message on `platform`.
fn details(r: &Resp) -> (Vec<String>, String) {
    r.expect(400, Some("validation_failed"));
    let d = r.json()["error"]["details"].clone();
    let fields =
        d.as_array().expect("details").iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect();
    let message = d
        .as_array()
        .expect("details")
        .iter()
        .find(|e| e["field"] == "platform")
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned());
    (fields, message.unwrap_or_default())
}

#[track_caller]
fn names_the_known(r: &Resp, known: &str) {
    let (fields, message) = details(r);
    assert!(fields.contains(&"platform".to_owned()), "{fields:?}");
    assert!(message.contains(known), "{message} should name {known}");
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["platform"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Serve `app` on a port of its own (another process on the same data).
async fn serve(app: App) -> String {
    let router = http::router(HttpState::local(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn config_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Config {
    let data = dir.join("data").display().to_string();
    let vars: std::collections::HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| match k {
        "COLLECTOR_DATA_DIR" => Some(data.clone()),
        "COLLECTOR_JWT_SECRET" => Some(SECRET.into()),
        _ => vars.get(k).cloned(),
    })
    .expect("config")
}

/// A request to another server than `t`'s, with `t`'s client and tokens.
async fn call_at(t: &TestApp, base: &str, method: Method, path: &str, admin: bool, body: Option<Value>) -> Resp {
    let tok = if admin { token("root", &["admin"]) } else { token("alice", &[]) };
    let mut req = t.client.request(method, format!("{base}{path}")).bearer_auth(tok);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    Resp { status: r.status(), headers: r.headers().clone(), body: r.bytes().await.expect("body").to_vec() }
}

#[tokio::test]
async fn every_request_naming_an_unknown_platform_is_refused_naming_the_known_ones() {
    let t = spawn_app(&[]).await;
    let known = "make, n8n, zapier";
    let mut svc = interaction("airflow", "x");
    svc["user_id"] = json!("alice");
    names_the_known(&t.post("/api/interactions", A, interaction("airflow", "x")).await, known);
    names_the_known(
        &t.post("/api/workflow/validate", A, json!({"platform": "airflow", "workflow": {"a": 1}})).await,
        known,
    );
    names_the_known(
        &t.post("/api/examples", Who::Admin, json!({"platform": "airflow", "user_message": "m", "ai_response": "r"}))
            .await,
        known,
    );
    names_the_known(
        &t.post("/api/training-metrics", Who::Admin, json!({"platform": "airflow", "model": "m", "dataset_size": 1}))
            .await,
        known,
    );
    names_the_known(&t.get("/api/feedback/export/airflow", Who::Admin).await, known);
    names_the_known(&t.get("/api/feedback/readiness/airflow", A).await, known);
    names_the_known(&t.get("/api/interactions?platform=airflow", A).await, known);
    names_the_known(&t.get("/api/examples?platform=airflow", Who::Admin).await, known);
    names_the_known(&t.get("/api/training-metrics?platform=airflow", Who::Admin).await, known);
    names_the_known(
        &t.post("/api/feedback/archive", Who::Admin, json!({"platform": "airflow", "dry_run": true})).await,
        known,
    );
    // A batch item fails alone.
    let mut good = interaction("n8n", "ok");
    good["user_id"] = json!("alice");
    let r = t.post("/api/interactions/batch", Who::Service, json!({"interactions": [good, svc]})).await.json();
    assert_eq!((r["results"][0]["status"].as_u64(), r["results"][1]["status"].as_u64()), (Some(201), Some(400)));
    assert_eq!(r["results"][1]["error"]["details"][0]["field"], "platform");
    // Every problem at once: the unknown platform and the body's others.
    let r = t
        .post("/api/interactions", A, json!({"platform": "airflow", "user_message": "", "processing_time_ms": -5}))
        .await;
    assert_eq!(details(&r).0, ["platform", "user_message", "processing_time_ms"]);
    // A malformed slug is reported once, as a slug problem.
    let r = t.post("/api/interactions", A, json!({"platform": "Air Flow", "user_message": "x"})).await;
    let (fields, message) = details(&r);
    assert_eq!(fields, ["platform"]);
    assert!(message.contains("slug"), "{message}");
    // Nothing was stored but the batch's good item.
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["overview"]["total_records"], 1);
}

#[tokio::test]
async fn admins_add_platforms_and_everyone_sees_them() {
    let t = spawn_app(&[]).await;
    let list = t.get("/api/platforms", A).await;
    list.expect(200, None);
    assert_eq!(
        list.json(),
        json!({"items": [{"platform": "n8n", "configured": true, "validator": true},
                         {"platform": "zapier", "configured": true, "validator": true},
                         {"platform": "make", "configured": true, "validator": true}],
               "max_platforms": 32})
    );
    t.get("/api/platforms", Who::Anon).await.expect(401, Some("unauthenticated"));
    for who in [A, Who::Service] {
        t.post("/api/platforms", who, json!({"platform": "airflow"})).await.expect(403, Some("forbidden"));
    }
    t.post("/api/platforms", Who::Anon, json!({"platform": "airflow"})).await.expect(401, Some("unauthenticated"));
    for bad in [json!({"platform": "Air Flow"}), json!({"platform": ""}), json!({}), json!({"platform": 7})] {
        let r = t.post("/api/platforms", Who::Admin, bad).await;
        assert_eq!(details(&r).0, ["platform"]);
    }

    let r = t.post("/api/platforms", Who::Admin, json!({"platform": "airflow"})).await;
    r.expect(201, None);
    assert_eq!(r.json(), json!({"platform": "airflow", "added": true}));
    let r = t.post("/api/platforms", Who::Admin, json!({"platform": "airflow"})).await;
    r.expect(200, None);
    assert_eq!(r.json(), json!({"platform": "airflow", "added": false}));
    let r = t.post("/api/platforms", Who::Admin, json!({"platform": "n8n"})).await;
    r.expect(200, None);
    assert_eq!(r.json(), json!({"platform": "n8n", "added": false}), "a configured platform is known");

    let list = t.get("/api/platforms", Who::Service).await.json();
    assert_eq!(names(&list), ["n8n", "zapier", "make", "airflow"]);
    assert_eq!(list["items"][3], json!({"platform": "airflow", "configured": false, "validator": false}));

    // The added platform works everywhere; it has no validator, so only the generic checks.
    let id = t.log(A, interaction("airflow", "schedule a DAG")).await;
    let v = t
        .post(
            "/api/workflow/validate",
            A,
            json!({"platform": "airflow", "workflow": {"dag": "x"}, "interaction_id": id}),
        )
        .await;
    v.expect(200, None);
    let v = v.json();
    assert_eq!((v["passed"].as_bool(), v["warnings"][0]["code"].as_str()), (Some(true), Some("unknown_platform")));
    let v = t.post("/api/workflow/validate", A, json!({"platform": "airflow", "workflow": {}})).await.json();
    assert_eq!(v["errors"][0]["code"], "empty_workflow");
    t.get("/api/feedback/readiness/airflow", A).await.expect(200, None);
    t.get("/api/feedback/export/airflow", Who::Admin).await.expect(200, None);
    assert_eq!(t.get("/api/interactions?platform=airflow", A).await.json()["items"].as_array().map(Vec::len), Some(1));
    // The refusal of another slug now names it among the known.
    names_the_known(&t.get("/api/feedback/readiness/tray", A).await, "airflow, make, n8n, zapier");
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let t = spawn_app(&[]).await;
    let doc = t.get("/openapi.json", Who::Anon).await.json();
    let item = &doc["paths"]["/api/platforms"];
    let codes =
        |op: &Value| op["responses"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let (post, get) = (codes(&item["post"]), codes(&item["get"]));
    for c in ["200", "201", "400", "401", "403", "409"] {
        assert!(post.iter().any(|p| p == c), "POST lacks {c}: {post:?}");
    }
    for c in ["200", "401"] {
        assert!(get.iter().any(|p| p == c), "GET lacks {c}: {get:?}");
    }
    assert!(
        doc["components"]["schemas"]["PlatformList"].is_object()
            && doc["components"]["schemas"]["PlatformAddOutcome"].is_object()
    );
}

#[tokio::test]
async fn the_limit_is_max_platforms_in_all() {
    let t = spawn_app(&[("PLATFORMS", "n8n,zapier"), ("MAX_PLATFORMS", "3")]).await;
    assert_eq!(t.get("/api/platforms", A).await.json()["max_platforms"], 3);
    t.post("/api/platforms", Who::Admin, json!({"platform": "make"})).await.expect(201, None);
    let r = t.post("/api/platforms", Who::Admin, json!({"platform": "airflow"})).await;
    r.expect(409, Some("platform_limit"));
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| m.contains("MAX_PLATFORMS")));
    // Known ones still answer 200 at the limit; the refused one stays unknown.
    t.post("/api/platforms", Who::Admin, json!({"platform": "make"})).await.expect(200, None);
    t.post("/api/platforms", Who::Admin, json!({"platform": "n8n"})).await.expect(200, None);
    assert_eq!(names(&t.get("/api/platforms", A).await.json()), ["n8n", "zapier", "make"]);
    names_the_known(&t.post("/api/interactions", A, interaction("airflow", "x")).await, "make, n8n, zapier");
    // Concurrent adds past the room: exactly the room is taken.
    let t = spawn_app(&[("PLATFORMS", "n8n"), ("MAX_PLATFORMS", "4")]).await;
    let adds: Vec<_> = (0..8)
        .map(|i| {
            let req = t.client.post(format!("{}/api/platforms", t.base)).bearer_auth(token("root", &["admin"]));
            tokio::spawn(req.json(&json!({"platform": format!("p{i}")})).send())
        })
        .collect();
    let mut statuses = Vec::new();
    for a in adds {
        statuses.push(a.await.expect("task").expect("request").status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
    assert_eq!(t.get("/api/platforms", A).await.json()["items"].as_array().map(Vec::len), Some(4));
}

/// Two processes on one data folder: an add on one is seen by the other, at once if it never
/// looked, else within a second (its re-read after a miss is rate-limited).
#[tokio::test]
async fn an_add_on_one_process_is_seen_by_another() {
    let t = spawn_app(&[]).await;
    let other = App::open_local(config_with(t.dir.path(), &[])).expect("second process");
    let b = serve(other).await;
    t.post("/api/platforms", Who::Admin, json!({"platform": "airflow"})).await.expect(201, None);
    call_at(&t, &b, Method::POST, "/api/interactions", false, Some(interaction("airflow", "x")))
        .await
        .expect(201, None);

    // B misses "tray" (and so has just read the store); A adds it; B sees it after a second.
    call_at(&t, &b, Method::GET, "/api/feedback/readiness/tray", false, None)
        .await
        .expect(400, Some("validation_failed"));
    t.post("/api/platforms", Who::Admin, json!({"platform": "tray"})).await.expect(201, None);
    tokio::time::sleep(collector::app::REREAD_AT_MOST_EVERY + std::time::Duration::from_millis(100)).await;
    call_at(&t, &b, Method::GET, "/api/feedback/readiness/tray", false, None).await.expect(200, None);
    // GET /api/platforms reads the store: current at once.
    t.post("/api/platforms", Who::Admin, json!({"platform": "zoho"})).await.expect(201, None);
    let list = call_at(&t, &b, Method::GET, "/api/platforms", false, None).await;
    assert_eq!(names(&list.json()), ["n8n", "zapier", "make", "airflow", "tray", "zoho"]);
}

/// Data under a platform that is no longer known (taken out of PLATFORMS) stays readable:
/// stats, reads by id, the user's data, deletes and archive runs cover it; requests that name it
/// are refused until an admin adds it back.
#[tokio::test]
async fn data_of_a_platform_no_longer_known_stays_readable() {
    let t = spawn_app(&[]).await;
    let mut old = interaction("zapier", "old zap");
    old["user_id"] = json!("alice");
    old["created_at"] = json!(days_ago(40));
    let old_id = t.log(Who::Service, old).await;
    let kept = t.log(A, interaction("zapier", "new zap")).await;

    let narrowed =
        App::open_local(config_with(t.dir.path(), &[("PLATFORMS", "n8n,make")])).expect("restart with fewer platforms");
    let base = serve(narrowed).await;
    let stats = call_at(&t, &base, Method::GET, "/api/feedback/stats", false, None).await.json();
    assert_eq!(stats["by_platform"]["zapier"]["total"], 2);
    call_at(&t, &base, Method::GET, &format!("/api/interactions/{kept}"), false, None).await.expect(200, None);
    let mine = call_at(&t, &base, Method::GET, "/api/interactions", false, None).await.json();
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2));
    call_at(&t, &base, Method::GET, "/api/feedback/readiness/zapier", false, None)
        .await
        .expect(400, Some("validation_failed"));
    // A run without a platform archives every platform's old records, known or not.
    let run = call_at(&t, &base, Method::POST, "/api/feedback/archive", true, Some(json!({}))).await.json();
    assert_eq!(run["archived_records"], 1, "{run}");
    assert_eq!(run["archives"][0]["platform"], "zapier");
    call_at(&t, &base, Method::GET, &format!("/api/interactions/{old_id}"), false, None).await.expect(200, None);
    let deleted = call_at(&t, &base, Method::DELETE, &format!("/api/feedback/data/{kept}"), false, None).await.json();
    assert_eq!(deleted["deleted"]["interactions"], 1);
    // Added back by an admin, it can be named again.
    call_at(&t, &base, Method::POST, "/api/platforms", true, Some(json!({"platform": "zapier"})))
        .await
        .expect(201, None);
    let ready = call_at(&t, &base, Method::GET, "/api/feedback/readiness/zapier", false, None).await.json();
    assert_eq!(ready["metrics"]["total_examples"], 1);
}

/// The AWS path: two apps over one DynamoDB table (two Lambdas). The add on one is seen by the
/// other; the limit holds across both.
#[tokio::test]
async fn two_lambdas_share_the_platforms_on_dynamodb() {
    use collector::adapters::dynamodb::DynamoStore;
    use collector::adapters::s3::S3Store;
    use collector::testing::Emulator;
    let Some(emu) = Emulator::connect().await else { return };
    let stack = emu.create_stack().await;
    let t = spawn_app(&[]).await;
    let lambda = |max: &str| {
        let objects = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
        let hot =
            DynamoStore::new(emu.dynamodb(), stack.table.clone(), stack.archive_table.clone(), objects.clone(), 30);
        App::new(config_with(t.dir.path(), &[("MAX_PLATFORMS", max)]), Arc::new(hot), objects)
    };
    let curation = serve(lambda("5")).await;
    let log = serve(lambda("5")).await;
    call_at(&t, &log, Method::POST, "/api/interactions", false, Some(interaction("airflow", "x")))
        .await
        .expect(400, Some("validation_failed"));
    call_at(&t, &curation, Method::POST, "/api/platforms", true, Some(json!({"platform": "airflow"})))
        .await
        .expect(201, None);
    tokio::time::sleep(collector::app::REREAD_AT_MOST_EVERY + std::time::Duration::from_millis(100)).await;
    call_at(&t, &log, Method::POST, "/api/interactions", false, Some(interaction("airflow", "x")))
        .await
        .expect(201, None);
    call_at(&t, &log, Method::POST, "/api/platforms", true, Some(json!({"platform": "airflow"})))
        .await
        .expect(200, None);
    call_at(&t, &log, Method::POST, "/api/platforms", true, Some(json!({"platform": "tray"}))).await.expect(201, None);
    let r = call_at(&t, &curation, Method::POST, "/api/platforms", true, Some(json!({"platform": "zoho"}))).await;
    r.expect(409, Some("platform_limit"));
    let list = call_at(&t, &curation, Method::GET, "/api/platforms", false, None).await.json();
    assert_eq!(names(&list), ["n8n", "zapier", "make", "airflow", "tray"]);
}
