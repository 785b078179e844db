//! Item layout: keys and the translation between domain records and DynamoDB items.
//! See docs/AWS.md ("DynamoDB table design") for the whole picture.
//!
//! Hot table (`pk`, `sk`):
//! - `I#{id}` / `A`: a hot interaction (`t` = `I`) or the stub of an archived one (`t` = `S`);
//!   its feedback (`F#{created_at}#{feedback_id}`) and linked validations
//!   (`V#{created_at}#{validation_id}`) share the partition.
//! - `V#{validation_id}` / `V`: an unlinked validation log.
//! - `C#{platform}#{shard}` / `C`: a counter shard; `REG` / `{platform}`: the platform registry
//!   (platforms that have data, written at a platform's first record);
//!   `EX` / `{id}`: curated examples; `MT` / `{id}`: training metrics.
//! - `PLAT` / `{platform}`: a platform an admin added (CONTRACT 7a); `PLAT#N` / `N`: how many
//!   there are (`n`), the item the add's transaction conditions on to hold `MAX_PLATFORMS`.
//! - `LEASE` / `archive`: the archive run's lease; `TOMB` / `{slot}#{id}`: a tombstone (an
//!   archived line that is no longer live).
//! - `EXP` / `{export_id}`: an export's manifest (CONTRACT 4a); `XU#{user}` /
//!   `{export_id}#{chunk}`: the user's records that export held (`ids`, a string set of up to
//!   [`HELD_CHUNK`] ids), so the exports holding a user, or one of their records, are one Query.
//!
//! No item carries `expires_at`: TTL must never delete a record that has no archive line
//! (CONTRACT 6a), so records leave the hot table only through the archive run or a delete.
//!
//! Times are RFC 3339 with nine fractional digits (fixed width, so text order is time order);
//! ids are hyphenated lowercase UUIDs (fixed width, text order is byte order).

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::domain::archive::{ArchiveObject, ObjectState, StorageClass};
use crate::domain::counters::{PlatformCounters, RecordFacts};
use crate::domain::lineage::ExportManifest;
use crate::domain::records::{
    CuratedExample, Feedback, FeedbackSummary, FeedbackType, IngestReceipt, Interaction, TrainingMetric, ValidationLog,
};
use crate::domain::types::{Id, Kind, UserId};
use crate::domain::workflow::StoredWorkflow;
use crate::ports::{ArchivedEntry, Lease, StoreError};

mod keys;

pub use keys::*;
// Value encoding shared with the SQLite store.
pub use crate::adapters::encoding::{corrupt, from_json, parse_id, parse_platform, parse_ts, parse_user, to_json};

pub type Item = HashMap<String, AttributeValue>;

/// Write shards of the platform index and of the counters.
pub const SHARDS: u32 = 16;
/// An item estimated above this keeps its payload attributes in the overflow object store
/// (DynamoDB's limit is 400 KB; the margin covers summary updates and size estimation).
pub const ITEM_BUDGET: usize = 350 * 1024;

pub const T_HOT: &str = "I";
pub const T_STUB: &str = "S";

/// Attributes moved to the overflow object when an interaction item is too big.
pub const INTERACTION_PAYLOAD: [&str; 7] = ["msg", "ai", "intent", "err", "model", "meta", "wf"];
/// The same for feedback and validation items.
pub const DOC_PAYLOAD: [&str; 1] = ["doc"];

// -- attribute helpers --------------------------------------------------------------------------

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(name)),
    }
}

pub fn opt_s(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(corrupt(name)),
    }
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(name)),
        _ => Err(corrupt(name)),
    }
}

pub fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| corrupt(name)),
        Some(_) => Err(corrupt(name)),
    }
}

pub fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        _ => Err(corrupt(name)),
    }
}

fn put_opt(item: &mut Item, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        item.insert(name.into(), s(v.clone()));
    }
}

/// Estimated stored size of an item (names plus values), as DynamoDB counts it.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(x) => x.len(),
        AttributeValue::B(x) => x.as_ref().len(),
        AttributeValue::N(x) => x.len() / 2 + 2,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 1,
    }
}

// -- overflow -------------------------------------------------------------------------------------

