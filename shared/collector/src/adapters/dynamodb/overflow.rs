//! Overflow objects: the payload of an item too big for DynamoDB goes to the object store,
//! and comes back when the item is read.

use futures::{StreamExt, TryStreamExt};

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::Utc;

use super::codec::*;
use super::io::{Names, QuerySpec, Values, tx_put, tx_update};
use super::{DynamoStore, FAILED, FAN_OUT, not_exists, ovf_key};
use crate::domain::archive::StorageClass;
use crate::domain::types::Id;
use crate::ports::StoreError;

impl DynamoStore {
    /// Move the payload of an item too big for DynamoDB to an overflow object; returns its key.
    /// The object is noted first (`OVFDEL` / `K#{key}` with the time), so a writer that dies
    /// before its item is stored leaves a note the maintenance erases it by, not an object no
    /// one knows of. The item's transaction must hold [`Self::claim_overflow`] for the key.
    pub(super) async fn spill(
        &self,
        item: &mut Item,
        payload: &[&str],
        owner: Id,
    ) -> Result<Option<String>, StoreError> {
        if item_size(item) <= ITEM_BUDGET {
            return Ok(None);
        }
        let Some(bytes) = take_payload(item, payload)? else {
            return Ok(None);
        };
        let k = format!("overflow/{owner}/{}", Id::new());
        self.db().put(self.table(), pending_object_note(&k, Utc::now())).await?;
        self.inner.overflow.put(&k, bytes, StorageClass::Standard).await?;
        fail::fail_point!("overflow.after_upload", |_| Err(StoreError::Unavailable("failpoint".into())));
        item.insert("ovf".into(), s(k.clone()));
        if item_size(item) > ITEM_BUDGET {
            return Err(StoreError::Internal("record too large even without its payload".into()));
        }
        Ok(Some(k))
    }

    /// The transaction item that claims a spilled object for the item written with it: it fails
    /// (and with it the transaction) once the maintenance has taken the note as a dead writer's.
    pub(super) fn claim_overflow(&self, object_key: &str) -> Result<TransactWriteItem, StoreError> {
        tx_update(
            self.table(),
            object_erasure_key(object_key),
            "SET #claimed = :one REMOVE #writing".into(),
            Names::from([("#claimed".into(), NOTE_CLAIMED.into()), ("#writing".into(), NOTE_WRITING.into())]),
            Values::from([(":one".into(), n(1))]),
            Some("attribute_exists(#writing)"),
        )
    }

    /// After a failed transaction holding the claim of `spilled` (its last item, `codes` its
    /// cancellation codes): drop the object, unless the claim was refused. Then it must stay:
    /// either the maintenance took it (and erases it), or this writer's own earlier attempt
    /// stored the item and claimed it (a transaction run again after its answer was lost), and
    /// the item points at it.
    pub(super) async fn drop_unclaimed(&self, spilled: Option<String>, codes: &[String]) {
        if let Some(k) = spilled
            && codes.last().is_none_or(|c| c != FAILED)
        {
            self.drop_overflow(vec![k]).await;
        }
    }

    /// Store a new document item (an unlinked validation, a training metric) that may point at
    /// the spilled object `spilled`: with the object's claim in one transaction when it does.
    pub(super) async fn put_new_doc(&self, item: Item, spilled: Option<String>) -> Result<(), StoreError> {
        let Some(k) = spilled else {
            return match self.db().put_new(self.table(), item, "pk").await? {
                true => Ok(()),
                false => Err(StoreError::Conflict("id already exists")),
            };
        };
        let tx = vec![tx_put(self.table(), item, not_exists())?, self.claim_overflow(&k)?];
        let sent = self.db().transact(tx).await?;
        self.settle_doc_write(sent, Some(k)).await
    }

    /// The answer to a new document's transaction (its put first, the claim of `spilled` last).
    /// On failure the spilled object is dropped unless its claim was refused
    /// ([`Self::drop_unclaimed`]): the put's condition failing is a taken id, the claim's alone a
    /// writer that outlived its note (retryable).
    pub(super) async fn settle_doc_write(
        &self,
        sent: Result<(), Vec<String>>,
        spilled: Option<String>,
    ) -> Result<(), StoreError> {
        let Err(codes) = sent else {
            return Ok(());
        };
        self.drop_unclaimed(spilled, &codes).await;
        if codes.first().is_some_and(|c| c == FAILED) {
            return Err(StoreError::Conflict("id already exists"));
        }
        Err(StoreError::Unavailable("a large write outlived its overflow note; retry".into()))
    }

    /// Put an item's overflow payload back, if it has one.
    pub(super) async fn resolve(&self, mut item: Item) -> Result<Item, StoreError> {
        if let Some(k) = ovf_key(&item) {
            let bytes = self.inner.overflow.get(&k).await?;
            restore_payload(&mut item, &bytes)?;
            item.remove("ovf");
        }
        Ok(item)
    }

    /// [`Self::resolve`] for a page of items, up to [`FAN_OUT`] objects read at once.
    pub(super) async fn resolve_all(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        futures::stream::iter(items.into_iter().map(|it| self.resolve(it))).buffered(FAN_OUT).try_collect().await
    }

