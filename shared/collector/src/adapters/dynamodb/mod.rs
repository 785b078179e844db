//! The DynamoDB hot store: interactions with their feedback and validations, curated examples,
//! training metrics, sharded counters and the archive catalog, on one table (plus the archive
//! metadata table). The table design, access patterns and capacity reasoning are in
//! docs/AWS.md ("DynamoDB table design"); the item layout is in [`codec`].
//!
//! Mechanics only: summaries, counter deltas and record facts come from the domain
//! (`FeedbackSummary::with_feedback`, `RecordFacts::contribution`, `PlatformCounters::delta`).

mod codec;

/// Whether a stream record's partition key is a tombstone's (a delete of an archived line): the
/// archiver erases on seeing one (functions/archiver).
pub fn is_tombstone_partition(pk: &str) -> bool {
    pk == codec::TOMB_PK
}

mod expiry;
mod io;

pub use expiry::Recovery;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};

use self::codec::*;
use self::io::{Cond, Dynamo, Names, QuerySpec, SkRange, Values, key, tx_check, tx_delete, tx_put, tx_update};
use crate::domain::archive::{ArchiveObject, ObjectState, StorageClass};
use crate::domain::counters::PlatformCounters;
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::records::{CuratedExample, Feedback, Interaction, TrainingMetric, ValidationLog};
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{
    ArchiveItem, ArchivedEntry, Cursor, HotDeleted, HotStore, Inserted, Lease, Linked, ListQuery, ObjectStore,
    ScanQuery, StoreError,
};

const BY_PLATFORM: &str = "by_platform";
const BY_USER: &str = "by_user";
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

/// The DynamoDB [`HotStore`]. Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
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

/// `SET` of the named attributes of a row (`#attr = :attr`), with its names and values.
fn row_set(o: &ArchiveObject, attrs: &[&str]) -> (String, Names, Values) {
    let mut item = object_item(o);
    let mut names = Names::new();
    let mut values = Values::new();
    let mut sets = Vec::new();
    for attr in attrs {
        if let Some(v) = item.remove(*attr) {
            names.insert(format!("#{attr}"), (*attr).to_owned());
            values.insert(format!(":{attr}"), v);
            sets.push(format!("#{attr} = :{attr}"));
        }
    }
    (format!("SET {}", sets.join(", ")), names, values)
}

/// Epoch milliseconds of `now + ttl`.
fn lease_expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