/// Remove `names` from the item and encode them as one overflow object (JSON: name -> {"S": text}
/// or {"B": base64}). None when none of them is present.
pub fn take_payload(item: &mut Item, names: &[&str]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut out = Map::new();
    for name in names {
        match item.remove(*name) {
            Some(AttributeValue::S(v)) => {
                out.insert((*name).into(), serde_json::json!({ "S": v }));
            }
            Some(AttributeValue::B(v)) => {
                let enc = base64::engine::general_purpose::STANDARD.encode(v.as_ref());
                out.insert((*name).into(), serde_json::json!({ "B": enc }));
            }
            Some(other) => {
                item.insert((*name).into(), other);
            }
            None => {}
        }
    }
    if out.is_empty() {
        Ok(None)
    } else {
        serde_json::to_vec(&Value::Object(out)).map(Some).map_err(StoreError::internal)
    }
}

/// Put the attributes of an overflow object back into its item.
pub fn restore_payload(item: &mut Item, bytes: &[u8]) -> Result<(), StoreError> {
    let map: Map<String, Value> = serde_json::from_slice(bytes).map_err(|_| corrupt("overflow object"))?;
    for (name, v) in map {
        let value = match (v.get("S").and_then(Value::as_str), v.get("B").and_then(Value::as_str)) {
            (Some(text), _) => s(text),
            (None, Some(enc)) => AttributeValue::B(Blob::new(
                base64::engine::general_purpose::STANDARD.decode(enc).map_err(|_| corrupt("overflow object"))?,
            )),
            _ => return Err(corrupt("overflow object")),
        };
        item.insert(name, value);
    }
    Ok(())
}

// -- interactions -----------------------------------------------------------------------------------

pub fn interaction_item(rec: &Interaction) -> Result<Item, StoreError> {
    let pos = position(&rec.created_at, rec.id);
    let receipt = rec.receipt();
    let mut item: Item = HashMap::from([
        ("pk".into(), s(interaction_pk(rec.id))),
        ("sk".into(), s(INTERACTION_SK)),
        ("t".into(), s(T_HOT)),
        ("id".into(), s(rec.id.to_string())),
        ("user".into(), s(rec.user_id.as_str())),
        ("platform".into(), s(rec.platform.as_str())),
        ("kind".into(), s(rec.kind.as_str())),
        ("created".into(), s(ts(&rec.created_at))),
        ("msg".into(), s(rec.user_message.clone())),
        ("ok".into(), b(rec.success)),
        ("consent".into(), b(rec.training_consent)),
        ("hash".into(), s(rec.content_hash.clone())),
        ("r_z".into(), b(receipt.compressed)),
        ("r_orig".into(), n(receipt.original_bytes)),
        ("r_stored".into(), n(receipt.stored_bytes)),
        ("ver".into(), n(0)),
        ("nlinks".into(), n(0)),
        (BY_PLATFORM.pk.into(), s(platform_shard_pk(&rec.platform, shard_of(rec.id)))),
        (BY_PLATFORM.sk.into(), s(pos.clone())),
        (BY_USER.pk.into(), s(user_pk(&rec.user_id))),
        (BY_USER.sk.into(), s(format!("I#{pos}"))),
    ]);
    put_opt(&mut item, "ai", &rec.ai_response);
    put_opt(&mut item, "intent", &rec.intent);
    put_opt(&mut item, "err", &rec.error_message);
    put_opt(&mut item, "model", &rec.model_version);
    if let Some(ms) = rec.processing_time_ms {
        item.insert("ptime".into(), n(ms));
    }
    if let Some(meta) = &rec.metadata {
        item.insert("meta".into(), s(to_json(meta)?));
    }
    if let Some(wf) = &rec.workflow {
        let value = if wf.compressed {
            AttributeValue::B(Blob::new(wf.bytes.clone()))
        } else {
            s(String::from_utf8(wf.bytes.clone())
                .map_err(|_| StoreError::Internal("workflow text is not UTF-8".into()))?)
        };
        item.insert("wf".into(), value);
    }
    summary_attrs(&mut item, &rec.summary);
    Ok(item)
}

