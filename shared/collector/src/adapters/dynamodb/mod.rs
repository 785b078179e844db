//! The DynamoDB hot store: interactions with their feedback and validations, curated examples,
//! training metrics, sharded counters and the archive catalog, on one table (plus the archive
//! metadata table). The table design, access patterns and capacity reasoning are in
//! docs/AWS.md ("DynamoDB table design"); the item layout is in [`codec`].
//!
//! Mechanics only: summaries, counter deltas and record facts come from the domain
//! (`FeedbackSummary::with_feedback`, `RecordFacts::contribution`, `PlatformCounters::delta`).
//!
//! This file holds the store, its constants and the [`HotStore`] impl; the larger methods live
//! by job in `reads`, `writes`, `overflow`, `lineage`, `lease` and `archive` (the trait methods
//! there are `*_impl` methods that the impl here calls), the item layout in `codec`, the SDK
//! calls in `io` and the stream's expiry recovery in `expiry`.

mod codec;

/// Whether a stream record's partition key is a tombstone's (a delete of an archived line): the
/// archiver erases on seeing one (functions/archiver).
pub fn is_tombstone_partition(pk: &str) -> bool {
    pk == codec::TOMB_PK
}

mod archive;
mod expiry;
mod io;
mod lease;
mod lineage;
mod overflow;
mod reads;
mod writes;

pub use expiry::Recovery;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};

use self::codec::*;
use self::io::{Cond, Dynamo, Names, QuerySpec, SkRange, Values, key, tx_delete, tx_put, tx_update};
use crate::domain::archive::ArchiveObject;
use crate::domain::counters::PlatformCounters;
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{
    CuratedExample, Feedback, Interaction, NewLink, PageBudget, SCAN_PAGE_BYTES, TrainingMetric, ValidationLog,
};
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{
    ArchiveItem, ArchivedEntry, Cursor, HotDeleted, HotStore, Inserted, Lease, Linked, ListQuery, ObjectStore,
    ScanQuery, StoreError,
};

/// Items per transaction (DynamoDB's limit).
const TX_MAX: usize = 100;
/// Links per transaction: room for the record, its counters and the lease check.
const TX_LINKS: usize = 95;
/// Bytes of one transaction we allow ourselves (DynamoDB's limit is 4 MB over its items). The
/// estimate counts every item whole, a deleted link too, plus [`TX_ITEM_BYTES`] each.
const TX_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;
/// The allowance per transaction item for its key, expressions and framing.
const TX_ITEM_BYTES: usize = 256;
/// What a tombstone put and a counter update add to a transaction's estimate.
const TOMB_BYTES: usize = 512;
const COUNTER_BYTES: usize = 1024;
/// What an overflow object's erasure note (`OVFDEL` / `K#{key}`) adds to a transaction's estimate.
const NOTE_BYTES: usize = 256;
/// Records per commit transaction at most; the item and byte limits usually bind first.
const BATCH_RECORDS: usize = TX_MAX;
/// Tombstones per transaction of `clear_tombstones` (plus the lease check).
const TOMB_BATCH: usize = 90;
/// The cancellation code of a failed condition.
const FAILED: &str = "ConditionalCheckFailed";
/// Attempts of a read-modify-write that lost an optimistic version race.
const VERSION_ATTEMPTS: u32 = 6;
/// Concurrent reads when decoding a page (overflow objects, link partitions).
const FAN_OUT: usize = 8;

/// How long a writer has between noting an overflow object and its item's transaction claiming
/// it; an unclaimed note older than this is a writer that died, and its object is erased. A late
/// writer loses nothing: its claim fails and it writes again. Far beyond a Lambda's 15 minutes.
const OVERFLOW_WRITE_GRACE: Duration = Duration::from_secs(3600);

/// The DynamoDB [`HotStore`]. Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
    overflow_grace: Duration,
}

struct Inner {
    db: Dynamo,
    overflow: Arc<dyn ObjectStore>,
    /// Platforms already in the registry (written once per platform per process).
    known: Mutex<HashSet<Platform>>,
}

/// An interaction's partition: its head item (hot or stub) and its links.
struct Partition {
    head: Option<Item>,
    links: Vec<Item>,
}

