//! Expiry recovery: what the archiver does with an item the table's TTL removed.
//!
//! No item this code writes carries `expires_at` and the table has no TTL (CONTRACT 6a: TTL never
//! deletes a record that has no archive line). But an item written by an older version, or a TTL
//! someone turns on, can still remove a record that exists nowhere else. The stream's REMOVE
//! event holds the item's old image, so the archiver puts the item back, hot and without
//! `expires_at`; the archive run then moves it out through the two-phase commit like any other
//! record, so it is archived exactly once. Each event is handled once: its id goes in a `RCV` item
//! in the same transaction as the restore, so a redelivered batch does nothing twice.
//!
//! Never for a delete: a user's delete writes an erasure marker (`ERASE` / `U#{user}`, valid
//! [`ERASURE_WINDOW`] past its start) before it reads anything, and a delete of one interaction
//! writes `ERASE` / `I#{id}` in its own transaction. An item a delete meant to remove (its
//! removal falls before the user's marker's `until`, or its interaction is marked) is not put
//! back; what its removal skipped is done instead: the record's counters are taken off, an
//! archived record's line gets a tombstone, and links left in its partition go.
//!
//! Kinds of item:
//! - a record's head (hot or an archived stub): restored unless its user or interaction is marked;
//! - a link (feedback, linked validation): restored next to its hot head, bumping the head's
//!   version so that a delete or an archive commit reading the partition at the same time
//!   starts over; with no head (it expired too and comes in a later event) restored alone
//!   unless the interaction is marked; dropped when the head is an archived stub (a link
//!   leaves the partition only through the commit that wrote it into the line);
//! - an unlinked validation: restored unless its user is marked;
//! - a tombstone: restored (dropping it would bring an erased line back);
//! - anything else (counters, catalog, lease): not a record; logged, left alone.
//!
//! A head counting more links (`nlinks`) than its partition holds is not archived until the
//! missing links are back ([`missing_links`]), so a record never reaches an object without the
//! feedback that expired beside it.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::codec::*;
use super::io::{Names, QuerySpec, SkRange, Values, key, tx_check, tx_put, tx_update};
use super::{DynamoStore, FAILED, VERSION_ATTEMPTS, not_exists, ovf_key};
use crate::domain::types::{Id, UserId};
use crate::ports::StoreError;

/// How long a user's delete may take: TTL removals of their items up to this long after the
/// delete started are not put back. Longer than any function's timeout (15 minutes).
pub const ERASURE_WINDOW: Duration = Duration::from_secs(20 * 60);

/// The attribute a TTL would have removed items by; stripped from what is put back.
const TTL_ATTRIBUTE: &str = "expires_at";

/// What became of one TTL removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Put back; the next archive run archives it.
    Restored,
    /// This event was handled before (a redelivery), or the item is already there.
    AlreadyHandled,
    /// A delete meant to remove it: not put back, and what the delete skipped is done.
    Erased,
    /// A link whose record is archived: its content is in the record's line.
    InLine,
    /// Not a record (counters, catalog, ...): left alone.
    NotARecord,
}

/// Whether a hot head counts more links than `present`: one expired and is not back yet.
pub fn missing_links(head: &Item, present: usize) -> Result<bool, StoreError> {
    Ok(opt_n::<i64>(head, "nlinks")?.unwrap_or(0) > present as i64)
}

/// What kind of item an image is, by its keys.
enum Kind {
    Head(Id),
    Link(Id),
    UnlinkedValidation(UserId),
    Tombstone,
    Other,
}

fn kind_of(image: &Item) -> Result<Kind, StoreError> {
    let pk = get_s(image, "pk")?;
    let sk = get_s(image, "sk")?;
    if let Some(id) = pk.strip_prefix("I#") {
        let id = parse_id(id)?;
        return Ok(if sk == INTERACTION_SK { Kind::Head(id) } else { Kind::Link(id) });
    }
    if pk.starts_with("V#") && sk == "V" {
        let user = get_s(image, "gsi2pk")?.strip_prefix("U#").ok_or_else(|| corrupt("validation's user"))?;
        return Ok(Kind::UnlinkedValidation(UserId::parse(user).map_err(|_| corrupt("validation's user"))?));
    }
    if pk == TOMB_PK {
        return Ok(Kind::Tombstone);
    }
    Ok(Kind::Other)
}

/// Passes unless the user's delete that started last covers `removed_at`.
fn user_not_erased(table: &str, user: &UserId, removed_at: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
    tx_check(
        table,
        user_erasure_key(user),
        "attribute_not_exists(pk) OR #until < :removed",
        Names::from([("#until".to_owned(), "until".to_owned())]),
        Values::from([(":removed".to_owned(), n(removed_at.timestamp_millis()))]),
    )
}

