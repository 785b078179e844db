//! The stream's expiry recovery on DynamoDB + S3 (the emulator): items the table's TTL removed
//! come back from the stream's old images and are archived exactly once, whatever the order of
//! their events and however often a batch is delivered; a delete is never undone.
//!
//! The events are built from the items the adapter really wrote: each test reads the raw items
//! of a record's partition, deletes them as TTL would (the emulator has no TTL sweeper to wait
//! for), and wraps their old images in REMOVE records with the TTL service's `userIdentity`.
//! Needs the emulator (`infra/emulator.sh start`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use aws_lambda_events::dynamodb;
use aws_sdk_dynamodb::types::AttributeValue;
use collector::adapters::dynamodb::DynamoStore;
use collector::adapters::s3::S3Store;
use collector::app::{App, AppError, IngestOutcome};
use collector::config::Config;
use collector::domain::types::{Caller, Id, Role, UserId};
use collector::ports::ObjectStore;
use collector::testing::{Emulator, Stack};
use fn_archiver::{ArchiverEvent, ArchiverResponse, handle_with};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;

struct Aws {
    emu: Emulator,
    stack: Stack,
    app: App,
    table: Arc<DynamoStore>,
}

async fn aws() -> Option<Aws> {
    let emu = Emulator::connect().await?;
    let stack = emu.create_stack().await;
    let objects: Arc<dyn ObjectStore> = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
    let table = Arc::new(DynamoStore::new(
        emu.dynamodb(),
        stack.table.clone(),
        stack.archive_table.clone(),
        objects.clone(),
        30,
    ));
    let config = Config::from_lookup(|_| None).expect("default config");
    let app = App::new(config, table.clone(), objects);
    Some(Aws { emu, stack, app, table })
}

fn caller(sub: &str, role: Role) -> Caller {
    Caller { sub: UserId::parse(sub).expect("user id"), role }
}

/// A record of `user`, 40 days old (past the 30-day retention); with a feedback and a linked
/// validation when `linked`.
async fn record(app: &App, user: &str, message: &str, linked: bool) -> Id {
    let service = caller("ai-backend", Role::Service);
    let created = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let body = json!({"user_id": user, "platform": "n8n", "user_message": message, "ai_response": "a workflow",
                      "created_at": created});
    let id =
        match app.log_interaction(&service, collector::domain::input::Parsed::interaction(body)).await.expect("logged")
        {
            IngestOutcome::Created(r) => r.interaction_id,
            other => panic!("not created: {other:?}"),
        };
    if linked {
        let fb = json!({"interaction_id": id.to_string(), "feedback_type": "thumbs_up", "comment": "good"});
        app.submit_feedback(&service, collector::domain::input::NewFeedback::parse(&fb).expect("feedback body"))
            .await
            .expect("feedback");
        let workflow = json!({"nodes": [{"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}}], "connections": {}});
        let v = json!({"interaction_id": id.to_string(), "platform": "n8n", "workflow": workflow});
        app.validate_workflow(&service, collector::domain::input::Parsed::validation(v)).await.expect("validation");
    }
    id
}

/// Remove a record's items as TTL would; returns their images, links first (the order that is
/// hardest for the recovery: a link arrives while its head is gone too).
async fn expire(aws: &Aws, id: Id) -> Vec<Item> {
    let client = aws.emu.dynamodb();
    let mut items = partition(aws, id).await;
    items.sort_by_key(|i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if sk == "A"));
    for item in &items {
        let key: Item = ["pk", "sk"].iter().map(|k| ((*k).to_owned(), item[*k].clone())).collect();
        client.delete_item().table_name(&aws.stack.table).set_key(Some(key)).send().await.expect("delete");
    }
    items
}

/// Every item of a record's partition (`I#{id}`), read consistently.
async fn partition(aws: &Aws, id: Id) -> Vec<Item> {
    let out = aws
        .emu
        .dynamodb()
        .query()
        .table_name(&aws.stack.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("I#{id}")))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    out.items().to_vec()
}

/// A stream batch of REMOVE records of `images`: by TTL (the DynamoDB service) or by a request.
fn removals(images: &[Item], ttl: bool, batch: u32) -> ArchiverEvent {
    let records: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let mut r = json!({
                "eventID": format!("ev-{batch}-{i}"),
                "eventName": "REMOVE",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": chrono::Utc::now().timestamp(),
                    "Keys": {},
                    "SequenceNumber": format!("{}{:04}", 5000 + batch, i),
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            });
            if ttl {
                r["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
            }
            r
        })
        .collect();
    let mut event: dynamodb::Event = serde_json::from_value(json!({ "Records": records })).expect("stream event");
    for (r, image) in event.records.iter_mut().zip(images) {
        let old: HashMap<String, serde_dynamo::AttributeValue> =
            image.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        r.change.keys =
            ["pk", "sk"].iter().map(|k| ((*k).to_owned(), old[*k].clone())).collect::<HashMap<_, _>>().into();
        r.change.old_image = old.into();
    }
    ArchiverEvent::Stream(event)
}

/// Deliver `event` to the handler as the runtime would, with a minute left.
async fn deliver(aws: &Aws, event: &ArchiverEvent) -> Vec<String> {
    let mut ctx = Context::default();
    ctx.deadline = (chrono::Utc::now().timestamp_millis() + 60_000) as u64;
    let ArchiverEvent::Stream(batch) = event else { panic!("a stream event") };
    let event = ArchiverEvent::Stream(batch.clone());
    let out = handle_with(&aws.app, Some(aws.table.as_ref()), LambdaEvent::new(event, ctx), std::time::Duration::ZERO)
        .await
        .expect("handled");
    let ArchiverResponse::Stream(resp) = out else { panic!("not a stream response") };
    resp.batch_item_failures.into_iter().filter_map(|f| f.item_identifier).collect()
}

/// Every archive line in the bucket, by interaction id.
async fn lines(aws: &Aws) -> HashMap<Id, Vec<Value>> {
    let mut out: HashMap<Id, Vec<Value>> = HashMap::new();
    for key in aws.app.objects.list("archive/").await.expect("list") {
        let gz = aws.app.objects.get(&key).await.expect("get");
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text).expect("gzip");
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l).expect("line");
            let id = Id::parse(v["interaction_id"].as_str().expect("id")).expect("id");
            out.entry(id).or_default().push(v);
        }
    }
    out
}