fn no_cond() -> (Names, Values) {
    (HashMap::new(), HashMap::new())
}

fn not_exists() -> Cond {
    let (n, v) = no_cond();
    Some(("attribute_not_exists(pk)", n, v))
}

/// The smallest string above every fixed-width key that starts with `prefix` and sorts after it.
fn after_key(k: &str) -> String {
    format!("{k}~")
}

/// The largest bound strictly below the fixed-width key `k`: keys of the same width that are
/// smaller than `k` are <= this, and `k` is not.
fn below_key(k: &str) -> String {
    let mut chars: Vec<char> = k.chars().collect();
    if let Some(last) = chars.pop() {
        chars.push(char::from_u32(u32::from(last).saturating_sub(1)).unwrap_or(last));
    }
    let mut out: String = chars.into_iter().collect();
    out.push('~');
    out
}

fn is_link(item: &Item) -> bool {
    matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk != INTERACTION_SK)
}

fn sk_of(item: &Item) -> &str {
    match item.get("sk") {
        Some(AttributeValue::S(v)) => v,
        _ => "",
    }
}

fn ovf_key(item: &Item) -> Option<String> {
    match item.get("ovf") {
        Some(AttributeValue::S(k)) => Some(k.clone()),
        _ => None,
    }
}

/// A condition on a head item: still hot at version `ver`.
fn hot_at(ver: i64) -> Cond {
    Some((
        "#ver = :ver AND #t = :hot",
        Names::from([("#ver".to_owned(), "ver".to_owned()), ("#t".to_owned(), "t".to_owned())]),
        Values::from([(":ver".to_owned(), n(ver)), (":hot".to_owned(), s(T_HOT))]),
    ))
}

