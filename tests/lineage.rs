//! Dataset lineage (CONTRACT section 4a) over HTTP, on both backends: every export that writes
//! a line records a manifest named in `X-Export-Id`, admins list and read the manifests, and
//! every DELETE answer names the exports that held a deleted record (`affected_exports`).

use std::sync::Arc;

use collector::app::App;
use collector::config::Config;
use collector::http::{self, HttpState};
use collector_e2e::*;
use serde_json::{Value, json};

const A: Who = Who::User("alice");
const B: Who = Who::User("bob");

fn header(r: &Resp, name: &str) -> Option<String> {
    r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Export as the admin: the body, and the manifest the answer names (checked against the body).
async fn export(t: &TestApp, query: &str) -> (Resp, Value) {
    let r = t.get(&format!("/api/feedback/export/n8n{query}"), Who::Admin).await;
    r.expect(200, None);
    let id =
        header(&r, "x-export-id").unwrap_or_else(|| panic!("no X-Export-Id on an export of {} lines", r.lines().len()));
    let m = t.get(&format!("/api/exports/{id}"), Who::Admin).await;
    m.expect(200, None);
    let m = m.json();
    assert_eq!(m["export_id"], id.as_str());
    assert_eq!(m["sha256"], sha256_hex(&r.body).as_str(), "the hash is of the bytes served");
    assert_eq!(m["bytes"], r.body.len() as u64);
    assert_eq!(m["lines"], r.lines().len() as u64);
    assert_eq!(m["lines"].to_string(), header(&r, "x-export-lines").unwrap_or_default());
    assert_eq!((m["caller"].as_str(), m["platform"].as_str()), (Some("root"), Some("n8n")));
    (r, m)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().expect("id").to_owned())
        .collect()
}

