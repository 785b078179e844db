//! The API end to end: the real router on a real port over a fresh embedded store per test.

use collector_e2e::*;
use reqwest::Method;
use serde_json::{Value, json};

const A: Who = Who::User("alice");
const B: Who = Who::User("bob");

#[tokio::test]
async fn public_routes_and_401s() {
    let t = spawn_app(&[]).await;
    let h = t.get("/api/health", Who::Anon).await;
    h.expect(200, None);
    assert_eq!(h.json(), json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "backend": "local"}));
    let doc = t.get("/openapi.json", Who::Anon).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    assert!(doc["paths"]["/api/feedback/export/{platform}"].is_object());
    let ui = t.get("/docs/", Who::Anon).await;
    assert_eq!(ui.status, 200);
    assert!(String::from_utf8_lossy(&ui.body).contains("swagger"), "swagger UI served offline");
    t.get("/api/feedback/stats", Who::Anon).await.expect(401, Some("unauthenticated"));
    let forged = t.client.get(format!("{}/api/feedback/stats", t.base)).bearer_auth("a.b.c").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    // Signed with another secret.
    let other = collector::http::auth::mint_token("other-secret", "alice", &[], "cognito:groups", None).unwrap();
    let r = t.client.get(format!("{}/api/feedback/stats", t.base)).bearer_auth(other).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Expired.
    let expired =
        collector::http::auth::mint_token(SECRET, "alice", &[], "cognito:groups", Some(std::time::Duration::ZERO))
            .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = t.client.get(format!("{}/api/feedback/stats", t.base)).bearer_auth(expired).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // An anonymous body is not read: 401, even for one over the 6 MiB limit (it would be 413).
    let big = vec![b' '; 7 * 1024 * 1024];
    t.raw(Method::POST, "/api/interactions", Who::Anon, big, Some("application/json"))
        .await
        .expect(401, Some("unauthenticated"));
}

#[tokio::test]
async fn unknown_route_and_wrong_method_use_the_error_shape() {
    let t = spawn_app(&[]).await;
    t.get("/api/nope", A).await.expect(404, Some("not_found"));
    t.call(Method::PUT, "/api/interactions", A, Some(json!({}))).await.expect(405, Some("method_not_allowed"));
}

/// HEAD of an identified GET route is 405, as on Lambda (API Gateway routes no HEAD): axum
/// would run the GET handler and drop its body, so a HEAD of an export ran it and recorded its
/// manifest for an answer nobody read. The public routes answer HEAD.
#[tokio::test]
async fn head_runs_no_handler_of_an_identified_route() {
    let t = spawn_app(&[]).await;
    t.log(A, interaction("n8n", "one to export")).await;
    t.call(Method::HEAD, "/api/feedback/export/n8n", Who::Admin, None).await.expect(405, None);
    t.call(Method::HEAD, "/api/interactions", A, None).await.expect(405, None);
    let manifests = t.get("/api/exports", Who::Admin).await.expect(200, None).json();
    assert_eq!(manifests["items"], json!([]), "no export was recorded");
    t.call(Method::HEAD, "/api/health", A, None).await.expect(200, None);
}

/// A path segment that does not decode to UTF-8 names nothing: it gets the JSON answer of an
/// unknown value (axum alone would answer a plain-text 400).
#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_answered_in_json() {
    let t = spawn_app(&[]).await;
    t.get("/api/interactions/%FF", A).await.expect(404, Some("not_found"));
    t.delete("/api/feedback/data/%FF%FE", A).await.expect(404, Some("not_found"));
    t.get("/api/feedback/readiness/%FF", A).await.expect(400, Some("validation_failed"));
    t.get("/api/feedback/export/%C3", Who::Admin).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn ingest_is_idempotent_and_conflicts_on_other_content() {
    let t = spawn_app(&[]).await;
    let id = uuid::Uuid::new_v4().to_string();
    let mut body = interaction("n8n", "build me a flow");
    body["interaction_id"] = json!(id);
    let first = t.post("/api/interactions", A, body.clone()).await;
    first.expect(201, None);
    let j = first.json();
    assert_eq!(j["interaction_id"], id);
    for k in ["created_at", "compressed", "original_bytes", "stored_bytes"] {
        assert!(j.get(k).is_some(), "{k} missing");
    }
    let again = t.post("/api/interactions", A, body.clone()).await;
    again.expect(200, None);
    assert_eq!(again.json(), j, "replay answers the same body");
    body["user_message"] = json!("something else");
    t.post("/api/interactions", A, body).await.expect(409, Some("conflict"));
    let stats = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(stats["overview"]["total_records"], 1, "nothing stored twice");

    // Deleted, then logged again (a late retry): refused, nothing comes back.
    t.delete(&format!("/api/feedback/data/{id}"), A).await.expect(200, None);
    let mut retry = interaction("n8n", "build me a flow");
    retry["interaction_id"] = json!(id);
    t.post("/api/interactions", A, retry).await.expect(409, Some("conflict"));
    t.get(&format!("/api/interactions/{id}"), A).await.expect(404, Some("not_found"));
    let stats = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(stats["overview"]["total_records"], 0, "the deleted record stays deleted");
}

/// A validation whose answer would not fit a Lambda answer (6 MB, escaped) is refused before
/// anything is written: 25,000 empty n8n nodes make three issues each, about 7 MB of report from
/// a 75 KB body (under the report's own 8 MiB cap). Without the check, Lambda failed the
/// answer after the log was stored.
#[tokio::test]
async fn a_validation_whose_answer_would_pass_6_mb_is_refused_and_not_stored() {
    let t = spawn_app(&[]).await;
    let nodes = vec![json!({}); 25_000];
    let body = json!({"platform": "n8n", "workflow": {"nodes": nodes}});
    t.post("/api/workflow/validate", A, body).await.expect(413, Some("payload_too_large"));
    let mine = t.get("/api/me/data", A).await;
    mine.expect(200, None);
    assert!(mine.lines().is_empty(), "nothing stored: {:?}", mine.lines().len());
    // A smaller one is answered and stored.
    let body = json!({"platform": "n8n", "workflow": {"nodes": vec![json!({}); 10]}});
    t.post("/api/workflow/validate", A, body).await.expect(200, None);
    assert_eq!(t.get("/api/me/data", A).await.lines().len(), 1);
}

