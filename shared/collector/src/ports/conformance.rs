//! The store conformance suite: written once against the ports, run on every adapter.
//!
//! Each `case_*` takes a fresh, empty store and panics on failure. An adapter's test file stamps
//! one test per case with [`hot_store_conformance!`](crate::hot_store_conformance) and
//! [`object_store_conformance!`](crate::object_store_conformance), given a closure that returns a
//! future of `(store, guard)`; the guard (a temp dir, or `()`) lives until the test ends:
//!
//! ```ignore
//! collector::hot_store_conformance!(|| async {
//!     let dir = tempfile::tempdir().unwrap();
//!     (SqliteStore::open(&dir.path().join("hot.db")).unwrap(), dir)
//! });
//! ```
//!
//! Cases that need tasks of their own take an `Arc<dyn HotStore>`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::domain::archive::{ArchiveObject, ClassPolicy, ObjectState, StorageClass, object_key};
use crate::domain::counters::PlatformCounters;
use crate::domain::diff::diff;
use crate::domain::json::canonical_hash;
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords, ManifestFilters, ManifestSplit};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{
    CuratedExample, Feedback, FeedbackSummary, FeedbackType, Interaction, MAX_LINK_BYTES, NewLink, TrainingMetric,
    ValidationLog,
};
use crate::domain::types::{Id, Kind, Platform, UserId};
use crate::domain::validators::{Issue, IssueCode};
use crate::domain::workflow::StoredWorkflow;
use crate::ports::{
    ArchiveItem, ArchivedEntry, Cursor, FinishedObject, HotDeleted, HotStore, Inserted, Lease, Linked, ListQuery,
    ObjectStore, ScanQuery, StoreError,
};

/// Stamps one `#[tokio::test]` per hot-store case. `$make`: `|| async { (store, guard) }`.
///
/// For a backend that may be absent (the AWS emulator on a developer's machine):
/// `hot_store_conformance!(optional: $make)` with `$make` returning `Option<(store, guard)>`;
/// a case whose store is None returns early (the maker has printed why).
#[macro_export]
macro_rules! hot_store_conformance {
    (optional: $make:expr) => {
        $crate::hot_store_conformance!(@stamp $make;
            ref: case_insert_get_round_trip, case_insert_same_id_is_existing, case_list_newest_first_paging,
                 case_scan_platform_paging, case_scan_user_paging, case_feedback_updates_summary_and_counters,
                 case_validations_linked_and_unlinked, case_links_stop_at_their_limit,
                 case_scan_pages_stop_at_their_bytes,
                 case_delete_interaction_cascades, case_delete_user,
                 case_examples, case_metrics, case_commit_archive, case_archive_lease, case_two_phase_rows,
                 case_delete_archived_and_compaction, case_archive_objects_order,
                 case_counters_omit_zero_platforms, case_platforms_add_once_within_the_limit,
                 case_export_manifests, case_exports_holding_many_records, case_live_records_and_dropped_exports;
            arc: case_concurrent_inserts, case_concurrent_same_id, case_concurrent_platform_adds);
    };
    ($make:expr) => {
        $crate::hot_store_conformance!(optional: || async { ::std::option::Option::Some(($make)().await) });
    };
    (@stamp $make:expr; ref: $($case:ident),* ; arc: $($acase:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let ::std::option::Option::Some((store, _guard)) = ($make)().await else { return };
                $crate::ports::conformance::$case(&store).await;
            }
        )*
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $acase() {
                let ::std::option::Option::Some((store, _guard)) = ($make)().await else { return };
                $crate::ports::conformance::$acase(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}

/// Stamps one `#[tokio::test]` per object-store case. `$make`: `|| async { (store, guard) }`.
///
/// For a backend that may be absent (the emulator on a developer's machine):
/// `object_store_conformance!(optional: || async { Option<(store, guard)> })`; `None` skips the
/// test (the closure says why, e.g. through `Emulator::connect`).
#[macro_export]
macro_rules! object_store_conformance {
    (optional: $make:expr) => {
        $crate::object_store_conformance!(@cases $make);
    };
    ($make:expr) => {
        $crate::object_store_conformance!(@cases || async { ::std::option::Option::Some(($make)().await) });
    };
    (@cases $make:expr) => {
        $crate::object_store_conformance!(@stamp $make;
            case_object_put_get_round_trip, case_object_overwrite, case_object_list_prefix_sorted,
            case_object_delete, case_object_get_missing, case_object_bad_keys_rejected,
            case_object_writer_multi_chunk, case_object_writer_abort_leaves_nothing,
            case_object_writer_class_by_size, case_object_writer_fixed_class, case_object_writer_invisible_until_finish,
            case_object_reader_streams, case_object_presigned_get);
    };
    (@stamp $make:expr; $($case:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let ::std::option::Option::Some((store, _guard)) = ($make)().await else { return };
                $crate::ports::conformance::$case(&store).await;
            }
        )*
    };
}

// -- fixtures -----------------------------------------------------------------------------------

/// 2026-01-05T10:00:00.123456789Z plus `secs`: nanoseconds on purpose, they must round-trip.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_607_200 + secs, 123_456_789).expect("valid fixture time")
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid fixture user")
}

pub fn platform(name: &str) -> Platform {
    Platform::parse(name).expect("valid fixture platform")
}

/// An n8n workflow of `nodes` nodes with realistic parameters and connections.
pub fn n8n_workflow(nodes: usize) -> Value {
    let names: Vec<String> =
        (0..nodes).map(|i| if i == 0 { "Stripe Trigger".into() } else { format!("Step {i}") }).collect();
    let node_list: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "name": name,
                "type": if i == 0 { "n8n-nodes-base.stripeTrigger" } else { "n8n-nodes-base.slack" },
                "typeVersion": 1,
                "position": [250 + 200 * i as i64, 300],
                "parameters": {"channel": "#payments", "text": format!("New payment {{{{$json.amount}}}} ({i})"), "ratio": 0.1 + i as f64}
            })
        })
        .collect();
    let mut connections = Map::new();
    for pair in names.windows(2) {
        connections.insert(pair[0].clone(), json!({"main": [[{"node": pair[1], "type": "main", "index": 0}]]}));
    }
    json!({"name": "Payments to Slack", "nodes": node_list, "connections": connections, "settings": {"timezone": "UTC"}})
}

/// Pseudo-random printable text that gzip cannot shrink much (xorshift, base64 alphabet): big
/// payloads for overflow and archive-object tests.
pub fn noise(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 64) as usize] as char
        })
        .collect()
}

/// Metadata whose numbers must come back exactly.
pub fn metadata() -> Map<String, Value> {
    let v: Value = serde_json::from_str(
        r#"{"temperature":0.1,"top_p":0.95,"tokens_in":18446744073709551615,"offset":-9223372036854775808,
            "tiny":5e-324,"huge":1.7976931348623157e308,"client":{"name":"web","tags":["beta",null,true,2.5]}}"#,
    )
    .expect("fixture metadata");
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A logged workflow generation with every field set; its workflow is stored uncompressed.
pub fn interaction(owner: &str, plat: &str, created_at: DateTime<Utc>) -> Interaction {
    let workflow = n8n_workflow(3);
    let user_message =
        format!("When a Stripe payment succeeds, post it to #payments in Slack ({})", created_at.timestamp());
    let content_hash = canonical_hash(&json!({"user_message": user_message, "workflow": workflow, "user": owner}));
    Interaction {
        id: Id::new(),
        user_id: user(owner),
        platform: platform(plat),
        kind: Kind::WorkflowGeneration,
        user_message,
        ai_response: Some("Here is a workflow with a Stripe trigger and a Slack node.".into()),
        intent: Some("create_workflow".into()),
        workflow: Some(StoredWorkflow::pack(&workflow, 10 * 1024)),
        success: true,
        error_message: None,
        processing_time_ms: Some(1234),
        model_version: Some("wf-gen-2026-01".into()),
        metadata: Some(metadata()),
        training_consent: true,
        created_at,
        content_hash,
        summary: FeedbackSummary::default(),
    }
}

/// Like [`interaction`], with a workflow large enough to be stored gzip-compressed.
pub fn compressed_interaction(owner: &str, plat: &str, created_at: DateTime<Utc>) -> Interaction {
    let workflow = n8n_workflow(60);
    let mut rec = interaction(owner, plat, created_at);
    rec.workflow = Some(StoredWorkflow::pack(&workflow, 1024));
    rec.content_hash = canonical_hash(&json!({"user_message": rec.user_message, "workflow": workflow}));
    assert!(rec.workflow.as_ref().is_some_and(|w| w.compressed), "fixture workflow must compress");
    rec
}

/// A failed conversation turn: every optional field empty.
pub fn bare_interaction(owner: &str, plat: &str, created_at: DateTime<Utc>) -> Interaction {
    Interaction {
        id: Id::new(),
        user_id: user(owner),
        platform: platform(plat),
        kind: Kind::Conversation,
        user_message: "hi, can you help me?".into(),
        ai_response: None,
        intent: None,
        workflow: None,
        success: false,
        error_message: Some("upstream model timed out".into()),
        processing_time_ms: None,
        model_version: None,
        metadata: None,
        training_consent: false,
        created_at,
        content_hash: canonical_hash(&json!({"user_message": "hi, can you help me?", "at": created_at.timestamp()})),
        summary: FeedbackSummary::default(),
    }
}

pub fn feedback(rec: &Interaction, kind: FeedbackType, created_at: DateTime<Utc>) -> Feedback {
    let corrected = kind == FeedbackType::Edit;
    Feedback {
        feedback_id: Id::new(),
        interaction_id: rec.id,
        submitted_by: rec.user_id.clone(),
        feedback_type: kind,
        sentiment_score: Some(if kind.is_positive() { 5 } else { 2 }),
        comment: Some("the Slack message should include the customer email".into()),
        corrected_workflow: corrected.then(|| n8n_workflow(4)),
        issue_category: kind.is_negative().then(|| "missing_steps".to_string()),
        created_at,
    }
}

pub fn validation(
    owner: &str,
    plat: &str,
    interaction: Option<Id>,
    score: u32,
    created_at: DateTime<Utc>,
) -> ValidationLog {
    let original = n8n_workflow(2);
    let edited = n8n_workflow(3);
    let issue = |code: IssueCode, path: &str| Issue { code, path: path.into(), message: "a rule text".into() };
    let passed = score >= 60;
    ValidationLog {
        validation_id: Id::new(),
        interaction_id: interaction,
        user_id: user(owner),
        platform: platform(plat),
        passed,
        score,
        errors: if passed { vec![] } else { vec![issue(IssueCode::UnknownNode, "/connections/Step 1")] },
        warnings: vec![issue(IssueCode::MissingParameters, "/nodes/0")],
        diff: Some(diff(&original, &edited).expect("a small diff")),
        user_edited: true,
        workflow: edited,
        original_workflow: Some(original),
        duration_ms: 0.1 + 12.0,
        created_at,
    }
}

