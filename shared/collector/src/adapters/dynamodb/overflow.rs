//! Overflow objects: the payload of an item too big for DynamoDB goes to the object store,
//! and comes back when the item is read.

use futures::{StreamExt, TryStreamExt};

use super::codec::*;
use super::io::QuerySpec;
use super::{DynamoStore, FAN_OUT, ovf_key};
use crate::domain::archive::StorageClass;
use crate::domain::types::Id;
use crate::ports::StoreError;

impl DynamoStore {
    /// Move the payload of an item too big for DynamoDB to an overflow object; returns its key.
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
        self.inner.overflow.put(&k, bytes, StorageClass::Standard).await?;
        item.insert("ovf".into(), s(k.clone()));
        if item_size(item) > ITEM_BUDGET {
            return Err(StoreError::Internal("record too large even without its payload".into()));
        }
        Ok(Some(k))
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
        let mut done = 0;
        for note in notes {
            let sk = get_s(&note, "sk")?;
            if let Some(object_key) = sk.strip_prefix("K#") {
                self.inner.overflow.delete(object_key).await?;
                self.db().delete_keys(self.table(), vec![object_erasure_key(object_key)]).await?;
                done += 1;
            } else if let Some(id) = sk.strip_prefix("P#") {
                let id = parse_id(id)?;
                if self.db().get(self.table(), interaction_erasure_key(id)).await?.is_some() {
                    self.erase_prefix(id).await?;
                    done += 1;
                }
            }
        }
        Ok(done)
    }
}
