//! Training exports trainers accept: formats, per-line checks, dedupe, split, consent.

use collector_e2e::*;
use serde_json::{Value, json};

const A: Who = Who::User("alice");

fn header(r: &Resp, name: &str) -> String {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_corrected_workflow_is_one_dpo_pair_with_the_right_sides() {
    let t = spawn_app(&[]).await;
    let id = t.log(A, interaction("n8n", "fix this one")).await;
    t.log(A, interaction("n8n", "no correction")).await;
    t.post(
        "/api/feedback/submit",
        A,
        json!({"interaction_id": id, "feedback_type": "edit", "corrected_workflow": {"fixed": true}}),
    )
    .await
    .expect(201, None);
    // A user-edited validation is a pair too.
    let other = t.log(A, interaction("n8n", "edited in the editor")).await;
    t.post(
        "/api/workflow/validate",
        A,
        json!({"platform": "n8n", "interaction_id": other, "user_edited": true,
        "workflow": {"edited": 2}, "original_workflow": {"edited": 1}}),
    )
    .await
    .expect(200, None);
    let r = t.get("/api/feedback/export/n8n?format=openai_dpo", Who::Admin).await;
    r.expect(200, None);
    let lines = r.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["input"]["messages"][1]["content"], "fix this one");
    assert_eq!(lines[0]["preferred_output"][0]["content"], "{\"fixed\":true}");
    let generated: Value =
        serde_json::from_str(lines[0]["non_preferred_output"][0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(generated, n8n_workflow(3, 0));
    assert_eq!(
        (lines[1]["preferred_output"][0]["content"].clone(), lines[1]["non_preferred_output"][0]["content"].clone()),
        (json!("{\"edited\":2}"), json!("{\"edited\":1}"))
    );
    assert_eq!(header(&r, "x-export-format"), "openai_dpo");
    assert_eq!(header(&r, "x-export-lines"), "2");
}

#[tokio::test]
async fn bedrock_lines_pass_bedrock_rules_and_bad_ones_are_counted_not_fatal() {
    let t = spawn_app(&[("EXPORT_MAX_TOKENS", "2000")]).await;
    t.log(A, interaction("make", "good one")).await;
    // A reserved turn marker in the prompt is refused by Bedrock.
    t.log(A, interaction("make", "User: pretend to be the bot")).await;
    // Over the token limit (about 4 characters a token).
    let mut long = interaction("make", "long");
    long["workflow"] = json!({"pad": "x".repeat(10_000)});
    t.log(A, long).await;
    let r = t.get("/api/feedback/export/make?format=bedrock", Who::Admin).await;
    r.expect(200, None);
    let lines = r.lines();
    assert_eq!(lines.len(), 1, "the bad lines are left out, the export goes on");
    let l = &lines[0];
    assert_eq!(l["schemaVersion"], "bedrock-conversation-2024");
    assert!(l["system"][0]["text"].is_string());
    assert_eq!(l["messages"][0]["role"], "user");
    assert_eq!(l["messages"][0]["content"][0]["text"], "good one");
    assert_eq!(l["messages"][1]["role"], "assistant");
    assert_eq!(header(&r, "x-export-rejected"), "2");
    assert_eq!(header(&r, "x-export-rejected-reasons"), "reserved_string=1, too_many_tokens=1");
    // OpenAI has no reserved strings, so only the long one fails there.
    let r = t.get("/api/feedback/export/make", Who::Admin).await;
    assert_eq!(r.lines().len(), 2);
    assert_eq!(header(&r, "x-export-rejected-reasons"), "too_many_tokens=1");
}

#[tokio::test]
async fn duplicates_leave_the_export_and_are_counted() {
    let t = spawn_app(&[]).await;
    for user in ["u1", "u2", "u3"] {
        t.log(Who::User(user), interaction("zapier", "same ask")).await;
    }
    t.log(A, interaction("zapier", "different ask")).await;
    let r = t.get("/api/feedback/export/zapier", Who::Admin).await;
    assert_eq!(r.lines().len(), 2);
    assert_eq!(header(&r, "x-export-duplicates"), "2");
}

#[tokio::test]
async fn no_user_sits_on_both_sides_of_the_split() {
    let t = spawn_app(&[]).await;
    for u in 0..40 {
        for i in 0..3 {
            t.log(Who::User(&format!("user{u}")), interaction("n8n", &format!("u{u} ask {i}"))).await;
        }
    }
    let side = |split: &'static str| {
        let t = &t;
        async move {
            t.get(
                &format!("/api/feedback/export/n8n?split={split}&validation_fraction=0.3&include_metadata=true"),
                Who::Admin,
            )
            .await
            .lines()
        }
    };
    let (train, validation) = (side("train").await, side("validation").await);
    assert_eq!(train.len() + validation.len(), 120);
    assert!(!validation.is_empty() && !train.is_empty());
    let users = |lines: &[Value]| -> std::collections::HashSet<String> {
        lines
            .iter()
            .map(|l| l["messages"][1]["content"].as_str().unwrap().split(' ').next().unwrap().to_owned())
            .collect()
    };
    assert!(users(&train).is_disjoint(&users(&validation)), "a user on both sides");
    assert_eq!(validation.len() % 3, 0, "a user's examples stay together");
    t.get("/api/feedback/export/n8n?split=test", Who::Admin).await.expect(400, Some("validation_failed"));
}

#[tokio::test]
async fn records_without_consent_are_never_exported() {
    let t = spawn_app(&[]).await;
    let mut no = interaction("n8n", "do not train on me");
    no["training_consent"] = json!(false);
    let no_id = t.log(A, no).await;
    t.post(
        "/api/feedback/submit",
        A,
        json!({"interaction_id": no_id, "feedback_type": "edit", "corrected_workflow": {"x": 1}}),
    )
    .await;
    t.log(A, interaction("n8n", "fine")).await;
    for format in ["openai", "openai_dpo", "bedrock"] {
        let r = t.get(&format!("/api/feedback/export/n8n?format={format}&success_only=false"), Who::Admin).await;
        assert!(!String::from_utf8_lossy(&r.body).contains("do not train on me"), "{format}");
    }
    // With consent off by default, only records that opt in are exported.
    let t = spawn_app(&[("DEFAULT_TRAINING_CONSENT", "false")]).await;
    t.log(A, interaction("n8n", "silent")).await;
    let mut yes = interaction("n8n", "opted in");
    yes["training_consent"] = json!(true);
    t.log(A, yes).await;
    let lines = t.get("/api/feedback/export/n8n", Who::Admin).await.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["messages"][1]["content"], "opted in");
}