pub fn example(plat: &str, created_at: DateTime<Utc>) -> CuratedExample {
    CuratedExample {
        example_id: Id::new(),
        platform: platform(plat),
        user_message: "Notify Slack about new Stripe payments".into(),
        workflow: Some(n8n_workflow(2)),
        ai_response: None,
        description: Some("canonical trigger + action".into()),
        tags: vec!["stripe".into(), "slack".into()],
        usage_count: 0,
        created_by: user("admin"),
        created_at,
    }
}

pub fn metric(plat: &str, created_at: DateTime<Utc>) -> TrainingMetric {
    let metrics = match json!({"loss": 0.1 + 0.2, "accuracy": 0.9731, "epochs": 3}) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    TrainingMetric {
        metric_id: Id::new(),
        platform: platform(plat),
        model: "llama-3.1-8b-lora".into(),
        dataset_size: 1200,
        run_id: Some("run-42".into()),
        metrics,
        notes: None,
        created_by: user("admin"),
        created_at,
    }
}

pub fn archive_object(
    plat: &str,
    date: NaiveDate,
    run: &str,
    records: i64,
    created_at: DateTime<Utc>,
) -> ArchiveObject {
    let compressed_bytes = 900 * records + 100;
    let key = object_key(&platform(plat), date, run, 0);
    ArchiveObject {
        slot: key.clone(),
        object_key: key,
        state: ObjectState::Committed,
        platform: platform(plat),
        date,
        run_id: run.into(),
        record_count: records,
        raw_bytes: 5000 * records,
        compressed_bytes,
        storage_class: StorageClass::for_size(compressed_bytes),
        created_at,
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).expect("valid fixture date")
}

/// What the counters must hold for these records (hot or archived) and objects; zero platforms omitted.
pub fn expected_counters(
    records: &[(&Interaction, bool)],
    objects: &[&ArchiveObject],
) -> BTreeMap<Platform, PlatformCounters> {
    let mut out: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
    for (rec, archived) in records {
        out.entry(rec.platform.clone()).or_default().add(&rec.facts(*archived).contribution());
    }
    for o in objects {
        out.entry(o.platform.clone()).or_default().add(&o.contribution());
    }
    out.retain(|_, c| !c.is_zero());
    out
}

async fn insert_new(store: &dyn HotStore, rec: &Interaction) {
    assert_eq!(store.insert_interaction(rec).await.expect("insert"), Inserted::New, "first insert of {}", rec.id);
}

async fn current(store: &dyn HotStore, id: Id) -> Interaction {
    store.get_linked(id).await.expect("get_linked").expect("record is hot").interaction
}

fn cursor_of(rec: &Interaction) -> Cursor {
    Cursor { created_at: rec.created_at, id: rec.id }
}

fn ids(recs: &[Interaction]) -> Vec<Id> {
    recs.iter().map(|r| r.id).collect()
}

fn linked_ids(recs: &[Linked]) -> Vec<Id> {
    recs.iter().map(|r| r.interaction.id).collect()
}

/// Page through `list_interactions` and check the pages.
async fn list_all(
    store: &dyn HotStore,
    user_id: Option<UserId>,
    plat: Option<Platform>,
    limit: u32,
) -> Vec<Interaction> {
    let mut out: Vec<Interaction> = Vec::new();
    let mut before = None;
    loop {
        let q = ListQuery { user_id: user_id.clone(), platform: plat.clone(), before, limit };
        let page = store.list_interactions(&q).await.expect("list");
        assert!(page.len() <= limit as usize, "page over the limit");
        let Some(last) = page.last() else { break };
        before = Some(cursor_of(last));
        let short = page.len() < limit as usize;
        out.extend(page);
        if short {
            break;
        }
    }
    out
}

// -- interactions ---------------------------------------------------------------------------------

pub async fn case_insert_get_round_trip(store: &dyn HotStore) {
    let plain = interaction("alice", "n8n", at(0));
    let packed = compressed_interaction("alice", "n8n", at(1));
    let mut bare = bare_interaction("bob", "zapier", at(2));
    bare.processing_time_ms = Some(u64::MAX);
    // An imported record arrives with its summary.
    let mut imported = interaction("bob", "make", at(3));
    imported.summary = FeedbackSummary {
        feedback_count: 3,
        last_feedback_type: Some(FeedbackType::Edit),
        positive_feedback: 2,
        negative_feedback: 1,
        latest_negative: false,
        good_validation: true,
        link_bytes: 12_345,
    };
    let all = [&plain, &packed, &bare, &imported];
    for rec in all {
        insert_new(store, rec).await;
    }
    for rec in all {
        let got = store.get_linked(rec.id).await.expect("get_linked");
        assert_eq!(got, Some(Linked { interaction: rec.clone(), feedback: vec![], validations: vec![] }));
        assert_eq!(store.hot_owner(rec.id).await.expect("hot_owner"), Some(rec.user_id.clone()));
    }
    assert_eq!(store.hot_owner(Id::new()).await.expect("hot_owner"), None, "an unknown id has no owner");
    let back = current(store, plain.id).await;
    let meta = back.metadata.expect("metadata");
    assert_eq!(meta["temperature"].as_f64().map(f64::to_bits), Some(0.1f64.to_bits()));
    assert_eq!(meta["tokens_in"].as_u64(), Some(u64::MAX));
    assert_eq!(meta["offset"].as_i64(), Some(i64::MIN));
    let keys: Vec<&String> = meta.keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("temperature"), "key order is kept");
    let wf = current(store, packed.id).await.workflow.expect("workflow");
    assert!(wf.compressed);
    assert_eq!(wf.unpack().expect("unpack"), n8n_workflow(60));
    assert_eq!(store.get_linked(Id::new()).await.expect("get_linked"), None);
    let want = expected_counters(&[(&plain, false), (&packed, false), (&bare, false), (&imported, false)], &[]);
    assert_eq!(store.counters().await.expect("counters"), want);
}

pub async fn case_insert_same_id_is_existing(store: &dyn HotStore) {
    let recs = [
        interaction("alice", "n8n", at(0)),
        compressed_interaction("alice", "n8n", at(1)),
        bare_interaction("alice", "n8n", at(2)),
    ];
    for rec in &recs {
        insert_new(store, rec).await;
    }
    let counters = store.counters().await.expect("counters");
    for rec in &recs {
        let mut other = interaction("mallory", "zapier", at(99));
        other.id = rec.id;
        other.content_hash = "different".into();
        let got = store.insert_interaction(&other).await.expect("insert");
        assert_eq!(got, Inserted::Existing { content_hash: rec.content_hash.clone(), receipt: rec.receipt() });
        // A replay of the same record is Existing too.
        let again = store.insert_interaction(rec).await.expect("insert");
        assert_eq!(again, Inserted::Existing { content_hash: rec.content_hash.clone(), receipt: rec.receipt() });
        assert_eq!(current(store, rec.id).await, *rec, "nothing changed");
    }
    assert_eq!(store.counters().await.expect("counters"), counters);
}

pub async fn case_concurrent_inserts(store: Arc<dyn HotStore>) {
    let recs: Vec<Interaction> = (0..64)
        .map(|i| {
            let owner = if i % 2 == 0 { "alice" } else { "bob" };
            if i % 8 == 0 { compressed_interaction(owner, "n8n", at(i)) } else { interaction(owner, "n8n", at(i)) }
        })
        .collect();
    let tasks: Vec<_> = recs
        .iter()
        .cloned()
        .map(|rec| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_interaction(&rec).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("insert"), Inserted::New);
    }
    for rec in &recs {
        assert_eq!(current(&*store, rec.id).await, *rec);
    }
    let counters = store.counters().await.expect("counters");
    assert_eq!(counters.get(&platform("n8n")).map(|c| c.total), Some(64));
    let pairs: Vec<(&Interaction, bool)> = recs.iter().map(|r| (r, false)).collect();
    assert_eq!(counters, expected_counters(&pairs, &[]));
    assert_eq!(list_all(&*store, None, None, 100).await.len(), 64);
}

pub async fn case_concurrent_same_id(store: Arc<dyn HotStore>) {
    let rec = compressed_interaction("alice", "n8n", at(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let rec = rec.clone();
            tokio::spawn(async move { store.insert_interaction(&rec).await })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        match t.await.expect("task").expect("insert") {
            Inserted::New => new += 1,
            Inserted::Existing { content_hash, receipt } => {
                assert_eq!(content_hash, rec.content_hash);
                assert_eq!(receipt, rec.receipt());
            }
            Inserted::Erased => panic!("nothing was deleted"),
        }
    }
    assert_eq!(new, 1, "exactly one insert wins");
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&rec, false)], &[]));
}

pub async fn case_list_newest_first_paging(store: &dyn HotStore) {
    // Pairs share a created_at, so the id breaks ties; inserted out of order.
    let recs: Vec<Interaction> = (0..30)
        .map(|i| {
            let owner = if i % 2 == 0 { "alice" } else { "bob" };
            let plat = if i % 3 == 0 { "zapier" } else { "n8n" };
            interaction(owner, plat, at(i / 2))
        })
        .collect();
    for i in 0..30 {
        insert_new(store, &recs[(i * 7) % 30]).await;
    }
    let filters: [(Option<&str>, Option<&str>); 5] = [
        (None, None),
        (Some("alice"), None),
        (None, Some("n8n")),
        (Some("alice"), Some("n8n")),
        (Some("bob"), Some("zapier")),
    ];
    for (u, p) in filters {
        let mut want: Vec<&Interaction> = recs
            .iter()
            .filter(|r| u.is_none_or(|u| r.user_id.as_str() == u) && p.is_none_or(|p| r.platform.as_str() == p))
            .collect();
        want.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        let want: Vec<Id> = want.iter().map(|r| r.id).collect();
        for limit in [1, 4, 7, 100] {
            let got = list_all(store, u.map(user), p.map(platform), limit).await;
            assert_eq!(ids(&got), want, "user {u:?} platform {p:?} limit {limit}");
        }
    }
    let first = store
        .list_interactions(&ListQuery { user_id: None, platform: None, before: None, limit: 2 })
        .await
        .expect("list");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| recs.contains(r)), "listed records are whole");
    let nobody = list_all(store, Some(user("nobody")), None, 10).await;
    assert!(nobody.is_empty());
}