impl DynamoStore {
    /// `retention_days` is not used any more: records carry no `expires_at`, since TTL must
    /// never delete a record that has no archive line (the archive run moves them out).
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: String,
        archive_table: String,
        overflow: Arc<dyn ObjectStore>,
        _retention_days: u32,
    ) -> DynamoStore {
        DynamoStore {
            inner: Arc::new(Inner {
                db: Dynamo { client, table, archive_table },
                overflow,
                known: Mutex::new(HashSet::new()),
            }),
            overflow_grace: OVERFLOW_WRITE_GRACE,
        }
    }

    /// The same store with another grace for overflow writes: how long its maintenance leaves
    /// an unclaimed overflow object to its writer ([`OVERFLOW_WRITE_GRACE`] by default). Tests
    /// use zero to play a writer that outlived its note.
    pub fn with_overflow_grace(self, grace: Duration) -> DynamoStore {
        DynamoStore { overflow_grace: grace, ..self }
    }

    fn db(&self) -> &Dynamo {
        &self.inner.db
    }

    fn table(&self) -> &str {
        &self.inner.db.table
    }

    // -- registry and counters ----------------------------------------------------------------

    async fn ensure_platform(&self, p: &Platform) -> Result<(), StoreError> {
        let known = self.inner.known.lock().map(|k| k.contains(p)).unwrap_or(false);
        if known {
            return Ok(());
        }
        let item = HashMap::from([("pk".to_owned(), s(REGISTRY_PK)), ("sk".to_owned(), s(p.as_str()))]);
        self.db().put(self.table(), item).await?;
        if let Ok(mut k) = self.inner.known.lock() {
            k.insert(p.clone());
        }
        Ok(())
    }

    async fn platforms(&self) -> Result<Vec<Platform>, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), REGISTRY_PK.into())).await?;
        items.iter().map(|i| parse_platform(get_s(i, "sk")?)).collect()
    }

    /// `ADD` the delta to one counter shard; None when the delta is zero.
    fn counter_tx(
        &self,
        p: &Platform,
        shard: u32,
        d: &PlatformCounters,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let mut names = Names::new();
        let mut values = Values::new();
        let mut parts = Vec::new();
        for (i, (field, v)) in PlatformCounters::FIELDS.iter().zip(d.values()).enumerate() {
            if v != 0 {
                names.insert(format!("#c{i}"), (*field).to_owned());
                values.insert(format!(":c{i}"), n(v));
                parts.push(format!("#c{i} :c{i}"));
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let expr = format!("ADD {}", parts.join(", "));
        tx_update(self.table(), key(counter_pk(p, shard), COUNTER_SK), expr, names, values, None).map(Some)
    }
}

#[async_trait]
impl HotStore for DynamoStore {
    #[tracing::instrument(skip_all, fields(interaction_id = %rec.id))]
    async fn insert_interaction(&self, rec: &Interaction) -> Result<Inserted, StoreError> {
        self.ensure_platform(&rec.platform).await?;
        for _ in 0..VERSION_ATTEMPTS {
            let mut item = interaction_item(rec)?;
            let spilled = self.spill(&mut item, &INTERACTION_PAYLOAD, rec.id).await?;
            let mut tx =
                vec![tx_put(self.table(), item, not_exists())?, expiry::interaction_not_erased(self.table(), rec.id)?];
            tx.extend(self.counter_tx(&rec.platform, shard_of(rec.id), &rec.facts(false).contribution())?);
            tx.extend(spilled.as_deref().map(|k| self.claim_overflow(k)).transpose()?);
            let sent = self.db().transact(tx).await?;
            let codes = match sent {
                Ok(()) => return Ok(Inserted::New),
                Err(codes) => codes,
            };
            self.drop_unclaimed(spilled, &codes).await;
            // The erasure marker's check (the transaction's second item) failed.
            if codes.get(1).is_some_and(|c| c == FAILED) {
                return Ok(Inserted::Erased);
            }
            // Taken, hot or archived: answer with what is stored. Gone again, or the overflow
            // object's note taken as a dead writer's (too slow a write): try once more.
            if let Some(head) = self.head(rec.id).await? {
                let (content_hash, receipt) = existing_from(&head)?;
                return Ok(Inserted::Existing { content_hash, receipt });
            }
        }
        Err(StoreError::Internal("conflicting id vanished".into()))
    }

    #[tracing::instrument(skip_all, fields(interaction_id = %id))]
    async fn get_linked(&self, id: Id) -> Result<Option<Linked>, StoreError> {
        let part = self.partition(id).await?;
        let Some(head) = part.head.filter(is_hot) else {
            return Ok(None);
        };
        let interaction = self.decode_interaction(head).await?;
        let (feedback, validations) = self.decode_links(part.links).await?;
        Ok(Some(Linked { interaction, feedback, validations }))
    }

    async fn hot_owner(&self, id: Id) -> Result<Option<UserId>, StoreError> {
        // The head's own attribute: no overflow payload and no link is read.
        match self.head(id).await?.filter(is_hot) {
            Some(head) => Ok(Some(parse_user(get_s(&head, "user")?)?)),
            None => Ok(None),
        }
    }

    async fn list_interactions(&self, q: &ListQuery) -> Result<Vec<Interaction>, StoreError> {
        let limit = q.limit as usize;
        let items = match &q.user_id {
            Some(u) => {
                let hi =
                    q.before.map_or("I#~".to_owned(), |c| below_key(&format!("I#{}", position(&c.created_at, c.id))));
                let mut spec = QuerySpec::index(self.table(), &BY_USER, user_pk(u))
                    .range(SkRange::Between("I#".into(), hi))
                    .descending();
                spec.platform = q.platform.as_ref().map(|p| p.as_str().to_owned());
                self.listed(vec![spec], limit, is_hot).await?
            }
            None => {
                let platforms = match &q.platform {
                    Some(p) => vec![p.clone()],
                    None => self.platforms().await?,
                };
                let range = q.before.map_or(SkRange::All, |c| SkRange::Below(position(&c.created_at, c.id)));
                self.listed(self.platform_specs(&platforms, &range, false), limit, is_hot).await?
            }
        };
        self.decode_interactions(items).await
    }

    async fn scan_platform(&self, q: &ScanQuery) -> Result<Vec<Linked>, StoreError> {
        let lo = [q.since.map(|t| ts(&t)), q.after.map(|c| after_key(&position(&c.created_at, c.id)))]
            .into_iter()
            .flatten()
            .max();
        let hi = q.until.map(|t| ts(&t));
        let specs = self.platform_specs(std::slice::from_ref(&q.platform), &SkRange::bounds(lo, hi), true);
        let items = self.listed(specs, q.limit as usize, is_hot).await?;
        self.attach_links(items).await
    }

    async fn scan_user(&self, user: &UserId, after: Option<Cursor>, limit: u32) -> Result<Vec<Linked>, StoreError> {
        let lo = after.map_or("I#".to_owned(), |c| after_key(&format!("I#{}", position(&c.created_at, c.id))));
        let spec = QuerySpec::index(self.table(), &BY_USER, user_pk(user)).range(SkRange::Between(lo, "I#~".into()));
        let items = self.listed(vec![spec], limit as usize, is_hot).await?;
        self.attach_links(items).await
    }

    async fn unlinked_validations(
        &self,
        user: &UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<ValidationLog>, StoreError> {
        let lo = after.map_or("V#".to_owned(), |c| after_key(&format!("V#{}", position(&c.created_at, c.id))));
        let spec = QuerySpec::index(self.table(), &BY_USER, user_pk(user)).range(SkRange::Between(lo, "V#~".into()));
        let items = self.listed(vec![spec], limit as usize, |_| true).await?;
        let (mut out, mut budget) = (Vec::with_capacity(items.len()), PageBudget::new(SCAN_PAGE_BYTES));
        for it in items {
            let v = validation_from(&self.resolve(it).await?)?;
            if !budget.admits(v.scan_bytes()) {
                break;
            }
            out.push(v);
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(interaction_id = %fb.interaction_id))]
    async fn add_feedback(&self, fb: &Feedback) -> Result<(), StoreError> {
        self.add_link(fb.interaction_id, fb.feedback_id, NewLink::Feedback(fb), || feedback_item(fb)).await
    }

    async fn add_validation(&self, v: &ValidationLog) -> Result<(), StoreError> {
        match v.interaction_id {
            Some(id) => self.add_link(id, v.validation_id, NewLink::Validation(v), || validation_item(v)).await,
            None => {
                let mut item = validation_item(v)?;
                let spilled = self.spill(&mut item, &DOC_PAYLOAD, v.validation_id).await?;
                self.put_new_doc(item, spilled).await
            }
        }
    }

    #[tracing::instrument(skip_all, fields(interaction_id = %id))]
    async fn delete_interaction(&self, id: Id) -> Result<HotDeleted, StoreError> {
        let removed = self.remove_hot(id, |rec| Ok((None, rec.facts(false).contribution().negated()))).await?;
        Ok(removed.unwrap_or_default())
    }

    async fn delete_user(&self, user: &UserId) -> Result<HotDeleted, StoreError> {
        // First, so that no TTL removal of the user's items that this delete could miss is put
        // back by the stream's expiry recovery (expiry.rs) while or after it runs.
        let until = Utc::now() + chrono::Duration::from_std(expiry::ERASURE_WINDOW).unwrap_or(chrono::Duration::MAX);
        self.db().put(self.table(), user_erasure_item(user, until)).await?;
        let mut total = HotDeleted::default();
        // Ids and keys come from the index entries themselves (`id`, `ovf` are projected): nothing
        // is read from the table here; `delete_interaction` reads each partition consistently.
        // Each record is its own partition and transaction: [`FAN_OUT`] at a time, so a user
        // with thousands of records is erased within the delete function's time, not one by one.
        let spec = QuerySpec::index(self.table(), &BY_USER, user_pk(user)).range(SkRange::Prefix("I#".into()));
        let ids: Vec<Id> =
            self.db().query_all(&spec).await?.iter().map(|it| parse_id(get_s(it, "id")?)).collect::<Result<_, _>>()?;
        let deleted: Vec<HotDeleted> = futures::stream::iter(ids.into_iter().map(|id| self.delete_interaction(id)))
            .buffer_unordered(FAN_OUT)
            .try_collect()
            .await?;
        for d in deleted {
            total.interactions += d.interactions;
            total.feedback += d.feedback;
            total.validation_logs += d.validation_logs;
        }
        let spec = QuerySpec::index(self.table(), &BY_USER, user_pk(user)).range(SkRange::Prefix("V#".into()));
        let listed = self.db().query_all(&spec).await?;
        // Read again by key, consistently: the index can still list items a moment ago deleted
        // (a second pass of the same delete), which are neither deleted nor counted again.
        let keys: Vec<Item> = listed.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
        let unlinked = if keys.is_empty() {
            Vec::new()
        } else {
            self.db().batch_get_projected(self.table(), keys, &["pk", "sk", "ovf"]).await?
        };
        if !unlinked.is_empty() {
            // Their overflow objects are noted first: a delete cut between the items' delete and
            // the objects' leaves the notes to the archive run's maintenance, not the objects for
            // good. (A note whose item outlives a failed delete makes that item's payload
            // unreadable; it is the data of a user being deleted, which the retry removes.)
            let objects: Vec<String> = unlinked.iter().filter_map(ovf_key).collect();
            let notes = objects.iter().map(|k| object_erasure_key(k)).collect();
            self.db().put_items(self.table(), notes, FAN_OUT).await?;
            let keys = unlinked.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
            self.db().delete_keys(self.table(), keys).await?;
            total.validation_logs += unlinked.len() as i64;
            self.drop_noted_overflow(objects).await;
        }
        Ok(total)
    }

    async fn insert_example(&self, ex: &CuratedExample) -> Result<(), StoreError> {
        self.ensure_platform(&ex.platform).await?;
        let one = PlatformCounters { curated_examples: 1, ..PlatformCounters::default() };
        let mut item = example_item(ex)?;
        let spilled = self.spill(&mut item, &DOC_PAYLOAD, ex.example_id).await?;
        let mut tx = vec![tx_put(self.table(), item, not_exists())?];
        tx.extend(self.counter_tx(&ex.platform, shard_of(ex.example_id), &one)?);
        tx.extend(spilled.as_deref().map(|k| self.claim_overflow(k)).transpose()?);
        let sent = self.db().transact(tx).await?;
        self.settle_doc_write(sent, spilled).await
    }

    async fn list_examples(&self, platform: Option<&Platform>) -> Result<Vec<CuratedExample>, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), EXAMPLES_PK.into())).await?;
        let items = self.resolve_all(items).await?;
        let mut out: Vec<CuratedExample> = items
            .iter()
            .map(example_from)
            .filter(|e| e.as_ref().map_or(true, |e| platform.is_none_or(|p| &e.platform == p)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.example_id)));
        Ok(out)
    }

    async fn delete_example(&self, id: Id) -> Result<bool, StoreError> {
        let k = key(EXAMPLES_PK, id.to_string());
        let Some(item) = self.db().get(self.table(), k.clone()).await? else {
            return Ok(false);
        };
        // The platform attribute, not the document: that may be in an overflow object.
        let platform = parse_platform(get_s(&item, "platform")?)?;
        let minus_one = PlatformCounters { curated_examples: -1, ..PlatformCounters::default() };
        let (names, values) = no_cond();
        let mut tx = vec![tx_delete(self.table(), k, Some(("attribute_exists(pk)", names, values)))?];
        tx.extend(self.counter_tx(&platform, shard_of(id), &minus_one)?);
        if self.db().transact(tx).await?.is_err() {
            return Ok(false);
        }
        self.drop_overflow(ovf_key(&item).into_iter().collect()).await;
        Ok(true)
    }

    async fn increment_example_usage(&self, ids: &[Id]) -> Result<(), StoreError> {
        let unique: HashSet<Id> = ids.iter().copied().collect();
        for id in unique {
            let sent = self
                .db()
                .client
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(EXAMPLES_PK, id.to_string())))
                .update_expression("ADD #uses :one")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#uses", "uses")
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            if let Err(e) = sent {
                let unknown = e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception());
                if !unknown {
                    return Err(io::sdk_error("update_item", &e));
                }
            }
        }
        Ok(())
    }

    async fn insert_metric(&self, m: &TrainingMetric) -> Result<(), StoreError> {
        let mut item = metric_item(m)?;
        let spilled = self.spill(&mut item, &DOC_PAYLOAD, m.metric_id).await?;
        self.put_new_doc(item, spilled).await
    }

    async fn list_metrics(&self, platform: Option<&Platform>) -> Result<Vec<TrainingMetric>, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), METRICS_PK.into())).await?;
        let items = self.resolve_all(items).await?;
        let mut out: Vec<TrainingMetric> = items
            .iter()
            .map(metric_from)
            .filter(|m| m.as_ref().map_or(true, |m| platform.is_none_or(|p| &m.platform == p)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.metric_id)));
        Ok(out)
    }

    async fn counters(&self) -> Result<BTreeMap<Platform, PlatformCounters>, StoreError> {
        let platforms = self.platforms().await?;
        let keys: Vec<Item> = platforms
            .iter()
            .flat_map(|p| (0..SHARDS).map(move |shard| key(counter_pk(p, shard), COUNTER_SK)))
            .collect();
        let mut out: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
        for item in self.db().batch_get(self.table(), keys).await? {
            let pk = get_s(&item, "pk")?;
            let name = pk.strip_prefix("C#").and_then(|r| r.rsplit_once('#')).map(|(p, _)| p);
            let platform = parse_platform(name.ok_or_else(|| corrupt("counter key"))?)?;
            out.entry(platform).or_default().add(&counters_from(&item)?);
        }
        out.retain(|_, c| !c.is_zero());
        Ok(out)
    }

    async fn added_platforms(&self) -> Result<BTreeSet<Platform>, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), ADDED_PLATFORMS_PK.into())).await?;
        items.iter().map(|i| parse_platform(get_s(i, "sk")?)).collect()
    }

    /// One transaction: put `PLAT/{p}` if absent, and add one to the count `PLAT#N` on
    /// condition it stays under the cap computed from a consistent read of the added
    /// platforms (which only grow, so the cap is never too high). Any number of Lambdas may
    /// race: DynamoDB serializes the transactions on the count item.
    async fn add_platform(&self, p: &Platform, limit: &PlatformLimit) -> Result<PlatformAdded, StoreError> {
        let added = self.added_platforms().await?;
        if added.contains(p) {
            return Ok(PlatformAdded::AlreadyAdded);
        }
        if !limit.has_room(&added) {
            return Ok(PlatformAdded::LimitReached);
        }
        let put = tx_put(self.table(), key(ADDED_PLATFORMS_PK, p.as_str()), not_exists())?;
        let count = tx_update(
            self.table(),
            key(PLATFORM_COUNT_PK, PLATFORM_COUNT_SK),
            "ADD #n :one".into(),
            Names::from([("#n".to_owned(), "n".to_owned())]),
            Values::from([(":one".to_owned(), n(1)), (":cap".to_owned(), n(limit.added_cap(&added)))]),
            Some("attribute_not_exists(#n) OR #n < :cap"),
        )?;
        match self.db().transact(vec![put, count]).await? {
            Ok(()) => Ok(PlatformAdded::Added),
            // Another add stored the same platform since the read.
            Err(codes) if codes.first().is_some_and(|c| c == FAILED) => Ok(PlatformAdded::AlreadyAdded),
            // Other adds took the last places since the read.
            Err(_) => Ok(PlatformAdded::LimitReached),
        }
    }

    async fn record_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        self.record_export_impl(manifest, held).await
    }

    async fn list_exports(&self, before: Option<Id>, limit: u32) -> Result<Vec<ExportManifest>, StoreError> {
        let mut q = QuerySpec::table(self.table(), EXPORTS_PK.into()).descending();
        if let Some(b) = before {
            q = q.range(SkRange::Below(b.to_string()));
        }
        let items = self.db().query_limit(&q, limit as usize).await?;
        items.iter().map(manifest_from).collect()
    }

    async fn export_manifest(&self, id: Id) -> Result<Option<ExportManifest>, StoreError> {
        let item = self.db().get(self.table(), key(EXPORTS_PK, id.to_string())).await?;
        item.as_ref().map(manifest_from).transpose()
    }

    async fn exports_holding(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
        self.exports_holding_impl(by).await
    }

    async fn drop_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        self.drop_export_impl(manifest, held).await
    }

    async fn live_records(&self, ids: &[Id]) -> Result<HashSet<Id>, StoreError> {
        self.live_records_impl(ids).await
    }

    async fn forget_held(&self, by: HeldBy<'_>) -> Result<(), StoreError> {
        self.forget_held_impl(by).await
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.acquire_lease_impl(holder, now, ttl).await
    }

    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        self.renew_lease_impl(lease, now, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release_lease_impl(lease).await
    }

    #[tracing::instrument(skip_all, fields(slot = %obj.slot))]
    async fn begin_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
        self.begin_archive_impl(lease, obj).await
    }

    #[tracing::instrument(skip_all, fields(slot = %obj.slot, items = items.len()))]
    async fn commit_archive(
        &self,
        lease: &Lease,
        obj: &ArchiveObject,
        items: &[ArchiveItem],
    ) -> Result<Vec<Id>, StoreError> {
        self.commit_archive_impl(lease, obj, items).await
    }

    #[tracing::instrument(skip_all, fields(slot = %obj.slot))]
    async fn abort_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
        self.abort_archive_impl(lease, obj).await
    }

    async fn list_archive_objects(&self, platform: Option<&Platform>) -> Result<Vec<ArchiveObject>, StoreError> {
        self.list_archive_objects_impl(platform).await
    }

    async fn archived_entry(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        match self.head(id).await? {
            Some(h) if is_stub(&h) => Ok(Some(entry_from(&h)?)),
            _ => Ok(None),
        }
    }

    async fn archive_object(
        &self,
        platform: &Platform,
        date: NaiveDate,
        slot: &str,
    ) -> Result<Option<ArchiveObject>, StoreError> {
        self.object_row(platform, date, slot).await
    }

    async fn archived_entries_of_user(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError> {
        self.archived_entries_of_user_impl(user).await
    }

    #[tracing::instrument(skip_all, fields(interaction_id = %id))]
    async fn delete_archived(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        self.delete_archived_impl(id).await
    }

    async fn tombstones(&self, slot: &str) -> Result<HashSet<Id>, StoreError> {
        let spec =
            QuerySpec::table(self.table(), TOMB_PK.into()).range(SkRange::Prefix(format!("{slot}#"))).only(&["id"]);
        self.db().query_all(&spec).await?.iter().map(|it| parse_id(get_s(it, "id")?)).collect()
    }

    async fn finish_payload_erasures(&self) -> Result<u64, StoreError> {
        self.finish_payload_erasures_impl().await
    }

    async fn tombstoned_slots(&self) -> Result<BTreeSet<String>, StoreError> {
        let spec = QuerySpec::table(self.table(), TOMB_PK.into()).only(&["slot"]);
        self.db().query_all(&spec).await?.iter().map(|it| get_s(it, "slot").map(str::to_owned)).collect()
    }

    async fn clear_tombstones(&self, lease: &Lease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        self.clear_tombstones_impl(lease, slot, ids).await
    }

    #[tracing::instrument(skip_all, fields(slot = %old.slot, cleared = cleared.len()))]
    async fn apply_compaction(
        &self,
        lease: &Lease,
        old: &ArchiveObject,
        new: Option<&ArchiveObject>,
        cleared: &[Id],
    ) -> Result<(), StoreError> {
        self.apply_compaction_impl(lease, old, new, cleared).await
    }
}

/// The indexes against template.yaml, what an index entry holds and costs, and how a listing
/// treats entries whose items changed.
#[cfg(all(test, feature = "test-suite"))]
mod index_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds_are_tight_for_fixed_width_keys() {
        let k = "2026-01-05T10:00:00.123456789Z#0190f3a4-0000-7000-8000-00000000000a";
        let smaller = "2026-01-05T10:00:00.123456789Z#0190f3a4-0000-7000-8000-000000000009";
        let larger = "2026-01-05T10:00:00.123456789Z#0190f3a4-0000-7000-8000-00000000000b";
        assert!(smaller <= below_key(k).as_str() && below_key(k).as_str() < k);
        assert!(larger >= after_key(k).as_str() && after_key(k).as_str() > k);
    }
}