#[tokio::test]
async fn archived_records_export_in_every_format() {
    let t = spawn_app(&[]).await;
    let mut old = interaction("n8n", "old one");
    old["user_id"] = json!("alice");
    old["created_at"] = json!(days_ago(45));
    let id = t.log(Who::Service, old).await;
    t.post(
        "/api/feedback/submit",
        A,
        json!({"interaction_id": id, "feedback_type": "edit", "corrected_workflow": {"better": 1}}),
    )
    .await;
    t.post("/api/feedback/archive", Who::Admin, json!({})).await.expect(200, None);
    for format in ["openai", "openai_dpo", "bedrock"] {
        assert!(t.get(&format!("/api/feedback/export/n8n?format={format}"), Who::Admin).await.lines().is_empty());
        let lines =
            t.get(&format!("/api/feedback/export/n8n?format={format}&include_archived=true"), Who::Admin).await.lines();
        assert_eq!(lines.len(), 1, "{format}");
    }
}

#[tokio::test]
async fn curated_examples_are_exported_and_their_usage_counted() {
    let t = spawn_app(&[]).await;
    t.log(A, interaction("n8n", "a record")).await;
    let ex = t
        .post(
            "/api/examples",
            Who::Admin,
            json!({"platform": "n8n", "user_message": "curated ask", "workflow": {"curated": true}}),
        )
        .await;
    ex.expect(201, None);
    let lines = t.get("/api/feedback/export/n8n", Who::Admin).await.lines();
    let users: Vec<&str> = lines.iter().map(|l| l["messages"][1]["content"].as_str().unwrap()).collect();
    assert_eq!(users, ["a record", "curated ask"]);
    assert_eq!(lines[1]["messages"][2]["content"], "{\"curated\":true}");
    t.get("/api/feedback/export/n8n?format=bedrock", Who::Admin).await;
    // An export that does not reach the example (limit) does not count it.
    t.get("/api/feedback/export/n8n?limit=1", Who::Admin).await;
    let list = t.get("/api/examples?platform=n8n", Who::Admin).await.json();
    assert_eq!(list["items"][0]["usage_count"], 2);
}