pub async fn case_scan_platform_paging(store: &dyn HotStore) {
    let mut recs: Vec<Interaction> =
        (0..20).map(|i| interaction(if i % 2 == 0 { "alice" } else { "bob" }, "n8n", at(i * 60))).collect();
    // A tie on created_at inside the window.
    recs.push(interaction("carol", "n8n", at(7 * 60)));
    for rec in &recs {
        insert_new(store, rec).await;
    }
    for i in 0..5 {
        insert_new(store, &interaction("alice", "zapier", at(i * 60))).await;
    }
    let fb = feedback(&recs[6], FeedbackType::ThumbsUp, at(10_000));
    store.add_feedback(&fb).await.expect("feedback");
    let v = validation("alice", "n8n", Some(recs[8].id), 95, at(10_001));
    store.add_validation(&v).await.expect("validation");

    let scan_all = |since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>, limit: u32| async move {
        let mut out: Vec<Linked> = Vec::new();
        let mut after = None;
        loop {
            let q = ScanQuery { platform: platform("n8n"), after, since, until, limit };
            let page = store.scan_platform(&q).await.expect("scan");
            assert!(page.len() <= limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(cursor_of(&last.interaction));
            let short = page.len() < limit as usize;
            out.extend(page);
            if short {
                break;
            }
        }
        out
    };
    let mut sorted: Vec<&Interaction> = recs.iter().collect();
    sorted.sort_by_key(|r| (r.created_at, r.id));

    let window = scan_all(Some(at(5 * 60)), Some(at(15 * 60)), 3).await;
    let want: Vec<Id> =
        sorted.iter().filter(|r| r.created_at >= at(5 * 60) && r.created_at < at(15 * 60)).map(|r| r.id).collect();
    assert_eq!(want.len(), 11);
    assert_eq!(linked_ids(&window), want);
    let six = window.iter().find(|l| l.interaction.id == recs[6].id).expect("record 6 in window");
    assert_eq!(six.feedback, vec![fb]);
    assert_eq!(six.interaction.summary.positive_feedback, 1);
    let eight = window.iter().find(|l| l.interaction.id == recs[8].id).expect("record 8 in window");
    assert_eq!(eight.validations, vec![v]);
    assert!(
        window
            .iter()
            .filter(|l| l.interaction.id != recs[6].id && l.interaction.id != recs[8].id)
            .all(|l| l.feedback.is_empty() && l.validations.is_empty())
    );

    let everything = scan_all(None, None, 4).await;
    assert_eq!(linked_ids(&everything), sorted.iter().map(|r| r.id).collect::<Vec<_>>());
    let since_only = scan_all(Some(at(18 * 60)), None, 100).await;
    assert_eq!(linked_ids(&since_only), vec![recs[18].id, recs[19].id]);
    let until_only = scan_all(None, Some(at(60)), 100).await;
    assert_eq!(linked_ids(&until_only), vec![recs[0].id]);
    let empty = ScanQuery { platform: platform("make"), after: None, since: None, until: None, limit: 10 };
    assert!(store.scan_platform(&empty).await.expect("scan").is_empty());
}

pub async fn case_scan_user_paging(store: &dyn HotStore) {
    let recs: Vec<Interaction> = (0..9)
        .map(|i| {
            let owner = if i % 3 == 0 { "bob" } else { "alice" };
            let plat = if i % 2 == 0 { "n8n" } else { "make" };
            interaction(owner, plat, at(100 - i * 10))
        })
        .collect();
    for rec in &recs {
        insert_new(store, rec).await;
    }
    let alice: Vec<&Interaction> = recs.iter().filter(|r| r.user_id.as_str() == "alice").collect();
    let fb = feedback(alice[0], FeedbackType::Edit, at(1000));
    store.add_feedback(&fb).await.expect("feedback");
    let mut want: Vec<&Interaction> = alice.clone();
    want.sort_by_key(|r| (r.created_at, r.id));

    let mut got: Vec<Linked> = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_user(&user("alice"), after, 4).await.expect("scan_user");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(cursor_of(&last.interaction));
        got.extend(page);
    }
    assert_eq!(linked_ids(&got), want.iter().map(|r| r.id).collect::<Vec<_>>());
    let with_fb = got.iter().find(|l| l.interaction.id == alice[0].id).expect("alice's first");
    assert_eq!(with_fb.feedback, vec![fb]);
    assert!(store.scan_user(&user("nobody"), None, 10).await.expect("scan_user").is_empty());
}

// -- feedback and validations ---------------------------------------------------------------------

pub async fn case_feedback_updates_summary_and_counters(store: &dyn HotStore) {
    let rec = interaction("alice", "n8n", at(0));
    insert_new(store, &rec).await;
    let n8n = platform("n8n");
    let counters = || async { store.counters().await.expect("counters").get(&n8n).copied().unwrap_or_default() };
    let c = counters().await;
    assert_eq!((c.with_feedback, c.positive_feedback, c.quality), (0, 0, 0));

    let up = feedback(&rec, FeedbackType::ThumbsUp, at(10));
    store.add_feedback(&up).await.expect("thumbs up");
    let now = current(store, rec.id).await;
    assert_eq!(now.summary, FeedbackSummary::default().with_feedback(&up));
    let c = counters().await;
    assert_eq!((c.with_feedback, c.positive_feedback, c.negative_feedback, c.quality), (1, 1, 0, 1));

    let down = feedback(&rec, FeedbackType::ThumbsDown, at(20));
    store.add_feedback(&down).await.expect("thumbs down");
    let now = current(store, rec.id).await;
    assert!(now.summary.latest_negative);
    let c = counters().await;
    assert_eq!((c.with_feedback, c.positive_feedback, c.negative_feedback, c.quality), (1, 1, 1, 0));

    let edit = feedback(&rec, FeedbackType::Edit, at(30));
    store.add_feedback(&edit).await.expect("edit");
    let linked = store.get_linked(rec.id).await.expect("get").expect("hot");
    let want = FeedbackSummary::default().with_feedback(&up).with_feedback(&down).with_feedback(&edit);
    assert_eq!(linked.interaction.summary, want);
    assert_eq!(linked.feedback, vec![up, down, edit]);
    let c = counters().await;
    assert_eq!((c.with_feedback, c.positive_feedback, c.negative_feedback, c.quality), (1, 1, 1, 1));
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&linked.interaction, false)], &[]));

    let before = store.counters().await.expect("counters");
    let stray = feedback(&interaction("alice", "n8n", at(40)), FeedbackType::ThumbsUp, at(41));
    assert!(matches!(store.add_feedback(&stray).await, Err(StoreError::NotFound)));
    assert_eq!(store.counters().await.expect("counters"), before);
}

pub async fn case_validations_linked_and_unlinked(store: &dyn HotStore) {
    let rec = interaction("alice", "n8n", at(0));
    insert_new(store, &rec).await;
    let failing = validation("alice", "n8n", Some(rec.id), 40, at(10));
    store.add_validation(&failing).await.expect("failing validation");
    assert!(!current(store, rec.id).await.summary.good_validation);
    assert_eq!(store.counters().await.expect("counters")[&platform("n8n")].quality, 0);

    let good = validation("alice", "n8n", Some(rec.id), 90, at(20));
    store.add_validation(&good).await.expect("good validation");
    let linked = store.get_linked(rec.id).await.expect("get").expect("hot");
    assert!(linked.interaction.summary.good_validation);
    assert_eq!(linked.validations, vec![failing, good]);
    let counters = store.counters().await.expect("counters");
    assert_eq!(counters[&platform("n8n")].quality, 1);
    assert_eq!(counters, expected_counters(&[(&linked.interaction, false)], &[]));

    let mine = validation("alice", "zapier", None, 100, at(30));
    let theirs = validation("bob", "make", None, 75, at(31));
    let mine_later = validation("alice", "n8n", None, 20, at(32));
    for v in [&mine, &theirs, &mine_later] {
        store.add_validation(v).await.expect("unlinked validation");
    }
    assert_eq!(all_unlinked(store, "alice").await, vec![mine, mine_later]);
    assert_eq!(all_unlinked(store, "bob").await, vec![theirs]);
    assert_eq!(store.counters().await.expect("counters"), counters, "unlinked validations count nothing");

    let stray = validation("alice", "n8n", Some(Id::new()), 90, at(40));
    assert!(matches!(store.add_validation(&stray).await, Err(StoreError::NotFound)));
    assert_eq!(all_unlinked(store, "alice").await.len(), 2);
    assert_eq!(store.get_linked(rec.id).await.expect("get").expect("hot").validations.len(), 2);
}

/// Every unlinked validation of `name`, read two per page (so the cursor is exercised).
pub async fn all_unlinked(store: &dyn HotStore, name: &str) -> Vec<ValidationLog> {
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let page = store.unlinked_validations(&user(name), after, 2).await.expect("unlinked validations");
        assert!(page.len() <= 2, "a page holds at most its limit");
        let Some(last) = page.last() else { return out };
        after = Some(Cursor { created_at: last.created_at, id: last.validation_id });
        out.extend(page);
    }
}