    /// Remove overflow objects no item points at any more (their items are gone or replaced,
    /// or their write lost). One whose delete fails is noted (`OVFDEL` / `K#{key}`) for the archive
    /// run's maintenance to delete: it may hold data of a record that was deleted.
    pub(super) async fn drop_overflow(&self, keys: Vec<String>) {
        for k in keys {
            if let Err(e) = self.inner.overflow.delete(&k).await {
                tracing::warn!(object_key = %k, error = %e, "overflow object left behind; noted for the next archive run");
                if let Err(e) = self.db().put(self.table(), object_erasure_key(&k)).await {
                    tracing::error!(object_key = %k, error = %e, "overflow object left behind and not noted");
                }
            }
        }
    }

    /// Overflow objects whose erasure notes (`OVFDEL` / `K#{key}`) were written with, or before,
    /// the write that unlinked them: each object deleted, then the notes of those deleted. A
    /// note whose object could not be deleted, or that is left by a cut, is finished by the
    /// archive run's maintenance.
    pub(super) async fn drop_noted_overflow(&self, keys: Vec<String>) {
        let mut done = Vec::with_capacity(keys.len());
        for k in keys {
            match self.inner.overflow.delete(&k).await {
                Ok(()) => done.push(object_erasure_key(&k)),
                Err(e) => {
                    tracing::warn!(object_key = %k, error = %e, "overflow object left behind; its note stays for the next archive run")
                }
            }
        }
        if !done.is_empty()
            && let Err(e) = self.db().delete_keys(self.table(), done).await
        {
            tracing::warn!(error = %e, "erasure notes of deleted overflow objects left; the next archive run finishes them");
        }
    }

    /// Before an interaction with overflow objects is deleted for good: note its prefix, so a
    /// delete cut after its transaction still has its objects erased (by the maintenance).
    pub(super) async fn note_prefix_erasure(&self, id: Id) -> Result<(), StoreError> {
        self.db().put(self.table(), prefix_erasure_key(id)).await
    }

    /// Erase every overflow object under `overflow/{id}/` (including any a lost write left), then
    /// the note. Called once the interaction is deleted for good.
    pub(super) async fn erase_prefix(&self, id: Id) -> Result<(), StoreError> {
        for k in self.inner.overflow.list(&format!("overflow/{id}/")).await? {
            self.inner.overflow.delete(&k).await?;
        }
        self.db().delete_keys(self.table(), vec![prefix_erasure_key(id)]).await
    }

    /// The notes left by deletes cut short or failed: each object deleted, each prefix erased
    /// once its interaction's erasure marker exists (a note without one is a delete that did not
    /// go through, or is going on: left). Returns the notes finished.
    pub(super) async fn finish_payload_erasures_impl(&self) -> Result<u64, StoreError> {
        let notes = self.db().query_all(&QuerySpec::table(self.table(), PAYLOAD_ERASURE_PK.into())).await?;
        // An unclaimed note written before this is a dead writer's.
        // (A grace too long to subtract: nothing is due.)
        let grace = chrono::Duration::from_std(self.overflow_grace).unwrap_or(chrono::Duration::MAX);
        let due = Utc::now().checked_sub_signed(grace).map_or(i64::MIN, |t| t.timestamp());
        // Every spilled write leaves a note until this runs: [`FAN_OUT`] at a time.
        let finished: Vec<bool> = futures::stream::iter(notes.into_iter().map(|note| self.finish_note(note, due)))
            .buffer_unordered(FAN_OUT)
            .try_collect()
            .await?;
        Ok(finished.into_iter().filter(|f| *f).count() as u64)
    }

    /// One note of [`Self::finish_payload_erasures_impl`]; true when it erased something.
    async fn finish_note(&self, note: Item, due: i64) -> Result<bool, StoreError> {
        let sk = get_s(&note, "sk")?;
        if let Some(object_key) = sk.strip_prefix("K#") {
            if note.contains_key(NOTE_CLAIMED) {
                // In use by the item that claimed it. The condition keeps a note a delete has
                // put since (without the claim: the object is to go).
                let (names, values) = (Names::from([("#c".into(), NOTE_CLAIMED.into())]), Values::new());
                let key = object_erasure_key(object_key);
                self.db().delete_if(self.table(), key, "attribute_exists(#c)", names, values).await?;
                return Ok(false);
            }
            if note.contains_key(NOTE_WRITING) {
                if get_n::<i64>(&note, NOTE_WRITING)? > due {
                    return Ok(false); // its writer may still be storing the item
                }
                // A dead writer's: taken from it first, so that a late claim fails.
                let names = Names::from([("#w".into(), NOTE_WRITING.into())]);
                let cond = "attribute_exists(#w)";
                let key = object_erasure_key(object_key);
                if self.db().update(self.table(), key, "REMOVE #w", names, Values::new(), cond).await?.is_none() {
                    return Ok(false); // claimed meanwhile: the next run drops the note
                }
            }
            self.inner.overflow.delete(object_key).await?;
            self.db().delete_keys(self.table(), vec![object_erasure_key(object_key)]).await?;
            return Ok(true);
        }
        if let Some(id) = sk.strip_prefix("P#") {
            let id = parse_id(id)?;
            if self.db().get(self.table(), interaction_erasure_key(id)).await?.is_some() {
                self.erase_prefix(id).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}