/// Passes unless the interaction was deleted for good.
pub(super) fn interaction_not_erased(table: &str, id: Id) -> Result<TransactWriteItem, StoreError> {
    tx_check(table, interaction_erasure_key(id), "attribute_not_exists(pk)", Names::new(), Values::new())
}

fn failed_at(codes: &[String], i: usize) -> bool {
    codes.get(i).is_some_and(|c| c == FAILED)
}

impl DynamoStore {
    /// Handle the TTL removal of `image` (the stream's old image) at `removed_at`, once per
    /// `event_id` (the stream record's id). See the module's doc.
    #[tracing::instrument(skip_all, fields(event_id = %event_id))]
    pub async fn recover_expired(
        &self,
        mut image: Item,
        removed_at: DateTime<Utc>,
        event_id: &str,
    ) -> Result<Recovery, StoreError> {
        image.remove(TTL_ATTRIBUTE);
        // The crash tests stop a batch here, after an earlier event of it was handled.
        fail::fail_point!("expiry.before_event", |_| Err(StoreError::Unavailable("failpoint".into())));
        let outcome = match kind_of(&image)? {
            Kind::Head(id) => self.recover_head(image, id, removed_at, event_id).await?,
            Kind::Link(id) => self.recover_link(image, id, event_id).await?,
            Kind::UnlinkedValidation(user) => {
                let table = self.table();
                let tx = vec![
                    tx_put(table, recovered_item(event_id), not_exists())?,
                    tx_put(table, image.clone(), not_exists())?,
                    user_not_erased(table, &user, removed_at)?,
                ];
                match self.db().transact(tx).await? {
                    Ok(()) => Recovery::Restored,
                    Err(codes) if failed_at(&codes, 0) => Recovery::AlreadyHandled,
                    Err(codes) if failed_at(&codes, 1) => self.already_there(event_id).await?,
                    Err(_) => {
                        let outcome = self.mark_handled(event_id, Vec::new()).await?;
                        if outcome == Recovery::Erased {
                            self.drop_overflow(ovf_key(&image).into_iter().collect()).await;
                        }
                        outcome
                    }
                }
            }
            Kind::Tombstone => {
                let tx = vec![
                    tx_put(self.table(), recovered_item(event_id), not_exists())?,
                    tx_put(self.table(), image, not_exists())?,
                ];
                match self.db().transact(tx).await? {
                    Ok(()) => Recovery::Restored,
                    Err(codes) if failed_at(&codes, 0) => Recovery::AlreadyHandled,
                    Err(_) => self.already_there(event_id).await?,
                }
            }
            Kind::Other => Recovery::NotARecord,
        };
        Ok(outcome)
    }

    /// Record `event_id` as handled, with `tx` (the work a refusal still owes) in the same
    /// transaction. AlreadyHandled when it was.
    async fn mark_handled(&self, event_id: &str, tx: Vec<TransactWriteItem>) -> Result<Recovery, StoreError> {
        let mut all = vec![tx_put(self.table(), recovered_item(event_id), not_exists())?];
        all.extend(tx);
        match self.db().transact(all).await? {
            Ok(()) => Ok(Recovery::Erased),
            Err(codes) if failed_at(&codes, 0) => Ok(Recovery::AlreadyHandled),
            Err(codes) => {
                Err(StoreError::Internal(format!("expiry recovery: transaction cancelled: {}", codes.join(","))))
            }
        }
    }

    /// The item's key is taken (put back by an earlier event for the same item): nothing to do
    /// but remember the event.
    async fn already_there(&self, event_id: &str) -> Result<Recovery, StoreError> {
        self.mark_handled(event_id, Vec::new()).await?;
        Ok(Recovery::AlreadyHandled)
    }

    /// For a restore transaction whose item 0 is the event's `RCV` put and item 1 the item's
    /// put: the answer when the event was handled before, or its item is already back.
    async fn handled_before(&self, codes: &[String], event_id: &str) -> Result<Option<Recovery>, StoreError> {
        if failed_at(codes, 0) {
            return Ok(Some(Recovery::AlreadyHandled));
        }
        if failed_at(codes, 1) {
            return self.already_there(event_id).await.map(Some);
        }
        Ok(None)
    }