/// Scan pages stop at `SCAN_PAGE_BYTES` of records with their links, before `limit`: records
/// whose links count 7 MiB (an imported summary) come two to a page, and paging on from the last
/// one reaches every record once; an empty page is the end.
pub async fn case_scan_pages_stop_at_their_bytes(store: &dyn HotStore) {
    let mut recs = Vec::new();
    for i in 0..5 {
        let mut rec = interaction("alice", "n8n", at(i));
        rec.summary.link_bytes = 7 * 1024 * 1024;
        insert_new(store, &rec).await;
        recs.push(rec.id);
    }
    let mut platform_pages = Vec::new();
    let mut q = ScanQuery { platform: platform("n8n"), after: None, since: None, until: None, limit: 100 };
    loop {
        let page = store.scan_platform(&q).await.expect("scan platform");
        let Some(last) = page.last() else { break };
        q.after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
        platform_pages.push(linked_ids(&page));
    }
    assert_eq!(platform_pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(platform_pages.concat(), recs, "every record once, oldest first");
    let (mut user_pages, mut after) = (Vec::new(), None);
    loop {
        let page = store.scan_user(&user("alice"), after, 100).await.expect("scan user");
        let Some(last) = page.last() else { break };
        after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
        user_pages.push(linked_ids(&page));
    }
    assert_eq!(user_pages, platform_pages);
}

/// An interaction's links stop at `MAX_LINK_BYTES` of JSON: the link that would pass it is a
/// conflict and changes nothing (no link, same summary, same counters); one that fits is kept.
pub async fn case_links_stop_at_their_limit(store: &dyn HotStore) {
    let up = |rec: &Interaction, t| feedback(rec, FeedbackType::ThumbsUp, at(t));
    let mut rec = interaction("alice", "n8n", at(0));
    let one = NewLink::Feedback(&up(&rec, 1)).json_bytes();
    // As if the record held links up to one feedback's room from the limit (an imported summary).
    rec.summary.link_bytes = MAX_LINK_BYTES - one;
    insert_new(store, &rec).await;
    let fits = up(&rec, 1);
    store.add_feedback(&fits).await.expect("the last feedback that fits");
    let full = current(store, rec.id).await;
    assert_eq!(full.summary.link_bytes, MAX_LINK_BYTES);
    let counters = store.counters().await.expect("counters");

    let refused = up(&rec, 2);
    assert!(matches!(store.add_feedback(&refused).await, Err(StoreError::Conflict(_))), "feedback past the limit");
    let linked_validation = validation("alice", "n8n", Some(rec.id), 95, at(3));
    assert!(
        matches!(store.add_validation(&linked_validation).await, Err(StoreError::Conflict(_))),
        "a linked validation past the limit"
    );
    let linked = store.get_linked(rec.id).await.expect("get").expect("hot");
    assert_eq!(linked.feedback, vec![fits]);
    assert!(linked.validations.is_empty());
    assert_eq!(linked.interaction.summary, full.summary, "the summary is as before");
    assert!(!linked.interaction.summary.good_validation);
    assert_eq!(store.counters().await.expect("counters"), counters, "the counters are as before");
    // The limit is per interaction: another record and unlinked validations are not affected.
    let other = interaction("alice", "n8n", at(4));
    insert_new(store, &other).await;
    store.add_feedback(&up(&other, 5)).await.expect("another record's feedback");
    store.add_validation(&validation("alice", "n8n", None, 95, at(6))).await.expect("unlinked validation");
}

// -- deletes ----------------------------------------------------------------------------------------

pub async fn case_delete_interaction_cascades(store: &dyn HotStore) {
    let other = interaction("alice", "n8n", at(0));
    insert_new(store, &other).await;
    store.add_feedback(&feedback(&other, FeedbackType::ThumbsUp, at(1))).await.expect("feedback");
    let before = store.counters().await.expect("counters");

    let rec = compressed_interaction("alice", "n8n", at(10));
    insert_new(store, &rec).await;
    store.add_feedback(&feedback(&rec, FeedbackType::ThumbsUp, at(11))).await.expect("feedback");
    store.add_feedback(&feedback(&rec, FeedbackType::Report, at(12))).await.expect("feedback");
    store.add_validation(&validation("alice", "n8n", Some(rec.id), 95, at(13))).await.expect("validation");
    let unlinked = validation("alice", "n8n", None, 95, at(14));
    store.add_validation(&unlinked).await.expect("validation");
    assert_ne!(store.counters().await.expect("counters"), before);

    let deleted = store.delete_interaction(rec.id).await.expect("delete");
    assert_eq!(deleted, HotDeleted { interactions: 1, feedback: 2, validation_logs: 1 });
    assert_eq!(store.get_linked(rec.id).await.expect("get"), None);
    assert_eq!(store.counters().await.expect("counters"), before, "counters back to the pre-insert values");
    assert_eq!(all_unlinked(store, "alice").await, vec![unlinked]);
    assert_eq!(ids(&list_all(store, None, None, 10).await), vec![other.id]);
    assert_eq!(store.get_linked(other.id).await.expect("get").expect("hot").feedback.len(), 1);
    assert_eq!(store.delete_interaction(rec.id).await.expect("delete"), HotDeleted::default());
    assert_eq!(store.delete_interaction(Id::new()).await.expect("delete"), HotDeleted::default());
    // A deleted id is never used again (a late retry of its log would bring it back).
    assert_eq!(store.insert_interaction(&rec).await.expect("insert"), Inserted::Erased);
    let other_content = Interaction { user_message: "something else".into(), ..rec.clone() };
    assert_eq!(store.insert_interaction(&other_content).await.expect("insert"), Inserted::Erased);
    assert_eq!(store.get_linked(rec.id).await.expect("get"), None);
    assert_eq!(store.counters().await.expect("counters"), before, "nothing counted");
}

pub async fn case_delete_user(store: &dyn HotStore) {
    let a1 = interaction("alice", "n8n", at(0));
    let a2 = compressed_interaction("alice", "n8n", at(1));
    let a3 = interaction("alice", "make", at(2));
    let b1 = interaction("bob", "n8n", at(3));
    let b2 = bare_interaction("bob", "n8n", at(4));
    for rec in [&a1, &a2, &a3, &b1, &b2] {
        insert_new(store, rec).await;
    }
    store.add_feedback(&feedback(&a1, FeedbackType::ThumbsUp, at(10))).await.expect("feedback");
    store.add_validation(&validation("alice", "n8n", Some(a2.id), 90, at(11))).await.expect("validation");
    store.add_validation(&validation("alice", "n8n", None, 90, at(12))).await.expect("validation");
    store.add_validation(&validation("alice", "make", None, 10, at(13))).await.expect("validation");
    store.add_feedback(&feedback(&b1, FeedbackType::Edit, at(14))).await.expect("feedback");
    store.add_validation(&validation("bob", "n8n", Some(b1.id), 85, at(15))).await.expect("validation");
    let bob_unlinked = validation("bob", "n8n", None, 70, at(16));
    store.add_validation(&bob_unlinked).await.expect("validation");
    let bob1 = store.get_linked(b1.id).await.expect("get").expect("hot");
    let bob2 = store.get_linked(b2.id).await.expect("get").expect("hot");

    let deleted = store.delete_user(&user("alice")).await.expect("delete user");
    assert_eq!(deleted, HotDeleted { interactions: 3, feedback: 1, validation_logs: 3 });
    for id in [a1.id, a2.id, a3.id] {
        assert_eq!(store.get_linked(id).await.expect("get"), None);
    }
    for rec in [&a1, &a2, &a3] {
        assert_eq!(store.insert_interaction(rec).await.expect("insert"), Inserted::Erased, "deleted ids stay unused");
    }
    assert!(list_all(store, Some(user("alice")), None, 10).await.is_empty());
    assert!(store.scan_user(&user("alice"), None, 10).await.expect("scan").is_empty());
    assert!(all_unlinked(store, "alice").await.is_empty());

    assert_eq!(store.get_linked(b1.id).await.expect("get"), Some(bob1.clone()));
    assert_eq!(store.get_linked(b2.id).await.expect("get"), Some(bob2.clone()));
    assert_eq!(all_unlinked(store, "bob").await, vec![bob_unlinked]);
    let counters = store.counters().await.expect("counters");
    assert_eq!(counters, expected_counters(&[(&bob1.interaction, false), (&bob2.interaction, false)], &[]));
    assert!(!counters.contains_key(&platform("make")), "a platform left with zero counters is omitted");
    assert_eq!(store.delete_user(&user("alice")).await.expect("delete user"), HotDeleted::default());
}

// -- curated examples and metrics ------------------------------------------------------------------

pub async fn case_examples(store: &dyn HotStore) {
    let e1 = example("n8n", at(1));
    let e2 = example("zapier", at(2));
    let mut e3 = example("n8n", at(3));
    e3.workflow = None;
    e3.ai_response = Some("Use the Stripe trigger, then a Slack action.".into());
    e3.description = None;
    e3.tags = vec![];
    for e in [&e1, &e2, &e3] {
        store.insert_example(e).await.expect("insert example");
    }
    assert_eq!(store.list_examples(None).await.expect("list"), vec![e3.clone(), e2.clone(), e1.clone()]);
    assert_eq!(store.list_examples(Some(&platform("n8n"))).await.expect("list"), vec![e3.clone(), e1.clone()]);
    assert!(store.list_examples(Some(&platform("make"))).await.expect("list").is_empty());
    let curated = |n: i64| PlatformCounters { curated_examples: n, ..PlatformCounters::default() };
    let want: BTreeMap<Platform, PlatformCounters> =
        [(platform("n8n"), curated(2)), (platform("zapier"), curated(1))].into();
    assert_eq!(store.counters().await.expect("counters"), want);

    assert!(store.delete_example(e2.example_id).await.expect("delete"));
    assert!(!store.delete_example(e2.example_id).await.expect("delete"));
    assert!(!store.delete_example(Id::new()).await.expect("delete"));
    assert!(store.list_examples(Some(&platform("zapier"))).await.expect("list").is_empty());
    let want: BTreeMap<Platform, PlatformCounters> = [(platform("n8n"), curated(2))].into();
    assert_eq!(store.counters().await.expect("counters"), want);

    // An export used e1 twice and e3 once; unknown ids are ignored.
    store.increment_example_usage(&[e1.example_id, e3.example_id, Id::new()]).await.expect("usage");
    store.increment_example_usage(&[e1.example_id]).await.expect("usage");
    store.increment_example_usage(&[]).await.expect("usage");
    let usage: Vec<i64> =
        store.list_examples(Some(&platform("n8n"))).await.expect("list").iter().map(|e| e.usage_count).collect();
    assert_eq!(usage, vec![1, 2], "newest (e3) first");
}

pub async fn case_metrics(store: &dyn HotStore) {
    let m1 = metric("n8n", at(1));
    let m2 = metric("n8n", at(3));
    let mut m3 = metric("make", at(2));
    m3.run_id = None;
    m3.notes = Some("baseline".into());
    m3.metrics = Map::new();
    for m in [&m1, &m2, &m3] {
        store.insert_metric(m).await.expect("insert metric");
    }
    assert_eq!(store.list_metrics(None).await.expect("list"), vec![m2.clone(), m3.clone(), m1.clone()]);
    let n8n = store.list_metrics(Some(&platform("n8n"))).await.expect("list");
    assert_eq!(n8n, vec![m2, m1]);
    assert_eq!(n8n[0].metrics["loss"].as_f64().map(f64::to_bits), Some((0.1f64 + 0.2).to_bits()));
    assert!(store.list_metrics(Some(&platform("zapier"))).await.expect("list").is_empty());
    assert!(store.counters().await.expect("counters").is_empty(), "metrics count nothing");
}

// -- counters -----------------------------------------------------------------------------------------

pub async fn case_counters_omit_zero_platforms(store: &dyn HotStore) {
    assert!(store.counters().await.expect("counters").is_empty());
    let kept = interaction("alice", "n8n", at(0));
    let gone = compressed_interaction("alice", "make", at(1));
    insert_new(store, &kept).await;
    insert_new(store, &gone).await;
    store.add_feedback(&feedback(&gone, FeedbackType::ThumbsUp, at(2))).await.expect("feedback");
    let ex = example("zapier", at(3));
    store.insert_example(&ex).await.expect("example");
    assert_eq!(store.counters().await.expect("counters").len(), 3);

    store.delete_interaction(gone.id).await.expect("delete");
    assert!(store.delete_example(ex.example_id).await.expect("delete"));
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&kept, false)], &[]));
}