async fn totals(app: &App) -> (i64, i64) {
    let counters = app.hot.counters().await.expect("counters");
    (counters.values().map(|c| c.total).sum(), counters.values().map(|c| c.archived).sum())
}

#[tokio::test]
async fn ttl_removed_records_come_back_and_are_archived_exactly_once() {
    let Some(aws) = aws().await else { return };
    // Failpoints are process-global: every test here holds a scenario, so they run one at a time.
    let _scenario = fail::FailScenario::setup();
    let with_links = record(&aws.app, "erin", "expired with feedback", true).await;
    let plain = record(&aws.app, "erin", "expired alone", false).await;
    let untouched = record(&aws.app, "frank", "never expired", false).await;
    let mut images = expire(&aws, with_links).await;
    assert_eq!(images.len(), 3, "head, feedback and validation");
    images.extend(expire(&aws, plain).await);
    let admin = caller("root", Role::Admin);
    assert!(matches!(aws.app.get_interaction(&admin, with_links).await, Err(AppError::NotFound)), "TTL removed it");

    // Two batches, each delivered three times: first the feedback (its head is gone too), the
    // head and the other record, then the validation. The archive run after the first batch
    // must hold back the record still missing its validation.
    let validation = images.remove(1);
    let first = removals(&images, true, 1);
    let second = removals(&[validation], true, 2);
    for delivery in 0..3 {
        assert!(deliver(&aws, &first).await.is_empty(), "delivery {delivery}: no failures");
    }
    let held = aws.app.get_interaction(&admin, with_links).await.expect("back");
    assert!(!held.archived, "not archived while a link that expired with it is missing");
    for delivery in 0..3 {
        assert!(deliver(&aws, &second).await.is_empty(), "delivery {delivery}: no failures");
    }

    let lines = lines(&aws).await;
    for id in [with_links, plain, untouched] {
        assert_eq!(lines.get(&id).map(Vec::len), Some(1), "{id}: exactly one archive line");
    }
    let line = &lines[&with_links][0];
    assert_eq!(line["user_message"], "expired with feedback");
    assert_eq!(line["feedback"].as_array().map(Vec::len), Some(1), "the feedback that expired with it is in its line");
    assert_eq!(line["validations"].as_array().map(Vec::len), Some(1));
    let rec = aws.app.get_interaction(&admin, with_links).await.expect("readable again");
    assert!(rec.archived);
    assert_eq!(rec.user_message, "expired with feedback");
    assert_eq!(totals(&aws.app).await, (3, 3), "counters equal a recount: three records, all archived");
    assert!(
        aws.app.hot.tombstoned_slots().await.expect("tombstones").is_empty(),
        "the held-back line was compacted away"
    );
}