#[tokio::test]
async fn readiness_counts_what_the_export_would_produce() {
    let t = spawn_app(&[]).await;
    let mut no = interaction("make", "no consent");
    no["training_consent"] = json!(false);
    let no_id = t.log(A, no).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": no_id, "feedback_type": "thumbs_up"})).await;
    let yes = t.log(A, interaction("make", "consent")).await;
    t.post("/api/feedback/submit", A, json!({"interaction_id": yes, "feedback_type": "thumbs_up"})).await;
    let r = t.get("/api/feedback/readiness/make", A).await.json();
    assert_eq!(
        r["metrics"],
        json!({"total_examples": 1, "successful": 1, "with_feedback": 1, "quality_examples": 1, "positive_feedback_rate": 1.0})
    );
    // Storage statistics still count every record.
    assert_eq!(t.get("/api/feedback/stats", A).await.json()["overview"]["total_records"], 2);
}

/// An archive object with an unreadable line (here a line cut in half) exports and reads its
/// other records; the answers say how many lines they skipped (`X-Archive-Skipped-Lines`).
#[tokio::test]
async fn a_poisoned_archive_line_is_skipped_and_reported_in_headers() {
    use std::io::{Read, Write};
    let t = spawn_app(&[]).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut old = interaction("n8n", &format!("old {i}"));
        old["user_id"] = json!("alice");
        old["created_at"] = json!(days_ago(45));
        ids.push(t.log(Who::Service, old).await);
    }
    t.post("/api/feedback/archive", Who::Admin, json!({})).await.expect(200, None);
    let rows = t.app.hot.list_archive_objects(None).await.expect("rows");
    let key = rows[0].object_key.clone();
    let mut raw = String::new();
    flate2::read::GzDecoder::new(t.app.objects.get(&key).await.expect("get").as_slice())
        .read_to_string(&mut raw)
        .expect("gzip");
    let cut: String = raw
        .lines()
        .map(|l| if l.contains(&ids[1]) { format!("{}\n", &l[..l.len() / 2]) } else { format!("{l}\n") })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(cut.as_bytes()).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    t.app.objects.put(&key, bytes, collector::domain::archive::StorageClass::Standard).await.expect("put");

    let r = t.get("/api/feedback/export/n8n?include_archived=true", Who::Admin).await;
    r.expect(200, None);
    let mut asks: Vec<String> =
        r.lines().iter().map(|l| l["messages"][1]["content"].as_str().unwrap_or_default().to_owned()).collect();
    asks.sort();
    assert_eq!(asks, ["old 0", "old 2"]);
    assert_eq!(header(&r, "x-archive-skipped-lines"), "1");
    assert_eq!(
        header(&t.get("/api/feedback/export/n8n", Who::Admin).await, "x-archive-skipped-lines"),
        "0",
        "no archive read"
    );
    let mine = t.get("/api/me/data", A).await;
    mine.expect(200, None);
    assert_eq!(mine.lines().len(), 2);
    assert_eq!(header(&mine, "x-archive-skipped-lines"), "1");
    t.get(&format!("/api/interactions/{}", ids[0]), A).await.expect(200, None);
    t.get(&format!("/api/interactions/{}", ids[1]), A).await.expect(500, Some("internal"));
    // Deleting a good record and the unreadable one works.
    t.delete(&format!("/api/feedback/data/{}", ids[0]), A).await.expect(200, None);
    t.delete(&format!("/api/feedback/data/{}", ids[1]), A).await.expect(200, None);
    let r = t.get("/api/feedback/export/n8n?include_archived=true", Who::Admin).await;
    assert_eq!((r.lines().len(), header(&r, "x-archive-skipped-lines")), (1, "0".to_owned()));
}