// -- platforms ----------------------------------------------------------------------------------------

/// A limit: these configured platforms, and `max` known platforms in all.
pub fn platform_limit(configured: &[&str], max: u32) -> PlatformLimit {
    PlatformLimit { configured: configured.iter().map(|p| platform(p)).collect(), max }
}

pub fn platform_set(names: &[&str]) -> BTreeSet<Platform> {
    names.iter().map(|p| platform(p)).collect()
}

pub async fn case_platforms_add_once_within_the_limit(store: &dyn HotStore) {
    assert!(store.added_platforms().await.expect("list").is_empty());
    let limit = platform_limit(&["n8n", "zapier", "make"], 5);
    let add = |p: &'static str| {
        let limit = limit.clone();
        async move { store.add_platform(&platform(p), &limit).await.expect("add") }
    };
    assert_eq!(add("airflow").await, PlatformAdded::Added);
    assert_eq!(add("airflow").await, PlatformAdded::AlreadyAdded, "a re-add writes nothing");
    assert_eq!(add("pipedream").await, PlatformAdded::Added);
    assert_eq!(add("tray").await, PlatformAdded::LimitReached, "three configured and two added is five");
    assert_eq!(add("airflow").await, PlatformAdded::AlreadyAdded, "a known one is known at the limit too");
    assert_eq!(store.added_platforms().await.expect("list"), platform_set(&["airflow", "pipedream"]));

    // A platform both added and (later) configured counts once: configured {airflow, x} and
    // added {airflow, pipedream} are three known, so a limit of four has room for one more.
    let later = platform_limit(&["airflow", "x"], 4);
    assert_eq!(store.add_platform(&platform("tray"), &later).await.expect("add"), PlatformAdded::Added);
    assert_eq!(store.add_platform(&platform("zoho"), &later).await.expect("add"), PlatformAdded::LimitReached);
    assert_eq!(store.added_platforms().await.expect("list"), platform_set(&["airflow", "pipedream", "tray"]));
}