/// A batch whose second event fails (a failpoint) still handles every other removal, and
/// reports only the failed one for redelivery; the redelivered batch finishes the work without
/// doing any of it twice.
#[tokio::test]
async fn a_batch_cut_short_is_finished_by_its_redelivery() {
    let Some(aws) = aws().await else { return };
    let scenario = fail::FailScenario::setup();
    let a = record(&aws.app, "ivan", "first", true).await;
    let b = record(&aws.app, "ivan", "second", false).await;
    let mut images = expire(&aws, a).await;
    images.extend(expire(&aws, b).await);
    let event = removals(&images, true, 4);
    // Passes the first event, fails the second once.
    fail::cfg("expiry.before_event", "1*off->1*return->off").expect("failpoint");
    let failed = deliver(&aws, &event).await;
    assert_eq!(failed, ["50040001"], "only the failed event is handed back");
    // The removal after the failed one was put back and archived; the record missing a link
    // stays hot until it is back (its line, if any, is a dead one the next run erases).
    assert!(aws.app.hot.archived_entry(b).await.expect("entry").is_some(), "b archived in the first delivery");
    let held = aws.app.hot.get_linked(a).await.expect("get").expect("a is hot");
    assert_eq!((held.feedback.len(), held.validations.len()), (1, 0), "its validation is not back yet");
    for _ in 0..2 {
        assert!(deliver(&aws, &event).await.is_empty());
    }
    scenario.teardown();
    let lines = lines(&aws).await;
    for id in [a, b] {
        assert_eq!(lines.get(&id).map(Vec::len), Some(1), "{id}: exactly one archive line");
    }
    assert_eq!(lines[&a][0]["feedback"].as_array().map(Vec::len), Some(1));
    assert_eq!(totals(&aws.app).await, (2, 2), "counters equal a recount");
}

/// A TTL removal of a deleted user's record whose erasure stopped after it was marked handled
/// and before the partition's leftover links were swept (a failpoint): the redelivery sweeps
/// them, so nothing of the deleted user stays in the table.
#[tokio::test]
async fn an_erasure_cut_before_its_sweep_is_finished_by_the_redelivery() {
    let Some(aws) = aws().await else { return };
    let scenario = fail::FailScenario::setup();
    let id = record(&aws.app, "ines", "ines expired", true).await;
    let images = expire(&aws, id).await;
    aws.app.delete_user(&UserId::parse("ines").expect("user")).await.expect("delete");
    // The links come back first (their head is gone and no interaction marker covers them);
    // the head's event erases, then stops before its sweep.
    fail::cfg("expiry.before_sweep", "1*return->off").expect("failpoint");
    let event = removals(&images, true, 5);
    let failed = deliver(&aws, &event).await;
    assert_eq!(failed.len(), 1, "the head's event is handed back");
    assert!(!partition(&aws, id).await.is_empty(), "links left behind by the cut erasure");
    assert!(deliver(&aws, &event).await.is_empty());
    scenario.teardown();
    assert!(partition(&aws, id).await.is_empty(), "the redelivery swept them");
    let admin = caller("root", Role::Admin);
    assert!(matches!(aws.app.get_interaction(&admin, id).await, Err(AppError::NotFound)));
}

#[tokio::test]
async fn a_delete_is_never_undone_by_the_stream() {
    let Some(aws) = aws().await else { return };
    // Failpoints are process-global: every test here holds a scenario, so they run one at a time.
    let _scenario = fail::FailScenario::setup();
    // Expired before the user's delete, which therefore could not see it.
    let expired = record(&aws.app, "gina", "gina expired", true).await;
    let hot = record(&aws.app, "gina", "gina hot", true).await;
    // Another user's record, deleted by a request: its REMOVE events are not TTL's.
    let other = record(&aws.app, "hugo", "hugo deleted", false).await;
    let images = expire(&aws, expired).await;
    let deleted = aws.app.delete_user(&UserId::parse("gina").expect("user")).await.expect("delete");
    assert_eq!(deleted.deleted.interactions, 1, "the delete saw only the record TTL left");
    let raw_other = {
        let client = aws.emu.dynamodb();
        let key: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("I#{other}"))),
            ("sk".to_owned(), AttributeValue::S("A".to_owned())),
        ]);
        let got = client.get_item().table_name(&aws.stack.table).set_key(Some(key)).consistent_read(true).send().await;
        got.expect("get").item().cloned().expect("hugo's record")
    };
    let admin = caller("root", Role::Admin);
    aws.app.delete_interaction(&admin, other).await.expect("delete hugo's record");

    // The link comes before its head (the head is gone then too), and the batch comes twice.
    let ttl = removals(&images, true, 2);
    let request = removals(&[raw_other], false, 3);
    for _ in 0..2 {
        assert!(deliver(&aws, &ttl).await.is_empty());
        assert!(deliver(&aws, &request).await.is_empty());
    }

    for id in [expired, hot, other] {
        assert!(matches!(aws.app.get_interaction(&admin, id).await, Err(AppError::NotFound)), "{id} stays deleted");
    }
    assert!(partition(&aws, expired).await.is_empty(), "no link of the deleted record is left behind");
    assert!(lines(&aws).await.is_empty(), "nothing deleted was archived");
    assert_eq!(totals(&aws.app).await, (0, 0), "counters equal a recount: nothing left");
}
