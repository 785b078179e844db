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
use collector::domain::types::Id;
use collector::ports::HotStore;
use collector::ports::conformance::{at, interaction};
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

    // Every stream fixture's image is that item (events/generate.py was rerun).
    for name in ["stream-insert.json", "stream-remove-user.json", "stream-remove-ttl.json"] {
        let ev: Value = serde_json::from_str(&std::fs::read_to_string(events_dir().join(name)).expect("fixture")).expect("json");
        let change = &ev["Records"][0]["dynamodb"];
        let img = if change["NewImage"].is_object() { &change["NewImage"] } else { &change["OldImage"] };
        assert_eq!(img, &written, "{name}: run python3 events/generate.py");
        assert_eq!(change["Keys"], json!({"pk": written["pk"], "sk": written["sk"]}), "{name}: keys");
    }
}