/// Large text that is not JSON is 400 `invalid_json`, not 413: the scan before parsing counts
/// its words as values, so a syntax check decides. JSON that is too costly to parse stays 413.
#[tokio::test]
async fn large_text_that_is_not_json_is_invalid_json() {
    let t = spawn_app(&[]).await;
    let words = "a ".repeat(600 * 1024);
    let form = "a=1&".repeat(200 * 1024);
    for text in [words, form] {
        let r = t.raw(Method::POST, "/api/feedback/submit", A, text.into_bytes(), Some("application/json")).await;
        r.expect(400, Some("invalid_json"));
    }
    let costly = format!("[{}0]", "0,".repeat(2_600_000));
    t.raw(Method::POST, "/api/feedback/submit", A, costly.into_bytes(), Some("application/json"))
        .await
        .expect(413, Some("payload_too_large"));
}

#[tokio::test]
async fn bad_input_lists_every_problem_and_stores_nothing() {
    let t = spawn_app(&[]).await;
    let r = t
        .post(
            "/api/interactions",
            A,
            json!({"platform": "Bad Slug!", "user_message": "", "processing_time_ms": -5, "metadata": "x"}),
        )
        .await;
    r.expect(400, Some("validation_failed"));
    let fields: Vec<String> = r.json()["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["platform", "user_message", "processing_time_ms", "metadata"]);
    t.raw(Method::POST, "/api/interactions", A, b"{not json".to_vec(), Some("application/json"))
        .await
        .expect(400, Some("invalid_json"));
    // No Content-Type is fine when the body is JSON.
    let ok = serde_json::to_vec(&interaction("n8n", "no content type")).unwrap();
    t.raw(Method::POST, "/api/interactions", A, ok, None).await.expect(201, None);
    // Over 6 MiB, and nested deeper than 64.
    let big = format!("{{\"platform\":\"n8n\",\"user_message\":\"{}\"}}", "x".repeat(6 * 1024 * 1024 + 10));
    t.raw(Method::POST, "/api/interactions", A, big.into_bytes(), Some("application/json"))
        .await
        .expect(413, Some("payload_too_large"));
    let deep =
        format!("{{\"platform\":\"n8n\",\"user_message\":\"x\",\"metadata\":{}1{}}}", "[".repeat(70), "]".repeat(70));
    t.raw(Method::POST, "/api/interactions", A, deep.into_bytes(), None).await.expect(413, Some("payload_too_large"));
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["overview"]["total_records"], 1);
}