fn dedup(ids: &[Id]) -> Vec<Id> {
    ids.iter().copied().collect::<BTreeSet<Id>>().into_iter().collect()
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
        }
    }

    fn db(&self) -> &Dynamo {
        &self.inner.db
    }

    fn table(&self) -> &str {
        &self.inner.db.table
    }

    // -- registry and counters ----------------------------------------------------------------

    /// The held-records items of a user (keys only), or those of the user that hold a record.
    async fn held_of(&self, by: HeldBy<'_>) -> Result<Vec<Item>, StoreError> {
        match by {
            HeldBy::User(user) => self.db().query_all(&QuerySpec::table(self.table(), held_pk(user)).only(&["pk", "sk"])).await,
            HeldBy::Record { id, user } => {
                let items = self.db().query_all(&QuerySpec::table(self.table(), held_pk(user))).await?;
                Ok(items.into_iter().filter(|i| holds(i, id)).collect())
            }
        }
    }

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

    // -- overflow ---------------------------------------------------------------------------------

    /// Move the payload of an item too big for DynamoDB to an overflow object; returns its key.
    async fn spill(&self, item: &mut Item, payload: &[&str], owner: Id) -> Result<Option<String>, StoreError> {
        if item_size(item) <= ITEM_BUDGET {
            return Ok(None);
        }
        let Some(bytes) = take_payload(item, payload)? else {
            return Ok(None);
        };
        let k = format!("overflow/{owner}/{}", Id::new());
        self.inner.overflow.put(&k, bytes, StorageClass::Standard).await?;
        item.insert("ovf".into(), s(k.clone()));
        if item_size(item) > ITEM_BUDGET {
            return Err(StoreError::Internal("record too large even without its payload".into()));
        }
        Ok(Some(k))
    }

    /// Put an item's overflow payload back, if it has one.
    async fn resolve(&self, mut item: Item) -> Result<Item, StoreError> {
        if let Some(k) = ovf_key(&item) {
            let bytes = self.inner.overflow.get(&k).await?;
            restore_payload(&mut item, &bytes)?;
            item.remove("ovf");
        }
        Ok(item)
    }

    /// [`Self::resolve`] for a page of items, up to [`FAN_OUT`] objects read at once.
    async fn resolve_all(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        futures::stream::iter(items.into_iter().map(|it| self.resolve(it))).buffered(FAN_OUT).try_collect().await
    }

    /// Remove overflow objects of deleted items. Best effort: the items are already gone.
    async fn drop_overflow(&self, keys: Vec<String>) {
        for k in keys {
            if let Err(e) = self.inner.overflow.delete(&k).await {
                tracing::warn!(object_key = %k, error = %e, "overflow object left behind");
            }
        }
    }

    // -- reads ------------------------------------------------------------------------------------

    async fn partition(&self, id: Id) -> Result<Partition, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), interaction_pk(id))).await?;
        let mut head = None;
        let mut links = Vec::new();
        for it in items {
            if is_link(&it) { links.push(it) } else { head = Some(it) }
        }
        Ok(Partition { head, links })
    }

    async fn head(&self, id: Id) -> Result<Option<Item>, StoreError> {
        self.db().get(self.table(), key(interaction_pk(id), INTERACTION_SK)).await
    }

    async fn decode_links(&self, links: Vec<Item>) -> Result<(Vec<Feedback>, Vec<ValidationLog>), StoreError> {
        let mut feedback = Vec::new();
        let mut validations = Vec::new();
        for it in links {
            let it = self.resolve(it).await?;
            if sk_of(&it).starts_with("F#") {
                feedback.push(feedback_from(&it)?);
            } else if sk_of(&it).starts_with("V#") {
                validations.push(validation_from(&it)?);
            }
        }
        Ok((feedback, validations))
    }

    async fn decode_interaction(&self, item: Item) -> Result<Interaction, StoreError> {
        interaction_from(&self.resolve(item).await?)
    }

    async fn decode_interactions(&self, items: Vec<Item>) -> Result<Vec<Interaction>, StoreError> {
        futures::stream::iter(items.into_iter().map(|it| self.decode_interaction(it)))
            .buffered(FAN_OUT)
            .try_collect()
            .await
    }

    /// Records of a page with their links; partitions are read only for records that have links.
    async fn attach_links(&self, items: Vec<Item>) -> Result<Vec<Linked>, StoreError> {
        let one = |it: Item| async move {
            let nlinks: i64 = opt_n(&it, "nlinks")?.unwrap_or(0);
            let interaction = self.decode_interaction(it).await?;
            let (feedback, validations) = if nlinks > 0 {
                let q = QuerySpec::table(self.table(), interaction_pk(interaction.id))
                    .range(SkRange::Above(INTERACTION_SK.into()));
                self.decode_links(self.db().query_all(&q).await?).await?
            } else {
                (Vec::new(), Vec::new())
            };
            Ok::<_, StoreError>(Linked { interaction, feedback, validations })
        };
        futures::stream::iter(items.into_iter().map(one)).buffered(FAN_OUT).try_collect().await
    }

    /// K-way merge of several queries (shards), each read lazily in small pages: a lane is
    /// refilled only when its buffer runs dry. Ordered by each item's sort-key attribute.
    async fn merged(&self, specs: Vec<QuerySpec>, limit: usize) -> Result<Vec<Item>, StoreError> {
        struct Lane {
            spec: QuerySpec,
            buf: VecDeque<Item>,
            next: Option<Item>,
            page: i32,
        }
        let Some(first) = specs.first() else {
            return Ok(Vec::new());
        };
        let ascending = first.ascending;
        let page = i32::try_from((limit / specs.len() + 2).clamp(2, 100)).unwrap_or(100);
        let db = self.db();
        let mut lanes: Vec<Lane> = futures::future::try_join_all(specs.into_iter().map(|spec| async move {
            let (items, next) = db.query_page(&spec, None, Some(page)).await?;
            Ok::<_, StoreError>(Lane { spec, buf: items.into(), next, page })
        }))
        .await?;
        let sort_key = |lane: &Lane| -> Option<String> {
            lane.buf.front().and_then(|it| match it.get(lane.spec.sk_attr) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            })
        };
        let mut out = Vec::new();
        while out.len() < limit {
            for lane in lanes.iter_mut() {
                while lane.buf.is_empty() && lane.next.is_some() {
                    lane.page = (lane.page * 2).min(100);
                    let (items, next) = db.query_page(&lane.spec, lane.next.take(), Some(lane.page)).await?;
                    lane.buf.extend(items);
                    lane.next = next;
                }
            }
            let mut best: Option<(usize, String)> = None;
            for (i, lane) in lanes.iter().enumerate() {
                let Some(k) = sort_key(lane) else { continue };
                let better = match &best {
                    None => true,
                    Some((_, b)) => (ascending && k < *b) || (!ascending && k > *b),
                };
                if better {
                    best = Some((i, k));
                }
            }
            let Some((i, _)) = best else { break };
            if let Some(it) = lanes[i].buf.pop_front() {
                out.push(it);
            }
        }
        Ok(out)
    }

    fn platform_specs(&self, platforms: &[Platform], range: &SkRange, ascending: bool) -> Vec<QuerySpec> {
        let mut specs = Vec::new();
        for p in platforms {
            for shard in 0..SHARDS {
                let mut q =
                    QuerySpec::index(self.table(), BY_PLATFORM, 1, platform_shard_pk(p, shard)).range(range.clone());
                if !ascending {
                    q = q.descending();
                }
                specs.push(q);
            }
        }
        specs
    }

    // -- writes -----------------------------------------------------------------------------------

    /// Read a hot interaction for a read-modify-write: (item, version, record). NotFound when not hot.
    async fn hot_for_update(&self, id: Id) -> Result<(i64, Interaction), StoreError> {
        let head = self.head(id).await?.filter(is_hot).ok_or(StoreError::NotFound)?;
        let ver = version(&head)?;
        Ok((ver, self.decode_interaction(head).await?))
    }

    /// Replace the summary and count one more link, if the version is still `ver`.
    fn summary_tx(&self, rec: &Interaction, ver: i64) -> Result<TransactWriteItem, StoreError> {
        let mut names = Names::from([
            ("#ver".to_owned(), "ver".to_owned()),
            ("#t".to_owned(), "t".to_owned()),
            ("#nlinks".to_owned(), "nlinks".to_owned()),
        ]);
        let mut values =
            Values::from([(":ver".to_owned(), n(ver)), (":ver1".to_owned(), n(ver + 1)), (":one".to_owned(), n(1))]);
        values.insert(":hot".into(), s(T_HOT));
        let mut sets = vec!["#ver = :ver1".to_owned()];
        for (attr, v) in summary_values(&rec.summary) {
            names.insert(format!("#{attr}"), attr.to_owned());
            values.insert(format!(":{attr}"), v);
            sets.push(format!("#{attr} = :{attr}"));
        }
        let expr = format!("SET {} ADD #nlinks :one", sets.join(", "));
        tx_update(
            self.table(),
            key(interaction_pk(rec.id), INTERACTION_SK),
            expr,
            names,
            values,
            Some("#ver = :ver AND #t = :hot"),
        )
    }

    /// Store a link (feedback or linked validation) with the new summary and counters delta.
    async fn add_link(
        &self,
        interaction_id: Id,
        link_id: Id,
        build: impl Fn(&Interaction) -> Result<(Item, crate::domain::records::FeedbackSummary), StoreError>,
    ) -> Result<(), StoreError> {
        for _ in 0..VERSION_ATTEMPTS {
            let (ver, rec) = self.hot_for_update(interaction_id).await?;
            let before = rec.facts(false).contribution();
            let (mut item, summary) = build(&rec)?;
            let updated = Interaction { summary, ..rec };
            let delta = PlatformCounters::delta(&before, &updated.facts(false).contribution());
            let spilled = self.spill(&mut item, &DOC_PAYLOAD, interaction_id).await?;
            let mut tx = vec![tx_put(self.table(), item, not_exists())?, self.summary_tx(&updated, ver)?];
            tx.extend(self.counter_tx(&updated.platform, shard_of(link_id), &delta)?);
            match self.db().transact(tx).await? {
                Ok(()) => return Ok(()),
                Err(codes) => {
                    if let Some(k) = spilled {
                        self.drop_overflow(vec![k]).await;
                    }
                    if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
                        return Err(StoreError::Conflict("id already exists"));
                    }
                    // The interaction changed (or went) meanwhile: read it again.
                }
            }
        }
        Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER })
    }

    /// Remove links that a transaction could not hold, and the overflow objects of removed items.
    async fn finish_removal(&self, rest: Vec<Item>, removed: &[Item]) -> Result<(), StoreError> {
        let keys: Vec<Item> = rest.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
        if !keys.is_empty() {
            self.db().delete_keys(self.table(), keys).await?;
        }
        let ovf: Vec<String> = removed.iter().chain(rest.iter()).filter_map(ovf_key).collect();
        self.drop_overflow(ovf).await;
        Ok(())
    }

    /// Replace a hot interaction by `replacement` (a stub) or remove it, with its links, moving
    /// the counters by `delta(record)`, if its version is unchanged. None when it is not hot.
    async fn remove_hot(
        &self,
        id: Id,
        replacement: impl Fn(&Interaction) -> Result<(Option<Item>, PlatformCounters), StoreError>,
    ) -> Result<Option<HotDeleted>, StoreError> {
        for _ in 0..VERSION_ATTEMPTS {
            let part = self.partition(id).await?;
            let Some(head) = part.head.filter(is_hot) else {
                return Ok(None);
            };
            let ver = version(&head)?;
            let rec = self.decode_interaction(head.clone()).await?;
            let (stub, delta) = replacement(&rec)?;
            let cond = hot_at(ver);
            let hkey = key(interaction_pk(id), INTERACTION_SK);
            let mut tx = match stub {
                Some(item) => vec![tx_put(self.table(), item, cond)?],
                // Deleted for good: the marker keeps the stream's expiry recovery from putting
                // back any of its items (expiry.rs).
                None => vec![
                    tx_delete(self.table(), hkey, cond)?,
                    tx_put(self.table(), interaction_erasure_key(id), None)?,
                ],
            };
            tx.extend(self.counter_tx(&rec.platform, shard_of(id), &delta)?);
            let mut links = part.links;
            let rest = links.split_off(links.len().min(TX_LINKS));
            for l in &links {
                tx.push(tx_delete(self.table(), io::key_of(l, ["pk", "sk"]), None)?);
            }
            if self.db().transact(tx).await?.is_err() {
                continue;
            }
            let feedback = links.iter().chain(rest.iter()).filter(|l| sk_of(l).starts_with("F#")).count() as i64;
            let validation_logs = links.iter().chain(rest.iter()).filter(|l| sk_of(l).starts_with("V#")).count() as i64;
            let mut removed = links;
            removed.push(head);
            self.finish_removal(rest, &removed).await?;
            return Ok(Some(HotDeleted { interactions: 1, feedback, validation_logs }));
        }
        Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER })
    }

    // -- archive run ------------------------------------------------------------------------------

    fn lease_check(&self, lease: &Lease) -> Result<TransactWriteItem, StoreError> {
        tx_check(
            self.table(),
            lease_key(),
            "#token = :t",
            Names::from([("#token".to_owned(), "token".to_owned())]),
            Values::from([(":t".to_owned(), n(lease.token))]),
        )
    }

    /// A transaction of the archive run, fenced: the lease check goes first (so it is item 0 of
    /// the cancellation reasons). `Ok(Err(codes))` when one of `tx`'s own conditions failed,
    /// codes aligned with `tx`.
    ///
    /// No lock serializes these. Every fenced transaction checks the lease item, so two in
    /// flight at once conflict and `io::transact` retries the one DynamoDB cancelled
    /// (TransactionConflict) with backoff: the conditions keep the data right, not the order
    /// of sending. And there is nothing to serialize: a run writes one step after another
    /// (`commit_archive` sends its batches in turn, its reads alone run FAN_OUT wide), the app
    /// runs one run per process, and the writes that are not fenced (ingest, deletes,
    /// `delete_archived`) never touch the lease item.
    async fn run_tx(&self, lease: &Lease, tx: Vec<TransactWriteItem>) -> Result<Result<(), Vec<String>>, StoreError> {
        let mut all = Vec::with_capacity(tx.len() + 1);
        all.push(self.lease_check(lease)?);
        all.extend(tx);
        match self.db().transact(all).await? {
            Ok(()) => Ok(Ok(())),
            Err(codes) if codes.first().is_some_and(|c| c == FAILED) => Err(StoreError::Fenced),
            Err(codes) => Ok(Err(codes.into_iter().skip(1).collect())),
        }
    }

    /// Fenced when the lease was taken over: for calls that may find nothing to write (the
    /// transactions themselves are what guards the data).
    async fn check_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let item = self.db().get(self.table(), lease_key()).await?;
        match item.map(|i| get_n::<i64>(&i, "token")).transpose()? {
            Some(token) if token == lease.token => Ok(()),
            _ => Err(StoreError::Fenced),
        }
    }

    /// A fenced transaction whose items have no conditions of their own.
    async fn run_tx_plain(&self, lease: &Lease, tx: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.run_tx(lease, tx)
            .await?
            .map_err(|codes| StoreError::Internal(format!("dynamodb transaction cancelled: {}", codes.join(","))))
    }

    /// Read one record of a commit (its partition, consistently) and say what to do with it.
    /// `reads`: how many times it has been read, this time included.
    async fn classify(&self, slot: &str, item: ArchiveItem, reads: u32) -> Result<Step, StoreError> {
        let part = self.partition(item.id).await?;
        let head = match part.head {
            // Links only ever grow: the same count is the record the line was written from. A
            // head counting more links than its partition holds is waiting for the stream's
            // expiry recovery to put one back (expiry.rs): it stays hot until then.
            Some(h) if is_hot(&h) && part.links.len() as i64 == item.links && !expiry::missing_links(&h, part.links.len())? => h,
            Some(h) if is_stub(&h) && get_s(&h, "object")? == slot => {
                // Done by an earlier run; sweep links it may have left behind.
                self.finish_removal(part.links, &[]).await?;
                return Ok(Step::Done);
            }
            // Deleted, changed, or archived elsewhere: its line is not live.
            _ => return Ok(Step::Tomb(item.id)),
        };
        let ver = version(&head)?;
        let ovf = ovf_key(&head);
        let rec = self.decode_interaction(head).await?;
        let (entry, delta) = ArchivedEntry::archiving(&rec, slot);
        let links = part
            .links
            .iter()
            .map(|l| Link { key: io::key_of(l, ["pk", "sk"]), bytes: item_size(l), ovf: ovf_key(l) })
            .collect();
        let stub = stub_item(&entry)?;
        Ok(Step::Move(Box::new(Move { item, ver, stub, platform: rec.platform, delta, links, ovf, reads })))
    }

    /// Phase two's record moves: every item read (FAN_OUT at a time, in order) and classified,
    /// the moves and tombstones sent in fenced transactions of as many records as fit, one
    /// transaction at a time, while the reads go on. Returns the tombstoned ids. A read that
    /// fails ends the commit with its error once the records read before it are sent.
    async fn move_records(&self, lease: &Lease, slot: &str, items: &[ArchiveItem]) -> Result<Vec<Id>, StoreError> {
        let (sender, receiver) = tokio::sync::mpsc::channel(2 * TX_MAX);
        let reads = async move {
            let mut steps =
                futures::stream::iter(items.iter().copied().map(|item| self.classify(slot, item, 1))).buffered(FAN_OUT);
            while let Some(step) = steps.next().await {
                let failed = step.is_err();
                // A closed channel: the sending side stopped (its error is the answer).
                if sender.send(step).await.is_err() || failed {
                    break;
                }
            }
        };
        let ((), sent) = tokio::join!(reads, self.send_records(lease, slot, receiver));
        sent
    }

    /// The sending side of [`Self::move_records`]: batches planned from the steps read so far,
    /// each sent once it is full or the reads have ended.
    async fn send_records(
        &self,
        lease: &Lease,
        slot: &str,
        mut reads: tokio::sync::mpsc::Receiver<Result<Step, StoreError>>,
    ) -> Result<Vec<Id>, StoreError> {
        let cap = batch_records();
        let mut queue: VecDeque<Step> = VecDeque::new();
        let mut tombstoned = Vec::new();
        let mut open = true;
        let mut read_error = None;
        loop {
            while open && !plan(&queue, cap).1 {
                match reads.recv().await {
                    Some(Ok(Step::Done)) => {}
                    Some(Ok(step)) => queue.push_back(step),
                    Some(Err(e)) => {
                        read_error = Some(e);
                        open = false;
                    }
                    None => open = false,
                }
            }
            let (n, _) = plan(&queue, cap);
            if n == 0 {
                break;
            }
            let batch: Vec<Step> = queue.drain(..n).collect();
            match self.send_batch(lease, slot, batch).await? {
                Sent::Done(ids) => tombstoned.extend(ids),
                Sent::Again(batch) => {
                    for step in batch.into_iter().rev() {
                        if !matches!(step, Step::Done) {
                            queue.push_front(step);
                        }
                    }
                }
            }
        }
        match read_error {
            Some(e) => Err(e),
            None => Ok(tombstoned),
        }
    }

    /// One commit transaction: the lease check; each step's stub, conditioned on the version
    /// read, with its links' deletes, or its tombstone; then one counter update per platform
    /// carrying the summed deltas (on one shard: counters are summed over shards when read).
    /// A lone record with more links than fit sends its first links and deletes the rest
    /// right after. When stub conditions failed, those records are read again and the batch
    /// comes back to be sent again (nothing of it was written).
    async fn send_batch(&self, lease: &Lease, slot: &str, mut batch: Vec<Step>) -> Result<Sent, StoreError> {
        fail::fail_point!("commit.between_records", |_| Err(StoreError::Unavailable("failpoint".into())));
        let mut deltas: Vec<(Platform, PlatformCounters)> = Vec::new();
        let mut shard = None;
        for step in &batch {
            if let Step::Move(m) = step {
                shard = shard.or(Some(shard_of(m.item.id)));
                match deltas.iter_mut().find(|(p, _)| p == &m.platform) {
                    Some((_, d)) => d.add(&m.delta),
                    None => deltas.push((m.platform.clone(), m.delta)),
                }
            }
        }
        let mut items = 1 + deltas.len();
        let mut bytes = TX_ITEM_BYTES + deltas.len() * COUNTER_BYTES;
        let mut tx = Vec::new();
        // (position in tx, position in batch) of each stub.
        let mut stubs = Vec::new();
        let mut tombstoned = Vec::new();
        let mut rest = Vec::new();
        let mut overflow = Vec::new();
        for (i, step) in batch.iter().enumerate() {
            match step {
                Step::Done => {}
                Step::Tomb(id) => {
                    tx.push(tx_put(self.table(), tombstone_item(slot, *id), None)?);
                    tombstoned.push(*id);
                    items += 1;
                    bytes += TX_ITEM_BYTES + TOMB_BYTES;
                }
                Step::Move(m) => {
                    stubs.push((tx.len(), i));
                    tx.push(tx_put(self.table(), m.stub.clone(), hot_at(m.ver))?);
                    items += 1;
                    bytes += TX_ITEM_BYTES + item_size(&m.stub);
                    overflow.extend(m.ovf.clone());
                    for l in &m.links {
                        if items < TX_MAX && bytes + TX_ITEM_BYTES + l.bytes <= TX_BYTES {
                            tx.push(tx_delete(self.table(), l.key.clone(), None)?);
                            items += 1;
                            bytes += TX_ITEM_BYTES + l.bytes;
                        } else {
                            rest.push(l.key.clone());
                        }
                        overflow.extend(l.ovf.clone());
                    }
                }
            }
        }
        for (p, d) in &deltas {
            tx.extend(self.counter_tx(p, shard.unwrap_or(0), d)?);
        }
        if tx.is_empty() {
            return Ok(Sent::Done(tombstoned));
        }
        let codes = match self.run_tx(lease, tx).await? {
            Ok(()) => {
                if !rest.is_empty() {
                    self.db().delete_keys(self.table(), rest).await?;
                }
                self.drop_overflow(overflow).await;
                return Ok(Sent::Done(tombstoned));
            }
            Err(codes) => codes,
        };
        // Changed meanwhile (a feedback, a delete): read those again.
        let mut changed = Vec::new();
        for (t, i) in stubs {
            if codes.get(t).is_some_and(|c| c == FAILED)
                && let Some(Step::Move(m)) = batch.get(i)
            {
                if m.reads >= VERSION_ATTEMPTS {
                    return Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER });
                }
                changed.push((i, m.item, m.reads + 1));
            }
        }
        if changed.is_empty() {
            return Err(StoreError::Internal(format!("dynamodb transaction cancelled: {}", codes.join(","))));
        }
        let reread = |(i, item, reads): (usize, ArchiveItem, u32)| async move {
            Ok::<_, StoreError>((i, self.classify(slot, item, reads).await?))
        };
        let fresh: Vec<(usize, Step)> =
            futures::stream::iter(changed.into_iter().map(reread)).buffered(FAN_OUT).try_collect().await?;
        for (i, step) in fresh {
            batch[i] = step;
        }
        Ok(Sent::Again(batch))
    }

    async fn object_row(
        &self,
        platform: &Platform,
        date: NaiveDate,
        slot: &str,
    ) -> Result<Option<ArchiveObject>, StoreError> {
        let k = object_row_key(platform, date, slot);
        self.db().get(&self.db().archive_table, k).await?.map(|i| object_from(&i)).transpose()
    }

    /// Delete tombstones in fenced transactions (for what a compaction's own could not hold).
    async fn drop_tombstones(&self, lease: &Lease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        for chunk in ids.chunks(TOMB_BATCH) {
            let mut tx = Vec::with_capacity(chunk.len());
            for id in chunk {
                tx.push(tx_delete(self.table(), tombstone_key(slot, *id), None)?);
            }
            self.run_tx_plain(lease, tx).await?;
        }
        Ok(())
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
            let mut tx = vec![tx_put(self.table(), item, not_exists())?];
            tx.extend(self.counter_tx(&rec.platform, shard_of(rec.id), &rec.facts(false).contribution())?);
            if self.db().transact(tx).await?.is_ok() {
                return Ok(Inserted::New);
            }
            if let Some(k) = spilled {
                self.drop_overflow(vec![k]).await;
            }
            // Taken, hot or archived: answer with what is stored. Gone again: try once more.
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

    async fn list_interactions(&self, q: &ListQuery) -> Result<Vec<Interaction>, StoreError> {
        let limit = q.limit as usize;
        let items = match &q.user_id {
            Some(u) => {
                let hi =
                    q.before.map_or("I#~".to_owned(), |c| below_key(&format!("I#{}", position(&c.created_at, c.id))));
                let mut spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(u))
                    .range(SkRange::Between("I#".into(), hi))
                    .descending();
                spec.platform = q.platform.as_ref().map(|p| p.as_str().to_owned());
                self.db().query_limit(&spec, limit).await?
            }
            None => {
                let platforms = match &q.platform {
                    Some(p) => vec![p.clone()],
                    None => self.platforms().await?,
                };
                let range = q.before.map_or(SkRange::All, |c| SkRange::Below(position(&c.created_at, c.id)));
                self.merged(self.platform_specs(&platforms, &range, false), limit).await?
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
        let items = self.merged(specs, q.limit as usize).await?;
        self.attach_links(items).await
    }

    async fn scan_user(&self, user: &UserId, after: Option<Cursor>, limit: u32) -> Result<Vec<Linked>, StoreError> {
        let lo = after.map_or("I#".to_owned(), |c| after_key(&format!("I#{}", position(&c.created_at, c.id))));
        let spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(user)).range(SkRange::Between(lo, "I#~".into()));
        let items = self.db().query_limit(&spec, limit as usize).await?;
        self.attach_links(items).await
    }

    async fn unlinked_validations(&self, user: &UserId) -> Result<Vec<ValidationLog>, StoreError> {
        let spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(user)).range(SkRange::Prefix("V#".into()));
        let items = self.db().query_all(&spec).await?;
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            out.push(validation_from(&self.resolve(it).await?)?);
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(interaction_id = %fb.interaction_id))]
    async fn add_feedback(&self, fb: &Feedback) -> Result<(), StoreError> {
        self.add_link(fb.interaction_id, fb.feedback_id, |rec| Ok((feedback_item(fb)?, rec.summary.with_feedback(fb))))
            .await
    }

    async fn add_validation(&self, v: &ValidationLog) -> Result<(), StoreError> {
        match v.interaction_id {
            Some(id) => {
                self.add_link(id, v.validation_id, |rec| Ok((validation_item(v)?, rec.summary.with_validation(v))))
                    .await
            }
            None => {
                let mut item = validation_item(v)?;
                let spilled = self.spill(&mut item, &DOC_PAYLOAD, v.validation_id).await?;
                if self.db().put_new(self.table(), item, "pk").await? {
                    return Ok(());
                }
                if let Some(k) = spilled {
                    self.drop_overflow(vec![k]).await;
                }
                Err(StoreError::Conflict("id already exists"))
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
        let spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(user)).range(SkRange::Prefix("I#".into()));
        for it in self.db().query_all(&spec).await? {
            let d = self.delete_interaction(parse_id(get_s(&it, "id")?)?).await?;
            total.interactions += d.interactions;
            total.feedback += d.feedback;
            total.validation_logs += d.validation_logs;
        }
        let spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(user)).range(SkRange::Prefix("V#".into()));
        let unlinked = self.db().query_all(&spec).await?;
        if !unlinked.is_empty() {
            let keys = unlinked.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
            self.db().delete_keys(self.table(), keys).await?;
            total.validation_logs += unlinked.len() as i64;
            self.drop_overflow(unlinked.iter().filter_map(ovf_key).collect()).await;
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
        if self.db().transact(tx).await?.is_ok() {
            return Ok(());
        }
        if let Some(k) = spilled {
            self.drop_overflow(vec![k]).await;
        }
        Err(StoreError::Conflict("id already exists"))
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
        if self.db().put_new(self.table(), item, "pk").await? {
            return Ok(());
        }
        if let Some(k) = spilled {
            self.drop_overflow(vec![k]).await;
        }
        Err(StoreError::Conflict("id already exists"))
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

    /// The held-records items first (each user's ids in chunks, batches written [`FAN_OUT`]
    /// at a time), then the manifest, so a visible manifest has all its records. A process
    /// that dies in between leaves held items whose export has no manifest:
    /// [`HotStore::exports_holding`] leaves those out.
    async fn record_export(&self, manifest: &ExportManifest, held: &HeldRecords) -> Result<(), StoreError> {
        let items: Vec<Item> =
            held.by_user().flat_map(|(user, ids)| held_items(manifest.export_id, user, &ids)).collect();
        self.db().put_items(self.table(), items, FAN_OUT).await?;
        if self.db().put_new(self.table(), manifest_item(manifest)?, "pk").await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("id already exists"))
        }
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

    /// One consistent Query of the user's held partition (`XU#{user}`): its sort keys for a
    /// user, the items holding the id for a record; then the manifests of those exports
    /// (BatchGetItem), to leave out held items left by a recording that died before its manifest.
    async fn exports_holding(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
        let mut found = BTreeSet::new();
        for item in self.held_of(by).await? {
            found.insert(held_export(&item)?);
        }
        if found.is_empty() {
            return Ok(found);
        }
        let keys = found.iter().map(|id| key(EXPORTS_PK, id.to_string())).collect();
        let recorded = self.db().batch_get(self.table(), keys).await?;
        recorded.iter().map(|m| parse_id(get_s(m, "sk")?)).collect()
    }

    /// A user: every item of the partition goes (BatchWriteItem). A record: its id leaves each
    /// item's set (`DELETE ids :id`, atomic, so concurrent erasures of one user's records do
    /// not undo each other); an item left without ids goes (on that condition).
    async fn forget_held(&self, by: HeldBy<'_>) -> Result<(), StoreError> {
        let items = self.held_of(by).await?;
        let HeldBy::Record { id, .. } = by else {
            let keys = items.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
            return self.db().delete_keys(self.table(), keys).await;
        };
        let ids = Names::from([("#ids".to_owned(), "ids".to_owned())]);
        for item in items {
            let k = io::key_of(&item, ["pk", "sk"]);
            let one = Values::from([(":id".to_owned(), AttributeValue::Ss(vec![id.to_string()]))]);
            let left = self.db().update(self.table(), k.clone(), "DELETE #ids :id", ids.clone(), one, "attribute_exists(pk)").await?;
            if left.is_some_and(|l| !l.contains_key("ids")) {
                self.db().delete_if(self.table(), k, "attribute_not_exists(#ids)", ids.clone(), Values::new()).await?;
            }
        }
        Ok(())
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let names = Names::from([
            ("#holder".to_owned(), "holder".to_owned()),
            ("#expires".to_owned(), "expires".to_owned()),
            ("#token".to_owned(), "token".to_owned()),
        ]);
        let values = Values::from([
            (":h".to_owned(), s(holder)),
            (":exp".to_owned(), n(lease_expiry(now, ttl))),
            (":one".to_owned(), n(1)),
            (":now".to_owned(), n(now.timestamp_millis())),
        ]);
        let expr = "SET #holder = :h, #expires = :exp ADD #token :one";
        let cond = "attribute_not_exists(pk) OR #expires < :now";
        match self.db().update(self.table(), lease_key(), expr, names, values, cond).await? {
            Some(item) => lease_from(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let names =
            Names::from([("#expires".to_owned(), "expires".to_owned()), ("#token".to_owned(), "token".to_owned())]);
        let values = Values::from([(":exp".to_owned(), n(lease_expiry(now, ttl))), (":t".to_owned(), n(lease.token))]);
        match self.db().update(self.table(), lease_key(), "SET #expires = :exp", names, values, "#token = :t").await? {
            Some(item) => lease_from(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        // Expired at once, token kept: the next holder's token is still larger.
        let names =
            Names::from([("#expires".to_owned(), "expires".to_owned()), ("#token".to_owned(), "token".to_owned())]);
        let values = Values::from([(":zero".to_owned(), n(0)), (":t".to_owned(), n(lease.token))]);
        self.db().update(self.table(), lease_key(), "SET #expires = :zero", names, values, "#token = :t").await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(slot = %obj.slot))]
    async fn begin_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
        // The registry lists the platform's rows even if the run dies before its first record.
        self.ensure_platform(&obj.platform).await?;
        let tx = vec![tx_put(&self.db().archive_table, object_item(obj), not_exists_platform())?];
        if self.run_tx(lease, tx).await?.is_ok() {
            return Ok(());
        }
        match self.object_row(&obj.platform, obj.date, &obj.slot).await? {
            Some(row) if &row == obj => Ok(()),
            _ => Err(StoreError::Conflict("archive object key already recorded")),
        }
    }

    /// Not one transaction (DynamoDB allows 100 items): fenced transactions of as many records
    /// as fit (see [`Self::send_batch`]), one after another, then the row flips to committed
    /// with the object's counters. Until the flip the row is pending, so a run that dies
    /// half-way leaves it for the next run to roll forward (a rerun counts records stubbed on
    /// this slot as done) or back.
    #[tracing::instrument(skip_all, fields(slot = %obj.slot, items = items.len()))]
    async fn commit_archive(
        &self,
        lease: &Lease,
        obj: &ArchiveObject,
        items: &[ArchiveItem],
    ) -> Result<Vec<Id>, StoreError> {
        self.check_lease(lease).await?;
        let row = self.object_row(&obj.platform, obj.date, &obj.slot).await?.ok_or(StoreError::NotFound)?;
        let committed = ArchiveObject { state: ObjectState::Committed, ..obj.clone() };
        let same = match row.state {
            ObjectState::Pending => row.object_key == obj.object_key,
            ObjectState::Committed => row == committed,
        };
        if !same {
            return Err(StoreError::Conflict("archive object key already recorded"));
        }
        self.ensure_platform(&obj.platform).await?;
        // One transaction may not name an item twice: each id once, first line first.
        let mut seen = HashSet::new();
        let items: Vec<ArchiveItem> = items.iter().copied().filter(|i| seen.insert(i.id)).collect();
        let tombstoned = self.move_records(lease, &obj.slot, &items).await?;
        if row.state == ObjectState::Committed {
            // A rerun after the flip: the object is counted already.
            return Ok(tombstoned);
        }
        fail::fail_point!("commit.before_flip", |_| Err(StoreError::Unavailable("failpoint".into())));
        let (expr, mut names, mut values) =
            row_set(&committed, &["state", "records", "raw", "compressed", "class", "created"]);
        values.insert(":pending".into(), s(ObjectState::Pending.as_str()));
        names.insert("#state".into(), "state".into());
        let row_key = object_row_key(&obj.platform, obj.date, &obj.slot);
        let mut tx =
            vec![tx_update(&self.db().archive_table, row_key, expr, names, values, Some("#state = :pending"))?];
        tx.extend(self.counter_tx(&obj.platform, 0, &obj.contribution())?);
        if self.run_tx(lease, tx).await?.is_ok() {
            return Ok(tombstoned);
        }
        match self.object_row(&obj.platform, obj.date, &obj.slot).await? {
            Some(row) if row == committed => Ok(tombstoned),
            _ => Err(StoreError::Conflict("archive object changed during its commit")),
        }
    }

    #[tracing::instrument(skip_all, fields(slot = %obj.slot))]
    async fn abort_archive(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
        let cond = Some((
            "#state = :pending",
            Names::from([("#state".to_owned(), "state".to_owned())]),
            Values::from([(":pending".to_owned(), s(ObjectState::Pending.as_str()))]),
        ));
        let row_key = object_row_key(&obj.platform, obj.date, &obj.slot);
        let tx = vec![tx_delete(&self.db().archive_table, row_key, cond)?];
        if self.run_tx(lease, tx).await?.is_ok() {
            return Ok(());
        }
        match self.object_row(&obj.platform, obj.date, &obj.slot).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::Conflict("archive object is committed")),
        }
    }

    async fn list_archive_objects(&self, platform: Option<&Platform>) -> Result<Vec<ArchiveObject>, StoreError> {
        let platforms = match platform {
            Some(p) => vec![p.clone()],
            None => self.platforms().await?,
        };
        let mut out = Vec::new();
        for p in platforms {
            let mut q = QuerySpec::table(&self.db().archive_table, p.as_str().to_owned());
            q.pk_attr = "platform";
            q.sk_attr = "object";
            for it in self.db().query_all(&q).await? {
                out.push(object_from(&it)?);
            }
        }
        out.sort_by(|a, b| (a.date, a.created_at, &a.object_key).cmp(&(b.date, b.created_at, &b.object_key)));
        Ok(out)
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

    /// The index is eventually consistent: a record stubbed a moment ago may still be listed
    /// under `I#`, a stub deleted a moment ago under `A#`. So both are read for ids, and each
    /// id's head is read consistently.
    async fn archived_entries_of_user(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError> {
        let mut ids = BTreeSet::new();
        for prefix in ["A#", "I#"] {
            let spec = QuerySpec::index(self.table(), BY_USER, 2, user_pk(user))
                .range(SkRange::Prefix(prefix.into()))
                .only(&["id"]);
            for it in self.db().query_all(&spec).await? {
                ids.insert(parse_id(get_s(&it, "id")?)?);
            }
        }
        let heads: Vec<Option<Item>> =
            futures::stream::iter(ids.into_iter().map(|id| self.head(id))).buffered(FAN_OUT).try_collect().await?;
        let mut out: Vec<ArchivedEntry> =
            heads.iter().flatten().filter(|h| is_stub(h)).map(entry_from).collect::<Result<_, _>>()?;
        out.retain(|e| &e.user_id == user);
        out.sort_by_key(|e| (e.created_at, e.interaction_id));
        Ok(out)
    }

    /// One transaction: the stub goes (if it is still the same stub), its counters with it,
    /// and its line is tombstoned. Not fenced: it writes no row, and the tombstone is what
    /// tells the archive run to erase the line.
    #[tracing::instrument(skip_all, fields(interaction_id = %id))]
    async fn delete_archived(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
        for _ in 0..VERSION_ATTEMPTS {
            let part = self.partition(id).await?;
            let Some(head) = part.head.filter(is_stub) else {
                return Ok(None);
            };
            let entry = entry_from(&head)?;
            let cond = Some((
                "#t = :stub AND #object = :slot",
                Names::from([("#t".to_owned(), "t".to_owned()), ("#object".to_owned(), "object".to_owned())]),
                Values::from([(":stub".to_owned(), s(T_STUB)), (":slot".to_owned(), s(entry.object_key.clone()))]),
            ));
            let mut tx = vec![tx_delete(self.table(), key(interaction_pk(id), INTERACTION_SK), cond)?];
            tx.extend(self.counter_tx(&entry.platform, shard_of(id), &entry.facts.contribution().negated())?);
            tx.push(tx_put(self.table(), tombstone_item(&entry.object_key, id), None)?);
            tx.push(tx_put(self.table(), interaction_erasure_key(id), None)?);
            if self.db().transact(tx).await?.is_err() {
                continue;
            }
            // Links an interrupted commit left under the stub.
            self.finish_removal(part.links, &[]).await?;
            return Ok(Some(entry));
        }
        Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER })
    }

    async fn tombstones(&self, slot: &str) -> Result<HashSet<Id>, StoreError> {
        let spec =
            QuerySpec::table(self.table(), TOMB_PK.into()).range(SkRange::Prefix(format!("{slot}#"))).only(&["id"]);
        self.db().query_all(&spec).await?.iter().map(|it| parse_id(get_s(it, "id")?)).collect()
    }

    async fn tombstoned_slots(&self) -> Result<BTreeSet<String>, StoreError> {
        let spec = QuerySpec::table(self.table(), TOMB_PK.into()).only(&["slot"]);
        self.db().query_all(&spec).await?.iter().map(|it| get_s(it, "slot").map(str::to_owned)).collect()
    }

    async fn clear_tombstones(&self, lease: &Lease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return self.check_lease(lease).await;
        }
        self.drop_tombstones(lease, slot, &dedup(ids)).await
    }

    /// One fenced transaction: the row (conditioned on the key it had), the counters, and as
    /// many cleared tombstones as fit; the rest are deleted right after (their lines are gone
    /// from the live object either way).
    #[tracing::instrument(skip_all, fields(slot = %old.slot, cleared = cleared.len()))]
    async fn apply_compaction(
        &self,
        lease: &Lease,
        old: &ArchiveObject,
        new: Option<&ArchiveObject>,
        cleared: &[Id],
    ) -> Result<(), StoreError> {
        if new.is_some_and(|n| n.slot != old.slot || n.platform != old.platform || n.date != old.date) {
            return Err(StoreError::Conflict("compaction keeps the object's slot"));
        }
        let row_key = object_row_key(&old.platform, old.date, &old.slot);
        let mut delta = old.contribution().negated();
        let mut tx = vec![match new {
            Some(n) => {
                delta.add(&n.contribution());
                let (expr, names, mut values) =
                    row_set(n, &["key", "run", "records", "raw", "compressed", "class", "created"]);
                values.insert(":oldkey".into(), s(old.object_key.clone()));
                tx_update(&self.db().archive_table, row_key, expr, names, values, Some("#key = :oldkey"))?
            }
            None => {
                let names = Names::from([("#key".to_owned(), "key".to_owned())]);
                let values = Values::from([(":oldkey".to_owned(), s(old.object_key.clone()))]);
                tx_delete(&self.db().archive_table, row_key, Some(("#key = :oldkey", names, values)))?
            }
        }];
        tx.extend(self.counter_tx(&old.platform, 0, &delta)?);
        let mut cleared = dedup(cleared);
        // Room left after the row, the counters and the lease check.
        let rest = cleared.split_off(cleared.len().min(TX_MAX - 1 - tx.len()));
        for id in &cleared {
            tx.push(tx_delete(self.table(), tombstone_key(&old.slot, *id), None)?);
        }
        if self.run_tx(lease, tx).await?.is_err() {
            return Err(match self.object_row(&old.platform, old.date, &old.slot).await? {
                None => StoreError::Conflict("archive object row is gone"),
                Some(_) => StoreError::Conflict("archive object was compacted by another run"),
            });
        }
        if !rest.is_empty() {
            let keys = rest.iter().map(|id| tombstone_key(&old.slot, *id)).collect();
            self.db().delete_keys(self.table(), keys).await?;
        }
        Ok(())
    }
}

