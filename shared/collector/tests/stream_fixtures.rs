//! The archiver's stream fixtures (`events/archiver/stream-*.json`) carry items as the DynamoDB
//! adapter really writes them: this test writes an interaction through the adapter on the
//! emulator, reads the raw item back and compares it with `events/archiver/item-interaction.json`,
//! which `events/generate.py` puts into every stream image. After a change of the item layout:
//! `UPDATE_FIXTURES=1 cargo test -p collector --test stream_fixtures`, then
//! `python3 events/generate.py`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use collector::adapters::dynamodb::DynamoStore;
use collector::adapters::s3::S3Store;
use collector::domain::archive::ArchiveObject;
use collector::domain::types::Id;
use collector::ports::conformance::{archive_object, at, interaction};
use collector::ports::{ArchiveItem, HotStore};
use collector::testing::Emulator;
use serde_json::{Map, Value, json};

/// The placeholder id of every fixture (events/generate.py's `ID`).
const FIXTURE_ID: &str = "01936f4e-7a00-7000-8000-000000000001";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/archiver")
}

/// An attribute value in the stream's JSON form (`{"S": ...}`, `{"N": ...}`, `{"B": base64}`, ...).
fn stream_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64::engine::general_purpose::STANDARD.encode(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": image(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(stream_json).collect::<Vec<_>>() }),
        AttributeValue::Ss(s) => json!({ "SS": s }),
        AttributeValue::Ns(n) => json!({ "NS": n }),
        other => panic!("an attribute type the adapter does not write: {other:?}"),
    }
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    Value::Object(names.into_iter().map(|k| (k.clone(), stream_json(&item[k]))).collect::<Map<_, _>>())
}

#[tokio::test]
async fn stream_fixtures_hold_the_items_the_adapter_writes() {
    let Some(emu) = Emulator::connect().await else { return };
    let stack = emu.create_stack().await;
    let overflow = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
    let store = DynamoStore::new(emu.dynamodb(), stack.table.clone(), stack.archive_table.clone(), overflow, 30);
    let mut rec = interaction("alice", "n8n", at(0));
    rec.id = Id::parse(FIXTURE_ID).expect("fixture id");
    store.insert_interaction(&rec).await.expect("insert");
    let raw = emu
        .dynamodb()
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("I#{FIXTURE_ID}")))
        .key("sk", AttributeValue::S("A".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .expect("the item was written");
    let written = image(&raw);

    let path = events_dir().join("item-interaction.json");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        let text = serde_json::to_string_pretty(&written).expect("json") + "\n";
        std::fs::write(&path, text).expect("write the item fixture");
    }
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("item fixture")).expect("json");
    assert_eq!(fixture, written, "{} is not what the adapter writes: rerun with UPDATE_FIXTURES=1", path.display());

    // A tombstone, as the delete of an archived record writes it: archive the record (lease,
    // pending row, commit), delete it, read the raw tombstone item back.
    let lease = store
        .acquire_lease("fixture", chrono::Utc::now(), std::time::Duration::from_secs(60))
        .await
        .expect("lease")
        .expect("free");
    let obj = archive_object("n8n", rec.created_at.date_naive(), "run-fixture", 1, at(100));
    let row = ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at);
    store.begin_archive(&lease, &row).await.expect("begin");
    store.commit_archive(&lease, &obj, &[ArchiveItem { id: rec.id, links: 0 }]).await.expect("commit");
    store.release_lease(&lease).await.expect("release");
    store.delete_archived(rec.id).await.expect("delete").expect("it was archived");
    let tombs = emu
        .dynamodb()
        .query()
        .table_name(&stack.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("TOMB".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query tombstones")
        .items
        .unwrap_or_default();
    assert_eq!(tombs.len(), 1, "one tombstone");
    let tomb = image(&tombs[0]);
    let path = events_dir().join("item-tombstone.json");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&tomb).expect("json") + "\n")
            .expect("write the tombstone fixture");
    }
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("tombstone fixture")).expect("json");
    assert_eq!(fixture, tomb, "{} is not what the adapter writes: rerun with UPDATE_FIXTURES=1", path.display());
    let ev: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("stream-insert-tombstone.json")).expect("fixture"),
    )
    .expect("json");
    let change = &ev["Records"][0]["dynamodb"];
    assert_eq!(change["NewImage"], tomb, "stream-insert-tombstone.json: run python3 events/generate.py");
    assert_eq!(change["Keys"], json!({"pk": tomb["pk"], "sk": tomb["sk"]}), "stream-insert-tombstone.json: keys");

    // Every stream fixture's image is that item (events/generate.py was rerun).
    for name in ["stream-insert.json", "stream-remove-user.json", "stream-remove-ttl.json"] {
        let ev: Value =
            serde_json::from_str(&std::fs::read_to_string(events_dir().join(name)).expect("fixture")).expect("json");
        let change = &ev["Records"][0]["dynamodb"];
        let img = if change["NewImage"].is_object() { &change["NewImage"] } else { &change["OldImage"] };
        assert_eq!(img, &written, "{name}: run python3 events/generate.py");
        assert_eq!(change["Keys"], json!({"pk": written["pk"], "sk": written["sk"]}), "{name}: keys");
    }
}