async fn lineage(t: &TestApp) {
    // Nothing to export: 200, empty, no manifest.
    let r = t.get("/api/feedback/export/n8n", Who::Admin).await;
    r.expect(200, None);
    assert!(r.body.is_empty());
    assert_eq!(header(&r, "x-export-id"), None);
    let list = t.get("/api/exports", Who::Admin).await;
    list.expect(200, None);
    assert_eq!(list.json(), json!({"items": [], "next_cursor": null}));

    let _a1 = t.log(A, interaction("n8n", "alice one")).await;
    let _a2 = t.log(A, interaction("n8n", "alice two")).await;
    let b1 = t.log(B, interaction("n8n", "bob one")).await;
    let (_, e1) = export(t, "").await;
    assert_eq!(e1["lines"], 3);
    assert_eq!(e1["format"], "openai");
    assert!(e1.get("split").is_none(), "no split asked: {e1}");
    assert_eq!(e1["filters"]["success_only"], true);
    assert_eq!(e1["filters"]["limit"], Value::Null);
    assert!(e1.get("interaction_ids").is_none() && e1.get("held").is_none(), "held ids are stored, not listed: {e1}");
    // The oldest two (alice's), one side of a split that puts everyone on train.
    let (_, e2) = export(t, "?split=train&validation_fraction=0&limit=2").await;
    assert_eq!(e2["lines"], 2);
    assert_eq!(e2["split"], json!({"side": "train", "validation_fraction": 0.0}));
    assert_eq!(e2["filters"]["limit"], 2);
    let (e1_id, e2_id) = (e1["export_id"].as_str().unwrap().to_owned(), e2["export_id"].as_str().unwrap().to_owned());

    // Listed newest first, paged.
    let list = t.get("/api/exports", Who::Admin).await.json();
    assert_eq!(list["items"], json!([e2.clone(), e1.clone()]));
    assert_eq!(list["next_cursor"], Value::Null);
    let page = t.get("/api/exports?limit=1", Who::Admin).await.json();
    assert_eq!(
        (page["items"][0]["export_id"].as_str(), page["next_cursor"].as_str()),
        (Some(e2_id.as_str()), Some(e2_id.as_str()))
    );
    let page = t.get(&format!("/api/exports?limit=1&cursor={e2_id}"), Who::Admin).await.json();
    assert_eq!(page["items"], json!([e1.clone()]));
    let last = t.get(&format!("/api/exports?limit=1&cursor={e1_id}"), Who::Admin).await.json();
    assert_eq!(last, json!({"items": [], "next_cursor": null}));

    // Who may look, and what is not there.
    t.get("/api/exports", Who::Anon).await.expect(401, Some("unauthenticated"));
    t.get("/api/exports", A).await.expect(403, Some("forbidden"));
    t.get("/api/exports", Who::Service).await.expect(403, Some("forbidden"));
    t.get(&format!("/api/exports/{e1_id}"), Who::Anon).await.expect(401, Some("unauthenticated"));
    t.get(&format!("/api/exports/{e1_id}"), A).await.expect(403, Some("forbidden"));
    t.get(&format!("/api/exports/{}", uuid::Uuid::now_v7()), Who::Admin).await.expect(404, Some("not_found"));
    t.get("/api/exports/not-a-uuid", Who::Admin).await.expect(404, Some("not_found"));
    t.get("/api/exports?limit=0", Who::Admin).await.expect(400, Some("validation_failed"));
    t.get("/api/exports?limit=101", Who::Admin).await.expect(400, Some("validation_failed"));
    t.get("/api/exports?cursor=nope", Who::Admin).await.expect(400, Some("validation_failed"));

    // Deletes name the exports that held what they delete.
    let r = t.delete(&format!("/api/feedback/data/{b1}"), B).await;
    r.expect(200, None);
    assert_eq!(ids(&r.json()["affected_exports"]), std::slice::from_ref(&e1_id), "bob's record was in the first only");
    let r = t.delete("/api/me/data", A).await;
    r.expect(200, None);
    assert_eq!(r.json()["deleted"]["interactions"], 2);
    assert_eq!(ids(&r.json()["affected_exports"]), [e2_id.clone(), e1_id.clone()], "newest first");
    // Erased: the exports no longer hold alice's ids; a second erasure finds nothing.
    let r = t.delete("/api/me/data", A).await;
    assert_eq!(r.json()["affected_exports"], json!([]));
    // The manifests keep what was served.
    assert_eq!(t.get(&format!("/api/exports/{e1_id}"), Who::Admin).await.json(), e1);
    assert_eq!(t.get(&format!("/api/exports/{e2_id}"), Who::Admin).await.json(), e2);

    // An admin's delete-all of a user.
    t.log(Who::User("carol"), interaction("n8n", "carol one")).await;
    let (_, e3) = export(t, "").await;
    assert_eq!(e3["lines"], 1, "alice's and bob's records are gone");
    let r = t.delete("/api/feedback/data?user_id=carol", Who::Admin).await;
    r.expect(200, None);
    assert_eq!(ids(&r.json()["affected_exports"]), [e3["export_id"].as_str().unwrap().to_owned()]);

    // A record no export held: an empty list.
    let d1 = t.log(Who::User("dave"), interaction("n8n", "dave one")).await;
    let r = t.delete(&format!("/api/feedback/data/{d1}"), Who::Admin).await;
    r.expect(200, None);
    assert_eq!(r.json()["affected_exports"], json!([]));

    // Archived records: exported from their object, and deleted from it.
    let mut old = interaction("n8n", "erin, long ago");
    old["user_id"] = "erin".into();
    old["created_at"] = days_ago(40).into();
    let e_old = t.log(Who::Service, old).await;
    t.post("/api/feedback/archive", Who::Admin, json!({})).await.expect(200, None);
    let (r, e4) = export(t, "?include_archived=true").await;
    assert_eq!(r.lines().len(), 1);
    assert_eq!(e4["filters"]["include_archived"], true);
    let r = t.delete(&format!("/api/feedback/data/{e_old}"), Who::Admin).await;
    r.expect(200, None);
    assert_eq!(r.json()["deleted"]["archived_records"], 1);
    assert_eq!(ids(&r.json()["affected_exports"]), [e4["export_id"].as_str().unwrap().to_owned()]);
}

#[tokio::test]
async fn manifests_and_affected_exports_on_the_embedded_store() {
    let t = spawn_app(&[]).await;
    lineage(&t).await;
}

/// The same over DynamoDB and S3 (the emulator): the whole API served locally over the AWS
/// adapters.
#[tokio::test]
async fn manifests_and_affected_exports_on_dynamodb() {
    use collector::adapters::dynamodb::DynamoStore;
    use collector::adapters::s3::S3Store;
    use collector::testing::Emulator;
    let Some(emu) = Emulator::connect().await else { return };
    let stack = emu.create_stack().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let config = Config::from_lookup(|k| match k {
        "COLLECTOR_DATA_DIR" => Some(data.clone()),
        "COLLECTOR_JWT_SECRET" => Some(SECRET.to_owned()),
        _ => None,
    })
    .expect("config");
    let objects = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
    let hot = DynamoStore::new(emu.dynamodb(), stack.table.clone(), stack.archive_table.clone(), objects.clone(), 30);
    let app = App::new(config, Arc::new(hot), objects);
    let router = http::router(HttpState::local(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let t = TestApp { base: format!("http://{addr}"), client: reqwest::Client::new(), app, dir };
    lineage(&t).await;
}