/// One record of a commit, as a consistent read of its partition found it.
enum Step {
    /// Stubbed on this slot already (by an earlier run): nothing to write.
    Done,
    /// Its line is not live (deleted, changed, archived elsewhere): tombstone it.
    Tomb(Id),
    /// Hot with the links its line holds: stub it, if it is still at the version read.
    Move(Box<Move>),
}

/// What a commit transaction needs to stub one record (its payload is not kept).
struct Move {
    item: ArchiveItem,
    ver: i64,
    stub: Item,
    platform: Platform,
    delta: PlatformCounters,
    links: Vec<Link>,
    /// The hot item's overflow object, dropped once it is stubbed.
    ovf: Option<String>,
    /// Reads of the record so far.
    reads: u32,
}

/// A link to delete with its record: key, estimated size, overflow object.
struct Link {
    key: Item,
    bytes: usize,
    ovf: Option<String>,
}

/// What [`DynamoStore::send_batch`] did.
enum Sent {
    /// Written; the ids tombstoned.
    Done(Vec<Id>),
    /// Nothing written: some records changed and were read again; send the batch again.
    Again(Vec<Step>),
}

impl Step {
    /// Items and estimated bytes it adds to a transaction, its counter update aside.
    fn cost(&self) -> (usize, usize) {
        match self {
            Step::Done => (0, 0),
            Step::Tomb(_) => (1, TX_ITEM_BYTES + TOMB_BYTES),
            Step::Move(m) => (
                1 + m.links.len(),
                TX_ITEM_BYTES + item_size(&m.stub) + m.links.iter().map(|l| TX_ITEM_BYTES + l.bytes).sum::<usize>(),
            ),
        }
    }
}