#[tokio::test]
async fn who_may_log_what() {
    let t = spawn_app(&[]).await;
    let mut body = interaction("n8n", "x");
    body["user_id"] = json!("bob");
    t.post("/api/interactions", A, body.clone()).await.expect(403, Some("forbidden"));
    body["user_id"] = json!("alice");
    t.post("/api/interactions", A, body.clone()).await.expect(201, None);
    // Service must name the user.
    let r = t.post("/api/interactions", Who::Service, interaction("n8n", "x")).await;
    r.expect(400, Some("validation_failed"));
    assert_eq!(r.json()["error"]["details"][0]["field"], "user_id");
    // created_at: service/admin only, never in the future.
    let mut back = interaction("n8n", "import");
    back["created_at"] = json!(days_ago(40));
    t.post("/api/interactions", A, back.clone()).await.expect(403, Some("forbidden"));
    // A user sending it is refused whatever its value (CONTRACT: 403, not a field error).
    for bad in [json!(days_ago(-1)), json!("yesterday"), json!(7)] {
        let mut b = back.clone();
        b["created_at"] = bad;
        t.post("/api/interactions", A, b).await.expect(403, Some("forbidden"));
    }
    back["user_id"] = json!("alice");
    let r = t.post("/api/interactions", Who::Service, back.clone()).await;
    r.expect(201, None);
    back["created_at"] = json!(days_ago(-1));
    t.post("/api/interactions", Who::Admin, back).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn batch_items_fail_alone() {
    let t = spawn_app(&[]).await;
    let mut good = interaction("make", "ok");
    good["user_id"] = json!("alice");
    let bad = json!({"platform": "make"});
    let r = t.post("/api/interactions/batch", Who::Service, json!({"interactions": [good, bad]})).await;
    r.expect(200, None);
    let res = r.json()["results"].clone();
    assert_eq!(res[0]["status"], 201);
    assert!(res[0]["interaction_id"].is_string());
    assert_eq!(res[1]["status"], 400);
    assert_eq!(res[1]["error"]["code"], "validation_failed");
    t.post("/api/interactions/batch", A, json!({"interactions": []})).await.expect(403, Some("forbidden"));
    let many: Vec<Value> = (0..101).map(|_| json!({})).collect();
    t.post("/api/interactions/batch", Who::Admin, json!({"interactions": many}))
        .await
        .expect(400, Some("validation_failed"));
}

/// Role x route: A never reads, changes or deletes B's data; roles get 401/403 as the contract says.
#[tokio::test]
async fn authorization_matrix() {
    let t = spawn_app(&[]).await;
    let b_id = t.log(B, interaction("n8n", "bob's")).await;
    let a_id = t.log(A, interaction("n8n", "alice's")).await;
    let get_b = format!("/api/interactions/{b_id}");
    // Anonymous: 401 everywhere but the public routes.
    for (m, p) in [
        (Method::GET, get_b.as_str()),
        (Method::POST, "/api/interactions"),
        (Method::GET, "/api/interactions"),
        (Method::POST, "/api/feedback/submit"),
        (Method::DELETE, "/api/me/data"),
        (Method::GET, "/api/feedback/export/n8n"),
        (Method::GET, "/api/feedback/readiness/n8n"),
        (Method::POST, "/api/workflow/validate"),
        (Method::GET, "/api/examples"),
    ] {
        t.call(m.clone(), p, Who::Anon, Some(json!({}))).await.expect(401, Some("unauthenticated"));
    }
    // A on B's record: 404, never 403, never data.
    t.get(&get_b, A).await.expect(404, Some("not_found"));
    t.post("/api/feedback/submit", A, json!({"interaction_id": b_id, "feedback_type": "thumbs_down"}))
        .await
        .expect(404, Some("not_found"));
    t.post(
        "/api/workflow/validate",
        A,
        json!({"platform": "n8n", "workflow": n8n_workflow(2, 0), "interaction_id": b_id}),
    )
    .await
    .expect(404, Some("not_found"));
    t.delete(&format!("/api/feedback/data/{b_id}"), A).await.expect(404, Some("not_found"));
    let listed = t.get("/api/interactions", A).await.json();
    assert!(listed["items"].as_array().unwrap().iter().all(|i| i["user_id"] == "alice"));
    t.get("/api/interactions?user_id=bob", A).await.expect(403, Some("forbidden"));
    let mine = t.get("/api/me/data", A).await;
    mine.expect(200, None);
    assert!(mine.lines().iter().all(|l| l["user_id"] == "alice"));
    // B's record is untouched.
    let b = t.get(&get_b, B).await.json();
    assert_eq!((b["has_feedback"].clone(), b["validations"].as_array().unwrap().len()), (json!(false), 0));
    // Service and admin read anyone's; service may not delete or export.
    t.get(&get_b, Who::Service).await.expect(200, None);
    t.get(&get_b, Who::Admin).await.expect(200, None);
    t.delete(&format!("/api/feedback/data/{a_id}"), Who::Service).await.expect(403, Some("forbidden"));
    // Admin-only routes.
    for who in [A, Who::Service] {
        t.get("/api/feedback/export/n8n", who).await.expect(403, Some("forbidden"));
        t.post("/api/feedback/archive", who, json!({"dry_run": true})).await.expect(403, Some("forbidden"));
        t.get("/api/examples", who).await.expect(403, Some("forbidden"));
        t.post("/api/training-metrics", who, json!({})).await.expect(403, Some("forbidden"));
        t.delete("/api/feedback/data?user_id=bob", who).await.expect(403, Some("forbidden"));
    }
    // me/data is for users.
    t.delete("/api/me/data", Who::Admin).await.expect(403, Some("forbidden"));
    // Any role: stats, readiness, validate.
    for who in [A, Who::Service, Who::Admin] {
        t.get("/api/feedback/stats", who).await.expect(200, None);
        t.get("/api/feedback/readiness/n8n", who).await.expect(200, None);
    }
    t.get(&get_b, B).await.expect(200, None);
}

#[tokio::test]
async fn compression_round_trip_at_below_and_above_the_threshold() {
    let t = spawn_app(&[("COMPRESSION_THRESHOLD_KB", "1")]).await;
    for (size, compressed) in [(1023usize, false), (1024, false), (1025, true), (50_000, true)] {
        let wf = json!({"pad": "x".repeat(size - 10), "f": 0.1, "big": u64::MAX, "neg": i64::MIN});
        let wf_len = serde_json::to_vec(&wf).unwrap().len();
        // Adjust the padding so the compact JSON is exactly `size` bytes.
        let wf = json!({"pad": "x".repeat(size - 10 - (wf_len - size)), "f": 0.1, "big": u64::MAX, "neg": i64::MIN});
        assert_eq!(serde_json::to_vec(&wf).unwrap().len(), size);
        let mut body = interaction("n8n", "c");
        body["workflow"] = wf.clone();
        let r = t.post("/api/interactions", A, body).await.json();
        assert_eq!(r["compressed"], compressed, "size {size}");
        assert_eq!(r["original_bytes"], size);
        if compressed {
            assert!(r["stored_bytes"].as_i64() < r["original_bytes"].as_i64());
        }
        let back = t.get(&format!("/api/interactions/{}", r["interaction_id"].as_str().unwrap()), A).await.json();
        assert_eq!(back["workflow"], wf);
        assert_eq!(back["workflow"]["big"].as_u64(), Some(u64::MAX));
        assert_eq!(back["workflow"]["f"].as_f64().map(f64::to_bits), Some(0.1f64.to_bits()));
    }
    let s = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(s["storage"]["compressed_records"], 2);
    assert!(s["storage"]["compression_saved_bytes"].as_i64().unwrap() > 40_000);
}

#[tokio::test]
async fn legacy_hex_import_and_gzip_bomb() {
    use std::io::Write;
    let t = spawn_app(&[]).await;
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let wf = n8n_workflow(3, 100);
    let body = json!({"platform": "n8n", "user_message": "legacy", "workflow_gzip_hex": hex::encode(gz(&serde_json::to_vec(&wf).unwrap()))});
    let id = t.log(A, body).await;
    assert_eq!(t.get(&format!("/api/interactions/{id}"), A).await.json()["workflow"], wf);
    // 65 MiB of zeros inside a JSON string: about 65 KiB compressed.
    let mut bomb_json = b"{\"a\":\"".to_vec();
    bomb_json.extend(std::iter::repeat_n(b'0', 65 * 1024 * 1024));
    bomb_json.extend(b"\"}");
    let bomb = json!({"platform": "n8n", "user_message": "bomb", "workflow_gzip_hex": hex::encode(gz(&bomb_json))});
    let r = t.post("/api/interactions", A, bomb).await;
    r.expect(400, Some("validation_failed"));
    assert_eq!(r.json()["error"]["details"][0]["field"], "workflow_gzip_hex");
}

#[tokio::test]
async fn validate_reports_errors_score_and_diff_and_logs_it() {
    let t = spawn_app(&[]).await;
    let id = t.log(A, interaction("n8n", "v")).await;
    let mut wf = n8n_workflow(3, 0);
    wf["nodes"][2]["name"] = wf["nodes"][1]["name"].clone();
    let r = t
        .post(
            "/api/workflow/validate",
            A,
            json!({"platform": "n8n", "workflow": wf, "interaction_id": id,
        "original_workflow": n8n_workflow(3, 0), "user_edited": true}),
        )
        .await
        .json();
    assert_eq!(r["passed"], false);
    let codes: Vec<&str> = r["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"duplicate_node_name"));
    let want =
        100 - 20 * r["errors"].as_array().unwrap().len() as i64 - 5 * r["warnings"].as_array().unwrap().len() as i64;
    assert_eq!(r["score"], want.max(0));
    assert_eq!(r["diff"]["modified"], json!(["/nodes/2/name"]));
    assert_eq!(r["interaction_id"], id);
    let rec = t.get(&format!("/api/interactions/{id}"), A).await.json();
    assert_eq!(rec["validations"].as_array().unwrap().len(), 1);
    let ok = t
        .post(
            "/api/workflow/validate",
            A,
            json!({"platform": "zapier", "workflow": {"trigger": {"app": "gmail", "event": "new"},
        "actions": [{"app": "slack", "action": "send", "params": {}}]}}),
        )
        .await
        .json();
    assert_eq!((ok["passed"].clone(), ok["score"].clone(), ok["diff"].clone()), (json!(true), json!(100), Value::Null));
    let odd = t.post("/api/workflow/validate", A, json!({"platform": "n8n", "workflow": [1]})).await.json();
    assert_eq!(odd["errors"][0]["code"], "not_an_object");
    t.post("/api/workflow/validate", A, json!({"platform": "n8n"})).await.expect(400, Some("validation_failed"));
}

/// A validation always belongs to a user and leaves with their data (CONTRACT section 6a).
#[tokio::test]
async fn a_service_validation_names_its_user_and_leaves_with_their_data() {
    let t = spawn_app(&[]).await;
    let wf = json!({"trigger": {"app": "gmail", "event": "new"}, "actions": []});
    let e = t.post("/api/workflow/validate", Who::Service, json!({"platform": "zapier", "workflow": wf})).await;
    e.expect(400, Some("validation_failed"));
    assert_eq!(e.json()["error"]["details"][0]["field"], "user_id");
    t.post("/api/workflow/validate", Who::Service, json!({"platform": "zapier", "workflow": wf, "user_id": "carol"}))
        .await
        .expect(200, None);
    t.post("/api/workflow/validate", A, json!({"platform": "zapier", "workflow": wf, "user_id": "carol"}))
        .await
        .expect(403, Some("forbidden"));
    let d = t.delete("/api/feedback/data?user_id=carol", Who::Admin).await.json();
    assert_eq!(d["deleted"]["validation_logs"], 1, "carol's validation left with her data");
}

#[tokio::test]
async fn feedback_updates_the_summary_and_stats_add_up() {
    let t = spawn_app(&[]).await;
    let ids = [
        t.log(A, interaction("n8n", "1")).await,
        t.log(A, interaction("n8n", "2")).await,
        t.log(B, interaction("make", "3")).await,
    ];
    t.post(
        "/api/feedback/submit",
        A,
        json!({"interaction_id": ids[0], "feedback_type": "thumbs_up", "sentiment_score": 5}),
    )
    .await
    .expect(201, None);
    t.post(
        "/api/feedback/submit",
        Who::Service,
        json!({"interaction_id": ids[2], "feedback_type": "report", "issue_category": "wrong_platform"}),
    )
    .await
    .expect(201, None);
    t.post("/api/feedback/submit", A, json!({"interaction_id": ids[1], "feedback_type": "edit"}))
        .await
        .expect(400, Some("validation_failed"));
    t.post("/api/feedback/submit", A, json!({"interaction_id": uuid::Uuid::new_v4(), "feedback_type": "thumbs_up"}))
        .await
        .expect(404, Some("not_found"));
    let rec = t.get(&format!("/api/interactions/{}", ids[0]), A).await.json();
    assert_eq!(
        (rec["has_feedback"].clone(), rec["last_feedback_type"].clone(), rec["positive_feedback"].clone()),
        (json!(true), json!("thumbs_up"), json!(1))
    );
    assert_eq!(rec["feedback"][0]["sentiment_score"], 5);
    let s = t.get("/api/feedback/stats", A).await.json();
    let o = &s["overview"];
    assert_eq!(
        (
            o["total_records"].clone(),
            o["with_feedback"].clone(),
            o["positive_feedback"].clone(),
            o["negative_feedback"].clone()
        ),
        (json!(3), json!(2), json!(1), json!(1))
    );
    assert_eq!(
        o["total_records"].as_i64(),
        Some(o["active_records"].as_i64().unwrap() + o["archived_records"].as_i64().unwrap())
    );
    let sum: i64 = s["by_platform"].as_object().unwrap().values().map(|p| p["total"].as_i64().unwrap()).sum();
    assert_eq!(sum, 3);
    let hot: i64 = s["by_platform"].as_object().unwrap().values().map(|p| p["hot_bytes"].as_i64().unwrap()).sum();
    assert_eq!(Some(hot), s["storage"]["hot_bytes"].as_i64());
    for r in ["success_rate", "feedback_rate"] {
        assert!((0.0..=1.0).contains(&o[r].as_f64().unwrap()));
    }
}

/// An interaction's feedback and validations stop at 16 MiB of JSON: past it a link is 409
/// `conflict` and nothing changes; the record's GET still answers with what it holds.
#[tokio::test]
async fn an_interactions_links_stop_at_their_limit_with_a_409() {
    let t = spawn_app(&[]).await;
    let id = t.log(A, interaction("n8n", "1")).await;
    let other = t.log(A, interaction("n8n", "2")).await;
    // Each edit carries a 5.7 MB correction (a body under the 6 MiB limit): the third would
    // take the record's links to about 17.1 MB, past 16 MiB (16.78 MB).
    let edit = |on: &str| {
        json!({"interaction_id": on, "feedback_type": "edit",
               "corrected_workflow": {"nodes": [], "notes": "x".repeat(5_700_000)}})
    };
    for _ in 0..2 {
        t.post("/api/feedback/submit", A, edit(&id)).await.expect(201, None);
    }
    let refused = t.post("/api/feedback/submit", A, edit(&id)).await;
    refused.expect(409, Some("conflict"));
    assert!(refused.json()["error"]["message"].as_str().unwrap_or_default().contains("16 MiB"));
    t.post("/api/feedback/submit", A, json!({"interaction_id": id, "feedback_type": "thumbs_up"}))
        .await
        .expect(201, None);
    t.post("/api/feedback/submit", A, json!({"interaction_id": id, "feedback_type": "thumbs_up"}))
        .await
        .expect(201, None);
    let big = json!({"platform": "n8n", "interaction_id": id, "workflow": {"nodes": [], "connections": {},
                     "notes": "y".repeat(5_500_000)}});
    t.post("/api/workflow/validate", A, big).await.expect(409, Some("conflict"));
    let rec = t.get(&format!("/api/interactions/{id}"), A).await.expect(200, None).json();
    let types: Vec<&str> =
        rec["feedback"].as_array().unwrap().iter().map(|f| f["feedback_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["edit", "edit", "thumbs_up", "thumbs_up"], "the refused links are not stored");
    assert_eq!(rec["validations"], json!([]));
    assert_eq!(rec["positive_feedback"], 2);
    // The limit is the record's own: another record takes the same edit.
    t.post("/api/feedback/submit", A, edit(&other)).await.expect(201, None);
}

#[tokio::test]
async fn readiness_follows_the_formula_at_the_threshold_edges() {
    let t = spawn_app(&[
        ("READINESS_MIN_TOTAL", "4"),
        ("READINESS_MIN_SUCCESSFUL", "3"),
        ("READINESS_MIN_FEEDBACK", "2"),
        ("READINESS_MIN_QUALITY", "2"),
    ])
    .await;
    let empty = t.get("/api/feedback/readiness/zapier", A).await.json();
    assert_eq!(
        (empty["readiness_score"].clone(), empty["is_ready"].clone(), empty["status"].clone()),
        (json!(0), json!(false), json!("not_ready"))
    );
    assert_eq!(
        empty["thresholds"],
        json!({"total_examples": 4, "successful": 3, "with_feedback": 2, "quality_examples": 2, "min_score": 70})
    );
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(t.log(A, interaction("zapier", &format!("z{i}"))).await);
    }
    // total 3/4, successful 3/3, feedback 0/2, quality 0/2: round(18.75 + 25) = 44.
    let r = t.get("/api/feedback/readiness/zapier", A).await.json();
    assert_eq!((r["readiness_score"].clone(), r["status"].clone()), (json!(44), json!("not_ready")));
    t.post("/api/feedback/submit", A, json!({"interaction_id": ids[0], "feedback_type": "thumbs_up"})).await;
    // feedback 1/2, quality 1/2: round(18.75 + 25 + 12.5 + 12.5) = 69.
    let r = t.get("/api/feedback/readiness/zapier", A).await.json();
    assert_eq!((r["readiness_score"].clone(), r["status"].clone()), (json!(69), json!("almost_ready")));
    let mut failed = interaction("zapier", "failed");
    failed["success"] = json!(false);
    let f = t.log(A, failed).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": f, "feedback_type": "thumbs_up"})).await;
    // total 4/4, feedback 2/2, quality still 1/2 (a failed one is no quality example): 88, not ready.
    let r = t.get("/api/feedback/readiness/zapier", A).await.json();
    assert_eq!((r["readiness_score"].clone(), r["is_ready"].clone()), (json!(88), json!(false)));
    assert_eq!(r["metrics"]["quality_examples"], 1);
    // A passed validation scoring >= 80 makes a quality example.
    let wf = json!({"trigger": {"app": "a", "event": "b"}, "actions": [{"app": "c", "action": "d", "params": {}}]});
    t.post("/api/workflow/validate", A, json!({"platform": "zapier", "workflow": wf, "interaction_id": ids[1]}))
        .await
        .expect(200, None);
    let r = t.get("/api/feedback/readiness/zapier", A).await.json();
    assert_eq!(
        (r["readiness_score"].clone(), r["is_ready"].clone(), r["status"].clone()),
        (json!(100), json!(true), json!("ready"))
    );
    t.get("/api/feedback/readiness/Bad!", A).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn export_is_jsonl_with_the_right_assistant_turn() {
    let t = spawn_app(&[("EXPORT_SYSTEM_PROMPT", "You build {platform} workflows.")]).await;
    let keep = t.log(A, interaction("n8n", "keep me")).await;
    let drop = t.log(A, interaction("n8n", "drop me")).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": drop, "feedback_type": "thumbs_down"})).await;
    let fixed = t.log(A, interaction("n8n", "fix me")).await;
    t.post(
        "/api/feedback/submit",
        A,
        json!({"interaction_id": fixed, "feedback_type": "edit", "corrected_workflow": {"fixed": 1}}),
    )
    .await;
    let mut failed = interaction("n8n", "failed");
    failed["success"] = json!(false);
    t.log(A, failed).await;
    t.log(A, json!({"platform": "n8n", "user_message": "chat", "ai_response": "Sure, here is how."})).await;
    let r = t.get("/api/feedback/export/n8n", Who::Admin).await;
    r.expect(200, None);
    assert_eq!(r.headers["content-type"], "application/jsonl");
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert_eq!(cd, format!("attachment; filename=\"training_data_n8n_{}.jsonl\"", chrono::Utc::now().format("%Y%m%d")));
    let lines = r.lines();
    let users: Vec<&str> = lines.iter().map(|l| l["messages"][1]["content"].as_str().unwrap()).collect();
    assert_eq!(users, ["keep me", "fix me", "chat"]);
    for l in &lines {
        let roles: Vec<&str> = l["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant"]);
        assert_eq!(l["messages"][0]["content"], "You build n8n workflows.");
        assert!(l.get("metadata").is_none());
        assert_eq!(collector::domain::export::check_openai_line(&l.to_string()), Ok(()));
    }
    assert_eq!(
        serde_json::from_str::<Value>(lines[0]["messages"][2]["content"].as_str().unwrap()).unwrap(),
        n8n_workflow(3, 0)
    );
    assert_eq!(lines[1]["messages"][2]["content"], "{\"fixed\":1}");
    assert_eq!(lines[2]["messages"][2]["content"], "Sure, here is how.");
    let with_meta =
        t.get("/api/feedback/export/n8n?success_only=false&include_metadata=true&limit=10", Who::Admin).await.lines();
    assert_eq!(with_meta.len(), 4);
    assert_eq!(with_meta[0]["metadata"]["interaction_id"], keep);
    let fb_only = t.get("/api/feedback/export/n8n?with_feedback_only=true", Who::Admin).await.lines();
    assert_eq!(fb_only.len(), 1);
    assert_eq!(t.get("/api/feedback/export/n8n?limit=2", Who::Admin).await.lines().len(), 2);
    t.get("/api/feedback/export/n8n?format=csv&limit=0", Who::Admin).await.expect(400, Some("validation_failed"));
    assert!(t.get("/api/feedback/export/zapier", Who::Admin).await.body.is_empty());
}

#[tokio::test]
async fn deletes_cascade_and_touch_only_their_owner() {
    let t = spawn_app(&[]).await;
    let a = t.log(A, interaction("n8n", "a")).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": a, "feedback_type": "thumbs_up"})).await;
    t.post(
        "/api/workflow/validate",
        A,
        json!({"platform": "n8n", "workflow": n8n_workflow(2, 0), "interaction_id": a}),
    )
    .await;
    let b = t.log(B, interaction("n8n", "b")).await;
    let before = t.get("/api/feedback/stats", A).await.json();
    let d = t.delete(&format!("/api/feedback/data/{a}"), A).await;
    d.expect(200, None);
    assert_eq!(
        d.json()["deleted"],
        json!({"interactions": 1, "feedback": 1, "validation_logs": 1, "examples": 0, "archived_records": 0})
    );
    t.get(&format!("/api/interactions/{a}"), A).await.expect(404, Some("not_found"));
    t.delete(&format!("/api/feedback/data/{a}"), A).await.expect(404, Some("not_found"));
    let after = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(after["overview"]["total_records"], 1);
    assert_eq!(after["overview"]["with_feedback"], 0);
    assert!(after["storage"]["hot_bytes"].as_i64() < before["storage"]["hot_bytes"].as_i64());
    // All of alice's data, including an unlinked validation.
    t.log(A, interaction("make", "a2")).await;
    t.post("/api/workflow/validate", A, json!({"platform": "make", "workflow": {"flow": []}})).await;
    let d = t.delete("/api/me/data", A).await.json()["deleted"].clone();
    assert_eq!((d["interactions"].clone(), d["validation_logs"].clone()), (json!(1), json!(1)));
    assert!(t.get("/api/me/data", A).await.body.is_empty());
    t.get(&format!("/api/interactions/{b}"), B).await.expect(200, None);
    // Admin deletes bob's.
    let d = t.delete("/api/feedback/data?user_id=bob", Who::Admin).await.json()["deleted"].clone();
    assert_eq!(d["interactions"], 1);
    assert_eq!(t.get("/api/feedback/stats", Who::Admin).await.json()["overview"]["total_records"], 0);
    t.delete("/api/feedback/data", Who::Admin).await.expect(400, Some("validation_failed"));
}

async fn log_old(t: &TestApp, user: &str, platform: &str, msg: &str, days: i64) -> String {
    let mut body = interaction(platform, msg);
    body["user_id"] = json!(user);
    body["created_at"] = json!(days_ago(days));
    t.log(Who::Service, body).await
}

#[tokio::test]
async fn archive_then_export_with_include_archived_and_delete_from_archives() {
    let t = spawn_app(&[]).await;
    let old_a = log_old(&t, "alice", "n8n", "old alice", 40).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": old_a, "feedback_type": "thumbs_up"}))
        .await
        .expect(201, None);
    let old_b = log_old(&t, "bob", "n8n", "old bob", 40).await;
    log_old(&t, "bob", "make", "old make", 35).await;
    let fresh = t.log(A, interaction("n8n", "fresh")).await;
    let stats_before = t.get("/api/feedback/stats", A).await.json();

    let dry = t.post("/api/feedback/archive", Who::Admin, json!({"dry_run": true})).await.json();
    assert_eq!((dry["dry_run"].clone(), dry["archived_records"].clone()), (json!(true), json!(3)));
    assert_eq!(dry["archives"].as_array().unwrap().len(), 2, "one object per platform and day");
    assert_eq!(
        t.get("/api/feedback/stats", A).await.json()["overview"],
        stats_before["overview"],
        "a dry run changes nothing"
    );

    let run = t.post("/api/feedback/archive", Who::Admin, json!({})).await.json();
    assert_eq!(run["archived_records"], 3);
    assert_eq!(run["after"]["archived_records"], 3);
    assert_eq!(run["after"]["total_records"], run["before"]["total_records"]);
    let obj = &run["archives"][0];
    let key = obj["object_key"].as_str().unwrap();
    assert!(key.starts_with("archive/platform=make/date=") || key.starts_with("archive/platform=n8n/date="));
    assert!(key.ends_with(".jsonl.gz"));
    assert_eq!(obj["storage_class"], "STANDARD");
    // The object is on disk where the key says, gzip JSONL of whole records.
    let path = t.dir.path().join("data/archive-store").join(key);
    let gz = std::fs::read(&path).expect("archive object on disk");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut text).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["feedback"].is_array() && first["validations"].is_array() && first["workflow"].is_object());

    let s = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(
        (s["overview"]["total_records"].clone(), s["overview"]["archived_records"].clone()),
        (json!(4), json!(3))
    );
    assert_eq!(s["storage"]["archive_objects"], 2);
    assert!(s["costs"]["without_archiving_monthly_usd"].as_f64() >= s["costs"]["total_monthly_usd"].as_f64());
    // Readiness still counts archived records.
    assert_eq!(t.get("/api/feedback/readiness/n8n", A).await.json()["metrics"]["total_examples"], 3);
    // Archived records are still readable by their owner, and only by them.
    let rec = t.get(&format!("/api/interactions/{old_a}"), A).await.json();
    assert_eq!((rec["archived"].clone(), rec["positive_feedback"].clone()), (json!(true), json!(1)));
    t.get(&format!("/api/interactions/{old_a}"), B).await.expect(404, Some("not_found"));
    t.post("/api/feedback/submit", A, json!({"interaction_id": old_a, "feedback_type": "thumbs_up"}))
        .await
        .expect(409, Some("conflict"));
    // Replaying an archived id is still idempotent.
    let hot_only = t.get("/api/feedback/export/n8n", Who::Admin).await.lines();
    assert_eq!(hot_only.len(), 1);
    let all = t.get("/api/feedback/export/n8n?include_archived=true", Who::Admin).await.lines();
    let users: Vec<&str> = all.iter().map(|l| l["messages"][1]["content"].as_str().unwrap()).collect();
    assert_eq!(users, ["old alice", "old bob", "fresh"]);

    // Deleting from archives: bob's archived records are unreadable at once (tombstoned) ...
    let answer = t.delete("/api/feedback/data?user_id=bob", Who::Admin).await.json();
    let d = answer["deleted"].clone();
    assert_eq!((d["interactions"].clone(), d["archived_records"].clone()), (json!(2), json!(2)));
    assert_eq!(answer["pending_erasure"]["archive_objects"], 2, "both objects hold a deleted line");
    t.get(&format!("/api/interactions/{old_b}"), Who::Admin).await.expect(404, Some("not_found"));
    let all = t.get("/api/feedback/export/n8n?include_archived=true", Who::Admin).await.lines();
    assert_eq!(all.len(), 2);
    assert!(t.get("/api/feedback/export/make?include_archived=true", Who::Admin).await.lines().is_empty());
    let s = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(
        (s["overview"]["total_records"].clone(), s["overview"]["archived_records"].clone()),
        (json!(2), json!(1))
    );
    // ... and leave the objects' bytes at the next run, which compacts before it archives.
    let run = t.post("/api/feedback/archive", Who::Admin, json!({})).await.json();
    assert_eq!(
        (run["maintenance"]["compacted_objects"].clone(), run["maintenance"]["erased_lines"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(run["complete"], true);
    let s = t.get("/api/feedback/stats", A).await.json();
    assert_eq!(s["storage"]["archive_objects"], 1, "the make object had only bob's line");
    let rec = t.get(&format!("/api/interactions/{old_a}"), A).await.json();
    assert_eq!(rec["user_message"], "old alice", "a kept record is read from its compacted object");
    // No file anywhere still holds bob's text.
    for entry in walk(&t.dir.path().join("data/archive-store")) {
        let gz = std::fs::read(&entry).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut text).unwrap();
        assert!(!text.contains("old bob") && !text.contains("old make"), "{}", entry.display());
    }
    // Alice deletes her archived record.
    let d = t.delete(&format!("/api/feedback/data/{old_a}"), A).await.json()["deleted"].clone();
    assert_eq!(
        (d["interactions"].clone(), d["feedback"].clone(), d["archived_records"].clone()),
        (json!(1), json!(1), json!(1))
    );
    t.get(&format!("/api/interactions/{old_a}"), A).await.expect(404, Some("not_found"));
    t.post("/api/feedback/archive", Who::Admin, json!({})).await.expect(200, None);
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["storage"]["archive_objects"], 0);
    assert!(walk(&t.dir.path().join("data/archive-store")).is_empty(), "no object is left");
    t.get(&format!("/api/interactions/{fresh}"), A).await.expect(200, None);
    // A second run finds nothing more.
    assert_eq!(
        t.post("/api/feedback/archive", Who::Admin, json!({"days_old": 30})).await.json()["archived_records"],
        0
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

#[tokio::test]
async fn archiving_disabled_and_collection_disabled() {
    let t = spawn_app(&[("ENABLE_DATA_ARCHIVING", "false"), ("ENABLE_DATA_COLLECTION", "false")]).await;
    t.post("/api/feedback/archive", Who::Admin, json!({})).await.expect(409, Some("archiving_disabled"));
    let r = t.post("/api/interactions", A, interaction("n8n", "x")).await;
    r.expect(202, None);
    assert_eq!(r.json(), json!({"collected": false}));
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["overview"]["total_records"], 0);
    t.post("/api/feedback/archive", Who::Admin, json!({"days_old": 0})).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn listing_pages_newest_first_without_gaps() {
    let t = spawn_app(&[]).await;
    let mut ids = vec![];
    for i in 0..25 {
        ids.push(t.log(A, interaction(if i % 2 == 0 { "n8n" } else { "make" }, &format!("m{i}"))).await);
    }
    t.log(B, interaction("n8n", "bob")).await;
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/interactions?limit=10&cursor={c}"),
            None => "/api/interactions?limit=10".into(),
        };
        let page = t.get(&path, A).await.json();
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["interaction_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let n8n = t.get("/api/interactions?platform=n8n&limit=100", A).await.json();
    assert_eq!(n8n["items"].as_array().unwrap().len(), 13);
    let all = t.get("/api/interactions?limit=100", Who::Admin).await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 26);
    let bobs = t.get("/api/interactions?user_id=bob", Who::Admin).await.json();
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    t.get("/api/interactions?limit=0&cursor=zzz", A).await.expect(400, Some("validation_failed"));
    t.get("/api/interactions", Who::Service).await.expect(403, Some("forbidden"));
}

/// Every page of `A`'s listing at `limit=100`, following `next_cursor`: the ids in order and
/// each page's size.
async fn all_pages(t: &TestApp) -> (Vec<String>, Vec<usize>, Vec<Value>) {
    let (mut seen, mut sizes, mut records, mut cursor) = (vec![], vec![], vec![], None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/interactions?limit=100&cursor={c}"),
            None => "/api/interactions?limit=100".into(),
        };
        let page = t.get(&path, A).await.json();
        let items = page["items"].as_array().expect("items");
        sizes.push(items.len());
        for i in items {
            seen.push(i["interaction_id"].as_str().expect("id").to_owned());
            records.push(i.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    (seen, sizes, records)
}

/// A page stops early rather than carry more than 4 MiB of records (besides its first
/// record): five 1.5 MiB workflows, each a few KB once gzipped, come in pages of 2, 2 and 1.
#[tokio::test]
async fn listing_pages_of_large_workflows_stop_early_and_go_on() {
    use std::io::Write;
    let t = spawn_app(&[]).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"s\":\"").expect("gzip");
    gz.write_all(&vec![b'y'; 1536 * 1024]).expect("gzip");
    gz.write_all(b"\"}").expect("gzip");
    let hex = hex::encode(gz.finish().expect("gzip"));
    let mut ids = vec![];
    for i in 0..5 {
        let body = json!({"platform": "n8n", "user_message": format!("big {i}"), "workflow_gzip_hex": hex});
        ids.push(t.log(A, body).await);
    }
    let (seen, sizes, records) = all_pages(&t).await;
    for r in records {
        assert_eq!(r["workflow"]["s"].as_str().map(str::len), Some(1536 * 1024), "the workflow comes whole");
    }
    ids.reverse();
    assert_eq!(seen, ids, "every record once, newest first");
    assert_eq!(sizes, vec![2, 2, 1]);
}

/// The same for large texts: five 1.5 MiB answers (a body of 6 MiB each could be 100 x 6 MiB
/// in one page otherwise) come in pages of 2, 2 and 1.
#[tokio::test]
async fn listing_pages_of_large_texts_stop_early_and_go_on() {
    let t = spawn_app(&[]).await;
    let text = "z".repeat(1536 * 1024);
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(t.log(A, json!({"platform": "n8n", "user_message": format!("long {i}"), "ai_response": text})).await);
    }
    let (seen, sizes, records) = all_pages(&t).await;
    assert!(records.iter().all(|r| r["ai_response"].as_str() == Some(text.as_str())), "the texts come whole");
    ids.reverse();
    assert_eq!(seen, ids, "every record once, newest first");
    assert_eq!(sizes, vec![2, 2, 1]);
}

#[tokio::test]
async fn examples_and_training_metrics() {
    let t = spawn_app(&[]).await;
    let e = t
        .post(
            "/api/examples",
            Who::Admin,
            json!({"platform": "n8n", "user_message": "ex", "workflow": n8n_workflow(2, 0), "tags": ["crm"]}),
        )
        .await;
    e.expect(201, None);
    let id = e.json()["example_id"].as_str().unwrap().to_owned();
    t.post("/api/examples", Who::Admin, json!({"platform": "n8n", "user_message": "ex"}))
        .await
        .expect(400, Some("validation_failed"));
    let list = t.get("/api/examples?platform=n8n", Who::Admin).await.json();
    assert_eq!(list["items"][0]["example_id"], id);
    assert_eq!(list["items"][0]["usage_count"], 0);
    assert_eq!(
        t.get("/api/feedback/readiness/n8n", A).await.json()["metrics"]["quality_examples"],
        1,
        "a curated example is a quality example"
    );
    t.delete(&format!("/api/examples/{id}"), Who::Admin).await.expect(200, None);
    t.delete(&format!("/api/examples/{id}"), Who::Admin).await.expect(404, Some("not_found"));
    assert!(t.get("/api/examples", Who::Admin).await.json()["items"].as_array().unwrap().is_empty());
    for (i, loss) in [0.9, 0.5].iter().enumerate() {
        t.post(
            "/api/training-metrics",
            Who::Admin,
            json!({"platform": "n8n", "model": "m", "dataset_size": 100 + i, "metrics": {"loss": loss}}),
        )
        .await
        .expect(201, None);
    }
    let m = t.get("/api/training-metrics?platform=n8n", Who::Admin).await.json();
    assert_eq!(m["items"][0]["metrics"]["loss"], 0.5, "newest first");
    t.post(
        "/api/training-metrics",
        Who::Admin,
        json!({"platform": "n8n", "model": "m", "dataset_size": -1, "metrics": {"loss": "low"}}),
    )
    .await
    .expect(400, Some("validation_failed"));
}

/// 64 clients logging at once lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingest_loses_no_record() {
    let t = std::sync::Arc::new(spawn_app(&[]).await);
    let mut tasks = vec![];
    for c in 0..64 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("user{c}");
            let mut ids = vec![];
            for i in 0..10 {
                ids.push(t.log(Who::User(&who), interaction("n8n", &format!("{c}-{i}"))).await);
            }
            ids
        }));
    }
    let mut all = std::collections::HashSet::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), 640);
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["overview"]["total_records"], 640);
    let exported = t.get("/api/feedback/export/n8n", Who::Admin).await.lines();
    assert_eq!(exported.len(), 640);
}

/// A body that breaks off before its Content-Length is a bad request (400), not "too large".
#[tokio::test]
async fn a_body_cut_short_is_400_not_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = spawn_app(&[]).await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /api/interactions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"platform\":",
        token("alice", &[])
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.shutdown().await.expect("half-close");
    let mut answer = String::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("validation_failed"), "{answer}");
}
