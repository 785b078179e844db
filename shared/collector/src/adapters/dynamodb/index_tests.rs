//! The hot table's indexes: template.yaml declares exactly what the adapter queries (names, keys,
//! projections, from the adapter's own [`Gsi`] constants), an index entry holds only keys and
//! listing fields and costs one write unit, and a listing keeps only what the index still names.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value as Yaml;

use super::codec::*;
use super::io::{QuerySpec, key};
use super::reads::select_listed;
use crate::domain::counters::PlatformCounters;
use crate::domain::records::Interaction;
use crate::domain::types::Id;
use crate::ports::ArchivedEntry;
use crate::ports::conformance::{at, interaction, platform, validation};

/// The deployed stack's template.
const TEMPLATE: &str = include_str!("../../../../../template.yaml");

/// The indexes the adapter queries, in the template's order.
const INDEXES: [&Gsi; 2] = [&BY_PLATFORM, &BY_USER];

/// One write unit: an index entry up to this size costs 1 WRU per write.
const WRU_BYTES: usize = 1024;

fn hot_table() -> Yaml {
    let t: Yaml = serde_yaml::from_str(TEMPLATE).expect("template.yaml parses");
    t["Resources"]["HotTable"]["Properties"].clone()
}

fn text(v: &Yaml) -> &str {
    v.as_str().unwrap_or_else(|| panic!("template: expected a string, got {v:?}"))
}

fn texts(v: &Yaml) -> Vec<&str> {
    v.as_sequence().map(|s| s.iter().map(text).collect()).unwrap_or_default()
}

#[test]
fn the_template_declares_exactly_the_indexes_the_adapter_queries() {
    let props = hot_table();
    let gsis = props["GlobalSecondaryIndexes"].as_sequence().expect("GlobalSecondaryIndexes");
    let names: Vec<&str> = gsis.iter().map(|g| text(&g["IndexName"])).collect();
    assert_eq!(names, INDEXES.map(|g| g.name), "the template's indexes are the adapter's, in order");
    for (g, y) in INDEXES.iter().zip(gsis) {
        let keys: Vec<(&str, &str)> = y["KeySchema"]
            .as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
            .collect();
        assert_eq!(keys, [(g.pk, "HASH"), (g.sk, "RANGE")], "{}: key schema", g.name);
        let projection = &y["Projection"];
        let kind = text(&projection["ProjectionType"]);
        let listed = texts(&projection["NonKeyAttributes"]);
        if g.include.is_empty() {
            assert_eq!(kind, "KEYS_ONLY", "{}: projection", g.name);
            assert!(projection.get("NonKeyAttributes").is_none(), "{}: KEYS_ONLY lists no attributes", g.name);
        } else {
            assert_eq!(kind, "INCLUDE", "{}: projection", g.name);
            let unique: BTreeSet<&str> = listed.iter().copied().collect();
            assert_eq!(unique.len(), listed.len(), "{}: an attribute listed twice", g.name);
            assert_eq!(unique, g.include.iter().copied().collect(), "{}: the projected attributes", g.name);
        }
    }
    // The table's keys and the indexes' keys, nothing else (no attribute of a dropped index).
    let defs: BTreeMap<&str, &str> = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
        .collect();
    let mut want = BTreeMap::from([("pk", "S"), ("sk", "S")]);
    for g in INDEXES {
        want.insert(g.pk, "S");
        want.insert(g.sk, "S");
    }
    assert_eq!(defs, want);
}

#[test]
fn a_query_may_only_filter_on_or_read_what_its_index_projects() {
    let mut by_platform = QuerySpec::index("t", &BY_PLATFORM, "P#n8n#0".into());
    assert_eq!(by_platform.unprojected(), None);
    by_platform.platform = Some("n8n".into());
    assert_eq!(by_platform.unprojected(), Some("platform"), "a filter on an attribute the entry lacks");
    assert_eq!(QuerySpec::index("t", &BY_PLATFORM, "P#n8n#0".into()).only(&["id"]).unprojected(), Some("id"));
    assert_eq!(QuerySpec::index("t", &BY_PLATFORM, "P#n8n#0".into()).only(&["pk", "gsi1sk"]).unprojected(), None);

    // What the adapter asks of the user index: the listing's platform filter, the ids of the
    // delete-all and of the archived entries, the overflow key of an unlinked validation.
    let mut by_user = QuerySpec::index("t", &BY_USER, "U#alice".into());
    by_user.platform = Some("n8n".into());
    assert_eq!(by_user.unprojected(), None);
    assert_eq!(by_user.clone().only(&["id", "ovf", "pk", "sk"]).unprojected(), None);
    assert_eq!(by_user.only(&["msg"]).unprojected(), Some("msg"));
    // The table itself holds everything.
    assert_eq!(QuerySpec::table("t", "TOMB".into()).only(&["id", "slot"]).unprojected(), None);
}