/// The summary's attributes (set on insert, replaced on feedback and validations).
pub fn summary_values(sm: &FeedbackSummary) -> [(&'static str, AttributeValue); 7] {
    [
        ("fb_n", n(sm.feedback_count)),
        ("fb_last", sm.last_feedback_type.map_or(AttributeValue::Null(true), |t| s(t.as_str()))),
        ("fb_pos", n(sm.positive_feedback)),
        ("fb_neg", n(sm.negative_feedback)),
        ("latest_neg", b(sm.latest_negative)),
        ("good_val", b(sm.good_validation)),
        ("link_bytes", n(sm.link_bytes)),
    ]
}

fn summary_attrs(item: &mut Item, sm: &FeedbackSummary) {
    for (k, v) in summary_values(sm) {
        item.insert(k.into(), v);
    }
}

/// A hot interaction from its item (overflow already restored).
pub fn interaction_from(item: &Item) -> Result<Interaction, StoreError> {
    let workflow = match item.get("wf") {
        None => None,
        Some(AttributeValue::B(bytes)) => Some(StoredWorkflow {
            bytes: bytes.as_ref().to_vec(),
            compressed: true,
            original_bytes: get_n(item, "r_orig")?,
        }),
        Some(AttributeValue::S(text)) => Some(StoredWorkflow {
            bytes: text.clone().into_bytes(),
            compressed: false,
            original_bytes: get_n(item, "r_orig")?,
        }),
        Some(_) => return Err(corrupt("workflow")),
    };
    let last_feedback_type = match opt_s(item, "fb_last")? {
        Some(t) => Some(FeedbackType::parse(&t).ok_or_else(|| corrupt("feedback type"))?),
        None => None,
    };
    Ok(Interaction {
        id: parse_id(get_s(item, "id")?)?,
        user_id: parse_user(get_s(item, "user")?)?,
        platform: parse_platform(get_s(item, "platform")?)?,
        kind: Kind::parse(get_s(item, "kind")?).ok_or_else(|| corrupt("kind"))?,
        user_message: get_s(item, "msg")?.to_owned(),
        ai_response: opt_s(item, "ai")?,
        intent: opt_s(item, "intent")?,
        workflow,
        success: get_bool(item, "ok")?,
        error_message: opt_s(item, "err")?,
        processing_time_ms: opt_n(item, "ptime")?,
        model_version: opt_s(item, "model")?,
        metadata: opt_s(item, "meta")?.map(|m| from_json::<Map<String, Value>>(&m, "metadata")).transpose()?,
        training_consent: get_bool(item, "consent")?,
        created_at: parse_ts(get_s(item, "created")?)?,
        content_hash: get_s(item, "hash")?.to_owned(),
        summary: FeedbackSummary {
            feedback_count: get_n(item, "fb_n")?,
            last_feedback_type,
            positive_feedback: get_n(item, "fb_pos")?,
            negative_feedback: get_n(item, "fb_neg")?,
            latest_negative: get_bool(item, "latest_neg")?,
            good_validation: get_bool(item, "good_val")?,
            // Items written before the count was kept have none: their links count from 0.
            link_bytes: opt_n(item, "link_bytes")?.unwrap_or(0),
        },
    })
}

/// The receipt and content hash an insert of a taken id answers with (hot item or stub).
pub fn existing_from(item: &Item) -> Result<(String, IngestReceipt), StoreError> {
    let receipt = IngestReceipt {
        interaction_id: parse_id(get_s(item, "id")?)?,
        created_at: parse_ts(get_s(item, "created")?)?,
        compressed: get_bool(item, "r_z")?,
        original_bytes: get_n(item, "r_orig")?,
        stored_bytes: get_n(item, "r_stored")?,
    };
    Ok((get_s(item, "hash")?.to_owned(), receipt))
}

pub fn is_hot(item: &Item) -> bool {
    matches!(item.get("t"), Some(AttributeValue::S(t)) if t == T_HOT)
}

pub fn is_stub(item: &Item) -> bool {
    matches!(item.get("t"), Some(AttributeValue::S(t)) if t == T_STUB)
}

pub fn version(item: &Item) -> Result<i64, StoreError> {
    get_n(item, "ver")
}

// -- archived stubs -----------------------------------------------------------------------------------

pub fn stub_item(e: &ArchivedEntry) -> Result<Item, StoreError> {
    let pos = position(&e.created_at, e.interaction_id);
    Ok(HashMap::from([
        ("pk".into(), s(interaction_pk(e.interaction_id))),
        ("sk".into(), s(INTERACTION_SK)),
        ("t".into(), s(T_STUB)),
        ("id".into(), s(e.interaction_id.to_string())),
        ("user".into(), s(e.user_id.as_str())),
        ("platform".into(), s(e.platform.as_str())),
        ("created".into(), s(ts(&e.created_at))),
        ("object".into(), s(e.object_key.clone())),
        ("hash".into(), s(e.content_hash.clone())),
        ("r_z".into(), b(e.receipt.compressed)),
        ("r_orig".into(), n(e.receipt.original_bytes)),
        ("r_stored".into(), n(e.receipt.stored_bytes)),
        ("facts".into(), s(to_json(&e.facts)?)),
        (BY_USER.pk.into(), s(user_pk(&e.user_id))),
        (BY_USER.sk.into(), s(format!("A#{pos}"))),
    ]))
}

pub fn entry_from(item: &Item) -> Result<ArchivedEntry, StoreError> {
    let (content_hash, receipt) = existing_from(item)?;
    Ok(ArchivedEntry {
        interaction_id: receipt.interaction_id,
        user_id: parse_user(get_s(item, "user")?)?,
        platform: parse_platform(get_s(item, "platform")?)?,
        created_at: receipt.created_at,
        object_key: get_s(item, "object")?.to_owned(),
        content_hash,
        receipt,
        facts: from_json::<RecordFacts>(get_s(item, "facts")?, "record facts")?,
    })
}

// -- feedback and validations -----------------------------------------------------------------------

pub fn feedback_item(fb: &Feedback) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".into(), s(interaction_pk(fb.interaction_id))),
        ("sk".into(), s(feedback_sk(fb))),
        ("t".into(), s("F")),
        ("doc".into(), s(to_json(fb)?)),
    ]))
}

