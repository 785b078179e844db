//! Reads: an interaction's partition and head, decoding records with their links, and the
//! merged queries over a platform's or user's shards.

use std::collections::VecDeque;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};

use super::codec::*;
use super::io::{QuerySpec, SkRange, key};
use super::{BY_PLATFORM, DynamoStore, FAN_OUT, Partition, is_link, sk_of};
use crate::domain::records::{Feedback, Interaction, ValidationLog};
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
    pub(super) async fn attach_links(&self, items: Vec<Item>) -> Result<Vec<Linked>, StoreError> {
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
    pub(super) async fn merged(&self, specs: Vec<QuerySpec>, limit: usize) -> Result<Vec<Item>, StoreError> {
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

    pub(super) fn platform_specs(&self, platforms: &[Platform], range: &SkRange, ascending: bool) -> Vec<QuerySpec> {
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
}
