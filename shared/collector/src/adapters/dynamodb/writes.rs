//! Writes of hot records: links (feedback, linked validations) added under a version check,
//! and the removal of a hot interaction with its links.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::codec::*;
use super::io::{self, Names, Values, key, tx_delete, tx_put, tx_update};
use super::{DynamoStore, FAILED, TX_LINKS, VERSION_ATTEMPTS, hot_at, not_exists, ovf_key, sk_of};
use crate::domain::counters::PlatformCounters;
use crate::domain::records::{Interaction, NewLink};
use crate::domain::types::Id;
use crate::ports::{HotDeleted, StoreError};

impl DynamoStore {
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
    pub(super) async fn add_link(
        &self,
        interaction_id: Id,
        link_id: Id,
        link: NewLink<'_>,
        item: impl Fn() -> Result<Item, StoreError>,
    ) -> Result<(), StoreError> {
        for _ in 0..VERSION_ATTEMPTS {
            let (ver, rec) = self.hot_for_update(interaction_id).await?;
            let change = rec.linking(link)?;
            let updated = Interaction { summary: change.summary, ..rec };
            let mut item = item()?;
            let spilled = self.spill(&mut item, &DOC_PAYLOAD, interaction_id).await?;
            let mut tx = vec![tx_put(self.table(), item, not_exists())?, self.summary_tx(&updated, ver)?];
            tx.extend(self.counter_tx(&updated.platform, shard_of(link_id), &change.counters)?);
            tx.extend(spilled.as_deref().map(|k| self.claim_overflow(k)).transpose()?);
            match self.db().transact(tx).await? {
                Ok(()) => return Ok(()),
                Err(codes) => {
                    self.drop_unclaimed(spilled, &codes).await;
                    if codes.first().is_some_and(|c| c == FAILED) {
                        return Err(StoreError::Conflict("id already exists"));
                    }
                    // The interaction changed (or went) meanwhile, or the overflow object's
                    // note was taken as a dead writer's (too slow a write): read it again.
                }
            }
        }
        Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER })
    }

    /// Remove links that a transaction could not hold, and the overflow objects of removed items.
    pub(super) async fn finish_removal(&self, rest: Vec<Item>, removed: &[Item]) -> Result<(), StoreError> {
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
    pub(super) async fn remove_hot(
        &self,
        id: Id,
        replacement: impl Fn(&Interaction) -> Result<(Option<Item>, PlatformCounters), StoreError>,
    ) -> Result<Option<HotDeleted>, StoreError> {
        // Links deleted ahead of the head's transaction, kept across attempts for the counts
        // and their overflow objects.
        let mut removed_ahead: Vec<Item> = Vec::new();
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
            let for_good = stub.is_none();
            let mut tx = match stub {
                Some(item) => vec![tx_put(self.table(), item, cond)?],
                // Deleted for good: the marker keeps the stream's expiry recovery from putting
                // back any of its items (expiry.rs).
                None => {
                    vec![tx_delete(self.table(), hkey, cond)?, tx_put(self.table(), interaction_erasure_key(id), None)?]
                }
            };
            tx.extend(self.counter_tx(&rec.platform, shard_of(id), &delta)?);
            let mut links = part.links;
            // Its overflow objects are erased by prefix once it is gone; noted first, so a delete
            // cut after its transaction leaves them to the archive run's maintenance, not forever.
            let spilled = for_good && (ovf_key(&head).is_some() || links.iter().any(|l| ovf_key(l).is_some()));
            if spilled {
                self.note_prefix_erasure(id).await?;
            }
            let mut rest = links.split_off(links.len().min(TX_LINKS));
            if for_good && !rest.is_empty() {
                // Deleted for good: the links beyond one transaction go first and the head last.
                // A delete cut in between leaves the record with fewer links, which a retry finds
                // (by its head) and finishes; never links without a head, which nothing finds.
                let keys = rest.iter().map(|l| io::key_of(l, ["pk", "sk"])).collect();
                self.db().delete_keys(self.table(), keys).await?;
                removed_ahead.append(&mut rest);
            }
            for l in &links {
                tx.push(tx_delete(self.table(), io::key_of(l, ["pk", "sk"]), None)?);
            }
            if self.db().transact(tx).await?.is_err() {
                continue;
            }
            let all = || links.iter().chain(rest.iter()).chain(removed_ahead.iter());
            let feedback = all().filter(|l| sk_of(l).starts_with("F#")).count() as i64;
            let validation_logs = all().filter(|l| sk_of(l).starts_with("V#")).count() as i64;
            let mut removed = links;
            removed.push(head);
            removed.append(&mut removed_ahead);
            self.finish_removal(rest, &removed).await?;
            if spilled && let Err(e) = self.erase_prefix(id).await {
                tracing::warn!(error = %e, "overflow objects of a deleted record left to the next archive run");
            }
            return Ok(Some(HotDeleted { interactions: 1, feedback, validation_logs }));
        }
        Err(StoreError::Throttled { retry_after: io::THROTTLED_RETRY_AFTER })
    }
}