pub fn feedback_from(item: &Item) -> Result<Feedback, StoreError> {
    from_json(get_s(item, "doc")?, "feedback")
}

/// A validation item: in its interaction's partition when linked, else its own partition in
/// the user index.
pub fn validation_item(v: &ValidationLog) -> Result<Item, StoreError> {
    // JSON has no NaN: the duration goes in its own attribute, absent when not finite.
    let mut doc = serde_json::to_value(v).map_err(StoreError::internal)?;
    if let Value::Object(m) = &mut doc {
        m.remove("duration_ms");
    }
    let mut item: Item = HashMap::from([("t".into(), s("V")), ("doc".into(), s(to_json(&doc)?))]);
    if v.duration_ms.is_finite() {
        item.insert("dur".into(), n(v.duration_ms));
    }
    match v.interaction_id {
        Some(iid) => {
            item.insert("pk".into(), s(interaction_pk(iid)));
            item.insert("sk".into(), s(linked_validation_sk(v)));
        }
        None => {
            item.insert("pk".into(), s(unlinked_validation_pk(v.validation_id)));
            item.insert("sk".into(), s("V"));
            item.insert(BY_USER.pk.into(), s(user_pk(&v.user_id)));
            item.insert(BY_USER.sk.into(), s(format!("V#{}", position(&v.created_at, v.validation_id))));
        }
    }
    Ok(item)
}

pub fn validation_from(item: &Item) -> Result<ValidationLog, StoreError> {
    let mut doc: Value = from_json(get_s(item, "doc")?, "validation")?;
    if let Value::Object(m) = &mut doc {
        m.insert("duration_ms".into(), Value::from(0.0));
    }
    let mut v: ValidationLog = serde_json::from_value(doc).map_err(|_| corrupt("validation"))?;
    v.duration_ms = opt_n::<f64>(item, "dur")?.unwrap_or(f64::NAN);
    Ok(v)
}

// -- examples, metrics, counters ------------------------------------------------------------------------

pub fn example_item(ex: &CuratedExample) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".into(), s(EXAMPLES_PK)),
        ("sk".into(), s(ex.example_id.to_string())),
        ("platform".into(), s(ex.platform.as_str())),
        ("doc".into(), s(to_json(ex)?)),
        ("uses".into(), n(ex.usage_count)),
    ]))
}

pub fn example_from(item: &Item) -> Result<CuratedExample, StoreError> {
    let mut ex: CuratedExample = from_json(get_s(item, "doc")?, "curated example")?;
    ex.usage_count = get_n(item, "uses")?;
    Ok(ex)
}

pub fn metric_item(m: &TrainingMetric) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".into(), s(METRICS_PK)),
        ("sk".into(), s(m.metric_id.to_string())),
        ("platform".into(), s(m.platform.as_str())),
        ("doc".into(), s(to_json(m)?)),
    ]))
}