/// Adds racing on several handles of one store (processes, Lambdas): distinct platforms and one
/// platform many times. Exactly the room is filled, and the repeated one is stored once.
pub async fn race_platform_adds(stores: Vec<Arc<dyn HotStore>>) {
    let limit = platform_limit(&["n8n", "zapier", "make"], 8);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = stores[i % stores.len()].clone();
        let limit = limit.clone();
        let name = if i % 4 == 0 { "same".to_owned() } else { format!("p{i}") };
        tasks.push(tokio::spawn(async move {
            (name.clone(), store.add_platform(&platform(&name), &limit).await.expect("add"))
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    let added: Vec<&String> = outcomes.iter().filter(|(_, o)| *o == PlatformAdded::Added).map(|(n, _)| n).collect();
    let stored = stores[0].added_platforms().await.expect("list");
    assert_eq!(added.len(), 5, "the room (8 - 3 configured) is filled exactly: {outcomes:?}");
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert_eq!(added.iter().filter(|n| n.as_str() == "same").count(), stored.contains(&platform("same")) as usize);
    for (name, o) in &outcomes {
        if *o == PlatformAdded::AlreadyAdded {
            assert_eq!(name, "same", "only a repeated platform is already there");
        }
    }
}

pub async fn case_concurrent_platform_adds(store: Arc<dyn HotStore>) {
    race_platform_adds(vec![store.clone(), store]).await;
}

// -- export manifests (CONTRACT section 4a) ---------------------------------------------------------

/// A manifest of `lines` lines, made now (its id is a fresh UUID v7, so later ones sort after).
pub fn manifest(lines: u64, split: bool) -> ExportManifest {
    let mut filter = crate::domain::export::ExportFilter { since: Some(at(0)), limit: Some(100), ..Default::default() };
    if split {
        filter.split = Some(crate::domain::formats::Split::Train);
    }
    ExportManifest {
        export_id: Id::new(),
        created_at: at(lines as i64),
        caller: "root".into(),
        platform: platform("n8n"),
        format: "openai".into(),
        filters: ManifestFilters::of(&filter),
        split: ManifestSplit::of(&filter),
        lines,
        sha256: format!("{:064x}", lines),
        bytes: lines * 100,
    }
}

fn held(pairs: &[(&UserId, Id)]) -> HeldRecords {
    let mut h = HeldRecords::default();
    for (u, id) in pairs {
        h.add(u, *id);
    }
    h
}

fn exports(ids: &[Id]) -> BTreeSet<Id> {
    ids.iter().copied().collect()
}

/// `live_records` names the records that exist, hot or archived, and not deleted ones;
/// `drop_export` takes a recorded export back whole (manifest and held records), twice safely.
pub async fn case_live_records_and_dropped_exports(store: &dyn HotStore) {
    let (a, b) = (interaction("alice", "n8n", at(0)), interaction("alice", "n8n", at(1)));
    let old = interaction("bob", "n8n", at(2));
    for r in [&a, &b, &old] {
        insert_new(store, r).await;
    }
    let lease = store.acquire_lease("t", Utc::now(), std::time::Duration::from_secs(60)).await.expect("lease");
    let lease = lease.expect("free");
    let obj = archive_object("n8n", old.created_at.date_naive(), "run-live", 1, at(100));
    let row = ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at);
    store.begin_archive(&lease, &row).await.expect("begin");
    store.commit_archive(&lease, &obj, &[ArchiveItem { id: old.id, links: 0 }]).await.expect("commit");
    store.release_lease(&lease).await.expect("release");
    let unknown = Id::new();
    let all = [a.id, b.id, old.id, unknown];
    let want: std::collections::HashSet<Id> = [a.id, b.id, old.id].into_iter().collect();
    assert_eq!(store.live_records(&all).await.expect("live"), want, "hot and archived; not unknown");
    store.delete_interaction(b.id).await.expect("delete hot");
    store.delete_archived(old.id).await.expect("delete archived").expect("it was archived");
    assert_eq!(store.live_records(&all).await.expect("live"), [a.id].into_iter().collect(), "deleted ones are gone");
    assert!(store.live_records(&[]).await.expect("none").is_empty());

    let m = manifest(2, false);
    let alice = user("alice");
    let h = held(&[(&alice, a.id), (&alice, b.id)]);
    store.record_export(&m, &h).await.expect("record");
    assert_eq!(store.exports_holding(HeldBy::User(&alice)).await.expect("held"), exports(&[m.export_id]));
    for _ in 0..2 {
        store.drop_export(&m, &h).await.expect("drop");
        assert_eq!(store.export_manifest(m.export_id).await.expect("get"), None);
        assert!(store.list_exports(None, 10).await.expect("list").is_empty());
        assert!(store.exports_holding(HeldBy::User(&alice)).await.expect("held").is_empty());
    }
}

pub async fn case_export_manifests(store: &dyn HotStore) {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let (a1, a2, b1) = (Id::new(), Id::new(), Id::new());
    let m1 = manifest(3, false);
    let m2 = manifest(2, true);
    let m3 = manifest(1, false);
    store.record_export(&m1, &held(&[(&alice, a1), (&alice, a2), (&bob, b1)])).await.expect("record 1");
    store.record_export(&m2, &held(&[(&alice, a1)])).await.expect("record 2");
    store.record_export(&m3, &HeldRecords::default()).await.expect("record 3");
    assert!(
        matches!(store.record_export(&m1, &HeldRecords::default()).await, Err(StoreError::Conflict(_))),
        "an export id is recorded once"
    );

    // Read back whole (filters, split, times), newest first, paged.
    assert_eq!(store.export_manifest(m2.export_id).await.expect("get"), Some(m2.clone()));
    assert_eq!(store.export_manifest(Id::new()).await.expect("get unknown"), None);
    assert_eq!(store.list_exports(None, 10).await.expect("list"), vec![m3.clone(), m2.clone(), m1.clone()]);
    assert_eq!(store.list_exports(None, 2).await.expect("page 1"), vec![m3.clone(), m2.clone()]);
    assert_eq!(store.list_exports(Some(m2.export_id), 2).await.expect("page 2"), vec![m1.clone()]);
    assert!(store.list_exports(Some(m1.export_id), 2).await.expect("past the end").is_empty());

    // Which exports hold a record, or a user.
    let by_record = |id, user| HeldBy::Record { id, user };
    assert_eq!(store.exports_holding(by_record(a1, &alice)).await.expect("a1"), exports(&[m1.export_id, m2.export_id]));
    assert_eq!(store.exports_holding(by_record(a2, &alice)).await.expect("a2"), exports(&[m1.export_id]));
    assert_eq!(store.exports_holding(by_record(b1, &bob)).await.expect("b1"), exports(&[m1.export_id]));
    assert!(store.exports_holding(by_record(Id::new(), &alice)).await.expect("unknown").is_empty());
    assert_eq!(
        store.exports_holding(HeldBy::User(&alice)).await.expect("alice"),
        exports(&[m1.export_id, m2.export_id])
    );
    assert_eq!(store.exports_holding(HeldBy::User(&bob)).await.expect("bob"), exports(&[m1.export_id]));
    assert!(store.exports_holding(HeldBy::User(&carol)).await.expect("carol").is_empty());

    // Erasure of one record: it leaves every export; the user's others stay held.
    store.forget_held(by_record(a1, &alice)).await.expect("forget a1");
    assert!(store.exports_holding(by_record(a1, &alice)).await.expect("a1 gone").is_empty());
    assert_eq!(store.exports_holding(HeldBy::User(&alice)).await.expect("alice"), exports(&[m1.export_id]));
    store.forget_held(by_record(a1, &alice)).await.expect("forgetting twice is no error");
    // Of a user: nothing of theirs is held any more; others are untouched.
    store.forget_held(HeldBy::User(&alice)).await.expect("forget alice");
    assert!(store.exports_holding(HeldBy::User(&alice)).await.expect("alice gone").is_empty());
    assert!(store.exports_holding(by_record(a2, &alice)).await.expect("a2 gone").is_empty());
    assert_eq!(store.exports_holding(HeldBy::User(&bob)).await.expect("bob stays"), exports(&[m1.export_id]));
    // The manifests themselves do not change.
    assert_eq!(store.list_exports(None, 10).await.expect("list"), vec![m3, m2, m1]);
}

/// An export of many records: one user with more ids than one DynamoDB item holds, and many
/// users with one each. Every record is found, and erasures are exact.
pub async fn case_exports_holding_many_records(store: &dyn HotStore) {
    let big = user("importer");
    let many: Vec<Id> = (0..20_000).map(|_| Id::new()).collect();
    let users: Vec<UserId> = (0..120).map(|i| user(&format!("u{i}"))).collect();
    let singles: Vec<Id> = users.iter().map(|_| Id::new()).collect();
    let mut h = HeldRecords::default();
    for id in &many {
        h.add(&big, *id);
    }
    for (u, id) in users.iter().zip(&singles) {
        h.add(u, *id);
    }
    let m = manifest(20_120, false);
    store.record_export(&m, &h).await.expect("record");
    let one = exports(&[m.export_id]);
    for id in [many[0], many[7_999], many[8_000], many[19_999]] {
        assert_eq!(store.exports_holding(HeldBy::Record { id, user: &big }).await.expect("held"), one);
    }
    assert_eq!(store.exports_holding(HeldBy::User(&big)).await.expect("big"), one);
    assert_eq!(store.exports_holding(HeldBy::User(&users[119])).await.expect("u119"), one);
    assert_eq!(store.exports_holding(HeldBy::Record { id: singles[57], user: &users[57] }).await.expect("u57"), one);

    store.forget_held(HeldBy::Record { id: many[8_000], user: &big }).await.expect("forget one");
    assert!(store.exports_holding(HeldBy::Record { id: many[8_000], user: &big }).await.expect("gone").is_empty());
    assert_eq!(store.exports_holding(HeldBy::Record { id: many[8_001], user: &big }).await.expect("neighbour"), one);
    store.forget_held(HeldBy::User(&big)).await.expect("forget the user");
    assert!(store.exports_holding(HeldBy::User(&big)).await.expect("big gone").is_empty());
    assert!(store.exports_holding(HeldBy::Record { id: many[19_999], user: &big }).await.expect("gone").is_empty());
    assert_eq!(store.exports_holding(HeldBy::User(&users[0])).await.expect("others stay"), one);
}

// -- archive catalog ----------------------------------------------------------------------------------

/// The archive lease, taken fresh (a test holds it for a minute).
pub async fn take_lease(store: &dyn HotStore) -> Lease {
    store
        .acquire_lease("conformance", Utc::now(), Duration::from_secs(60))
        .await
        .expect("lease")
        .expect("lease is free")
}

/// What the archiver would commit for these records as they are now (their current link counts).
pub async fn items_of(store: &dyn HotStore, ids: &[Id]) -> Vec<ArchiveItem> {
    let mut out = Vec::new();
    for id in ids {
        let links = match store.get_linked(*id).await.expect("get") {
            Some(l) => (l.feedback.len() + l.validations.len()) as i64,
            None => 0,
        };
        out.push(ArchiveItem { id: *id, links });
    }
    out
}

/// Both phases of an archive commit: the pending row, then the commit.
pub async fn commit(store: &dyn HotStore, lease: &Lease, obj: &ArchiveObject, items: &[ArchiveItem]) -> Vec<Id> {
    let row = ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at);
    store.begin_archive(lease, &row).await.expect("begin");
    store.commit_archive(lease, obj, items).await.expect("commit")
}

pub async fn case_commit_archive(store: &dyn HotStore) {
    let a = compressed_interaction("alice", "n8n", at(0));
    let b = interaction("bob", "n8n", at(1));
    let c = interaction("alice", "n8n", at(2));
    let d = interaction("alice", "n8n", at(3));
    let e = interaction("alice", "n8n", at(4));
    for rec in [&a, &b, &c, &d, &e] {
        insert_new(store, rec).await;
    }
    store.add_feedback(&feedback(&a, FeedbackType::ThumbsUp, at(10))).await.expect("feedback");
    store.add_validation(&validation("alice", "n8n", Some(a.id), 90, at(11))).await.expect("validation");
    let a = current(store, a.id).await;
    let items = items_of(store, &[a.id, b.id, c.id, e.id]).await;
    assert_eq!(items[0].links, 2);
    // After the object was written: c is deleted, e gains feedback its line does not hold.
    store.delete_interaction(c.id).await.expect("delete");
    store.add_feedback(&feedback(&e, FeedbackType::ThumbsDown, at(12))).await.expect("feedback");
    let e = current(store, e.id).await;
    let before = store.counters().await.expect("counters")[&platform("n8n")];

    let lease = take_lease(store).await;
    let obj = archive_object("n8n", day(5), "20260205T000000Z-abc", 4, at(100));
    let mut gone = commit(store, &lease, &obj, &items).await;
    gone.sort();
    let mut want = vec![c.id, e.id];
    want.sort();
    assert_eq!(gone, want, "deleted and changed records are tombstoned, not archived");
    assert_eq!(store.tombstones(&obj.slot).await.expect("tombstones"), want.iter().copied().collect());
    assert!(current(store, e.id).await.summary.feedback_count == 1, "a changed record stays hot, whole");

    let after = store.counters().await.expect("counters");
    assert_eq!(after, expected_counters(&[(&a, true), (&b, true), (&d, false), (&e, false)], &[&obj]));
    let n = after[&platform("n8n")];
    assert_eq!(n.total, before.total);
    assert_eq!(n.archived, before.archived + 2);
    assert_eq!(n.hot_bytes, before.hot_bytes - a.stored_bytes() - b.stored_bytes());
    assert_eq!(n.compressed_records, before.compressed_records - 1);
    assert_eq!((n.archive_bytes, n.archived_raw_bytes, n.archive_objects), (obj.compressed_bytes, obj.raw_bytes, 1));
    assert_eq!(
        (n.quality, n.positive_feedback),
        (before.quality, before.positive_feedback),
        "archived records still count"
    );

    for id in [a.id, b.id, c.id] {
        assert_eq!(store.get_linked(id).await.expect("get"), None);
        assert_eq!(store.hot_owner(id).await.expect("hot_owner"), None, "an archived record is not hot");
    }
    assert_eq!(ids(&list_all(store, None, None, 10).await), vec![e.id, d.id]);
    let scan = ScanQuery { platform: platform("n8n"), after: None, since: None, until: None, limit: 10 };
    assert_eq!(linked_ids(&store.scan_platform(&scan).await.expect("scan")), vec![d.id, e.id]);
    assert_eq!(linked_ids(&store.scan_user(&user("bob"), None, 10).await.expect("scan")), Vec::<Id>::new());

    let entry = |rec: &Interaction| ArchivedEntry {
        interaction_id: rec.id,
        user_id: rec.user_id.clone(),
        platform: rec.platform.clone(),
        created_at: rec.created_at,
        object_key: obj.slot.clone(),
        content_hash: rec.content_hash.clone(),
        receipt: rec.receipt(),
        facts: rec.facts(true),
    };
    assert_eq!(store.archived_entry(a.id).await.expect("entry"), Some(entry(&a)));
    assert_eq!(store.archived_entry(c.id).await.expect("entry"), None, "deleted data is never archived");
    assert_eq!(store.archived_entry(d.id).await.expect("entry"), None);
    assert_eq!(store.archived_entries_of_user(&user("alice")).await.expect("entries"), vec![entry(&a)]);
    assert_eq!(store.archived_entries_of_user(&user("bob")).await.expect("entries"), vec![entry(&b)]);
    assert!(store.archived_entries_of_user(&user("carol")).await.expect("entries").is_empty());

    let replay = store.insert_interaction(&a).await.expect("insert");
    assert_eq!(replay, Inserted::Existing { content_hash: a.content_hash.clone(), receipt: a.receipt() });
    let mut clash = interaction("mallory", "n8n", at(50));
    clash.id = b.id;
    let clash = store.insert_interaction(&clash).await.expect("insert");
    assert_eq!(clash, Inserted::Existing { content_hash: b.content_hash.clone(), receipt: b.receipt() });
    assert!(matches!(
        store.add_feedback(&feedback(&a, FeedbackType::ThumbsUp, at(60))).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.add_validation(&validation("alice", "n8n", Some(a.id), 90, at(61))).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.delete_interaction(a.id).await.expect("delete"), HotDeleted::default());
    assert_eq!(store.counters().await.expect("counters"), after, "nothing moved");

    // A rerun of the same commit (a run that died after it, reconciled) changes nothing.
    let mut again = store.commit_archive(&lease, &obj, &items).await.expect("rerun");
    again.sort();
    assert_eq!(again, want);
    assert_eq!(store.counters().await.expect("counters"), after, "the object counts once");

    // A record tombstoned in this slot is never moved into it, even with the link count its
    // line was written with (the stream's expiry recovery can put a record back as it was):
    // the line is dead, and the record stays hot.
    let e_now = items_of(store, &[e.id]).await;
    assert_eq!(store.commit_archive(&lease, &obj, &e_now).await.expect("rerun"), vec![e.id]);
    assert_eq!(store.archived_entry(e.id).await.expect("entry"), None);
    assert_eq!(current(store, e.id).await, e, "still hot, whole");
    assert_eq!(store.counters().await.expect("counters"), after, "nothing moved");

    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj.clone()]);
    assert_eq!(store.list_archive_objects(Some(&platform("n8n"))).await.expect("objects"), vec![obj.clone()]);
    assert!(store.list_archive_objects(Some(&platform("zapier"))).await.expect("objects").is_empty());
    assert_eq!(store.archive_object(&platform("n8n"), day(5), &obj.slot).await.expect("row"), Some(obj));
}

