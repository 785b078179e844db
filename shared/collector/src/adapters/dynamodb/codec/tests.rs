//! Tests of the item layout: keys, shards, and each record's item and back.

use super::*;
use crate::domain::types::Platform;

#[test]
fn shards_spread_and_stay_in_range() {
    let shards: std::collections::HashSet<u32> = (0..200).map(|_| shard_of(Id::new())).collect();
    assert!(shards.len() > SHARDS as usize / 2);
    assert!(shards.iter().all(|s| *s < SHARDS));
}

#[test]
fn rows_round_trip_and_old_rows_read_as_committed_in_their_own_slot() {
    let p = Platform::parse("n8n").expect("platform");
    let date = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let created = DateTime::<Utc>::from_timestamp(1_767_600_000, 0).expect("time");
    let obj = ArchiveObject::pending(p, date, "archive/a.jsonl.gz".into(), "run-1", created);
    let moved = ArchiveObject { object_key: "archive/b.jsonl.gz".into(), ..obj.clone() };
    let item = object_item(&moved);
    assert_eq!(item.get("object"), Some(&s("2026-01-05#archive/a.jsonl.gz")), "keyed by slot");
    assert_eq!(object_from(&item).expect("row"), moved);
    let mut old = object_item(&obj);
    old.remove("slot");
    old.remove("state");
    let read = object_from(&old).expect("old row");
    assert_eq!((read.slot.as_str(), read.state), ("archive/a.jsonl.gz", ObjectState::Committed));
}

#[test]
fn overflow_payload_round_trips() {
    let mut item: Item = HashMap::from([
        ("pk".into(), s("I#x")),
        ("msg".into(), s("hello")),
        ("wf".into(), AttributeValue::B(Blob::new(vec![0u8, 1, 255]))),
    ]);
    let before = item.clone();
    let bytes = take_payload(&mut item, &INTERACTION_PAYLOAD).expect("take").expect("some");
    assert_eq!(item.len(), 1);
    restore_payload(&mut item, &bytes).expect("restore");
    assert_eq!(item, before);
}