pub fn metric_from(item: &Item) -> Result<TrainingMetric, StoreError> {
    from_json(get_s(item, "doc")?, "training metric")
}

// -- export manifests -------------------------------------------------------------------------------------

pub fn manifest_item(m: &ExportManifest) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".into(), s(EXPORTS_PK)),
        ("sk".into(), s(m.export_id.to_string())),
        ("doc".into(), s(to_json(m)?)),
    ]))
}

pub fn manifest_from(item: &Item) -> Result<ExportManifest, StoreError> {
    from_json(get_s(item, "doc")?, "export manifest")
}

/// The items holding `ids` (one user's, sorted) for an export: [`HELD_CHUNK`] ids each.
pub fn held_items(export_id: Id, user: &UserId, ids: &[Id]) -> Vec<Item> {
    ids.chunks(HELD_CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            HashMap::from([
                ("pk".into(), s(held_pk(user))),
                ("sk".into(), s(held_sk(export_id, i))),
                ("ids".into(), AttributeValue::Ss(chunk.iter().map(Id::to_string).collect())),
            ])
        })
        .collect()
}

/// The export a held-records item belongs to (its sort key's id).
pub fn held_export(item: &Item) -> Result<Id, StoreError> {
    let sk = get_s(item, "sk")?;
    sk.split_once('#').and_then(|(id, _)| Id::parse(id).ok()).ok_or_else(|| corrupt("held-records key"))
}

/// Whether a held-records item holds `id`.
pub fn holds(item: &Item, id: Id) -> bool {
    let id = id.to_string();
    matches!(item.get("ids"), Some(AttributeValue::Ss(ids)) if ids.contains(&id))
}

/// A counter shard's values (absent attributes are zero).
pub fn counters_from(item: &Item) -> Result<PlatformCounters, StoreError> {
    let mut values = [0i64; PlatformCounters::FIELDS.len()];
    for (v, name) in values.iter_mut().zip(PlatformCounters::FIELDS) {
        *v = opt_n(item, name)?.unwrap_or(0);
    }
    Ok(PlatformCounters::from_values(values))
}

// -- archive table ------------------------------------------------------------------------------------

/// A metadata row. The sort key names the slot; `key` is where the bytes are now.
pub fn object_item(o: &ArchiveObject) -> Item {
    HashMap::from([
        ("platform".into(), s(o.platform.as_str())),
        ("object".into(), s(archive_sk(o.date, &o.slot))),
        ("key".into(), s(o.object_key.clone())),
        ("slot".into(), s(o.slot.clone())),
        ("state".into(), s(o.state.as_str())),
        ("date".into(), s(o.date.format("%Y-%m-%d").to_string())),
        ("run".into(), s(o.run_id.clone())),
        ("records".into(), n(o.record_count)),
        ("raw".into(), n(o.raw_bytes)),
        ("compressed".into(), n(o.compressed_bytes)),
        ("class".into(), s(o.storage_class.as_str())),
        ("created".into(), s(ts(&o.created_at))),
    ])
}

/// Rows written before the two-phase commit have no `slot` (it is their key) and no `state`
/// (they were committed in one step).
pub fn object_from(item: &Item) -> Result<ArchiveObject, StoreError> {
    let object_key = get_s(item, "key")?.to_owned();
    let state = match opt_s(item, "state")? {
        Some(st) => ObjectState::parse(&st).ok_or_else(|| corrupt("object state"))?,
        None => ObjectState::Committed,
    };
    Ok(ArchiveObject {
        slot: opt_s(item, "slot")?.unwrap_or_else(|| object_key.clone()),
        object_key,
        state,
        platform: parse_platform(get_s(item, "platform")?)?,
        date: NaiveDate::parse_from_str(get_s(item, "date")?, "%Y-%m-%d").map_err(|_| corrupt("date"))?,
        run_id: get_s(item, "run")?.to_owned(),
        record_count: get_n(item, "records")?,
        raw_bytes: get_n(item, "raw")?,
        compressed_bytes: get_n(item, "compressed")?,
        storage_class: StorageClass::parse(get_s(item, "class")?).ok_or_else(|| corrupt("storage class"))?,
        created_at: parse_ts(get_s(item, "created")?)?,
    })
}