/// An item's entry in an index (None when the item is not in it: no index key).
fn entry(g: &Gsi, item: &Item) -> Option<Item> {
    item.contains_key(g.pk)
        .then(|| item.iter().filter(|(k, _)| g.projects(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn names(item: &Item) -> BTreeSet<&str> {
    item.keys().map(String::as_str).collect()
}

/// The largest entries the adapter writes: a user id of 256 ASCII characters (a JWT `sub` is
/// usually a 36-character UUID), a 32-character platform, an overflow key.
#[test]
fn an_index_entry_holds_keys_and_listing_fields_only_and_costs_one_write_unit() {
    let long_user = "u".repeat(256);
    let long_platform = "p".repeat(32);
    let rec = interaction(&long_user, &long_platform, at(0));
    let mut hot = interaction_item(&rec).expect("item");
    hot.insert("ovf".into(), s(format!("overflow/{}/{}", rec.id, Id::new())));
    let (archived, _) =
        ArchivedEntry::archiving(&rec, &format!("archive/platform={long_platform}/date=2026-01-05/run-1.jsonl.gz"));
    let stub = stub_item(&archived).expect("stub");
    let mut unlinked = validation_item(&validation(&long_user, &long_platform, None, 80, at(1))).expect("validation");
    unlinked.insert("ovf".into(), s(format!("overflow/{}/{}", Id::new(), Id::new())));

    let key_names = |g: &Gsi| BTreeSet::from(["pk", "sk", g.pk, g.sk]);
    let with = |g: &Gsi, extra: &[&'static str]| {
        let mut n = key_names(g);
        n.extend(extra);
        n
    };
    // Per item, its entry's attributes in each index (None: not in it).
    type Entries<'a> = [Option<BTreeSet<&'a str>>; 2];
    let cases: [(&str, &Item, Entries); 3] = [
        ("hot", &hot, [Some(key_names(&BY_PLATFORM)), Some(with(&BY_USER, &["id", "platform", "ovf"]))]),
        ("stub", &stub, [None, Some(with(&BY_USER, &["id", "platform"]))]),
        ("unlinked validation", &unlinked, [None, Some(with(&BY_USER, &["ovf"]))]),
    ];
    for (what, item, want) in cases {
        assert!(!item.keys().any(|k| k.starts_with("gsi3")), "{what}: no attribute of the dropped by_object index");
        for (g, want) in INDEXES.iter().zip(want) {
            let e = entry(g, item);
            assert_eq!(e.as_ref().map(names), want, "{what} in {}", g.name);
            if let Some(e) = e {
                let size = item_size(&e);
                assert!(size < WRU_BYTES, "{what} in {}: {size} bytes is more than one write unit", g.name);
            }
        }
    }
    // What the indexes save: the hot item's own size against its two entries.
    let plain = interaction_item(&interaction("alice", "n8n", at(0))).expect("item");
    let entries: usize = INDEXES.iter().filter_map(|g| entry(g, &plain)).map(|e| item_size(&e)).sum();
    assert!(entries * 4 < item_size(&plain), "entries {entries} B against an item of {} B", item_size(&plain));
}

/// The counter update inside every insert's transaction stays at one write unit (two in the
/// transaction), whatever the counts.
#[test]
fn a_counter_shard_stays_under_one_write_unit() {
    let mut item = key(counter_pk(&platform(&"p".repeat(32)), SHARDS - 1), COUNTER_SK);
    for field in PlatformCounters::FIELDS {
        item.insert(field.into(), n(i64::MIN));
    }
    assert!(item_size(&item) < WRU_BYTES, "a counter shard of {} bytes", item_size(&item));
}

fn hot_item(rec: &Interaction) -> Item {
    interaction_item(rec).expect("item")
}

fn stub_of(rec: &Interaction) -> Item {
    stub_item(&ArchivedEntry::archiving(rec, "archive/platform=n8n/date=2026-01-05/run-1.jsonl.gz").0).expect("stub")
}

fn ids(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| get_s(i, "id").expect("id").to_owned()).collect()
}

#[test]
fn a_listing_keeps_what_the_index_still_names_once_in_index_order() {
    let a = interaction("alice", "n8n", at(0));
    let b = interaction("alice", "n8n", at(1));
    let c = interaction("alice", "n8n", at(2));
    let d = interaction("alice", "n8n", at(3));
    // d was deleted and logged again under the same id, at another time (another position).
    let d_again = Interaction { created_at: at(9), ..d.clone() };
    let e = interaction("alice", "n8n", at(4));
    let entries: Vec<Item> = [&a, &b, &c, &d, &e, &d_again, &a]
        .iter()
        .map(|r| entry(&BY_PLATFORM, &hot_item(r)).expect("in the index"))
        .collect();
    // b is archived (its stub has left the platform index), c deleted; the rest as indexed.
    let fetched = vec![hot_item(&e), stub_of(&b), hot_item(&d_again), hot_item(&a)];
    let kept = select_listed(&BY_PLATFORM, &entries, fetched, None, is_hot);
    assert_eq!(ids(&kept), [a.id, e.id, d.id].map(|i| i.to_string()), "index order, each once");
    assert_eq!(get_s(&kept[2], "created").expect("created"), ts(&at(9)), "the item as it is now");

    // The user index: a platform filter, and a stub under `A#` is not what an `I#` entry named.
    let x = interaction("alice", "n8n", at(0));
    let y = interaction("alice", "make", at(1));
    let z = interaction("alice", "n8n", at(2));
    let entries: Vec<Item> = [&x, &y, &z].iter().map(|r| entry(&BY_USER, &hot_item(r)).expect("indexed")).collect();
    let fetched = vec![hot_item(&x), hot_item(&y), stub_of(&z)];
    let kept = select_listed(&BY_USER, &entries, fetched.clone(), Some("n8n"), is_hot);
    assert_eq!(ids(&kept), [x.id.to_string()]);
    let kept = select_listed(&BY_USER, &entries, fetched, None, is_hot);
    assert_eq!(ids(&kept), [x.id, y.id].map(|i| i.to_string()));
    // Nothing fetched, nothing listed.
    assert!(select_listed(&BY_USER, &entries, Vec::new(), None, is_hot).is_empty());
}