/// How many of the queue's first steps go in the next commit transaction (the lease check,
/// their items, one counter update per platform), and whether that transaction is full: the
/// step after them does not fit, or `cap` steps are in. At least one when the queue is not
/// empty: a record with more links than a transaction holds goes alone, with those that fit.
fn plan(queue: &VecDeque<Step>, cap: usize) -> (usize, bool) {
    let mut items = 1;
    let mut bytes = TX_ITEM_BYTES;
    let mut platforms: Vec<&Platform> = Vec::new();
    for (n, step) in queue.iter().enumerate() {
        if n >= cap {
            return (n, true);
        }
        let (mut i, mut b) = step.cost();
        let platform = match step {
            Step::Move(m) if !platforms.contains(&&m.platform) => Some(&m.platform),
            _ => None,
        };
        if platform.is_some() {
            i += 1;
            b += COUNTER_BYTES;
        }
        if items + i > TX_MAX || bytes + b > TX_BYTES {
            return (n.max(1), true);
        }
        items += i;
        bytes += b;
        platforms.extend(platform);
    }
    (queue.len(), queue.len() >= cap)
}

/// Records per commit transaction: [`BATCH_RECORDS`], or fewer when the failpoint
/// `commit.batch_records` is set to `return(N)` (crash tests cut a commit between
/// transactions of a few records).
fn batch_records() -> usize {
    fail::fail_point!("commit.batch_records", |v: Option<String>| {
        v.and_then(|n| n.trim().parse::<usize>().ok()).map_or(BATCH_RECORDS, |n| n.clamp(1, BATCH_RECORDS))
    });
    BATCH_RECORDS
}

fn not_exists_platform() -> Cond {
    let (n, v) = no_cond();
    Some(("attribute_not_exists(platform)", n, v))
}

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
