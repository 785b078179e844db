//! Reads: an interaction's partition and head, decoding records with their links, and the
//! listings: index queries (merged over a platform's shards) whose records are read from the
//! table by key.

use std::collections::{HashMap, HashSet, VecDeque};

use futures::{StreamExt, TryStreamExt};

use super::codec::*;
use super::io::{Dynamo, QuerySpec, SkRange, key};
use super::{DynamoStore, FAN_OUT, Partition, VERSION_ATTEMPTS, is_link, sk_of};
use crate::domain::records::{Feedback, Interaction, PageBudget, SCAN_PAGE_BYTES, ValidationLog};
use crate::domain::types::{Id, Platform};
use crate::ports::{Linked, StoreError};

impl DynamoStore {
    pub(super) async fn partition(&self, id: Id) -> Result<Partition, StoreError> {
        let items = self.db().query_all(&QuerySpec::table(self.table(), interaction_pk(id))).await?;
        let mut head = None;
        let mut links = Vec::new();
        for it in items {
            if is_link(&it) { links.push(it) } else { head = Some(it) }
        }
        Ok(Partition { head, links })
    }

    pub(super) async fn head(&self, id: Id) -> Result<Option<Item>, StoreError> {
        self.db().get(self.table(), key(interaction_pk(id), INTERACTION_SK)).await
    }

    pub(super) async fn decode_links(
        &self,
        links: Vec<Item>,
    ) -> Result<(Vec<Feedback>, Vec<ValidationLog>), StoreError> {
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

    pub(super) async fn decode_interaction(&self, item: Item) -> Result<Interaction, StoreError> {
        interaction_from(&self.resolve(item).await?)
    }

    pub(super) async fn decode_interactions(&self, items: Vec<Item>) -> Result<Vec<Interaction>, StoreError> {
        futures::stream::iter(items.into_iter().map(|it| self.decode_interaction(it)))
            .buffered(FAN_OUT)
            .try_collect()
            .await
    }

    /// Records of a page with their links; partitions are read only for records that have links.
    /// The records of a scan page with their links, in order, as many as a [`PageBudget`] of
    /// `SCAN_PAGE_BYTES` admits (heads are decoded first; links are read only for those kept).
    pub(super) async fn attach_links(&self, items: Vec<Item>) -> Result<Vec<Linked>, StoreError> {
        let head = |it: Item| async move {
            let nlinks: i64 = opt_n(&it, "nlinks")?.unwrap_or(0);
            Ok::<_, StoreError>((nlinks, self.decode_interaction(it).await?))
        };
        let mut heads = Vec::new();
        let mut budget = PageBudget::new(SCAN_PAGE_BYTES);
        let mut decoded = futures::stream::iter(items.into_iter().map(head)).buffered(FAN_OUT);
        while let Some(next) = decoded.next().await {
            let (nlinks, interaction) = next?;
            if !budget.admits(interaction.scan_bytes()) {
                break;
            }
            heads.push((nlinks, interaction));
        }
        drop(decoded);
        let one = |(nlinks, interaction): (i64, Interaction)| async move {
            if nlinks == 0 {
                return Ok::<_, StoreError>(Linked { interaction, feedback: Vec::new(), validations: Vec::new() });
            }
            fail::fail_point!("scan.before_links");
            let q = QuerySpec::table(self.table(), interaction_pk(interaction.id))
                .range(SkRange::Above(INTERACTION_SK.into()));
            let links = self.db().query_all(&q).await?;
            if links.len() as i64 == nlinks {
                let (feedback, validations) = self.decode_links(links).await?;
                return Ok(Linked { interaction, feedback, validations });
            }
            self.agreeing_partition(interaction, links).await
        };
        futures::stream::iter(heads.into_iter().map(one)).buffered(FAN_OUT).try_collect().await
    }

    /// A record whose links, read after its head, are not the ones its head counts (a feedback
    /// or validation came in between): its partition is read again, head and links in one
    /// query, until they agree, so an archive line never pairs a feedback summary with links it
    /// does not count (the commit would move such a line: its link count is the partition's).
    /// A record gone or archived meanwhile, or never agreeing (a head waiting for the stream's
    /// expiry recovery), is given as first read: the commit leaves it hot or tombstones it.
    async fn agreeing_partition(&self, interaction: Interaction, links: Vec<Item>) -> Result<Linked, StoreError> {
        for _ in 0..VERSION_ATTEMPTS {
            let part = self.partition(interaction.id).await?;
            let Some(head) = part.head.filter(is_hot) else { break };
            if opt_n::<i64>(&head, "nlinks")?.unwrap_or(0) == part.links.len() as i64 {
                let interaction = self.decode_interaction(head).await?;
                let (feedback, validations) = self.decode_links(part.links).await?;
                return Ok(Linked { interaction, feedback, validations });
            }
        }
        let (feedback, validations) = self.decode_links(links).await?;
        Ok(Linked { interaction, feedback, validations })
    }

    /// Up to `limit` records named by index queries (the shards of a platform, or one user's
    /// range), in the index's order (merged on the sort key), each read whole from the table by
    /// key: the indexes project keys and a few listing fields only. The entries are read in
    /// pages and their items fetched with consistent BatchGetItem calls; an entry whose item is
    /// gone, is no longer under the same index key (archived into a stub: out of the platform
    /// index, under `A#` in the user's; deleted and inserted again elsewhere), fails the
    /// query's platform filter or is not what `wanted` asks for, is skipped exactly as if the
    /// index had not returned it, and the merge reads on to fill the page. So a short answer
    /// still means the index has nothing more, and no record is listed twice.
    pub(super) async fn listed(
        &self,
        specs: Vec<QuerySpec>,
        limit: usize,
        wanted: Wanted,
    ) -> Result<Vec<Item>, StoreError> {
        let Some(first) = specs.first().filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let index = first.index.ok_or_else(|| StoreError::Internal("a listing reads an index".into()))?;
        let platform = first.platform.clone();
        let db = self.db();
        let mut merge = Merge::open(db, specs, limit).await?;
        let mut out = Vec::new();
        while out.len() < limit {
            let entries = merge.take(db, limit - out.len()).await?;
            if entries.is_empty() {
                break;
            }
            out.extend(self.read_listed(index, &entries, platform.as_deref(), wanted).await?);
        }
        Ok(out)
    }

    /// The table items of index entries, in the entries' order, kept as [`select_listed`] says.
    pub(super) async fn read_listed(
        &self,
        index: &Gsi,
        entries: &[Item],
        platform: Option<&str>,
        wanted: Wanted,
    ) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::new();
        let keys: Vec<Item> = entries
            .iter()
            .filter_map(|e| table_key(e).filter(|k| seen.insert(k.clone())))
            .map(|(pk, sk)| key(pk, sk))
            .collect();
        let fetched = self.db().batch_get(self.table(), keys).await?;
        Ok(select_listed(index, entries, fetched, platform, wanted))
    }

