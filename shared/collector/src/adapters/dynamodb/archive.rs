//! The archive run on DynamoDB: the catalog rows' two-phase commit (begin, the record moves
//! planned in fenced transactions, the flip, abort), compaction, archived entries and tombstones.

use std::collections::{BTreeSet, HashSet, VecDeque};

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};

use super::codec::*;
use super::io::{self, Cond, Names, QuerySpec, SkRange, Values, key, tx_delete, tx_put, tx_update};
use super::{
    BATCH_RECORDS, COUNTER_BYTES, DynamoStore, FAILED, FAN_OUT, NOTE_BYTES, TOMB_BATCH, TOMB_BYTES, TX_BYTES,
    TX_ITEM_BYTES, TX_MAX, VERSION_ATTEMPTS, expiry, hot_at, no_cond, ovf_key,
};
use crate::domain::archive::{ArchiveObject, ObjectState};
use crate::domain::counters::PlatformCounters;
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{ArchiveItem, ArchivedEntry, Lease, StoreError};

impl DynamoStore {
    /// Read one record of a commit (its partition, consistently) and say what to do with it.
    /// `reads`: how many times it has been read, this time included.
    async fn classify(&self, slot: &str, item: ArchiveItem, reads: u32) -> Result<Step, StoreError> {
        let part = self.partition(item.id).await?;
        let head = match part.head {
            // Links only ever grow: the same count is the record the line was written from. A
            // head counting more links than its partition holds is waiting for the stream's
            // expiry recovery to put one back (expiry.rs): it stays hot until then.
            Some(h)
                if is_hot(&h)
                    && part.links.len() as i64 == item.links
                    && !expiry::missing_links(&h, part.links.len())? =>
            {
                h
            }
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
        // A record whose line is tombstoned in this slot is never moved into it, whatever its
        // state now (the stream's expiry recovery can put a record back as it was): that line
        // is dead and goes at the next compaction. It stays hot.
        let dead = crate::ports::HotStore::tombstones(self, slot).await?;
        let dead = &dead;
        let (sender, receiver) = tokio::sync::mpsc::channel(2 * TX_MAX);
        let reads = async move {
            let mut steps = futures::stream::iter(items.iter().copied().map(|item| async move {
                if dead.contains(&item.id) { Ok(Step::Tomb(item.id)) } else { self.classify(slot, item, 1).await }
            }))
            .buffered(FAN_OUT);
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
        // Overflow objects unlinked by the transaction (noted in it) and by the deletes after it.
        let (mut noted, mut unnoted) = (Vec::new(), Vec::new());
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
                    // An overflow object of an item this transaction replaces or deletes is
                    // noted in it: once it commits nothing points at the object, and a run cut
                    // before the object's delete leaves the note for the maintenance (else the
                    // object, which may hold a deleted user's data, stayed for good).
                    if let Some(k) = &m.ovf {
                        tx.push(tx_put(self.table(), object_erasure_key(k), None)?);
                        items += 1;
                        bytes += TX_ITEM_BYTES + NOTE_BYTES;
                        noted.push(k.clone());
                    }
                    for l in &m.links {
                        let (need, need_bytes) = match l.ovf {
                            Some(_) => (2, 2 * TX_ITEM_BYTES + l.bytes + NOTE_BYTES),
                            None => (1, TX_ITEM_BYTES + l.bytes),
                        };
                        if items + need <= TX_MAX && bytes + need_bytes <= TX_BYTES {
                            tx.push(tx_delete(self.table(), l.key.clone(), None)?);
                            if let Some(k) = &l.ovf {
                                tx.push(tx_put(self.table(), object_erasure_key(k), None)?);
                                noted.push(k.clone());
                            }
                            items += need;
                            bytes += need_bytes;
                        } else {
                            // Deleted after the transaction; a run cut before that finds the
                            // link under the stub and deletes it and its object (`classify`).
                            rest.push(l.key.clone());
                            unnoted.extend(l.ovf.clone());
                        }
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
                fail::fail_point!("commit.after_transaction", |_| Err(StoreError::Unavailable("failpoint".into())));
                if !rest.is_empty() {
                    self.db().delete_keys(self.table(), rest).await?;
                }
                self.drop_noted_overflow(noted).await;
                self.drop_overflow(unnoted).await;
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

    pub(super) async fn object_row(
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

    pub(super) async fn begin_archive_impl(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
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
    pub(super) async fn commit_archive_impl(
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

    pub(super) async fn abort_archive_impl(&self, lease: &Lease, obj: &ArchiveObject) -> Result<(), StoreError> {
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

    pub(super) async fn list_archive_objects_impl(
        &self,
        platform: Option<&Platform>,
    ) -> Result<Vec<ArchiveObject>, StoreError> {
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

    /// The index is eventually consistent: a record stubbed a moment ago may still be listed
    /// under `I#`, a stub deleted a moment ago under `A#`. So both are read for ids (the
    /// entries' projected `id`), and the heads are read consistently by key (BatchGetItem).
    pub(super) async fn archived_entries_of_user_impl(&self, user: &UserId) -> Result<Vec<ArchivedEntry>, StoreError> {
        let mut ids = BTreeSet::new();
        for prefix in ["A#", "I#"] {
            let spec = QuerySpec::index(self.table(), &BY_USER, user_pk(user))
                .range(SkRange::Prefix(prefix.into()))
                .only(&["id"]);
            for it in self.db().query_all(&spec).await? {
                ids.insert(parse_id(get_s(&it, "id")?)?);
            }
        }
        let keys = ids.into_iter().map(|id| key(interaction_pk(id), INTERACTION_SK)).collect();
        let heads = self.db().batch_get(self.table(), keys).await?;
        let mut out: Vec<ArchivedEntry> =
            heads.iter().filter(|h| is_stub(h)).map(entry_from).collect::<Result<_, _>>()?;
        out.retain(|e| &e.user_id == user);
        out.sort_by_key(|e| (e.created_at, e.interaction_id));
        Ok(out)
    }

    /// One transaction: the stub goes (if it is still the same stub), its counters with it,
    /// and its line is tombstoned. Not fenced: it writes no row, and the tombstone is what
    /// tells the archive run to erase the line.
    pub(super) async fn delete_archived_impl(&self, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
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

    pub(super) async fn clear_tombstones_impl(&self, lease: &Lease, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return self.check_lease(lease).await;
        }
        self.drop_tombstones(lease, slot, &dedup(ids)).await
    }

    /// One fenced transaction: the row (conditioned on the key it had), the counters, and as
    /// many cleared tombstones as fit; the rest are deleted right after (their lines are gone
    /// from the live object either way). Once the transaction is through the swap has happened,
    /// so a failure to delete the rest is logged, not returned: the caller would otherwise take
    /// the swap for failed. A tombstone left behind names a line the live object no longer
    /// has; a later run compacts the slot again, and that finds nothing to erase and clears it.
    pub(super) async fn apply_compaction_impl(
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
            if let Err(e) = self.db().delete_keys(self.table(), keys).await {
                tracing::warn!(error = %e, left = rest.len(), "compaction: clearing tombstones after the swap failed; a later run clears them");
            }
        }
        Ok(())
    }
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

fn dedup(ids: &[Id]) -> Vec<Id> {
    ids.iter().copied().collect::<BTreeSet<Id>>().into_iter().collect()
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
            Step::Move(m) => {
                // Each overflow object's erasure note is one more item (`send_batch`).
                let notes = usize::from(m.ovf.is_some()) + m.links.iter().filter(|l| l.ovf.is_some()).count();
                (
                    1 + m.links.len() + notes,
                    TX_ITEM_BYTES
                        + item_size(&m.stub)
                        + m.links.iter().map(|l| TX_ITEM_BYTES + l.bytes).sum::<usize>()
                        + notes * (TX_ITEM_BYTES + NOTE_BYTES),
                )
            }
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