pub async fn case_archive_lease(store: &dyn HotStore) {
    let ttl = Duration::from_secs(60);
    let first = take_lease(store).await;
    assert_eq!(store.acquire_lease("other", Utc::now(), ttl).await.expect("acquire"), None, "held");
    let renewed = store.renew_lease(&first, Utc::now(), ttl).await.expect("renew").expect("still ours");
    assert_eq!(renewed.token, first.token);
    assert!(renewed.expires_at >= first.expires_at);
    store.release_lease(&first).await.expect("release");
    let second = store.acquire_lease("other", Utc::now(), ttl).await.expect("acquire").expect("free after release");
    assert!(second.token > first.token, "tokens grow");
    assert_eq!(store.renew_lease(&first, Utc::now(), ttl).await.expect("renew"), None, "taken over");

    // The old holder is fenced: none of its writes land.
    let obj = archive_object("n8n", day(5), "run-fenced", 0, at(0));
    let row = ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at);
    assert!(matches!(store.begin_archive(&first, &row).await, Err(StoreError::Fenced)));
    assert!(store.list_archive_objects(None).await.expect("objects").is_empty());
    store.begin_archive(&second, &row).await.expect("begin");
    assert!(matches!(store.commit_archive(&first, &obj, &[]).await, Err(StoreError::Fenced)));
    assert!(matches!(store.abort_archive(&first, &row).await, Err(StoreError::Fenced)));
    assert!(matches!(store.clear_tombstones(&first, &obj.slot, &[]).await, Err(StoreError::Fenced)));
    assert!(matches!(store.apply_compaction(&first, &obj, None, &[]).await, Err(StoreError::Fenced)));
    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![row], "still pending");
    store.release_lease(&first).await.expect("a stale release is a no-op");
    assert_eq!(store.acquire_lease("third", Utc::now(), ttl).await.expect("acquire"), None, "still held");

    // An expired lease is free again.
    store.release_lease(&second).await.expect("release");
    let short =
        store.acquire_lease("short", Utc::now(), Duration::from_millis(1)).await.expect("acquire").expect("free");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = store.acquire_lease("next", Utc::now(), ttl).await.expect("acquire").expect("expired lease is free");
    assert!(after.token > short.token);

    // A lease taken under a clock an hour ahead (or before the clock went back an hour) is held
    // for holders on that clock, and free to one whose clock is an hour behind it: else no run
    // could start for that hour.
    store.release_lease(&after).await.expect("release");
    let ahead = Utc::now() + chrono::Duration::hours(1);
    let skewed = store.acquire_lease("ahead", ahead, ttl).await.expect("acquire").expect("free");
    assert_eq!(store.acquire_lease("same clock", ahead, ttl).await.expect("acquire"), None, "held on its clock");
    let back =
        store.acquire_lease("back", Utc::now(), ttl).await.expect("acquire").expect("stale: its clock went back");
    assert!(back.token > skewed.token);
    assert!(matches!(store.begin_archive(&skewed, &row2()).await, Err(StoreError::Fenced)), "the old holder is fenced");
}

fn row2() -> ArchiveObject {
    let obj = archive_object("n8n", day(6), "run-clock", 0, at(0));
    ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at)
}

pub async fn case_two_phase_rows(store: &dyn HotStore) {
    let lease = take_lease(store).await;
    let obj = archive_object("n8n", day(5), "run-2pc", 0, at(0));
    let row = ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at);
    store.begin_archive(&lease, &row).await.expect("begin");
    store.begin_archive(&lease, &row).await.expect("begin again is a no-op");
    let other = ArchiveObject { run_id: "someone-else".into(), ..row.clone() };
    assert!(matches!(store.begin_archive(&lease, &other).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![row.clone()]);
    assert_eq!(store.counters().await.expect("counters"), BTreeMap::new(), "a pending object counts nothing");
    // Rolled back: the object was never written.
    store.abort_archive(&lease, &row).await.expect("abort");
    store.abort_archive(&lease, &row).await.expect("abort again is a no-op");
    assert!(store.list_archive_objects(None).await.expect("objects").is_empty());
    // Rolled forward: committed with its sizes.
    assert!(commit(store, &lease, &obj, &[]).await.is_empty());
    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj.clone()]);
    assert!(matches!(store.abort_archive(&lease, &row).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[], &[&obj]));
    assert_eq!(store.archive_object(&platform("n8n"), day(5), "archive/none").await.expect("row"), None);
}

pub async fn case_delete_archived_and_compaction(store: &dyn HotStore) {
    let a = interaction("alice", "n8n", at(0));
    let b = compressed_interaction("bob", "n8n", at(1));
    let g = interaction("alice", "n8n", at(2));
    for rec in [&a, &b, &g] {
        insert_new(store, rec).await;
    }
    store.add_feedback(&feedback(&b, FeedbackType::ThumbsUp, at(5))).await.expect("feedback");
    let b = current(store, b.id).await;
    let items = items_of(store, &[a.id, b.id, g.id]).await;
    store.delete_interaction(g.id).await.expect("delete");
    let lease = take_lease(store).await;
    let obj1 = archive_object("n8n", day(5), "run-1", 3, at(100));
    assert_eq!(commit(store, &lease, &obj1, &items).await, vec![g.id]);

    // A user's delete: the entry goes with its counters, a tombstone stays for the compaction.
    let removed = store.delete_archived(b.id).await.expect("delete").expect("b was archived");
    assert_eq!(removed.interaction_id, b.id);
    assert_eq!(removed.object_key, obj1.slot);
    assert_eq!(store.delete_archived(b.id).await.expect("delete"), None, "once");
    assert_eq!(store.delete_archived(g.id).await.expect("delete"), None, "never archived");
    for rec in [&b, &g] {
        assert_eq!(store.insert_interaction(rec).await.expect("insert"), Inserted::Erased, "deleted ids stay unused");
    }
    assert_eq!(store.archived_entry(b.id).await.expect("entry"), None);
    assert!(store.archived_entries_of_user(&user("bob")).await.expect("entries").is_empty());
    let counters = store.counters().await.expect("counters");
    assert_eq!(counters, expected_counters(&[(&a, true)], &[&obj1]));
    assert_eq!(counters[&platform("n8n")].positive_feedback, 0, "b's feedback left with b");
    assert_eq!(store.tombstones(&obj1.slot).await.expect("tombstones"), [g.id, b.id].into_iter().collect());
    assert_eq!(store.tombstoned_slots().await.expect("slots"), [obj1.slot.clone()].into_iter().collect());

    // The compaction: same slot, new key; entries keep pointing at the slot.
    let obj2 = ArchiveObject {
        object_key: object_key(&platform("n8n"), day(5), "run-2", 0),
        run_id: "run-2".into(),
        record_count: 1,
        raw_bytes: 5000,
        compressed_bytes: 1000,
        storage_class: StorageClass::Standard,
        created_at: at(200),
        ..obj1.clone()
    };
    store.apply_compaction(&lease, &obj1, Some(&obj2), &[g.id, b.id]).await.expect("compaction");
    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj2.clone()]);
    assert_eq!(store.archive_object(&platform("n8n"), day(5), &obj1.slot).await.expect("row"), Some(obj2.clone()));
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&a, true)], &[&obj2]));
    assert!(store.tombstoned_slots().await.expect("slots").is_empty());
    assert_eq!(store.archived_entry(a.id).await.expect("entry").expect("a stays archived").object_key, obj1.slot);
    assert!(
        matches!(store.apply_compaction(&lease, &obj1, Some(&obj2), &[]).await, Err(StoreError::Conflict(_))),
        "a stale row is refused"
    );

    // The last record goes: its row with it, and the counters are empty.
    store.delete_archived(a.id).await.expect("delete").expect("a was archived");
    store.apply_compaction(&lease, &obj2, None, &[]).await.expect("compaction");
    assert!(store.list_archive_objects(None).await.expect("objects").is_empty());
    assert!(store.counters().await.expect("counters").is_empty());
    // A tombstone left behind (a compaction cut short) is cleared by itself.
    assert_eq!(store.tombstoned_slots().await.expect("slots"), [obj1.slot.clone()].into_iter().collect());
    store.clear_tombstones(&lease, &obj1.slot, &[a.id]).await.expect("clear");
    assert!(store.tombstoned_slots().await.expect("slots").is_empty());
    // A deleted id is never used again, even once its line and row are gone.
    assert_eq!(store.insert_interaction(&a).await.expect("insert"), Inserted::Erased);
}

pub async fn case_archive_objects_order(store: &dyn HotStore) {
    let o7 = archive_object("n8n", day(7), "run-a", 0, at(0));
    let o5 = archive_object("n8n", day(5), "run-b", 0, at(1));
    let z6 = archive_object("zapier", day(6), "run-c", 0, at(2));
    let lease = take_lease(store).await;
    for o in [&o7, &o5, &z6] {
        assert!(commit(store, &lease, o, &[]).await.is_empty());
    }
    assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![o5.clone(), z6.clone(), o7.clone()]);
    assert_eq!(
        store.list_archive_objects(Some(&platform("n8n"))).await.expect("objects"),
        vec![o5.clone(), o7.clone()]
    );
    assert_eq!(store.list_archive_objects(Some(&platform("zapier"))).await.expect("objects"), vec![z6.clone()]);
    assert_eq!(store.counters().await.expect("counters"), expected_counters(&[], &[&o7, &o5, &z6]));
}

// -- object store ---------------------------------------------------------------------------------

fn key(platform: &str, date: u32, run: &str) -> String {
    object_key(&self::platform(platform), day(date), run, 0)
}

pub async fn case_object_put_get_round_trip(objects: &dyn ObjectStore) {
    let k = key("n8n", 5, "run-1");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    objects.put(&k, bytes.clone(), StorageClass::Standard).await.expect("put");
    assert_eq!(objects.get(&k).await.expect("get"), bytes);
    let empty = key("n8n", 5, "empty");
    objects.put(&empty, Vec::new(), StorageClass::StandardIa).await.expect("put");
    assert_eq!(objects.get(&empty).await.expect("get"), Vec::<u8>::new());
    assert_eq!(objects.list("").await.expect("list"), {
        let mut v = vec![k, empty];
        v.sort();
        v
    });
}

pub async fn case_object_overwrite(objects: &dyn ObjectStore) {
    let k = key("zapier", 6, "run-1");
    objects.put(&k, b"first version".to_vec(), StorageClass::Standard).await.expect("put");
    objects.put(&k, b"second".to_vec(), StorageClass::StandardIa).await.expect("put");
    assert_eq!(objects.get(&k).await.expect("get"), b"second".to_vec());
    assert_eq!(objects.list("archive/").await.expect("list"), vec![k]);
}