// -- lease and tombstones ----------------------------------------------------------------------

pub fn lease_key() -> Item {
    HashMap::from([("pk".to_owned(), s(LEASE_PK)), ("sk".to_owned(), s(LEASE_SK))])
}

/// The lease from its item (`expires` in epoch milliseconds).
pub fn lease_from(item: &Item) -> Result<Lease, StoreError> {
    let ms: i64 = get_n(item, "expires")?;
    Ok(Lease {
        token: get_n(item, "token")?,
        holder: get_s(item, "holder")?.to_owned(),
        expires_at: DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt("lease expiry"))?,
    })
}

pub fn tombstone_key(slot: &str, id: Id) -> Item {
    HashMap::from([("pk".to_owned(), s(TOMB_PK)), ("sk".to_owned(), s(tombstone_sk(slot, id)))])
}

pub fn tombstone_item(slot: &str, id: Id) -> Item {
    let mut item = tombstone_key(slot, id);
    item.insert("slot".into(), s(slot));
    item.insert("id".into(), s(id.to_string()));
    item
}

// -- erasure markers and expiry recovery --------------------------------------------------------

/// Erasure markers: `ERASE` / `U#{user}` (a user's delete; `until`, epoch ms, is when it counts
/// as finished) and `ERASE` / `I#{id}` (an interaction deleted for good). The stream's expiry
/// recovery (`expiry.rs`) puts nothing back that such a delete meant to remove.
pub const ERASE_PK: &str = "ERASE";
/// `RCV` / `{stream event id}`: a TTL removal the stream recovery has handled (redeliveries do nothing).
pub const RECOVERED_PK: &str = "RCV";

pub fn user_erasure_key(user: &UserId) -> Item {
    HashMap::from([("pk".to_owned(), s(ERASE_PK)), ("sk".to_owned(), s(format!("U#{}", user.as_str())))])
}

/// `OVFDEL` / `K#{object key}`: an overflow object whose delete failed after its item went (the
/// item no longer points at it). The same key with [`NOTE_WRITING`] is an object being written:
/// put before its upload, claimed ([`NOTE_CLAIMED`] set, the write time removed) by the
/// transaction of the item that points at it, and erased by the maintenance if still unclaimed
/// a grace period after the write began (its writer died). `OVFDEL` / `P#{interaction id}`: the overflow objects under
/// `overflow/{id}/` of an interaction being deleted for good, written before its delete. The
/// archive run's maintenance finishes both (`HotStore::finish_payload_erasures`); a prefix only
/// once the interaction's `ERASE` / `I#{id}` marker says the delete went through.
pub const PAYLOAD_ERASURE_PK: &str = "OVFDEL";

pub fn object_erasure_key(object_key: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(PAYLOAD_ERASURE_PK)), ("sk".to_owned(), s(format!("K#{object_key}")))])
}

/// On an `OVFDEL` / `K#` note: the epoch second its object's write began (unclaimed yet).
pub const NOTE_WRITING: &str = "writing";
/// On an `OVFDEL` / `K#` note: an item's transaction claimed the object (it is in use); the
/// maintenance drops the note and keeps the object.
pub const NOTE_CLAIMED: &str = "claimed";

/// The note of an overflow object about to be written at `at`: erased a grace period later
/// unless claimed first.
pub fn pending_object_note(object_key: &str, at: DateTime<Utc>) -> Item {
    let mut item = object_erasure_key(object_key);
    item.insert(NOTE_WRITING.into(), n(at.timestamp()));
    item
}

pub fn prefix_erasure_key(id: Id) -> Item {
    HashMap::from([("pk".to_owned(), s(PAYLOAD_ERASURE_PK)), ("sk".to_owned(), s(format!("P#{id}")))])
}

pub fn interaction_erasure_key(id: Id) -> Item {
    HashMap::from([("pk".to_owned(), s(ERASE_PK)), ("sk".to_owned(), s(interaction_pk(id)))])
}

pub fn user_erasure_item(user: &UserId, until: DateTime<Utc>) -> Item {
    let mut item = user_erasure_key(user);
    item.insert("until".into(), n(until.timestamp_millis()));
    item
}

pub fn recovered_item(event_id: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(RECOVERED_PK)), ("sk".to_owned(), s(event_id))])
}

#[cfg(test)]
mod tests;