    pub(super) fn platform_specs(&self, platforms: &[Platform], range: &SkRange, ascending: bool) -> Vec<QuerySpec> {
        let mut specs = Vec::new();
        for p in platforms {
            for shard in 0..SHARDS {
                let mut q =
                    QuerySpec::index(self.table(), &BY_PLATFORM, platform_shard_pk(p, shard)).range(range.clone());
                if !ascending {
                    q = q.descending();
                }
                specs.push(q);
            }
        }
        specs
    }
}

/// Which fetched items a listing keeps (e.g. [`is_hot`]).
pub(super) type Wanted = fn(&Item) -> bool;

/// The table key (`pk`, `sk`) an item or index entry names.
fn table_key(item: &Item) -> Option<(String, String)> {
    Some((get_s(item, "pk").ok()?.to_owned(), get_s(item, "sk").ok()?.to_owned()))
}

/// The items of `fetched` that index `entries` name, in the entries' order: an entry is kept
/// only when its item is there (not deleted since the index was read), still carries the same
/// index key (an archived stub has no platform key and another user-index key; an item deleted
/// and written again may sit elsewhere), passes the query's platform filter and is `wanted`.
/// Each item is kept at most once, for the entry that matches it.
pub(super) fn select_listed(
    index: &Gsi,
    entries: &[Item],
    fetched: Vec<Item>,
    platform: Option<&str>,
    wanted: Wanted,
) -> Vec<Item> {
    let mut by_key: HashMap<(String, String), Item> =
        fetched.into_iter().filter_map(|it| Some((table_key(&it)?, it))).collect();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(k) = table_key(entry) else { continue };
        let Some(item) = by_key.get(&k) else { continue };
        let same = |attr: &str| get_s(entry, attr).is_ok_and(|v| get_s(item, attr).is_ok_and(|w| v == w));
        let kept = same(index.pk)
            && same(index.sk)
            && platform.is_none_or(|p| get_s(item, "platform").ok() == Some(p))
            && wanted(item);
        if kept && let Some(item) = by_key.remove(&k) {
            out.push(item);
        }
    }
    out
}

/// K-way merge of index queries (shards), each read lazily in small pages: a lane is refilled
/// only when its buffer runs dry. Ordered by each entry's sort-key attribute.
struct Merge {
    lanes: Vec<Lane>,
    ascending: bool,
}

struct Lane {
    spec: QuerySpec,
    buf: VecDeque<Item>,
    next: Option<Item>,
    page: i32,
}

impl Merge {
    /// The first page of every lane, sized for `limit` entries over all of them.
    async fn open(db: &Dynamo, specs: Vec<QuerySpec>, limit: usize) -> Result<Merge, StoreError> {
        let ascending = specs.first().is_none_or(|s| s.ascending);
        let lanes_n = specs.len().max(1);
        let page = i32::try_from((limit / lanes_n).saturating_add(2).clamp(2, 100)).unwrap_or(100);
        let lanes = futures::future::try_join_all(specs.into_iter().map(|spec| async move {
            let (items, next) = db.query_page(&spec, None, Some(page)).await?;
            Ok::<_, StoreError>(Lane { spec, buf: items.into(), next, page })
        }))
        .await?;
        Ok(Merge { lanes, ascending })
    }

    /// The next `n` entries in order (fewer when every lane is exhausted).
    async fn take(&mut self, db: &Dynamo, n: usize) -> Result<Vec<Item>, StoreError> {
        let sort_key =
            |lane: &Lane| -> Option<String> { get_s(lane.buf.front()?, lane.spec.sk_attr).ok().map(str::to_owned) };
        let mut out = Vec::new();
        while out.len() < n {
            for lane in self.lanes.iter_mut() {
                while lane.buf.is_empty() && lane.next.is_some() {
                    lane.page = (lane.page * 2).min(100);
                    let (items, next) = db.query_page(&lane.spec, lane.next.take(), Some(lane.page)).await?;
                    lane.buf.extend(items);
                    lane.next = next;
                }
            }
            let mut best: Option<(usize, String)> = None;
            for (i, lane) in self.lanes.iter().enumerate() {
                let Some(k) = sort_key(lane) else { continue };
                let better = match &best {
                    None => true,
                    Some((_, b)) => (self.ascending && k < *b) || (!self.ascending && k > *b),
                };
                if better {
                    best = Some((i, k));
                }
            }
            let Some((i, _)) = best else { break };
            if let Some(it) = self.lanes[i].buf.pop_front() {
                out.push(it);
            }
        }
        Ok(out)
    }
}