pub async fn case_object_list_prefix_sorted(objects: &dyn ObjectStore) {
    let keys = [
        key("n8n", 7, "run-b"),
        key("zapier", 5, "run-a"),
        key("n8n", 5, "run-b"),
        key("n8n", 5, "run-a"),
        key("n8n-dev", 5, "run-a"),
        "exports/training_data_n8n_20260105.jsonl".to_string(),
    ];
    for (i, k) in keys.iter().enumerate() {
        objects.put(k, vec![i as u8; 10], StorageClass::Standard).await.expect("put");
    }
    let mut all = keys.to_vec();
    all.sort();
    assert_eq!(objects.list("").await.expect("list"), all);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        objects.list("archive/platform=n8n/").await.expect("list"),
        sorted(vec![keys[0].clone(), keys[2].clone(), keys[3].clone()])
    );
    assert_eq!(
        objects.list("archive/platform=n8n").await.expect("list"),
        sorted(vec![keys[0].clone(), keys[2].clone(), keys[3].clone(), keys[4].clone()]),
        "a prefix need not end at a separator"
    );
    assert_eq!(
        objects.list("archive/platform=n8n/date=2026-01-05/").await.expect("list"),
        sorted(vec![keys[2].clone(), keys[3].clone()])
    );
    assert_eq!(objects.list("archive/platform=n8n/date=2026-01-05/run-a").await.expect("list"), vec![keys[3].clone()]);
    assert_eq!(objects.list("exports/").await.expect("list"), vec![keys[5].clone()]);
    assert!(objects.list("archive/platform=make/").await.expect("list").is_empty());
    assert!(objects.list("nothing-here").await.expect("list").is_empty());
}

pub async fn case_object_delete(objects: &dyn ObjectStore) {
    let k1 = key("n8n", 5, "run-1");
    let k2 = key("n8n", 5, "run-2");
    objects.put(&k1, b"one".to_vec(), StorageClass::Standard).await.expect("put");
    objects.put(&k2, b"two".to_vec(), StorageClass::Standard).await.expect("put");
    objects.delete(&k1).await.expect("delete");
    assert!(matches!(objects.get(&k1).await, Err(StoreError::NotFound)));
    assert_eq!(objects.list("").await.expect("list"), vec![k2.clone()]);
    objects.delete(&k1).await.expect("deleting a missing key is fine");
    objects.delete(&key("make", 9, "never")).await.expect("deleting a missing key is fine");
    assert_eq!(objects.get(&k2).await.expect("get"), b"two".to_vec());
}

pub async fn case_object_get_missing(objects: &dyn ObjectStore) {
    assert!(matches!(objects.get(&key("n8n", 5, "missing")).await, Err(StoreError::NotFound)));
    objects.put(&key("n8n", 5, "present"), b"x".to_vec(), StorageClass::Standard).await.expect("put");
    assert!(matches!(objects.get(&key("n8n", 5, "missing")).await, Err(StoreError::NotFound)));
    assert!(objects.get("archive/platform=n8n").await.is_err(), "a folder is not an object");
}

pub async fn case_object_bad_keys_rejected(objects: &dyn ObjectStore) {
    for bad in [
        "",
        "/etc/passwd",
        "../escape.jsonl.gz",
        "archive/../../escape",
        "archive//x.jsonl.gz",
        "archive/x/",
        "archive/./x",
    ] {
        assert!(objects.put(bad, b"x".to_vec(), StorageClass::Standard).await.is_err(), "put {bad:?}");
        assert!(objects.get(bad).await.is_err(), "get {bad:?}");
        assert!(objects.delete(bad).await.is_err(), "delete {bad:?}");
        assert!(objects.writer(bad, ClassPolicy::BySize).await.is_err(), "writer {bad:?}");
        assert!(objects.reader(bad).await.is_err(), "reader {bad:?}");
        assert!(objects.presigned_get(bad, Duration::from_secs(60)).await.is_err(), "presigned_get {bad:?}");
    }
    assert!(objects.list("").await.expect("list").is_empty(), "nothing was written");
}

/// Deterministic, poorly compressible bytes.
pub fn object_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Stream `bytes` through a writer in `chunk`-sized pieces and finish it.
pub async fn write_in_chunks(objects: &dyn ObjectStore, key: &str, bytes: &[u8], chunk: usize) -> FinishedObject {
    write_in_chunks_as(objects, key, bytes, chunk, ClassPolicy::BySize).await
}

/// [`write_in_chunks`] with a storage-class policy.
pub async fn write_in_chunks_as(
    objects: &dyn ObjectStore,
    key: &str,
    bytes: &[u8],
    chunk: usize,
    class: ClassPolicy,
) -> FinishedObject {
    let mut w = objects.writer(key, class).await.expect("writer");
    for piece in bytes.chunks(chunk.max(1)) {
        w.write(Bytes::copy_from_slice(piece)).await.expect("write");
    }
    w.finish().await.expect("finish")
}

/// The whole object through the streamed reader, and how many chunks it came in.
pub async fn read_streamed(objects: &dyn ObjectStore, key: &str) -> (Vec<u8>, usize) {
    let mut stream = objects.reader(key).await.expect("reader");
    let (mut out, mut chunks) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
        chunks += 1;
    }
    (out, chunks)
}

pub async fn case_object_writer_multi_chunk(objects: &dyn ObjectStore) {
    let k = key("n8n", 5, "streamed");
    let bytes = object_bytes(600 * 1024 + 123, 1);
    let done = write_in_chunks(objects, &k, &bytes, 7 * 1024 + 1).await;
    assert_eq!(done, FinishedObject { bytes: bytes.len() as i64, storage_class: StorageClass::StandardIa });
    assert_eq!(objects.get(&k).await.expect("get"), bytes);
    assert_eq!(objects.list("").await.expect("list"), vec![k.clone()]);
    // A second write to the same key replaces the object whole.
    let small = b"replacement".to_vec();
    let done = write_in_chunks(objects, &k, &small, 3).await;
    assert_eq!(done, FinishedObject { bytes: small.len() as i64, storage_class: StorageClass::Standard });
    assert_eq!(objects.get(&k).await.expect("get"), small);
    assert_eq!(objects.list("").await.expect("list"), vec![k]);
}

pub async fn case_object_writer_abort_leaves_nothing(objects: &dyn ObjectStore) {
    let k = key("n8n", 5, "aborted");
    let mut w = objects.writer(&k, ClassPolicy::BySize).await.expect("writer");
    w.write(Bytes::from(object_bytes(300 * 1024, 2))).await.expect("write");
    w.abort().await.expect("abort");
    assert!(matches!(objects.get(&k).await, Err(StoreError::NotFound)));
    assert!(objects.list("").await.expect("list").is_empty());

    // An existing object survives an aborted rewrite.
    objects.put(&k, b"kept".to_vec(), StorageClass::Standard).await.expect("put");
    let mut w = objects.writer(&k, ClassPolicy::BySize).await.expect("writer");
    w.write(Bytes::from_static(b"never visible")).await.expect("write");
    w.abort().await.expect("abort");
    assert_eq!(objects.get(&k).await.expect("get"), b"kept".to_vec());

    // A writer dropped without finish or abort leaves nothing either.
    let dropped = key("n8n", 5, "dropped");
    let mut w = objects.writer(&dropped, ClassPolicy::BySize).await.expect("writer");
    w.write(Bytes::from_static(b"half")).await.expect("write");
    drop(w);
    assert!(matches!(objects.get(&dropped).await, Err(StoreError::NotFound)));
    assert_eq!(objects.list("").await.expect("list"), vec![k]);
}

pub async fn case_object_writer_class_by_size(objects: &dyn ObjectStore) {
    use crate::domain::archive::IA_MIN_BYTES;
    let ia = IA_MIN_BYTES as usize;
    for (run, len, class) in [
        ("empty", 0, StorageClass::Standard),
        ("below", ia - 1, StorageClass::Standard),
        ("at", ia, StorageClass::StandardIa),
        ("above", ia + 1, StorageClass::StandardIa),
    ] {
        let k = key("zapier", 6, run);
        let bytes = object_bytes(len, len as u64);
        let done = write_in_chunks(objects, &k, &bytes, 10_000).await;
        assert_eq!(done, FinishedObject { bytes: len as i64, storage_class: class }, "{run}");
        assert_eq!(objects.get(&k).await.expect("get"), bytes, "{run}");
    }
}

pub async fn case_object_writer_fixed_class(objects: &dyn ObjectStore) {
    use crate::domain::archive::IA_MIN_BYTES;
    let ia = IA_MIN_BYTES as usize;
    for (run, len, class) in
        [("big-standard", 3 * ia, StorageClass::Standard), ("small-ia", 10, StorageClass::StandardIa)]
    {
        let k = key("make", 8, run);
        let bytes = object_bytes(len, len as u64 + 1);
        let done = write_in_chunks_as(objects, &k, &bytes, 50_000, ClassPolicy::Fixed(class)).await;
        assert_eq!(done, FinishedObject { bytes: len as i64, storage_class: class }, "{run}");
        assert_eq!(objects.get(&k).await.expect("get"), bytes, "{run}");
    }
}

pub async fn case_object_writer_invisible_until_finish(objects: &dyn ObjectStore) {
    let k = key("n8n", 7, "pending");
    let bytes = object_bytes(400 * 1024, 3);
    let mut w = objects.writer(&k, ClassPolicy::BySize).await.expect("writer");
    for piece in bytes.chunks(64 * 1024) {
        w.write(Bytes::copy_from_slice(piece)).await.expect("write");
    }
    assert!(matches!(objects.get(&k).await, Err(StoreError::NotFound)), "not visible before finish");
    assert!(objects.list("").await.expect("list").is_empty(), "not listed before finish");
    w.finish().await.expect("finish");
    assert_eq!(objects.get(&k).await.expect("get"), bytes);
}

pub async fn case_object_reader_streams(objects: &dyn ObjectStore) {
    let k = key("n8n", 5, "read");
    let bytes = object_bytes(1024 * 1024 + 17, 4);
    objects.put(&k, bytes.clone(), StorageClass::StandardIa).await.expect("put");
    let (read, chunks) = read_streamed(objects, &k).await;
    assert_eq!(read.len(), bytes.len());
    assert!(read == bytes, "the streamed bytes are the object's");
    assert!(chunks >= 1);
    let empty = key("n8n", 5, "empty");
    objects.put(&empty, Vec::new(), StorageClass::Standard).await.expect("put");
    assert_eq!(read_streamed(objects, &empty).await.0, Vec::<u8>::new());
    assert!(matches!(objects.reader(&key("n8n", 5, "missing")).await.err(), Some(StoreError::NotFound)));
    assert!(objects.reader("archive/platform=n8n").await.is_err(), "a folder is not an object");
}

pub async fn case_object_presigned_get(objects: &dyn ObjectStore) {
    let k = key("n8n", 5, "shared");
    objects.put(&k, b"shared bytes".to_vec(), StorageClass::Standard).await.expect("put");
    match objects.presigned_get(&k, Duration::from_secs(300)).await.expect("presign") {
        // The folder store has no URL to give.
        None => {}
        Some(url) => {
            assert!(url.starts_with("http://") || url.starts_with("https://"), "an absolute URL");
            assert!(url.contains("X-Amz-Signature=") || url.contains("x-amz-signature="), "signed");
        }
    }
}