    async fn recover_head(
        &self,
        image: Item,
        id: Id,
        removed_at: DateTime<Utc>,
        event_id: &str,
    ) -> Result<Recovery, StoreError> {
        let table = self.table();
        let user = UserId::parse(get_s(&image, "user")?).map_err(|_| corrupt("record's user"))?;
        let tx = vec![
            tx_put(table, recovered_item(event_id), not_exists())?,
            tx_put(table, image.clone(), not_exists())?,
            user_not_erased(table, &user, removed_at)?,
            interaction_not_erased(table, id)?,
        ];
        let codes = match self.db().transact(tx).await? {
            Ok(()) => return Ok(Recovery::Restored),
            Err(codes) => codes,
        };
        if let Some(done) = self.handled_before(&codes, event_id).await? {
            if done == Recovery::AlreadyHandled {
                self.finish_cut_erasure(&image, id).await?;
            }
            return Ok(done);
        }
        // A delete meant to remove it: do what the delete could not see.
        let platform = parse_platform(get_s(&image, "platform")?)?;
        let mut owed = Vec::new();
        let delta = if is_stub(&image) {
            let entry = entry_from(&image)?;
            owed.push(tx_put(table, tombstone_item(&entry.object_key, id), None)?);
            entry.facts.contribution().negated()
        } else {
            let rec = self.decode_interaction(image.clone()).await?;
            rec.facts(false).contribution().negated()
        };
        owed.extend(self.counter_tx(&platform, shard_of(id), &delta)?);
        owed.push(tx_put(table, interaction_erasure_key(id), None)?);
        let outcome = self.mark_handled(event_id, owed).await?;
        if outcome == Recovery::Erased {
            // The crash tests stop here: the event is marked handled, its sweep not done.
            fail::fail_point!("expiry.before_sweep", |_| Err(StoreError::Unavailable("failpoint".into())));
            self.drop_overflow(ovf_key(&image).into_iter().collect()).await;
            self.sweep_links(id).await?;
        }
        Ok(outcome)
    }

    /// A redelivered head event: if its first delivery erased the record and stopped before
    /// the sweep (the event is marked handled first, so nothing else would redo it), the sweep
    /// and the overflow drop run again, both idempotent. Only while the interaction's erasure
    /// marker is there and no head is under its key: a record put back, or a new one under the
    /// same id, is never swept.
    async fn finish_cut_erasure(&self, image: &Item, id: Id) -> Result<(), StoreError> {
        if self.db().get(self.table(), interaction_erasure_key(id)).await?.is_none() || self.head(id).await?.is_some() {
            return Ok(());
        }
        self.drop_overflow(ovf_key(image).into_iter().collect()).await;
        self.sweep_links(id).await
    }

    async fn recover_link(&self, image: Item, id: Id, event_id: &str) -> Result<Recovery, StoreError> {
        let table = self.table();
        for _ in 0..VERSION_ATTEMPTS {
            let head = self.head(id).await?;
            let mut tx = vec![
                tx_put(table, recovered_item(event_id), not_exists())?,
                tx_put(table, image.clone(), not_exists())?,
            ];
            match &head {
                Some(h) if is_stub(h) => {
                    return Ok(match self.mark_handled(event_id, Vec::new()).await? {
                        Recovery::Erased => Recovery::InLine,
                        other => other,
                    });
                }
                Some(h) => {
                    let ver = version(h)?;
                    tx.push(tx_update(
                        table,
                        key(interaction_pk(id), INTERACTION_SK),
                        "SET #ver = :ver1".to_owned(),
                        Names::from([("#ver".to_owned(), "ver".to_owned()), ("#t".to_owned(), "t".to_owned())]),
                        Values::from([
                            (":ver".to_owned(), n(ver)),
                            (":ver1".to_owned(), n(ver + 1)),
                            (":hot".to_owned(), s(T_HOT)),
                        ]),
                        Some("#ver = :ver AND #t = :hot"),
                    )?);
                }
                // Its head expired too: it comes back in its own event (checked there).
                None => tx.push(tx_check(
                    table,
                    key(interaction_pk(id), INTERACTION_SK),
                    "attribute_not_exists(pk)",
                    Names::new(),
                    Values::new(),
                )?),
            }
            tx.push(interaction_not_erased(table, id)?);
            let codes = match self.db().transact(tx).await? {
                Ok(()) => return Ok(Recovery::Restored),
                Err(codes) => codes,
            };
            if let Some(done) = self.handled_before(&codes, event_id).await? {
                return Ok(done);
            }
            if failed_at(&codes, 3) {
                let outcome = self.mark_handled(event_id, Vec::new()).await?;
                if outcome == Recovery::Erased {
                    self.drop_overflow(ovf_key(&image).into_iter().collect()).await;
                }
                return Ok(outcome);
            }
            // The head changed, came back or went meanwhile: read it again.
        }
        Err(StoreError::Throttled { retry_after: super::io::THROTTLED_RETRY_AFTER })
    }

    /// Remove what is left in a deleted interaction's partition (links whose head expired
    /// before the delete, or that came back before the head was found deleted).
    async fn sweep_links(&self, id: Id) -> Result<(), StoreError> {
        let q = QuerySpec::table(self.table(), interaction_pk(id)).range(SkRange::Above(INTERACTION_SK.into()));
        let links = self.db().query_all(&q).await?;
        self.finish_removal(links, &[]).await
    }
}
